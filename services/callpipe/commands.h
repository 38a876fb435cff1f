/* callpipe CLI — one function per subcommand, each in its own cmd-*.c */
#ifndef CP_CLI_COMMANDS_H
#define CP_CLI_COMMANDS_H

#include <glib.h>

G_BEGIN_DECLS

/* Each command gets argv with argv[0] = the command name and returns the
 * process exit status: 0 on success, 1 on a failure, 2 on bad usage. */
typedef int (*CpCliCommandFunc) (int argc, char **argv);

typedef struct
{
  const gchar *name;
  const gchar *summary;
  CpCliCommandFunc func;
} CpCliCommand;

int cp_cli_cmd_call (int argc, char **argv);
int cp_cli_cmd_elements (int argc, char **argv);
int cp_cli_cmd_kvs_inspect (int argc, char **argv);
int cp_cli_cmd_presign (int argc, char **argv);
int cp_cli_cmd_sessions (int argc, char **argv);

G_END_DECLS

#endif /* CP_CLI_COMMANDS_H */

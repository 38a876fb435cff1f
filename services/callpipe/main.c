/* callpipe — the command-line tool: dispatches to one subcommand. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include <stdio.h>
#include <string.h>

static const CpCliCommand commands[] = {
    {"call", "start a call (local media or --say TEXT) on a running callpiped",
        cp_cli_cmd_call},
    {"elements", "list the callpipe GStreamer elements that are installed",
        cp_cli_cmd_elements},
    {"kvs-inspect", "list the fragments and audio tracks of a KVS capture",
        cp_cli_cmd_kvs_inspect},
    {"presign", "print a presigned GET URL for s3://BUCKET/KEY",
        cp_cli_cmd_presign},
    {"sessions", "list the sessions of a running callpiped",
        cp_cli_cmd_sessions},
};

static void
print_usage (FILE *out)
{
  gsize i;

  fprintf (out, "usage: callpipe COMMAND [ARGS...]\n\ncommands:\n");
  for (i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\n'callpipe COMMAND --help' describes a command.\n");
}

int
main (int argc, char **argv)
{
  gsize i;

  if (argc < 2) {
    print_usage (stderr);
    return 2;
  }
  if (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")
      || !strcmp (argv[1], "help")) {
    print_usage (stdout);
    return 0;
  }
  if (!strcmp (argv[1], "--version")) {
    printf ("callpipe %s\n", VERSION);
    return 0;
  }
  for (i = 0; i < G_N_ELEMENTS (commands); i++) {
    if (!strcmp (argv[1], commands[i].name))
      return commands[i].func (argc - 1, argv + 1);
  }
  fprintf (stderr, "callpipe: unknown command '%s'\n", argv[1]);
  print_usage (stderr);
  return 2;
}

/* callpipe — the AWS shared config and credentials files
 *
 * The ini dialect the AWS SDKs read: `[name]` sections (`[profile name]`
 * in the config file, except `[default]`), `key = value` properties with
 * case-insensitive keys, `#`/`;` comment lines and comments after
 * whitespace, indented sub-properties (skipped). A file that does not
 * exist is empty, as in the SDKs; a file that is not this format is an
 * error naming the file and line.
 */
#ifndef CP_AWS_CONFIG_H
#define CP_AWS_CONFIG_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  CP_AWS_CONFIG_FILE_CREDENTIALS,  /* sections are profile names */
  CP_AWS_CONFIG_FILE_CONFIG,       /* [default] and [profile name] */
} CpAwsConfigFileKind;

typedef struct _CpAwsConfigFile CpAwsConfigFile;

/* Errors are CP_AWS_CREDENTIALS_ERROR_INVALID. */
CpAwsConfigFile *cp_aws_config_file_load (const gchar *path,
                                          CpAwsConfigFileKind kind,
                                          GError **error);
void             cp_aws_config_file_free (CpAwsConfigFile *file);

gboolean     cp_aws_config_file_has_profile (CpAwsConfigFile *file,
                                             const gchar *profile);
/* NULL when the profile or the key is absent. */
const gchar *cp_aws_config_file_get         (CpAwsConfigFile *file,
                                             const gchar *profile,
                                             const gchar *key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsConfigFile, cp_aws_config_file_free)

/* AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials; "~/" is
 * expanded with $HOME. */
gchar       *cp_aws_config_credentials_path (void);
/* AWS_CONFIG_FILE, else ~/.aws/config. */
gchar       *cp_aws_config_config_path      (void);
/* @explicit_profile, else AWS_PROFILE, else "default". */
const gchar *cp_aws_config_profile_name     (const gchar *explicit_profile);
/* TRUE when the profile came from @explicit_profile or AWS_PROFILE,
 * where a missing profile is an error rather than an empty one. */
gboolean     cp_aws_config_profile_is_named (const gchar *explicit_profile);

/* The environment variable @name, NULL when unset or empty. */
const gchar *cp_aws_getenv (const gchar *name);

G_END_DECLS

#endif /* CP_AWS_CONFIG_H */

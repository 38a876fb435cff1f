/* callpipe — the AWS shared config and credentials files (see awsconfig.h) */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "awsconfig.h"
#include "credentials.h"

#include <string.h>

/* Profile files are small; anything bigger is not one. */
#define MAX_FILE_SIZE (1024 * 1024)

struct _CpAwsConfigFile
{
  /* profile name → (lower-case key → value) */
  GHashTable *profiles;
};

const gchar *
cp_aws_getenv (const gchar *name)
{
  const gchar *value = g_getenv (name);

  return value != NULL && value[0] != '\0' ? value : NULL;
}

/* g_get_home_dir() caches its first answer; $HOME is read every time so
 * that a changed HOME is honoured, as the SDKs do. */
static gchar *
expand_home (const gchar *path)
{
  const gchar *home;

  if (path[0] != '~' || (path[1] != '\0' && path[1] != '/'))
    return g_strdup (path);
  home = cp_aws_getenv ("HOME");
  if (home == NULL)
    home = g_get_home_dir ();
  return g_build_filename (home, path + 1, NULL);
}

gchar *
cp_aws_config_credentials_path (void)
{
  const gchar *path = cp_aws_getenv ("AWS_SHARED_CREDENTIALS_FILE");

  return expand_home (path ? path : "~/.aws/credentials");
}

gchar *
cp_aws_config_config_path (void)
{
  const gchar *path = cp_aws_getenv ("AWS_CONFIG_FILE");

  return expand_home (path ? path : "~/.aws/config");
}

const gchar *
cp_aws_config_profile_name (const gchar *explicit_profile)
{
  if (explicit_profile != NULL && explicit_profile[0] != '\0')
    return explicit_profile;
  if (cp_aws_getenv ("AWS_PROFILE") != NULL)
    return cp_aws_getenv ("AWS_PROFILE");
  return "default";
}

gboolean
cp_aws_config_profile_is_named (const gchar *explicit_profile)
{
  return (explicit_profile != NULL && explicit_profile[0] != '\0')
      || cp_aws_getenv ("AWS_PROFILE") != NULL;
}

/* A '#' or ';' after whitespace starts a comment (the SDK config file
 * spec); one glued to a value is part of it. */
static void
strip_inline_comment (gchar *text)
{
  gchar *p;

  for (p = text; *p != '\0'; p++) {
    if ((*p == '#' || *p == ';') && p > text && g_ascii_isspace (p[-1])) {
      *p = '\0';
      return;
    }
  }
}

/* Returns the profile a section header names, or NULL for a section
 * this kind of file does not use as a profile ([sso-session x],
 * [services x], or a bare [x] in the config file). */
static gchar *
section_profile (const gchar *header, CpAwsConfigFileKind kind)
{
  if (kind == CP_AWS_CONFIG_FILE_CREDENTIALS || strcmp (header, "default") == 0)
    return g_strdup (header);
  if (g_str_has_prefix (header, "profile") && g_ascii_isspace (header[7])) {
    g_autofree gchar *name = g_strstrip (g_strdup (header + 7));

    return name[0] != '\0' ? g_steal_pointer (&name) : NULL;
  }
  return NULL;
}

static gboolean
parse_error (GError **error, const gchar *path, guint line_no,
    const gchar *what)
{
  g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID, "%s:%u: %s", path, line_no, what);
  return FALSE;
}

static gboolean
parse_contents (CpAwsConfigFile *file, const gchar *path, gchar *contents,
    CpAwsConfigFileKind kind, GError **error)
{
  g_auto (GStrv) lines = NULL;
  GHashTable *section = NULL;
  gboolean in_section = FALSE;
  gboolean had_property = FALSE;
  guint i;

  if (g_str_has_prefix (contents, "\xef\xbb\xbf"))
    contents += 3;
  if (!g_utf8_validate (contents, -1, NULL))
    return parse_error (error, path, 1, "not UTF-8 text");

  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i] != NULL; i++) {
    gchar *raw = lines[i];
    gboolean indented = raw[0] == ' ' || raw[0] == '\t';
    gchar *line = g_strstrip (raw);
    gchar *eq;

    if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
      continue;

    if (line[0] == '[') {
      gchar *close, *header;
      g_autofree gchar *name = NULL;

      strip_inline_comment (line);
      g_strchomp (line);
      close = strrchr (line, ']');
      if (close == NULL || close[1] != '\0')
        return parse_error (error, path, i + 1, "section header without ']'");
      *close = '\0';
      header = g_strstrip (line + 1);
      if (header[0] == '\0')
        return parse_error (error, path, i + 1, "empty section name");
      name = section_profile (header, kind);
      in_section = TRUE;
      had_property = FALSE;
      section = NULL;
      if (name == NULL)
        continue;
      section = g_hash_table_lookup (file->profiles, name);
      if (section == NULL) {
        section =
            g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert (file->profiles, g_steal_pointer (&name), section);
      }
      continue;
    }

    /* Sub-properties ("s3 =\n  addressing_style = path") and value
     * continuations belong to the property above them. */
    if (indented && had_property)
      continue;

    eq = strchr (line, '=');
    if (eq == NULL)
      return parse_error (error, path, i + 1, "expected 'key = value'");
    if (!in_section)
      return parse_error (error, path, i + 1, "property before any section");
    *eq = '\0';
    g_strchomp (line);
    if (line[0] == '\0')
      return parse_error (error, path, i + 1, "property without a name");
    had_property = TRUE;
    if (section != NULL) {
      gchar *value = eq + 1;

      strip_inline_comment (value);
      g_hash_table_insert (section, g_ascii_strdown (line, -1),
          g_strdup (g_strstrip (value)));
    }
  }
  return TRUE;
}

CpAwsConfigFile *
cp_aws_config_file_load (const gchar *path, CpAwsConfigFileKind kind,
    GError **error)
{
  g_autoptr (CpAwsConfigFile) file = g_new0 (CpAwsConfigFile, 1);
  g_autoptr (GError) read_error = NULL;
  g_autofree gchar *contents = NULL;
  gsize length = 0;

  file->profiles = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) g_hash_table_unref);

  if (!g_file_get_contents (path, &contents, &length, &read_error)) {
    if (g_error_matches (read_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      return g_steal_pointer (&file);
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID, "cannot read %s: %s", path,
        read_error->message);
    return NULL;
  }
  if (length > MAX_FILE_SIZE || memchr (contents, '\0', length) != NULL) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID,
        "%s is not an AWS config file (binary or over %u bytes)", path,
        MAX_FILE_SIZE);
    return NULL;
  }
  if (!parse_contents (file, path, contents, kind, error))
    return NULL;
  return g_steal_pointer (&file);
}

void
cp_aws_config_file_free (CpAwsConfigFile *file)
{
  if (file == NULL)
    return;
  g_clear_pointer (&file->profiles, g_hash_table_unref);
  g_free (file);
}

gboolean
cp_aws_config_file_has_profile (CpAwsConfigFile *file, const gchar *profile)
{
  return g_hash_table_contains (file->profiles, profile);
}

const gchar *
cp_aws_config_file_get (CpAwsConfigFile *file, const gchar *profile,
    const gchar *key)
{
  GHashTable *section = g_hash_table_lookup (file->profiles, profile);
  g_autofree gchar *lower = NULL;

  if (section == NULL)
    return NULL;
  lower = g_ascii_strdown (key, -1);
  return g_hash_table_lookup (section, lower);
}

/* callpiped — ${NAME} substitution for pipeline descriptions */
#include "cp-template.h"

#include <string.h>

GQuark
cp_template_error_quark (void)
{
  return g_quark_from_static_string ("cp-template-error-quark");
}

typedef struct
{
  const gchar *name;
  CpVarKind kind;
  gboolean may_be_empty;
  /* A value the elements accept, for parsing a description before any
   * session exists; NULL takes the kind's sample. */
  const gchar *sample;
} VarSpec;

/* The variables the supervisor fills; pipelines/README.md documents them. */
static const VarSpec var_specs[] = {
    {"SESSION_ID", CP_VAR_IDENTIFIER, FALSE, NULL},
    {"CONTACT_ID", CP_VAR_IDENTIFIER, FALSE, NULL},
    {"STREAM_ARN", CP_VAR_ARN, FALSE, NULL},
    {"START_SELECTOR", CP_VAR_IDENTIFIER, FALSE, "now"},
    {"START_FRAGMENT", CP_VAR_INTEGER, TRUE, NULL},
    {"START_TIMESTAMP", CP_VAR_INTEGER, FALSE, NULL},
    {"MEDIA_URI", CP_VAR_URI, FALSE, NULL},
    {"RECORDING_SINK", CP_VAR_ELEMENT, FALSE, "filesink"},
    {"RECORDING_LOCATION", CP_VAR_LOCATION, FALSE, NULL},
    {"AUDIO_SOURCE", CP_VAR_ELEMENT, FALSE, "filesrc"},
    {"AUDIO_LOCATION", CP_VAR_LOCATION, FALSE, NULL},
    {"REPLY_SINK", CP_VAR_ELEMENT, FALSE, "filesink"},
    {"REPLY_LOCATION", CP_VAR_LOCATION, FALSE, NULL},
    {"UPLOAD_PATH", CP_VAR_PATH, FALSE, NULL},
    {"UPLOAD_LOCATION", CP_VAR_LOCATION, FALSE, NULL},
    {"PROMPT_PATH", CP_VAR_PATH, FALSE, NULL},
    {"KVS_ENDPOINT", CP_VAR_URI, TRUE, ""},
    {"KVS_REGION", CP_VAR_IDENTIFIER, FALSE, "us-east-1"},
    {"BOT_BACKEND", CP_VAR_IDENTIFIER, FALSE, "bedrock"},
    {"BOT_ENDPOINT", CP_VAR_URI, TRUE, ""},
    {"BOT_INPUT_RATE", CP_VAR_INTEGER, FALSE, "16000"},
    {"REGION", CP_VAR_IDENTIFIER, FALSE, "us-east-1"},
    {"MODEL_ID", CP_VAR_IDENTIFIER, FALSE, "amazon.nova-2-sonic-v1:0"},
    {"VOICE_ID", CP_VAR_IDENTIFIER, FALSE, "matthew"},
};

static const gchar *const uri_schemes[] = {"file", "http", "https", "s3"};

/* The elements an element variable may name: storage sinks and sources,
 * all taking a location property. */
static const gchar *const element_values[] = {"filesink", "s3sink", "filesrc",
    "s3src", NULL};

gboolean
cp_template_variable_kind (const gchar *name, CpVarKind *kind,
    gboolean *may_be_empty)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (var_specs); i++) {
    if (!strcmp (var_specs[i].name, name)) {
      if (kind != NULL)
        *kind = var_specs[i].kind;
      if (may_be_empty != NULL)
        *may_be_empty = var_specs[i].may_be_empty;
      return TRUE;
    }
  }
  return FALSE;
}

const gchar *
cp_template_variable_sample (const gchar *name)
{
  gsize i;
  CpVarKind kind = CP_VAR_IDENTIFIER;

  for (i = 0; i < G_N_ELEMENTS (var_specs); i++) {
    if (!strcmp (var_specs[i].name, name)) {
      if (var_specs[i].sample != NULL)
        return var_specs[i].sample;
      kind = var_specs[i].kind;
      break;
    }
  }
  return cp_template_sample_value (kind);
}

const gchar *
cp_template_sample_value (CpVarKind kind)
{
  switch (kind) {
    case CP_VAR_IDENTIFIER:
      return "sample";
    case CP_VAR_ARN:
      return "arn:aws:kinesisvideo:us-east-1:123456789012:stream/sample/1";
    case CP_VAR_INTEGER:
      return "0";
    case CP_VAR_PATH:
    case CP_VAR_LOCATION:
      return "/dev/null";
    case CP_VAR_ELEMENT:
      return "filesink";
    case CP_VAR_URI:
      break;
  }
  return "file:///dev/null";
}

static gboolean
all_chars_in (const gchar *s, const gchar *extra)
{
  for (; *s != '\0'; s++) {
    if (!g_ascii_isalnum (*s) && strchr (extra, *s) == NULL)
      return FALSE;
  }
  return TRUE;
}

static gboolean
has_control_or_quote (const gchar *s)
{
  for (; *s != '\0'; s++) {
    guchar c = (guchar) *s;

    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
      return TRUE;
  }
  return FALSE;
}

static gboolean
path_is_clean (const gchar *path)
{
  g_auto (GStrv) parts = NULL;
  guint i;

  if (path[0] != '/' || has_control_or_quote (path) || strchr (path, '$'))
    return FALSE;
  parts = g_strsplit (path + 1, "/", -1);
  for (i = 0; parts[i] != NULL; i++) {
    if (!strcmp (parts[i], ".") || !strcmp (parts[i], ".."))
      return FALSE;
  }
  return TRUE;
}

static gboolean
uri_is_clean (const gchar *uri)
{
  g_autofree gchar *scheme = g_uri_parse_scheme (uri);
  gsize i;

  if (scheme == NULL || has_control_or_quote (uri) || strchr (uri, ' ')
      || strchr (uri, '$'))
    return FALSE;
  for (i = 0; i < G_N_ELEMENTS (uri_schemes); i++) {
    if (!g_ascii_strcasecmp (scheme, uri_schemes[i]))
      return g_uri_is_valid (uri, G_URI_FLAGS_ENCODED, NULL);
  }
  return FALSE;
}

/* s3://bucket/key: a DNS-style bucket, a key of plain path segments. */
static gboolean
s3_location_is_clean (const gchar *loc)
{
  g_auto (GStrv) parts = NULL;
  guint i;

  if (!g_str_has_prefix (loc, "s3://") || !all_chars_in (loc + 5, "._/-"))
    return FALSE;
  parts = g_strsplit (loc + 5, "/", -1);
  if (g_strv_length (parts) < 2)
    return FALSE;
  for (i = 0; parts[i] != NULL; i++) {
    if (*parts[i] == '\0' || !strcmp (parts[i], ".")
        || !strcmp (parts[i], ".."))
      return FALSE;
  }
  return TRUE;
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"

/* @s is not empty and has only characters from @set. */
static gboolean
only (const gchar *s, const gchar *set)
{
  return *s != '\0' && s[strspn (s, set)] == '\0';
}

/* The Kinesis Video Streams API's own StreamARN pattern,
 * arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+
 * (at most 1024 characters): an ARN the service would refuse is refused
 * before a call starts. Returns the six fields, or NULL. */
static gchar **
split_stream_arn (const gchar *arn)
{
  g_auto (GStrv) f = NULL;
  g_auto (GStrv) res = NULL;

  if (strlen (arn) > 1024)
    return NULL;
  f = g_strsplit (arn, ":", 6);
  if (g_strv_length (f) != 6 || strcmp (f[0], "arn") != 0
      || !only (f[1], LOWER DIGITS "-") || strcmp (f[2], "kinesisvideo") != 0
      || !only (f[3], LOWER DIGITS "-") || !only (f[4], DIGITS))
    return NULL;
  res = g_strsplit (f[5], "/", 4);
  if (g_strv_length (res) != 3 || !only (res[0], LOWER)
      || !all_chars_in (res[1], "_.-") || *res[1] == '\0'
      || !only (res[2], DIGITS))
    return NULL;
  return g_steal_pointer (&f);
}

gchar *
cp_template_arn_region (const gchar *arn)
{
  g_auto (GStrv) f = arn != NULL ? split_stream_arn (arn) : NULL;

  return f != NULL ? g_strdup (f[3]) : NULL;
}

static const gchar *
kind_rule (CpVarKind kind)
{
  switch (kind) {
    case CP_VAR_IDENTIFIER:
      return "letters, digits and . _ : -";
    case CP_VAR_ARN:
      return "a Kinesis Video Streams stream ARN, "
             "arn:PARTITION:kinesisvideo:REGION:ACCOUNT:stream/NAME/"
             "CREATION-TIME";
    case CP_VAR_INTEGER:
      return "a decimal integer";
    case CP_VAR_PATH:
      return "an absolute path without control characters, quotes, "
             "backslashes, '$' or '.'/'..' segments";
    case CP_VAR_LOCATION:
      return "an absolute path (as for paths) or s3://bucket/key of "
             "letters, digits and . _ / -";
    case CP_VAR_ELEMENT:
      return "one of filesink, s3sink, filesrc, s3src";
    case CP_VAR_URI:
      break;
  }
  return "a file://, http://, https:// or s3:// URI without spaces, "
         "quotes, backslashes or '$'";
}

static gboolean
value_matches (CpVarKind kind, const gchar *value)
{
  switch (kind) {
    case CP_VAR_IDENTIFIER:
      return all_chars_in (value, "._:-");
    case CP_VAR_ARN: {
      g_auto (GStrv) fields = split_stream_arn (value);

      return fields != NULL;
    }
    case CP_VAR_INTEGER:
      return strlen (value) <= 64
          && strspn (value, "0123456789") == strlen (value);
    case CP_VAR_PATH:
      return path_is_clean (value);
    case CP_VAR_LOCATION:
      return path_is_clean (value) || s3_location_is_clean (value);
    case CP_VAR_ELEMENT:
      return g_strv_contains (element_values, value);
    case CP_VAR_URI:
      break;
  }
  return uri_is_clean (value);
}

gboolean
cp_template_check_value (const gchar *name, const gchar *value, GError **error)
{
  CpVarKind kind;
  gboolean may_be_empty;

  if (!cp_template_variable_kind (name, &kind, &may_be_empty)) {
    g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_UNKNOWN_VARIABLE,
        "unknown variable ${%s}", name);
    return FALSE;
  }
  if (*value == '\0') {
    if (may_be_empty)
      return TRUE;
    g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_INVALID_VALUE,
        "${%s} must not be empty", name);
    return FALSE;
  }
  /* gst-launch turns the bare word NULL into a NULL string property. */
  if (!g_utf8_validate (value, -1, NULL) || !strcmp (value, "NULL")
      || !value_matches (kind, value)) {
    g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_INVALID_VALUE,
        "${%s} must be %s", name, kind_rule (kind));
    return FALSE;
  }
  return TRUE;
}

gchar *
cp_template_quote (const gchar *value)
{
  GString *s = g_string_sized_new (strlen (value) + 2);

  g_string_append_c (s, '"');
  for (; *value != '\0'; value++) {
    if (*value == '"' || *value == '\\')
      g_string_append_c (s, '\\');
    g_string_append_c (s, *value);
  }
  g_string_append_c (s, '"');
  return g_string_free (s, FALSE);
}

static gboolean
valid_name (const gchar *name, gsize len)
{
  gsize i;

  if (len == 0 || g_ascii_isdigit (name[0]))
    return FALSE;
  for (i = 0; i < len; i++) {
    if (!g_ascii_isupper (name[i]) && !g_ascii_isdigit (name[i])
        && name[i] != '_')
      return FALSE;
  }
  return TRUE;
}

/* Walks the template calling @func for every ${NAME}; the literal text in
 * between goes to @out when it is not NULL. */
static gboolean
walk (const gchar *tmpl, GString *out,
    gboolean (
        *func) (const gchar *name, gpointer data, GString *out, GError **error),
    gpointer data, GError **error)
{
  const gchar *p = tmpl;

  while (*p != '\0') {
    const gchar *start = strstr (p, "${");
    const gchar *end;
    g_autofree gchar *name = NULL;

    if (start == NULL) {
      if (out != NULL)
        g_string_append (out, p);
      break;
    }
    if (out != NULL)
      g_string_append_len (out, p, start - p);
    end = strchr (start + 2, '}');
    if (end == NULL) {
      g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_SYNTAX,
          "unterminated '${' at offset %" G_GSIZE_FORMAT,
          (gsize) (start - tmpl));
      return FALSE;
    }
    if (!valid_name (start + 2, end - start - 2)) {
      g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_SYNTAX,
          "bad variable name '%.*s' at offset %" G_GSIZE_FORMAT
          " (use ${UPPER_CASE})",
          (int) (end - start + 1), start, (gsize) (start - tmpl));
      return FALSE;
    }
    name = g_strndup (start + 2, end - start - 2);
    if (!cp_template_variable_kind (name, NULL, NULL)) {
      g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_UNKNOWN_VARIABLE,
          "unknown variable ${%s}", name);
      return FALSE;
    }
    if (!func (name, data, out, error))
      return FALSE;
    p = end + 1;
  }
  return TRUE;
}

static gboolean
collect_name (const gchar *name, gpointer data, GString *out, GError **error)
{
  GPtrArray *names = data;
  guint i;

  for (i = 0; i < names->len; i++) {
    if (!strcmp (g_ptr_array_index (names, i), name))
      return TRUE;
  }
  g_ptr_array_add (names, g_strdup (name));
  return TRUE;
}

gchar **
cp_template_variables (const gchar *tmpl, GError **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  if (!walk (tmpl, NULL, collect_name, names, error))
    return NULL;
  g_ptr_array_add (names, NULL);
  return (gchar **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

static gboolean
substitute (const gchar *name, gpointer data, GString *out, GError **error)
{
  GHashTable *values = data;
  const gchar *value = g_hash_table_lookup (values, name);
  g_autofree gchar *quoted = NULL;
  CpVarKind kind;

  if (value == NULL) {
    g_set_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_MISSING_VARIABLE,
        "no value for ${%s}", name);
    return FALSE;
  }
  if (!cp_template_check_value (name, value, error))
    return FALSE;
  cp_template_variable_kind (name, &kind, NULL);
  /* Element names come from a fixed list and integers are digits only:
   * both go in bare, so an integer can also stand in caps (rate=...),
   * where a quoted value would be a string. */
  if (kind == CP_VAR_ELEMENT || (kind == CP_VAR_INTEGER && *value != '\0')) {
    g_string_append (out, value);
    return TRUE;
  }
  quoted = cp_template_quote (value);
  g_string_append (out, quoted);
  return TRUE;
}

gchar *
cp_template_expand (const gchar *tmpl, GHashTable *values, GError **error)
{
  g_autoptr (GString) out = g_string_new (NULL);

  if (!walk (tmpl, out, substitute, values, error))
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* gst-launch has no comments; pipeline files may start lines with '#' to
 * document themselves, and those lines never reach the parser. */
gchar *
cp_template_strip_comments (const gchar *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GString *out = g_string_new (NULL);
  guint i;

  for (i = 0; lines[i] != NULL; i++) {
    const gchar *l = lines[i];

    while (*l == ' ' || *l == '\t')
      l++;
    if (*l == '#' || *l == '\0')
      continue;
    g_string_append (out, lines[i]);
    g_string_append_c (out, '\n');
  }
  return g_string_free (out, FALSE);
}

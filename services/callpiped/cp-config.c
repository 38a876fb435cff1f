/* callpiped — configuration */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cp-config.h"
#include "cp-template.h"

#include <stdlib.h>
#include <string.h>

GQuark
cp_config_error_quark (void)
{
  return g_quark_from_static_string ("cp-config-error-quark");
}

typedef enum
{
  KEY_STRING,
  KEY_UINT,
} KeyType;

typedef struct
{
  const gchar *section;
  const gchar *key;
  KeyType type;
  const gchar *def; /* NULL: unset */
  guint64 min;
  guint64 max;
} KeySpec;

static const KeySpec key_specs[] = {
    {"server", "port", KEY_UINT, "8080", 0, 65535},
    {"server", "address", KEY_STRING, NULL, 0, 0},
    {"server", "data-dir", KEY_STRING, "./var", 0, 0},
    {"server", "token", KEY_STRING, NULL, 0, 0},
    {"server", "max-body-bytes", KEY_UINT, "1048576", 64, G_MAXUINT32},
    {"server", "drain-timeout", KEY_UINT, "30", 0, 86400},
    {"server", "long-call-warning", KEY_UINT, "1800", 1, 7 * 86400},
    {"server", "cors-origin", KEY_STRING, NULL, 0, 0},
    {"server", "max-browser-sessions", KEY_UINT, "100", 1, 100000},
    {"server", "browser-stall-timeout", KEY_UINT, "30", 1, 3600},
    {"storage", "uri", KEY_STRING, NULL, 0, 0},
    {"storage", "endpoint", KEY_STRING, NULL, 0, 0},
    {"storage", "link-ttl", KEY_UINT, "3600", 1, 7 * 86400},
    {"bot", "backend", KEY_STRING, "local", 0, 0},
    {"bot", "region", KEY_STRING, "us-east-1", 0, 0},
    {"bot", "model-id", KEY_STRING, "amazon.nova-2-sonic-v1:0", 0, 0},
    {"bot", "voice-id", KEY_STRING, "matthew", 0, 0},
    {"bot", "endpoint", KEY_STRING, NULL, 0, 0},
    {"kvs", "endpoint", KEY_STRING, NULL, 0, 0},
    {"kvs", "region", KEY_STRING, NULL, 0, 0},
    {"turn", "timeout", KEY_UINT, "60", 1, 3600},
    {"turn", "max-audio-seconds", KEY_UINT, "60", 1, 3600},
    {"turn", "context-ttl", KEY_UINT, "3600", 1, 7 * 86400},
    {"pipelines", "dir", KEY_STRING, NULL, 0, 0},
    {"pipelines", "call", KEY_STRING, NULL, 0, 0},
};

/* The seed system's variables, read before CALLPIPE_* so that the callpipe
 * name wins when both are set. */
static const struct
{
  const gchar *env;
  const gchar *section;
  const gchar *key;
} legacy_env[] = {
    {"NOVA_AWS_REGION", "bot", "region"},
    {"NOVA_SONIC_MODEL_ID", "bot", "model-id"},
};

gchar *
cp_config_env_name (const gchar *section, const gchar *key)
{
  g_autofree gchar *raw = g_strdup_printf ("CALLPIPE_%s_%s", section, key);
  gchar *up = g_ascii_strup (raw, -1);

  g_strdelimit (up, "-", '_');
  return up;
}

static const KeySpec *
find_spec (const gchar *section, const gchar *key)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (key_specs); i++) {
    if (!strcmp (key_specs[i].section, section)
        && !strcmp (key_specs[i].key, key))
      return &key_specs[i];
  }
  return NULL;
}

static gboolean
check_known_keys (GKeyFile *kf, const gchar *path, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);
  guint i, j;

  for (i = 0; groups[i] != NULL; i++) {
    g_auto (GStrv) keys = g_key_file_get_keys (kf, groups[i], NULL, NULL);

    for (j = 0; keys != NULL && keys[j] != NULL; j++) {
      if (find_spec (groups[i], keys[j]) == NULL) {
        g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
            "%s: unknown key [%s] %s", path, groups[i], keys[j]);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static gboolean
parse_uint (const KeySpec *spec, const gchar *text, const gchar *origin,
    guint64 *out, GError **error)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (text, 10, spec->min, spec->max, &v, NULL)) {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "%s: [%s] %s must be an integer from %" G_GUINT64_FORMAT
        " to %" G_GUINT64_FORMAT ", not '%s'",
        origin, spec->section, spec->key, spec->min, spec->max, text);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

/* Empty values count as unset, so an exported but empty variable (or
 * "token =") never turns on auth with an empty token. */
static gchar *
get_string (GKeyFile *kf, const gchar *section, const gchar *key)
{
  const KeySpec *spec = find_spec (section, key);
  g_autofree gchar *v = g_key_file_get_string (kf, section, key, NULL);

  if (v != NULL && *v != '\0')
    return g_steal_pointer (&v);
  return g_strdup (spec->def);
}

static gboolean
get_uint (GKeyFile *kf, const gchar *section, const gchar *key, guint64 *out,
    GError **error)
{
  const KeySpec *spec = find_spec (section, key);
  g_autofree gchar *v = g_key_file_get_string (kf, section, key, NULL);

  if (v == NULL || *v == '\0')
    return parse_uint (spec, spec->def, "default", out, error);
  g_strstrip (v);
  return parse_uint (spec, v, "config", out, error);
}

static void
apply_environment (GKeyFile *kf, const gchar *const *envp)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (legacy_env); i++) {
    const gchar *v = g_environ_getenv ((gchar **) envp, legacy_env[i].env);

    if (v != NULL && *v != '\0')
      g_key_file_set_string (kf, legacy_env[i].section, legacy_env[i].key, v);
  }
  for (i = 0; i < G_N_ELEMENTS (key_specs); i++) {
    g_autofree gchar *name =
        cp_config_env_name (key_specs[i].section, key_specs[i].key);
    const gchar *v = g_environ_getenv ((gchar **) envp, name);

    if (v != NULL)
      g_key_file_set_string (kf, key_specs[i].section, key_specs[i].key, v);
  }
}

CpConfig *
cp_config_load (const gchar *path, const gchar *const *envp, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (CpConfig) c = g_new0 (CpConfig, 1);
  guint64 v;

  if (path != NULL) {
    if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error)) {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
    if (!check_known_keys (kf, path, error))
      return NULL;
  }
  apply_environment (kf, envp);

  if (!get_uint (kf, "server", "port", &v, error))
    return NULL;
  c->port = v;
  if (!get_uint (kf, "server", "max-body-bytes", &c->max_body_bytes, error))
    return NULL;
  if (!get_uint (kf, "server", "drain-timeout", &v, error))
    return NULL;
  c->drain_timeout = v;
  if (!get_uint (kf, "server", "long-call-warning", &v, error))
    return NULL;
  c->long_call_warning = v;
  if (!get_uint (kf, "server", "max-browser-sessions", &v, error))
    return NULL;
  c->max_browser_sessions = v;
  if (!get_uint (kf, "server", "browser-stall-timeout", &v, error))
    return NULL;
  c->browser_stall_timeout = v;
  if (!get_uint (kf, "storage", "link-ttl", &v, error))
    return NULL;
  c->link_ttl = v;
  if (!get_uint (kf, "turn", "timeout", &v, error))
    return NULL;
  c->turn_timeout = v;
  if (!get_uint (kf, "turn", "max-audio-seconds", &v, error))
    return NULL;
  c->turn_max_seconds = v;
  if (!get_uint (kf, "turn", "context-ttl", &v, error))
    return NULL;
  c->turn_context_ttl = v;

  c->data_dir = get_string (kf, "server", "data-dir");
  c->address = get_string (kf, "server", "address");
  c->token = get_string (kf, "server", "token");
  c->cors_origin = get_string (kf, "server", "cors-origin");
  c->storage_uri = get_string (kf, "storage", "uri");
  c->storage_endpoint = get_string (kf, "storage", "endpoint");
  c->bot_backend = get_string (kf, "bot", "backend");
  c->bot_region = get_string (kf, "bot", "region");
  c->bot_model_id = get_string (kf, "bot", "model-id");
  c->bot_voice_id = get_string (kf, "bot", "voice-id");
  c->bot_endpoint = get_string (kf, "bot", "endpoint");
  c->kvs_endpoint = get_string (kf, "kvs", "endpoint");
  c->kvs_region = get_string (kf, "kvs", "region");
  c->pipelines_dir = get_string (kf, "pipelines", "dir");
  c->call_pipeline = get_string (kf, "pipelines", "call");

  if (strcmp (c->bot_backend, "local") && strcmp (c->bot_backend, "bedrock")) {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "[bot] backend must be 'local' or 'bedrock', not '%s'", c->bot_backend);
    return NULL;
  }
  if (c->bot_endpoint != NULL
      && (!cp_template_check_value ("BOT_ENDPOINT", c->bot_endpoint, NULL)
          || (!g_str_has_prefix (c->bot_endpoint, "http://")
              && !g_str_has_prefix (c->bot_endpoint, "https://")))) {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "[bot] endpoint must be an http:// or https:// URL, not '%s'",
        c->bot_endpoint);
    return NULL;
  }
  if (c->kvs_endpoint != NULL
      && (!cp_template_check_value ("KVS_ENDPOINT", c->kvs_endpoint, NULL)
          || (!g_str_has_prefix (c->kvs_endpoint, "http://")
              && !g_str_has_prefix (c->kvs_endpoint, "https://")))) {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "[kvs] endpoint must be an http:// or https:// URL, not '%s'",
        c->kvs_endpoint);
    return NULL;
  }
  if (c->kvs_region != NULL
      && c->kvs_region[strspn (c->kvs_region,
             "abcdefghijklmnopqrstuvwxyz0123456789-")]
          != '\0') {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "[kvs] region must be a region name such as eu-west-2 (lower-case "
        "letters, digits and -), not '%s'",
        c->kvs_region);
    return NULL;
  }
  if (c->storage_endpoint != NULL
      && (!g_str_has_prefix (c->storage_endpoint, "http://")
          && !g_str_has_prefix (c->storage_endpoint, "https://"))) {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "[storage] endpoint must be an http:// or https:// URL, not '%s'",
        c->storage_endpoint);
    return NULL;
  }
  return g_steal_pointer (&c);
}

static gchar *
default_pipelines_dir (void)
{
  g_autofree gchar *installed =
      g_build_filename (CALLPIPE_DATADIR, "connect-bot.pipeline", NULL);

  /* An uninstalled build (meson devenv sets CALLPIPE_PIPELINES_DIR, but a
   * bare ./callpiped does not) still finds the source tree's pipelines. */
  if (g_file_test (installed, G_FILE_TEST_EXISTS))
    return g_strdup (CALLPIPE_DATADIR);
  return g_strdup (CALLPIPE_SOURCE_PIPELINES_DIR);
}

gboolean
cp_config_resolve (CpConfig *c, GError **error)
{
  if (c->storage_uri == NULL)
    c->storage_uri = g_build_filename (c->data_dir, "storage", NULL);
  if (g_str_has_prefix (c->storage_uri, "s3://")) {
    g_autofree gchar *probe = NULL;

    while (g_str_has_suffix (c->storage_uri, "/"))
      c->storage_uri[strlen (c->storage_uri) - 1] = '\0';
    probe = g_strconcat (c->storage_uri, "/x", NULL);
    if (!cp_template_check_value ("RECORDING_LOCATION", probe, NULL)) {
      g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
          "[storage] uri must be s3://bucket or s3://bucket/prefix of "
          "letters, digits and . _ / -, not '%s'",
          c->storage_uri);
      return FALSE;
    }
  } else if (strstr (c->storage_uri, "://") != NULL) {
    g_set_error (error, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID,
        "[storage] uri must be a directory or s3://bucket/prefix, not '%s'",
        c->storage_uri);
    return FALSE;
  }
  if (c->pipelines_dir == NULL)
    c->pipelines_dir = default_pipelines_dir ();
  return TRUE;
}

/* A stream lives in one region: the one its ARN names, unless [kvs]
 * region says otherwise; without an ARN, the bot's. */
gchar *
cp_config_kvs_region (const CpConfig *c, const gchar *stream_arn)
{
  gchar *region;

  if (c->kvs_region != NULL)
    return g_strdup (c->kvs_region);
  region = cp_template_arn_region (stream_arn);
  return region != NULL ? region : g_strdup (c->bot_region);
}

void
cp_config_free (CpConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->data_dir);
  g_free (c->address);
  g_free (c->token);
  g_free (c->cors_origin);
  g_free (c->storage_uri);
  g_free (c->storage_endpoint);
  g_free (c->bot_backend);
  g_free (c->bot_region);
  g_free (c->bot_model_id);
  g_free (c->bot_voice_id);
  g_free (c->bot_endpoint);
  g_free (c->kvs_endpoint);
  g_free (c->kvs_region);
  g_free (c->pipelines_dir);
  g_free (c->call_pipeline);
  g_free (c);
}

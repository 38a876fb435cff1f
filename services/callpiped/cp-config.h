/* callpiped — configuration
 *
 * Precedence, lowest first: built-in defaults (fully offline), the key
 * file (--config), the seed system's NOVA_AWS_REGION / NOVA_SONIC_MODEL_ID,
 * CALLPIPE_<SECTION>_<KEY> environment variables, then command-line flags.
 * The env name is the section and key upper-cased with '-' turned into
 * '_': [server] max-body-bytes is CALLPIPE_SERVER_MAX_BODY_BYTES.
 *
 * cp_config_load() reads the file and the environment; the caller then
 * applies its flags and calls cp_config_resolve(), which fills the defaults
 * that depend on other keys (storage under the data directory) and checks
 * the combination.
 */
#ifndef CP_CONFIG_H
#define CP_CONFIG_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_CONFIG_ERROR (cp_config_error_quark ())

typedef enum
{
  CP_CONFIG_ERROR_INVALID,
} CpConfigError;

typedef struct
{
  /* [server] */
  guint port;
  gchar *address;               /* NULL: every interface */
  gchar *data_dir;
  gchar *token;                 /* NULL: no API auth */
  guint64 max_body_bytes;
  guint drain_timeout;          /* seconds */
  guint long_call_warning;      /* seconds */
  gchar *cors_origin;           /* NULL: no CORS headers */
  guint max_browser_sessions;   /* open GET /sonic connections at most */
  guint browser_stall_timeout;  /* seconds a browser may leave its reply
                                 * audio unread before the session ends */
  /* [storage] */
  gchar *storage_uri;           /* a directory or s3://bucket[/prefix] */
  gchar *storage_endpoint;      /* S3 endpoint URL (a local S3), or NULL */
  guint link_ttl;               /* seconds a signed media link stays valid */
  /* [bot] */
  gchar *bot_backend;           /* local | bedrock */
  gchar *bot_region;
  gchar *bot_model_id;
  gchar *bot_voice_id;
  gchar *bot_endpoint;          /* NULL: the AWS endpoint chain */
  /* [kvs] */
  gchar *kvs_endpoint;          /* NULL: the AWS endpoint chain */
  gchar *kvs_region;            /* NULL: the StreamARN's region */
  /* [turn] */
  guint turn_timeout;           /* seconds one POST /turn may take */
  guint turn_max_seconds;       /* longest caller audio a turn accepts */
  guint turn_context_ttl;       /* seconds a sessionId's history is kept */
  /* [pipelines] */
  gchar *pipelines_dir;
  gchar *call_pipeline;         /* fallback for mediaUri calls, or NULL */
} CpConfig;

GQuark    cp_config_error_quark (void);
CpConfig *cp_config_load        (const gchar *path,
                                 const gchar *const *envp,
                                 GError **error);
gboolean  cp_config_resolve     (CpConfig *config, GError **error);
void      cp_config_free        (CpConfig *config);
gchar    *cp_config_env_name    (const gchar *section, const gchar *key);
/* The region to read @stream_arn (may be NULL) in. */
gchar    *cp_config_kvs_region  (const CpConfig *config,
                                 const gchar *stream_arn);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpConfig, cp_config_free)

G_END_DECLS

#endif /* CP_CONFIG_H */

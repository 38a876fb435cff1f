/* Unit tests: configuration defaults, key file, env overrides. */
#include "cp-config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static gchar *
write_config (const gchar *text)
{
  g_autoptr (GError) error = NULL;
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("callpiped-XXXXXX.ini", &path, &error);

  g_assert_no_error (error);
  close (fd);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static void
test_defaults_offline (void)
{
  const gchar *const envp[] = {NULL};
  g_autoptr (GError) error = NULL;
  g_autoptr (CpConfig) c = cp_config_load (NULL, envp, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (c->port, ==, 8080);
  g_assert_cmpstr (c->data_dir, ==, "./var");
  g_assert_null (c->token);
  g_assert_null (c->address);
  g_assert_cmpuint (c->long_call_warning, ==, 1800);
  g_assert_cmpstr (c->bot_backend, ==, "local");
  g_assert_null (c->call_pipeline);
  g_assert_true (cp_config_resolve (c, &error));
  g_assert_cmpstr (c->storage_uri, ==, "./var/storage");
  g_assert_nonnull (c->pipelines_dir);
}

static void
test_precedence (void)
{
  g_autofree gchar *path =
      write_config ("[server]\nport = 9000\n"
                    "token = filetoken\ndrain-timeout = 7\n"
                    "[bot]\nregion = eu-west-1\nmodel-id = file-model\n"
                    "[pipelines]\ncall = media-record\n");
  const gchar *const envp[] = {"NOVA_AWS_REGION=us-west-2",
      "NOVA_SONIC_MODEL_ID=nova-model", "CALLPIPE_BOT_MODEL_ID=callpipe-model",
      "CALLPIPE_SERVER_PORT=9100", "CALLPIPE_SERVER_MAX_BODY_BYTES=2048",
      "CALLPIPE_SERVER_TOKEN=", NULL};
  g_autoptr (GError) error = NULL;
  g_autoptr (CpConfig) c = cp_config_load (path, envp, &error);

  g_assert_no_error (error);
  /* env beats the file */
  g_assert_cmpuint (c->port, ==, 9100);
  g_assert_cmpuint (c->max_body_bytes, ==, 2048);
  /* an empty variable unsets: no auth with an empty token */
  g_assert_null (c->token);
  /* the file beats defaults */
  g_assert_cmpuint (c->drain_timeout, ==, 7);
  g_assert_cmpstr (c->call_pipeline, ==, "media-record");
  /* seed variables beat the file, CALLPIPE_* beats the seed */
  g_assert_cmpstr (c->bot_region, ==, "us-west-2");
  g_assert_cmpstr (c->bot_model_id, ==, "callpipe-model");
  g_unlink (path);
}

static void
test_errors (void)
{
  g_autofree gchar *unknown = write_config ("[server]\nprot = 1\n");
  g_autofree gchar *badint = write_config ("[server]\nport = 99999\n");
  const gchar *const envp[] = {NULL};
  const gchar *const bad_env[] = {"CALLPIPE_BOT_BACKEND=cloud", NULL};
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;
  g_autoptr (GError) e4 = NULL;
  g_autoptr (CpConfig) s3 = NULL;
  g_autoptr (CpConfig) bad_s3 = NULL;
  g_autoptr (GError) e5 = NULL;
  g_autoptr (GError) e6 = NULL;
  const gchar *const bad_endpoint[] = {"CALLPIPE_BOT_ENDPOINT=file:///x", NULL};
  const gchar *const s3_endpoint[] =
      {"CALLPIPE_STORAGE_ENDPOINT=http://127.0.0.1:9000", NULL};
  const gchar *const bad_s3_endpoint[] =
      {"CALLPIPE_STORAGE_ENDPOINT=minio:9000", NULL};
  g_autoptr (CpConfig) with_endpoint = NULL;
  g_autoptr (GError) e7 = NULL;

  g_assert_null (cp_config_load (unknown, envp, &e1));
  g_assert_error (e1, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (e1->message, "prot"));
  g_assert_null (cp_config_load (badint, envp, &e2));
  g_assert_error (e2, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID);
  g_assert_null (cp_config_load (NULL, bad_env, &e3));
  g_assert_error (e3, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID);

  s3 = cp_config_load (NULL, envp, NULL);
  s3->storage_uri = g_strdup ("s3://bucket/prefix/");
  g_assert_true (cp_config_resolve (s3, &e4));
  g_assert_no_error (e4);
  g_assert_cmpstr (s3->storage_uri, ==, "s3://bucket/prefix");
  bad_s3 = cp_config_load (NULL, envp, NULL);
  bad_s3->storage_uri = g_strdup ("s3://bucket/a b");
  g_assert_false (cp_config_resolve (bad_s3, &e5));
  g_assert_error (e5, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID);
  g_assert_null (cp_config_load (NULL, bad_endpoint, &e6));
  g_assert_nonnull (strstr (e6->message, "[bot] endpoint"));
  with_endpoint = cp_config_load (NULL, s3_endpoint, NULL);
  g_assert_nonnull (with_endpoint);
  g_assert_cmpstr (with_endpoint->storage_endpoint, ==,
      "http://127.0.0.1:9000");
  g_assert_null (cp_config_load (NULL, bad_s3_endpoint, &e7));
  g_assert_nonnull (strstr (e7->message, "[storage] endpoint"));
  g_unlink (unknown);
  g_unlink (badint);
}

#define EU_STREAM                                       \
  "arn:aws:kinesisvideo:eu-west-2:111111111111:stream/" \
  "instance-alias-contact-ddddddd/1565272947806"

/* [kvs]: by default the stream is read where its ARN says, through the
 * AWS endpoint chain; the endpoint (a local peer) and the region can be
 * set in the file or the environment, and bad values stop the start. */
static void
test_kvs (void)
{
  g_autofree gchar *path = write_config ("[bot]\nregion = us-west-2\n"
                                         "[kvs]\nregion = ap-south-1\n"
                                         "endpoint = http://127.0.0.1:1/\n");
  const gchar *const envp[] = {NULL};
  const gchar *const env[] = {"CALLPIPE_KVS_ENDPOINT=https://kvs.example:8443",
      "CALLPIPE_KVS_REGION=", NULL};
  const gchar *const bad_endpoint[] = {"CALLPIPE_KVS_ENDPOINT=kvs:443", NULL};
  const gchar *const bad_quote[] = {"CALLPIPE_KVS_ENDPOINT=http://a\"b", NULL};
  const gchar *const bad_region[] = {"CALLPIPE_KVS_REGION=EU West", NULL};
  g_autoptr (CpConfig) defaults = cp_config_load (NULL, envp, NULL);
  g_autoptr (CpConfig) file = cp_config_load (path, envp, NULL);
  g_autoptr (CpConfig) from_env = cp_config_load (path, env, NULL);
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;
  g_autofree gchar *arn_region = NULL;
  g_autofree gchar *bot_region = NULL;
  g_autofree gchar *bad_arn_region = NULL;
  g_autofree gchar *set_region = NULL;
  g_autofree gchar *env_region = NULL;

  g_assert_null (defaults->kvs_endpoint);
  g_assert_null (defaults->kvs_region);
  arn_region = cp_config_kvs_region (defaults, EU_STREAM);
  g_assert_cmpstr (arn_region, ==, "eu-west-2");
  bot_region = cp_config_kvs_region (defaults, NULL);
  g_assert_cmpstr (bot_region, ==, "us-east-1");
  bad_arn_region = cp_config_kvs_region (defaults,
      "arn:aws:kinesisvideo:eu-west-2:1:stream/no-creation-time");
  g_assert_cmpstr (bad_arn_region, ==, "us-east-1");

  g_assert_nonnull (file);
  g_assert_cmpstr (file->kvs_endpoint, ==, "http://127.0.0.1:1/");
  set_region = cp_config_kvs_region (file, EU_STREAM);
  g_assert_cmpstr (set_region, ==, "ap-south-1");

  /* env beats the file; an empty variable unsets */
  g_assert_nonnull (from_env);
  g_assert_cmpstr (from_env->kvs_endpoint, ==, "https://kvs.example:8443");
  g_assert_null (from_env->kvs_region);
  env_region = cp_config_kvs_region (from_env, EU_STREAM);
  g_assert_cmpstr (env_region, ==, "eu-west-2");

  g_assert_null (cp_config_load (NULL, bad_endpoint, &e1));
  g_assert_error (e1, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (e1->message, "[kvs] endpoint"));
  g_assert_null (cp_config_load (NULL, bad_quote, &e2));
  g_assert_nonnull (strstr (e2->message, "[kvs] endpoint"));
  g_assert_null (cp_config_load (NULL, bad_region, &e3));
  g_assert_error (e3, CP_CONFIG_ERROR, CP_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (e3->message, "[kvs] region"));
  g_unlink (path);
}

static void
test_env_names (void)
{
  g_autofree gchar *a = cp_config_env_name ("server", "max-body-bytes");
  g_autofree gchar *b = cp_config_env_name ("pipelines", "dir");
  g_autofree gchar *c = cp_config_env_name ("kvs", "endpoint");

  g_assert_cmpstr (a, ==, "CALLPIPE_SERVER_MAX_BODY_BYTES");
  g_assert_cmpstr (b, ==, "CALLPIPE_PIPELINES_DIR");
  g_assert_cmpstr (c, ==, "CALLPIPE_KVS_ENDPOINT");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/callpiped/config/defaults", test_defaults_offline);
  g_test_add_func ("/callpiped/config/precedence", test_precedence);
  g_test_add_func ("/callpiped/config/errors", test_errors);
  g_test_add_func ("/callpiped/config/kvs", test_kvs);
  g_test_add_func ("/callpiped/config/env-names", test_env_names);
  return g_test_run ();
}

/* Unit tests for region and endpoint resolution (gst/aws/endpoint.c). */
#include "aws/endpoint.h"

#include <glib/gstdio.h>

typedef struct
{
  gchar *home;
  gchar *config_path;
} Fixture;

/* Whatever AWS_* the machine running the tests has must not leak in. */
static void
unset_aws_env (void)
{
  g_auto (GStrv) names = g_listenv ();
  guint i;

  for (i = 0; names[i] != NULL; i++) {
    if (g_str_has_prefix (names[i], "AWS_"))
      g_unsetenv (names[i]);
  }
}

static void
setup (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *aws_dir = NULL;

  unset_aws_env ();
  fixture->home = g_dir_make_tmp ("cp-endpoint-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("HOME", fixture->home, TRUE);
  aws_dir = g_build_filename (fixture->home, ".aws", NULL);
  g_assert_cmpint (g_mkdir (aws_dir, 0700), ==, 0);
  fixture->config_path = g_build_filename (aws_dir, "config", NULL);
}

static void
teardown (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *aws_dir = g_path_get_dirname (fixture->config_path);

  g_remove (fixture->config_path);
  g_rmdir (aws_dir);
  g_rmdir (fixture->home);
  g_free (fixture->config_path);
  g_free (fixture->home);
  unset_aws_env ();
}

static void
write_config (Fixture *fixture, const gchar *contents)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (fixture->config_path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
assert_region (const gchar *explicit_region, const gchar *profile,
    const gchar *expected)
{
  g_autofree gchar *region = cp_aws_resolve_region (explicit_region, profile);

  g_assert_cmpstr (region, ==, expected);
}

static void
test_region_precedence (Fixture *fixture, gconstpointer data)
{
  write_config (fixture, "[default]\nregion = eu-west-1\n");
  assert_region (NULL, NULL, "eu-west-1");

  g_setenv ("AWS_DEFAULT_REGION", "us-west-2", TRUE);
  assert_region (NULL, NULL, "us-west-2");

  g_setenv ("AWS_REGION", "ap-southeast-2", TRUE);
  assert_region (NULL, NULL, "ap-southeast-2");

  assert_region ("ca-central-1", NULL, "ca-central-1");
  /* An empty property is "not set". */
  assert_region ("", NULL, "ap-southeast-2");
}

static void
test_region_profile (Fixture *fixture, gconstpointer data)
{
  write_config (fixture,
      "# comment\n"
      "[default]\n"
      "region = eu-west-1\n"
      "[profile work]\n"
      "region = eu-central-1 ; the office\n"
      "s3 =\n"
      "  addressing_style = path\n"
      "[other]\n"
      "region = sa-east-1\n");

  assert_region (NULL, "work", "eu-central-1");
  g_setenv ("AWS_PROFILE", "work", TRUE);
  assert_region (NULL, NULL, "eu-central-1");
  /* The explicit profile beats AWS_PROFILE. */
  assert_region (NULL, "default", "eu-west-1");
  /* In the config file, a bare [other] is not a profile. */
  assert_region (NULL, "other", NULL);

  g_setenv ("AWS_CONFIG_FILE", "/nonexistent/callpipe/config", TRUE);
  assert_region (NULL, NULL, NULL);
}

static void
test_region_config_file_env (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *path =
      g_build_filename (fixture->home, "elsewhere.ini", NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, "[default]\nregion=us-east-2\n", -1, &error);
  g_assert_no_error (error);
  write_config (fixture, "[default]\nregion = eu-west-1\n");
  g_setenv ("AWS_CONFIG_FILE", path, TRUE);
  assert_region (NULL, NULL, "us-east-2");
  g_remove (path);
}

static void
test_region_garbage_config (Fixture *fixture, gconstpointer data)
{
  write_config (fixture, "[default]\nthis line is not ini\n");
  g_test_expect_message ("callpipe-aws", G_LOG_LEVEL_WARNING,
      "*config:2: expected 'key = value'*");
  assert_region (NULL, NULL, NULL);
  g_test_assert_expected_messages ();
}

static void
assert_endpoint (const gchar *explicit_endpoint, const gchar *service_id,
    const gchar *prefix, const gchar *region, const gchar *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *endpoint = cp_aws_resolve_endpoint_full (explicit_endpoint,
      service_id, prefix, region, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (endpoint, ==, expected);
}

static void
test_endpoint_precedence (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *plain = NULL;

  assert_endpoint (NULL, "S3", "s3", "eu-west-1",
      "https://s3.eu-west-1.amazonaws.com");

  g_setenv ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", TRUE);
  assert_endpoint (NULL, "S3", "s3", "eu-west-1", "http://127.0.0.1:4566");

  g_setenv ("AWS_ENDPOINT_URL_S3", "http://localhost:9000//", TRUE);
  assert_endpoint (NULL, "S3", "s3", "eu-west-1", "http://localhost:9000");
  /* Another service still takes the global one. */
  assert_endpoint (NULL, "Kinesis Video", "kinesisvideo", "eu-west-1",
      "http://127.0.0.1:4566");

  assert_endpoint ("https://example.test/base/", "S3", "s3", "eu-west-1",
      "https://example.test/base");
  /* Without a region, an override still resolves. */
  assert_endpoint (NULL, "S3", "s3", NULL, "http://localhost:9000");

  plain = cp_aws_resolve_endpoint (NULL, "S3", "s3", NULL);
  g_assert_cmpstr (plain, ==, "http://localhost:9000");
}

static void
test_endpoint_service_id (Fixture *fixture, gconstpointer data)
{
  g_setenv ("AWS_ENDPOINT_URL_KINESIS_VIDEO", "http://127.0.0.1:1", TRUE);
  g_setenv ("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING", "http://127.0.0.1:2",
      TRUE);
  g_setenv ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:3", TRUE);

  assert_endpoint (NULL, "KINESIS_VIDEO", "kinesisvideo", "us-east-1",
      "http://127.0.0.1:1");
  assert_endpoint (NULL, "Kinesis Video", "kinesisvideo", "us-east-1",
      "http://127.0.0.1:1");
  assert_endpoint (NULL, "kinesis-video", "kinesisvideo", "us-east-1",
      "http://127.0.0.1:1");
  assert_endpoint (NULL, "Transcribe Streaming", "transcribestreaming",
      "us-east-1", "http://127.0.0.1:2");
  assert_endpoint (NULL, "BEDROCK_RUNTIME", "bedrock-runtime", "us-east-1",
      "http://127.0.0.1:3");
}

static void
test_endpoint_default_hosts (Fixture *fixture, gconstpointer data)
{
  assert_endpoint (NULL, "BEDROCK_RUNTIME", "bedrock-runtime", "us-east-1",
      "https://bedrock-runtime.us-east-1.amazonaws.com");
  assert_endpoint (NULL, "TRANSCRIBE_STREAMING", "transcribestreaming",
      "eu-west-2", "https://transcribestreaming.eu-west-2.amazonaws.com");
  assert_endpoint (NULL, "S3", "s3", "cn-north-1",
      "https://s3.cn-north-1.amazonaws.com.cn");
}

static void
assert_endpoint_error (const gchar *explicit_endpoint, const gchar *region,
    gint code)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *endpoint = cp_aws_resolve_endpoint_full (explicit_endpoint,
      "S3", "s3", region, &error);

  g_assert_null (endpoint);
  g_assert_error (error, CP_AWS_ENDPOINT_ERROR, code);
}

static void
test_endpoint_invalid (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *plain = NULL;

  assert_endpoint_error ("localhost:9000", "us-east-1",
      CP_AWS_ENDPOINT_ERROR_INVALID_URL);
  assert_endpoint_error ("ftp://example.test", "us-east-1",
      CP_AWS_ENDPOINT_ERROR_INVALID_URL);
  assert_endpoint_error ("http://", "us-east-1",
      CP_AWS_ENDPOINT_ERROR_INVALID_URL);
  assert_endpoint_error ("http://example.test/?x=1", "us-east-1",
      CP_AWS_ENDPOINT_ERROR_INVALID_URL);
  assert_endpoint_error (NULL, NULL, CP_AWS_ENDPOINT_ERROR_NO_REGION);
  assert_endpoint_error (NULL, "us-east-1.evil.test/x",
      CP_AWS_ENDPOINT_ERROR_INVALID_REGION);

  g_setenv ("AWS_ENDPOINT_URL_S3", "s3.local", TRUE);
  assert_endpoint_error (NULL, "us-east-1", CP_AWS_ENDPOINT_ERROR_INVALID_URL);

  g_test_expect_message ("callpipe-aws", G_LOG_LEVEL_WARNING,
      "*AWS_ENDPOINT_URL_S3*http:// or https://*");
  plain = cp_aws_resolve_endpoint (NULL, "S3", "s3", "us-east-1");
  g_test_assert_expected_messages ();
  g_assert_null (plain);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/aws/endpoint/region-precedence", Fixture, NULL, setup,
      test_region_precedence, teardown);
  g_test_add ("/aws/endpoint/region-profile", Fixture, NULL, setup,
      test_region_profile, teardown);
  g_test_add ("/aws/endpoint/region-config-file-env", Fixture, NULL, setup,
      test_region_config_file_env, teardown);
  g_test_add ("/aws/endpoint/region-garbage-config", Fixture, NULL, setup,
      test_region_garbage_config, teardown);
  g_test_add ("/aws/endpoint/precedence", Fixture, NULL, setup,
      test_endpoint_precedence, teardown);
  g_test_add ("/aws/endpoint/service-id", Fixture, NULL, setup,
      test_endpoint_service_id, teardown);
  g_test_add ("/aws/endpoint/default-hosts", Fixture, NULL, setup,
      test_endpoint_default_hosts, teardown);
  g_test_add ("/aws/endpoint/invalid", Fixture, NULL, setup,
      test_endpoint_invalid, teardown);
  return g_test_run ();
}

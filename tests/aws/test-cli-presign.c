/* Tests of `callpipe presign`: runs the built CLI (its path is the first
 * argument) in a clean environment — a HOME without AWS files, no
 * instance metadata — with credentials and settings given per case. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <string.h>

#define DOCS_ACCESS_KEY "AKIAIOSFODNN7EXAMPLE"
#define DOCS_SECRET_KEY "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static const gchar *cli_path;
static gchar *home_dir;

typedef struct
{
  gint status;
  gchar *out;
  gchar *err;
} CliRun;

static void
cli_run_clear (CliRun *r)
{
  g_free (r->out);
  g_free (r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CliRun, cli_run_clear)

/* @env: NULL-terminated "NAME=value" strings added to the clean base. */
static void
run_cli (const gchar *const *args, const gchar *const *env, CliRun *r)
{
  static const gchar *const passed_through[] = {
      "ASAN_OPTIONS",
      "LSAN_OPTIONS",
      "UBSAN_OPTIONS",
      "G_DEBUG",
      "LD_LIBRARY_PATH",
  };
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) envp = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  gint wait_status = 0;
  gsize i;

  g_ptr_array_add (argv, g_strdup (cli_path));
  g_ptr_array_add (argv, g_strdup ("presign"));
  for (i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  g_ptr_array_add (envp, g_strdup_printf ("HOME=%s", home_dir));
  g_ptr_array_add (envp,
      g_strdup_printf ("AWS_CONFIG_FILE=%s/no-config", home_dir));
  g_ptr_array_add (envp,
      g_strdup_printf ("AWS_SHARED_CREDENTIALS_FILE=%s/no-credentials",
          home_dir));
  g_ptr_array_add (envp, g_strdup ("AWS_EC2_METADATA_DISABLED=true"));
  for (i = 0; i < G_N_ELEMENTS (passed_through); i++) {
    const gchar *v = g_getenv (passed_through[i]);

    if (v != NULL)
      g_ptr_array_add (envp, g_strdup_printf ("%s=%s", passed_through[i], v));
  }
  for (i = 0; env != NULL && env[i] != NULL; i++)
    g_ptr_array_add (envp, g_strdup (env[i]));
  g_ptr_array_add (envp, NULL);

  if (!g_spawn_sync (NULL, (gchar **) argv->pdata, (gchar **) envp->pdata,
          G_SPAWN_DEFAULT, NULL, NULL, &r->out, &r->err, &wait_status, &error))
    g_error ("cannot run %s: %s", cli_path, error->message);
  if (g_spawn_check_wait_status (wait_status, &error))
    r->status = 0;
  else if (error->domain == G_SPAWN_EXIT_ERROR)
    r->status = error->code;
  else
    g_error ("%s did not exit normally: %s", cli_path, error->message);
}

static const gchar *const docs_creds[] = {"AWS_ACCESS_KEY_ID=" DOCS_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY=" DOCS_SECRET_KEY, NULL};

static gchar *
query_value (const gchar *url, const gchar *name)
{
  g_autofree gchar *needle = g_strconcat (name, "=", NULL);
  const gchar *q = strchr (url, '?');
  const gchar *p;

  g_assert_nonnull (q);
  for (p = q + 1; p != NULL; p = strchr (p, '&')) {
    if (*p == '&')
      p++;
    if (g_str_has_prefix (p, needle)) {
      p += strlen (needle);
      return g_strndup (p, strcspn (p, "&\n"));
    }
  }
  return NULL;
}

/* The S3 documentation's presigned GET: the URL must carry exactly the
 * signature the AWS SDKs produce. */
static void
test_docs_example (void)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autofree gchar *json_path = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  const gchar *args[] = {"s3://examplebucket/test.txt", "--region", "us-east-1",
      "--date", "20130524T000000Z", "--expires", "86400", NULL};
  g_auto (CliRun) r = {0};
  g_autofree gchar *sig = NULL;
  g_autofree gchar *expires = NULL;
  JsonObject *vector;

  if (shared != NULL)
    json_path = g_build_filename (shared, "conformance", "sigv4",
        "streaming-and-s3-vectors.json", NULL);
  if (json_path == NULL || !g_file_test (json_path, G_FILE_TEST_EXISTS)) {
    g_test_skip ("CALLPIPE_SHARED_DIR/conformance/sigv4/"
                 "streaming-and-s3-vectors.json is missing");
    return;
  }
  g_assert_true (json_parser_load_from_file (parser, json_path, &error));
  vector = json_object_get_object_member (
      json_object_get_object_member (json_node_get_object (
                                         json_parser_get_root (parser)),
          "s3_docs_examples"),
      "presigned_get");

  run_cli (args, docs_creds, &r);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out,
      "https://examplebucket.s3.amazonaws.com/test.txt?"));
  g_assert_true (g_str_has_suffix (r.out, "\n"));
  sig = query_value (r.out, "X-Amz-Signature");
  expires = query_value (r.out, "X-Amz-Expires");
  g_assert_cmpstr (sig, ==,
      json_object_get_string_member (vector, "signature"));
  g_assert_cmpstr (expires, ==, "86400");
}

/* Expected URLs from botocore 1.43.11 generate_presigned_url with the same
 * keys, time and expiry (virtual-hosted on the regional endpoint, and
 * path style on a custom endpoint). */
#define BOTO_EU_WEST_1                                                       \
  "https://examplebucket.s3.eu-west-1.amazonaws.com/dir/a%20b%2B1~%C3%BC%24" \
  ".wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="                  \
  "AKIAIOSFODNN7EXAMPLE%2F20130524%2Feu-west-1%2Fs3%2Faws4_request&"         \
  "X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders=host&"                    \
  "X-Amz-Expires=86400&X-Amz-Signature="                                     \
  "87a5852884458b9f019816f091286c26f556d6d4a2f31b1fe1cb2bf9efd981f7\n"
#define BOTO_PATH_STYLE                                              \
  "http://127.0.0.1:9000/examplebucket/a//b/../c?X-Amz-Algorithm="   \
  "AWS4-HMAC-SHA256&X-Amz-Credential="                               \
  "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&" \
  "X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders=host&"            \
  "X-Amz-Expires=86400&X-Amz-Signature="                             \
  "a06abbcf662009193801425b174f25e944eca3210e8d77e5df1e3b77a63cbd9e\n"

static void
test_regional_virtual_host (void)
{
  const gchar *args[] = {"s3://examplebucket/dir/a b+1~\xc3\xbc$.wav",
      "--date=20130524T000000Z", "--expires=86400", NULL};
  const gchar *env[] = {docs_creds[0], docs_creds[1], "AWS_REGION=eu-west-1",
      NULL};
  g_auto (CliRun) r = {0};

  run_cli (args, env, &r);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, BOTO_EU_WEST_1);
}

static void
test_path_style_endpoint (void)
{
  const gchar *args[] = {"s3://examplebucket/a//b/../c", "--region",
      "us-east-1", "--endpoint", "http://127.0.0.1:9000",
      "--date=20130524T000000Z", "--expires=86400", NULL};
  const gchar *env_args[] = {"s3://examplebucket/a//b/../c", "--region",
      "us-east-1", "--date=20130524T000000Z", "--expires=86400", NULL};
  const gchar *env[] = {docs_creds[0], docs_creds[1],
      "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000/", NULL};
  g_auto (CliRun) r = {0};
  g_auto (CliRun) r_env = {0};

  run_cli (args, docs_creds, &r);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, BOTO_PATH_STYLE);

  run_cli (env_args, env, &r_env);
  g_assert_cmpstr (r_env.err, ==, "");
  g_assert_cmpint (r_env.status, ==, 0);
  g_assert_cmpstr (r_env.out, ==, BOTO_PATH_STYLE);
}

static void
test_session_token_and_default_expiry (void)
{
  const gchar *args[] = {"s3://examplebucket/test.txt", "--region", "us-east-1",
      NULL};
  const gchar *env[] = {docs_creds[0], docs_creds[1],
      "AWS_SESSION_TOKEN=tok/en+=", NULL};
  g_auto (CliRun) r = {0};
  g_autofree gchar *token = NULL;
  g_autofree gchar *expires = NULL;
  g_autofree gchar *date = NULL;

  run_cli (args, env, &r);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  token = query_value (r.out, "X-Amz-Security-Token");
  expires = query_value (r.out, "X-Amz-Expires");
  date = query_value (r.out, "X-Amz-Date");
  g_assert_cmpstr (token, ==, "tok%2Fen%2B%3D");
  g_assert_cmpstr (expires, ==, "3600");
  g_assert_nonnull (date);
  g_assert_cmpuint (strlen (date), ==, 16);
}

typedef struct
{
  const gchar *name;
  const gchar *args[6];
  gboolean with_region_env;
  gint status;
  const gchar *message;
} ErrorCase;

static const ErrorCase error_cases[] = {
    {"expires-zero", {"s3://b/k", "--expires=0"}, TRUE, 2, "--expires '0'"},
    {"expires-too-long", {"s3://b/k", "--expires", "604801"}, TRUE, 2,
        "from 1 to 604800"},
    {"expires-garbage", {"s3://b/k", "--expires=1h"}, TRUE, 2, "'1h'"},
    {"date-garbage", {"s3://b/k", "--date", "2013-05-24"}, TRUE, 2,
        "YYYYMMDDTHHMMSSZ"},
    {"date-impossible", {"s3://b/k", "--date=20130230T000000Z"}, TRUE, 2,
        "20130230T000000Z"},
    {"url-scheme", {"https://b/k"}, TRUE, 2, "s3://BUCKET/KEY"},
    {"url-no-key", {"s3://bucket"}, TRUE, 2, "s3://BUCKET/KEY"},
    {"url-empty-key", {"s3://bucket/"}, TRUE, 2, "s3://BUCKET/KEY"},
    {"url-no-bucket", {"s3:///key"}, TRUE, 2, "s3://BUCKET/KEY"},
    {"no-url", {"--expires=5"}, TRUE, 2, "usage:"},
    {"two-urls", {"s3://b/k", "s3://b/j"}, TRUE, 2, "usage:"},
    {"unknown-option", {"s3://b/k", "--expire=5"}, TRUE, 2, "--expire"},
    {"bad-endpoint", {"s3://b/k", "--endpoint", "ftp://x"}, TRUE, 2,
        "http:// or https://"},
    {"no-region", {"s3://b/k"}, FALSE, 2,
        "no region: use --region or set AWS_REGION"},
};

static void
test_error_case (gconstpointer data)
{
  const ErrorCase *c = data;
  const gchar *env[] = {docs_creds[0], docs_creds[1],
      c->with_region_env ? "AWS_REGION=us-east-1" : NULL, NULL};
  g_auto (CliRun) r = {0};

  run_cli (c->args, env, &r);
  g_assert_cmpint (r.status, ==, c->status);
  g_assert_cmpstr (r.out, ==, "");
  if (strstr (r.err, c->message) == NULL)
    g_error ("stderr \"%s\" does not mention \"%s\"", r.err, c->message);
}

static void
test_no_credentials (void)
{
  const gchar *args[] = {"s3://examplebucket/test.txt", NULL};
  const gchar *env[] = {"AWS_REGION=us-east-1", NULL};
  g_auto (CliRun) r = {0};

  run_cli (args, env, &r);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_nonnull (strstr (r.err, "no AWS credentials"));
}

int
main (int argc, char **argv)
{
  gsize i;
  int ret;

  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    g_error ("usage: %s PATH-TO-callpipe", argv[0]);
  cli_path = argv[1];
  home_dir = g_dir_make_tmp ("callpipe-presign-XXXXXX", NULL);
  g_assert_nonnull (home_dir);

  g_test_add_func ("/cli/presign/docs-example", test_docs_example);
  g_test_add_func ("/cli/presign/regional-virtual-host",
      test_regional_virtual_host);
  g_test_add_func ("/cli/presign/path-style-endpoint",
      test_path_style_endpoint);
  g_test_add_func ("/cli/presign/session-token-default-expiry",
      test_session_token_and_default_expiry);
  g_test_add_func ("/cli/presign/no-credentials", test_no_credentials);
  for (i = 0; i < G_N_ELEMENTS (error_cases); i++) {
    g_autofree gchar *path =
        g_strdup_printf ("/cli/presign/error/%s", error_cases[i].name);

    g_test_add_data_func (path, &error_cases[i], test_error_case);
  }
  ret = g_test_run ();
  g_rmdir (home_dir);
  g_free (home_dir);
  return ret;
}

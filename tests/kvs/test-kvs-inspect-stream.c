/* callpipe kvs-inspect --stream-arn against the GetMedia test peer.
 * argv: the callpipe binary, the system plugin folder, the peer script. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvs-peer.h"

#define STREAM_ARN \
  "arn:aws:kinesisvideo:us-east-1:123456789012:stream/connect-contact/1"

static const gchar *callpipe;
static const gchar *peer_script;
static gchar **child_env;
static KvsPeerFixture fixture;

/* kvssrc and kvsdemux from the build, fakesink from a folder holding only
 * coreelements, scanned in-process (as test-kvs-inspect.c), and the
 * peer's credentials in the environment, for the SDK chain. */
static void
setup_child_env (const gchar *system_plugins)
{
  const gchar *builddir = g_getenv ("CALLPIPE_TESTS_BUILDDIR");
  g_autofree gchar *dir = g_build_filename (builddir ? builddir : ".",
      "kvs-inspect-stream-plugins", NULL);
  g_autofree gchar *link =
      g_build_filename (dir, "libgstcoreelements.so", NULL);
  g_autofree gchar *target =
      g_build_filename (system_plugins, "libgstcoreelements.so", NULL);
  g_autofree gchar *registry = g_build_filename (builddir ? builddir : ".",
      "registry-kvs-inspect-stream.bin", NULL);

  g_mkdir_with_parents (dir, 0755);
  g_unlink (link);
  g_assert_cmpint (symlink (target, link), ==, 0);
  child_env = g_get_environ ();
  child_env =
      g_environ_setenv (child_env, "GST_PLUGIN_SYSTEM_PATH_1_0", dir, TRUE);
  child_env = g_environ_setenv (child_env, "GST_REGISTRY_FORK", "no", TRUE);
  child_env = g_environ_setenv (child_env, "GST_REGISTRY_1_0", registry, TRUE);
  child_env = g_environ_setenv (child_env, "AWS_ACCESS_KEY_ID",
      KVS_PEER_ACCESS_KEY, TRUE);
  child_env = g_environ_setenv (child_env, "AWS_SECRET_ACCESS_KEY",
      KVS_PEER_SECRET_KEY, TRUE);
  child_env = g_environ_unsetenv (child_env, "AWS_SESSION_TOKEN");
  child_env = g_environ_unsetenv (child_env, "AWS_PROFILE");
  child_env =
      g_environ_setenv (child_env, "AWS_CONFIG_FILE", "/nonexistent", TRUE);
  child_env = g_environ_setenv (child_env, "AWS_SHARED_CREDENTIALS_FILE",
      "/nonexistent", TRUE);
}

/* callpipe kvs-inspect --stream-arn ... @extra (NULL-terminated). */
static gint
run_inspect (KvsPeer *peer, gchar **out, gchar **err, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  const gchar *arg;
  va_list args;
  gint status;

  g_ptr_array_add (argv, g_strdup (callpipe));
  g_ptr_array_add (argv, g_strdup ("kvs-inspect"));
  g_ptr_array_add (argv, g_strdup ("--stream-arn=" STREAM_ARN));
  g_ptr_array_add (argv, g_strdup ("--region=us-east-1"));
  g_ptr_array_add (argv,
      g_strdup_printf ("--endpoint=http://127.0.0.1:%u", peer->port));
  g_ptr_array_add (argv, g_strdup ("--idle-timeout=400"));
  va_start (args, err);
  while ((arg = va_arg (args, const gchar *)) != NULL)
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv->pdata, child_env,
      G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_whole_stream (void)
{
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *last = NULL;
  KvsPeer peer;

  kvs_peer_start (&peer, peer_script, &fixture, "--speed", "20", NULL);
  g_assert_cmpint (run_inspect (&peer, &out, &err, "--start-selector=earliest",
                       NULL),
      ==, 0);
  last = g_strdup_printf ("number             %s",
      fixture.number[KVS_PEER_FRAGMENTS - 1]);
  g_assert_nonnull (strstr (out, last));
  g_assert_nonnull (strstr (out, "fragment 6\n"));
  g_assert_null (strstr (out, "fragment 7\n"));
  g_assert_nonnull (strstr (out, "contact-id         5b1c-contact"));
  g_assert_nonnull (
      strstr (out, "from_customer  audio/x-raw, format=(string)S16LE"));
  g_assert_nonnull (strstr (out, "duration 0:00:06.144000000"));
  kvs_peer_stop (&peer);
}

static void
test_max_fragments (void)
{
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *after = NULL;
  g_autoptr (GPtrArray) selectors = NULL;
  KvsPeer peer;

  kvs_peer_start (&peer, peer_script, &fixture, "--speed", "20", NULL);
  token = g_strdup_printf ("--continuation-token=%s", fixture.number[1]);
  g_assert_cmpint (run_inspect (&peer, &out, &err,
                       "--start-selector=continuation-token", token,
                       "--max-fragments=2", NULL),
      ==, 0);
  after = g_strdup_printf ("number             %s", fixture.number[2]);
  g_assert_nonnull (strstr (out, after));
  g_assert_nonnull (strstr (out, "fragment 2\n"));
  g_assert_null (strstr (out, "fragment 3\n"));
  selectors = kvs_peer_get_media_selectors (&peer);
  g_assert_cmpuint (selectors->len, >=, 1);
  g_assert_nonnull (
      strstr (g_ptr_array_index (selectors, 0), "CONTINUATION_TOKEN"));
  kvs_peer_stop (&peer);
}

static void
test_bad_selector (void)
{
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  KvsPeer peer;

  kvs_peer_start (&peer, peer_script, &fixture, NULL);
  g_assert_cmpint (run_inspect (&peer, &out, &err, "--start-selector=latest",
                       NULL),
      ==, 2);
  g_assert_nonnull (strstr (err, "unknown start selector 'latest'"));
  kvs_peer_stop (&peer);
}

static void
test_not_found (void)
{
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  KvsPeer peer;

  kvs_peer_start (&peer, peer_script, &fixture, "--error",
      "getDataEndpoint=ResourceNotFoundException", NULL);
  g_assert_cmpint (run_inspect (&peer, &out, &err, NULL), ==, 1);
  g_assert_nonnull (strstr (err,
      STREAM_ARN ": GetDataEndpoint failed: "
                 "ResourceNotFoundException"));
  kvs_peer_stop (&peer);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_assert_cmpint (argc, ==, 4);
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr ("SKIP: the GetMedia peer needs /usr/bin/python3\n");
    return 77;
  }
  callpipe = argv[1];
  peer_script = argv[3];
  setup_child_env (argv[2]);
  kvs_peer_fixture_write (&fixture);
  g_test_add_func ("/kvs/inspect-stream/whole", test_whole_stream);
  g_test_add_func ("/kvs/inspect-stream/max-fragments", test_max_fragments);
  g_test_add_func ("/kvs/inspect-stream/bad-selector", test_bad_selector);
  g_test_add_func ("/kvs/inspect-stream/not-found", test_not_found);
  ret = g_test_run ();
  kvs_peer_fixture_remove (&fixture);
  g_strfreev (child_env);
  return ret;
}

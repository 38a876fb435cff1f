/* callpipe kvs-inspect on a generated Connect-shaped capture and on a file
 * that is not MKV. argv[1] is the callpipe binary. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvs-fixture.h"

static const gchar *callpipe;
static gchar **child_env;

/* callpipe needs filesrc and fakesink besides kvsdemux: a system plugin
 * folder holding only coreelements, scanned in-process (the forked scanner
 * cannot load sanitized plugins; other system plugins leak). */
static void
setup_child_env (const gchar *system_plugins)
{
  const gchar *builddir = g_getenv ("CALLPIPE_TESTS_BUILDDIR");
  g_autofree gchar *dir =
      g_build_filename (builddir ? builddir : ".", "kvs-inspect-plugins", NULL);
  g_autofree gchar *link =
      g_build_filename (dir, "libgstcoreelements.so", NULL);
  g_autofree gchar *target =
      g_build_filename (system_plugins, "libgstcoreelements.so", NULL);
  g_autofree gchar *registry = g_build_filename (builddir ? builddir : ".",
      "registry-kvs-inspect.bin", NULL);

  g_mkdir_with_parents (dir, 0755);
  g_unlink (link);
  g_assert_cmpint (symlink (target, link), ==, 0);
  child_env = g_get_environ ();
  child_env =
      g_environ_setenv (child_env, "GST_PLUGIN_SYSTEM_PATH_1_0", dir, TRUE);
  child_env = g_environ_setenv (child_env, "GST_REGISTRY_FORK", "no", TRUE);
  child_env = g_environ_setenv (child_env, "GST_REGISTRY_1_0", registry, TRUE);
}

static gint
run_inspect (const gchar *file, gchar **out, gchar **err)
{
  const gchar *argv[] = {callpipe, "kvs-inspect", file, NULL};
  g_autoptr (GError) error = NULL;
  gint status;

  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, child_env,
      G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static gchar *
write_temp (GByteArray *data)
{
  g_autoptr (GError) error = NULL;
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("kvs-inspect-XXXXXX.mkv", &path, &error);

  g_assert_no_error (error);
  close (fd);
  g_assert_true (
      g_file_set_contents (path, (const gchar *) data->data, data->len, NULL));
  return path;
}

static void
test_fixture (void)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  g_autofree gchar *path = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  KvsFixtureState st = {0, 0};
  KvsFixtureFragment f1 = {"91343852333181432392682062607743920146159169001",
      "5b1c-contact", 1726677688724, 16, 16, 512, 0, FALSE, TRUE, NULL, 0};
  KvsFixtureFragment f2 = {"91343852333181432392682062607743920146159169002",
      "5b1c-contact", 1726677689748, 16, 16, 512, 0, TRUE, FALSE, NULL, 0};

  kvs_fixture_write_fragment (s, &f1, &st);
  kvs_fixture_write_fragment (s, &f2, &st);
  path = write_temp (s);
  g_assert_cmpint (run_inspect (path, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "fragment 2\n"));
  g_assert_nonnull (strstr (out,
      "number             91343852333181432392682062607743920146159169002"));
  g_assert_nonnull (strstr (out,
      "producer-timestamp 2024-09-18T16:41:28.724Z (1726677688724)"));
  g_assert_nonnull (strstr (out, "contact-id         5b1c-contact"));
  g_assert_nonnull (strstr (out,
      "continuation-token "
      "91343852333181432392682062607743920146159169001"));
  g_assert_nonnull (strstr (out, "millis-behind-now  1124"));
  g_assert_nonnull (strstr (out,
      "from_customer  audio/x-raw, "
      "format=(string)S16LE, layout=(string)interleaved, "
      "rate=(int)8000, channels=(int)1"));
  g_assert_nonnull (strstr (out, "to_customer"));
  g_assert_nonnull (strstr (out, "duration 0:00:02.048000000"));
  g_assert_null (strstr (out, "fragment 3"));
  g_unlink (path);
}

static void
test_not_mkv (void)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  g_autofree gchar *path = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;

  g_byte_array_append (s, (const guint8 *) "RIFF\x24\0\0\0WAVEfmt garbage", 23);
  path = write_temp (s);
  g_assert_cmpint (run_inspect (path, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "not an MKV stream"));
  g_assert_null (strstr (err, "warning"));
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_assert_cmpint (argc, ==, 3);
  callpipe = argv[1];
  setup_child_env (argv[2]);
  g_test_add_func ("/kvs/inspect/fixture", test_fixture);
  g_test_add_func ("/kvs/inspect/not-mkv", test_not_mkv);
  ret = g_test_run ();
  g_strfreev (child_env);
  return ret;
}

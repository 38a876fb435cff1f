/* Helpers shared by the callpiped tests. */
#include "test-util.h"

#include <glib/gstdio.h>

void
cp_test_remove_tree (const gchar *path)
{
  GDir *dir;
  const gchar *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR)
      || g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_unlink (path);
    return;
  }
  dir = g_dir_open (path, 0, NULL);
  if (dir != NULL) {
    while ((name = g_dir_read_name (dir)) != NULL) {
      g_autofree gchar *child = g_build_filename (path, name, NULL);

      cp_test_remove_tree (child);
    }
    g_dir_close (dir);
  }
  g_rmdir (path);
}

#ifdef __SANITIZE_ADDRESS__
/* GLib's quark table leaks by design once GStreamer outgrows it, from a
 * library constructor (tests/lsan.supp: _dl_init). The fast unwinder stops
 * inside GLib, which has no frame pointers, before reaching _dl_init; the
 * slow one with ten frames gets there. */
#define SANITIZER_UNWIND "fast_unwind_on_malloc=0:malloc_context_size=10"

const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return SANITIZER_UNWIND;
}

/* Children (callpiped, callpipe) read ASAN_OPTIONS, not this binary's
 * defaults. */
void
cp_test_sanitizer_env_for_children (void)
{
  const gchar *cur = g_getenv ("ASAN_OPTIONS");
  g_autofree gchar *opts = cur != NULL && *cur != '\0'
      ? g_strconcat (cur, ":" SANITIZER_UNWIND, NULL)
      : g_strdup (SANITIZER_UNWIND);

  g_setenv ("ASAN_OPTIONS", opts, TRUE);
}
#else
void
cp_test_sanitizer_env_for_children (void)
{
}
#endif

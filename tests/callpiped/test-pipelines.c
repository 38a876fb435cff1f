/* Every pipelines/NAME.pipeline loads, and those whose elements exist build
 * a pipeline with sample values; the others skip naming what is missing. */
#include "cp-factory.h"
#include "cp-template.h"

#include <gst/gst.h>
#include <string.h>

static const gchar *pipelines_dir;

static void
test_pipeline (gconstpointer data)
{
  const gchar *name = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (CpFactory) f = cp_factory_load (pipelines_dir, name, &error);
  g_autoptr (GHashTable) values = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GstElement) pipeline = NULL;
  const gchar *const *vars;
  guint i;

  g_assert_no_error (error);
  vars = cp_factory_get_variables (f);
  for (i = 0; vars[i] != NULL; i++) {
    CpVarKind kind;

    g_assert_true (cp_template_variable_kind (vars[i], &kind, NULL));
    g_hash_table_insert (values, (gpointer) vars[i],
        (gpointer) cp_template_variable_sample (vars[i]));
  }
  if (!cp_factory_is_available (f)) {
    g_autofree gchar *names =
        g_strjoinv (", ", (gchar **) cp_factory_get_missing (f));
    g_autofree gchar *launch = cp_factory_expand (f, values, &error);
    g_autofree gchar *why = g_strdup_printf ("%s needs elements not built "
                                             "yet: %s",
        name, names);

    /* substitution still has to work */
    g_assert_no_error (error);
    g_assert_nonnull (launch);
    g_test_skip (why);
    return;
  }
  pipeline = cp_factory_create_pipeline (f, name, values, &error);
  g_assert_no_error (error);
  g_assert_true (GST_IS_PIPELINE (pipeline));
  gst_object_ref_sink (pipeline);
}

int
main (int argc, char **argv)
{
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *entry;
  guint i;

  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  pipelines_dir = g_getenv ("CALLPIPE_PIPELINES_DIR");
  g_assert_nonnull (pipelines_dir);
  dir = g_dir_open (pipelines_dir, 0, NULL);
  g_assert_nonnull (dir);
  while ((entry = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_suffix (entry, ".pipeline"))
      g_ptr_array_add (names,
          g_strndup (entry, strlen (entry) - strlen (".pipeline")));
  }
  /* The pipelines the supervisor runs today must be there. */
  g_assert_true (g_ptr_array_find_with_equal_func (names, "connect-bot",
      g_str_equal, NULL));
  g_assert_true (g_ptr_array_find_with_equal_func (names, "connect-bot-media",
      g_str_equal, NULL));
  g_assert_true (g_ptr_array_find_with_equal_func (names, "media-record",
      g_str_equal, NULL));
  for (i = 0; i < names->len; i++) {
    g_autofree gchar *path = g_strdup_printf ("/callpiped/pipelines/%s",
        (const gchar *) names->pdata[i]);

    g_test_add_data_func (path, names->pdata[i], test_pipeline);
  }
  return g_test_run ();
}

/* callpiped — pipeline factory */
#include "cp-factory.h"
#include "cp-template.h"

#include <string.h>

struct _CpFactory
{
  gchar *name;
  gchar *description; /* comments stripped, ${VARS} kept */
  GStrv variables;
  GStrv missing; /* element names this GStreamer lacks */
};

GQuark
cp_factory_error_quark (void)
{
  return g_quark_from_static_string ("cp-factory-error-quark");
}

static gboolean
valid_pipeline_name (const gchar *name)
{
  const gchar *p;

  if (*name == '\0' || *name == '-')
    return FALSE;
  for (p = name; *p != '\0'; p++) {
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
      return FALSE;
  }
  return TRUE;
}

static GHashTable *
sample_values (GStrv variables)
{
  GHashTable *values = g_hash_table_new (g_str_hash, g_str_equal);
  guint i;

  for (i = 0; variables[i] != NULL; i++) {
    g_hash_table_insert (values, variables[i],
        (gpointer) cp_template_variable_sample (variables[i]));
  }
  return values;
}

/* Parsing with sample values instantiates every element the description
 * names without touching any resource (no element opens anything before
 * READY), and the parse context reports the ones that are not installed. */
static gboolean
find_missing_elements (CpFactory *f, GError **error)
{
  g_autoptr (GHashTable) values = sample_values (f->variables);
  g_autofree gchar *launch = NULL;
  g_autoptr (GstParseContext) ctx = gst_parse_context_new ();
  g_autoptr (GError) perr = NULL;
  GstElement *e;

  launch = cp_template_expand (f->description, values, error);
  if (launch == NULL)
    return FALSE;
  e = gst_parse_launch_full (launch, ctx, GST_PARSE_FLAG_NONE, &perr);
  if (e != NULL)
    gst_object_unref (gst_object_ref_sink (e));
  f->missing = gst_parse_context_get_missing_elements (ctx);
  if (f->missing == NULL)
    f->missing = g_new0 (gchar *, 1);
  if (perr != NULL && f->missing[0] == NULL) {
    g_set_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID,
        "pipeline %s does not parse: %s", f->name, perr->message);
    return FALSE;
  }
  return TRUE;
}

CpFactory *
cp_factory_new_from_text (const gchar *name, const gchar *text, GError **error)
{
  g_autoptr (CpFactory) f = g_new0 (CpFactory, 1);

  f->name = g_strdup (name);
  f->description = cp_template_strip_comments (text);
  if (f->description[0] == '\0') {
    g_set_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID,
        "pipeline %s is empty", name);
    return NULL;
  }
  f->variables = cp_template_variables (f->description, error);
  if (f->variables == NULL) {
    g_prefix_error (error, "pipeline %s: ", name);
    return NULL;
  }
  if (!find_missing_elements (f, error))
    return NULL;
  return g_steal_pointer (&f);
}

CpFactory *
cp_factory_load (const gchar *dir, const gchar *name, GError **error)
{
  g_autofree gchar *file = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (GError) ferr = NULL;

  if (!valid_pipeline_name (name)) {
    g_set_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID,
        "'%s' is not a pipeline name (lower-case letters, digits, '-')", name);
    return NULL;
  }
  file = g_strconcat (name, ".pipeline", NULL);
  path = g_build_filename (dir, file, NULL);
  if (!g_file_get_contents (path, &text, NULL, &ferr)) {
    g_set_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_NOT_FOUND,
        "pipeline %s: %s", name, ferr->message);
    return NULL;
  }
  return cp_factory_new_from_text (name, text, error);
}

void
cp_factory_free (CpFactory *f)
{
  if (f == NULL)
    return;
  g_free (f->name);
  g_free (f->description);
  g_strfreev (f->variables);
  g_strfreev (f->missing);
  g_free (f);
}

const gchar *
cp_factory_get_name (CpFactory *f)
{
  return f->name;
}

const gchar *const *
cp_factory_get_variables (CpFactory *f)
{
  return (const gchar *const *) f->variables;
}

const gchar *const *
cp_factory_get_missing (CpFactory *f)
{
  return (const gchar *const *) f->missing;
}

gboolean
cp_factory_is_available (CpFactory *f)
{
  return f->missing[0] == NULL;
}

gchar *
cp_factory_expand (CpFactory *f, GHashTable *values, GError **error)
{
  gchar *launch = cp_template_expand (f->description, values, error);

  if (launch == NULL)
    g_prefix_error (error, "pipeline %s: ", f->name);
  return launch;
}

GstElement *
cp_factory_create_pipeline (CpFactory *f, const gchar *pipeline_name,
    GHashTable *values, GError **error)
{
  g_autofree gchar *launch = NULL;
  g_autoptr (GstParseContext) ctx = gst_parse_context_new ();
  g_autoptr (GError) perr = NULL;
  GstElement *bin;
  GstElement *pipeline;

  if (!cp_factory_is_available (f)) {
    g_autofree gchar *names = g_strjoinv (", ", f->missing);

    g_set_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_MISSING_ELEMENTS,
        "pipeline %s needs elements that are not installed: %s", f->name,
        names);
    return NULL;
  }
  launch = cp_factory_expand (f, values, error);
  if (launch == NULL)
    return NULL;
  bin = gst_parse_launch_full (launch, ctx,
      GST_PARSE_FLAG_FATAL_ERRORS | GST_PARSE_FLAG_PLACE_IN_BIN, &perr);
  if (bin == NULL) {
    g_set_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID,
        "pipeline %s: %s", f->name,
        perr != NULL ? perr->message : "could not be built");
    return NULL;
  }
  /* As gst-rtsp-server does: the description becomes a bin inside a
   * pipeline the supervisor owns, whatever its top level looks like. */
  pipeline = gst_pipeline_new (pipeline_name);
  gst_bin_add (GST_BIN (pipeline), bin);
  return pipeline;
}

/* Memory and load time of pocketsphinx decoders: the full model (language
 * model and whole dictionary, the open vocabulary) against the
 * grammar-only model of a workflow's vocabulary (the local bot's). Each
 * kind runs in a process of its own, so that one's freed memory does not
 * hide the other's growth; RSS is read from /proc/self/status.
 *
 *   bench-asr-memory [--decoders N] [--workflow FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speech/speechdialog.h"

#define DEFAULT_DECODERS 4

typedef struct
{
  gint64 anon_kb;
  gint64 file_kb;
} Rss;

static gint64
status_kb (const gchar *status, const gchar *field)
{
  const gchar *p = strstr (status, field);

  return p != NULL ? g_ascii_strtoll (p + strlen (field), NULL, 10) : -1;
}

static Rss
read_rss (void)
{
  g_autofree gchar *status = NULL;
  Rss rss = {-1, -1};

  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL)) {
    rss.anon_kb = status_kb (status, "RssAnon:");
    rss.file_kb = status_kb (status, "RssFile:");
  }
  return rss;
}

static void
print_row (const gchar *kind, const gchar *step, gint64 t0, Rss before,
    Rss after)
{
  printf ("| %s | %s | %.1f | %+.1f | %+.1f |\n", kind, step,
      (g_get_monotonic_time () - t0) / 1000.0,
      (after.anon_kb - before.anon_kb) / 1024.0,
      (after.file_kb - before.file_kb) / 1024.0);
}

/* The model of @kind; for the grammar-only one, the workflow that gives
 * its vocabulary is loaded first, on a row of its own. */
static CpSpeechModel *
make_model (const gchar *kind, const gchar *workflow, GError **error)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = NULL;
  g_auto (GStrv) vocabulary = NULL;
  CpSpeechModel *model;
  gint64 t0 = g_get_monotonic_time ();
  Rss before = read_rss ();

  if (!g_str_equal (kind, "full")) {
    wf = cp_speech_dialog_workflow_load (workflow, NULL, NULL, error);
    if (wf == NULL)
      return NULL;
    vocabulary = cp_speech_dialog_workflow_get_vocabulary (wf);
    print_row (kind, "workflow (vocabulary)", t0, before, read_rss ());
    t0 = g_get_monotonic_time ();
    before = read_rss ();
    model = cp_speech_model_new_grammar (NULL,
        (const gchar *const *) vocabulary, error);
  } else {
    model = cp_speech_model_new (NULL, error);
  }
  if (model != NULL)
    print_row (kind, "model", t0, before, read_rss ());
  return model;
}

/* One row per decoder: what loading it cost. */
static int
run_kind (const gchar *kind, const gchar *workflow, guint n_decoders)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechModel) model = NULL;
  Rss before, after;
  guint i;

  model = make_model (kind, workflow, &error);
  if (model == NULL) {
    g_printerr ("%s: %s\n", kind, error->message);
    return 1;
  }
  after = read_rss ();
  for (i = 1; i <= n_decoders; i++) {
    g_autofree gchar *step = g_strdup_printf ("decoder %u", i);
    gint64 t0 = g_get_monotonic_time ();

    before = after;
    if (!cp_speech_model_preload (model, i, &error)) {
      g_printerr ("%s: %s\n", kind, error->message);
      return 1;
    }
    after = read_rss ();
    print_row (kind, step, t0, before, after);
  }
  fflush (stdout);
  return 0;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *kind = NULL, *workflow = NULL;
  gint n_decoders = DEFAULT_DECODERS;
  GOptionEntry entries[] = {
      {"decoders", 'n', 0, G_OPTION_ARG_INT, &n_decoders,
          "Decoders to load per model", "N"},
      {"workflow", 'w', 0, G_OPTION_ARG_FILENAME, &workflow,
          "The workflow whose vocabulary the grammar-only model takes", "FILE"},
      {"kind", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &kind, NULL, NULL},
      G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  const gchar *const kinds[] = {"full", "grammar-only", NULL};
  guint i;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (n_decoders < 1)
    n_decoders = 1;
  if (workflow == NULL)
    workflow = g_build_filename (CP_SOURCE_DIR, "pipelines", "workflows",
        "customer-service.json", NULL);
  if (kind != NULL)
    return run_kind (kind, workflow, n_decoders);

  printf ("| model | step | ms | RssAnon MB | RssFile MB |\n"
          "|---|---|---|---|---|\n");
  fflush (stdout);
  for (i = 0; kinds[i] != NULL; i++) {
    g_autofree gchar *n = g_strdup_printf ("%d", n_decoders);
    const gchar *child[] = {argv[0], "--kind", kinds[i], "--decoders", n,
        "--workflow", workflow, NULL};
    gint status = 0;

    if (!g_spawn_sync (NULL, (gchar **) child, NULL,
            G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL, NULL, &status,
            &error)
        || !g_spawn_check_wait_status (status, &error)) {
      g_printerr ("%s: %s\n", kinds[i], error->message);
      return 1;
    }
  }
  printf ("\n(decoder rows: the growth from loading one more decoder; "
          "RssFile is the model files mapped, shared between decoders' "
          "pages and processes)\n");
  return 0;
}

/* callpiped — Prometheus metrics */
#include "cp-metrics.h"

#include <string.h>

/* Calls run from seconds to hours. */
static const gdouble buckets[] = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600,
    7200, 14400};

#define N_BUCKETS G_N_ELEMENTS (buckets)

typedef struct
{
  guint64 active;
  guint64 started;
  guint64 ended;
  guint64 failed;
  guint64 bucket_counts[N_BUCKETS];
  guint64 count;
  gdouble sum;
} KindStats;

struct _CpMetrics
{
  GHashTable *kinds; /* kind -> KindStats */
  GHashTable *pipeline_errors; /* pipeline name -> guint64 * */
  GHashTable *refused; /* "kind\nreason" -> guint64 * */
  gdouble dropped[CP_METRICS_AUDIO_N]; /* seconds, by direction */
  guint64 stalled;
};

static const gchar *const directions[CP_METRICS_AUDIO_N] = {"reply", "caller"};

/* Kinds that always appear, so dashboards see zeros before the first call. */
static const gchar *const known_kinds[] = {"call", "turn"};
/* Refusals that always appear, for the same reason. */
static const gchar *const known_refusals[] = {"browser\ncapacity"};

static guint64 *
counter_for (GHashTable *t, const gchar *key)
{
  guint64 *n = g_hash_table_lookup (t, key);

  if (n == NULL) {
    n = g_new0 (guint64, 1);
    g_hash_table_insert (t, g_strdup (key), n);
  }
  return n;
}

CpMetrics *
cp_metrics_new (void)
{
  CpMetrics *m = g_new0 (CpMetrics, 1);
  gsize i;

  m->kinds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->pipeline_errors =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (i = 0; i < G_N_ELEMENTS (known_kinds); i++)
    g_hash_table_insert (m->kinds, g_strdup (known_kinds[i]),
        g_new0 (KindStats, 1));
  for (i = 0; i < G_N_ELEMENTS (known_refusals); i++)
    counter_for (m->refused, known_refusals[i]);
  return m;
}

void
cp_metrics_free (CpMetrics *m)
{
  if (m == NULL)
    return;
  g_hash_table_unref (m->kinds);
  g_hash_table_unref (m->pipeline_errors);
  g_hash_table_unref (m->refused);
  g_free (m);
}

static KindStats *
stats_for (CpMetrics *m, const gchar *kind)
{
  KindStats *k = g_hash_table_lookup (m->kinds, kind);

  if (k == NULL) {
    k = g_new0 (KindStats, 1);
    g_hash_table_insert (m->kinds, g_strdup (kind), k);
  }
  return k;
}

void
cp_metrics_session_started (CpMetrics *m, const gchar *kind)
{
  KindStats *k = stats_for (m, kind);

  k->active++;
  k->started++;
}

void
cp_metrics_session_ended (CpMetrics *m, const gchar *kind, gboolean failed,
    gdouble seconds)
{
  KindStats *k = stats_for (m, kind);
  gsize i;

  if (k->active > 0)
    k->active--;
  if (failed)
    k->failed++;
  else
    k->ended++;
  for (i = 0; i < N_BUCKETS; i++) {
    if (seconds <= buckets[i])
      k->bucket_counts[i]++;
  }
  k->count++;
  k->sum += seconds;
}

void
cp_metrics_pipeline_error (CpMetrics *m, const gchar *pipeline)
{
  (*counter_for (m->pipeline_errors, pipeline))++;
}

void
cp_metrics_session_refused (CpMetrics *m, const gchar *kind,
    const gchar *reason)
{
  g_autofree gchar *key = g_strconcat (kind, "\n", reason, NULL);

  (*counter_for (m->refused, key))++;
}

void
cp_metrics_audio_dropped (CpMetrics *m, CpMetricsAudio direction,
    gdouble seconds)
{
  g_return_if_fail (direction < CP_METRICS_AUDIO_N);
  m->dropped[direction] += seconds;
}

void
cp_metrics_browser_stalled (CpMetrics *m)
{
  m->stalled++;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar **) a, *(const gchar **) b);
}

/* Sorted so that the exposition is stable from scrape to scrape. */
static GPtrArray *
sorted_keys (GHashTable *t)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter it;
  gpointer key;

  g_hash_table_iter_init (&it, t);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_strings);
  return keys;
}

static void
render_counter (GString *out, CpMetrics *m, GPtrArray *kinds, const gchar *name,
    const gchar *help, const gchar *type, gsize offset)
{
  guint i;

  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
      type);
  for (i = 0; i < kinds->len; i++) {
    const gchar *kind = g_ptr_array_index (kinds, i);
    KindStats *k = g_hash_table_lookup (m->kinds, kind);

    g_string_append_printf (out, "%s{kind=\"%s\"} %" G_GUINT64_FORMAT "\n",
        name, kind, G_STRUCT_MEMBER (guint64, k, offset));
  }
}

gchar *
cp_metrics_render (CpMetrics *m)
{
  GString *out = g_string_new (NULL);
  g_autoptr (GPtrArray) kinds = sorted_keys (m->kinds);
  g_autoptr (GPtrArray) pipes = sorted_keys (m->pipeline_errors);
  g_autoptr (GPtrArray) refusals = sorted_keys (m->refused);
  guint i;
  gsize b;

  render_counter (out, m, kinds, "callpipe_sessions_active",
      "Sessions currently starting, running or ending.", "gauge",
      G_STRUCT_OFFSET (KindStats, active));
  render_counter (out, m, kinds, "callpipe_sessions_started_total",
      "Sessions started.", "counter", G_STRUCT_OFFSET (KindStats, started));
  render_counter (out, m, kinds, "callpipe_sessions_ended_total",
      "Sessions that ended normally (end of stream or hang-up).", "counter",
      G_STRUCT_OFFSET (KindStats, ended));
  render_counter (out, m, kinds, "callpipe_sessions_failed_total",
      "Sessions that failed.", "counter", G_STRUCT_OFFSET (KindStats, failed));

  g_string_append (out,
      "# HELP callpipe_session_duration_seconds "
      "Duration of finished sessions.\n"
      "# TYPE callpipe_session_duration_seconds histogram\n");
  for (i = 0; i < kinds->len; i++) {
    const gchar *kind = g_ptr_array_index (kinds, i);
    KindStats *k = g_hash_table_lookup (m->kinds, kind);

    for (b = 0; b < N_BUCKETS; b++)
      g_string_append_printf (out,
          "callpipe_session_duration_seconds_bucket"
          "{kind=\"%s\",le=\"%g\"} %" G_GUINT64_FORMAT "\n",
          kind, buckets[b], k->bucket_counts[b]);
    g_string_append_printf (out,
        "callpipe_session_duration_seconds_bucket"
        "{kind=\"%s\",le=\"+Inf\"} %" G_GUINT64_FORMAT "\n"
        "callpipe_session_duration_seconds_sum{kind=\"%s\"} %.3f\n"
        "callpipe_session_duration_seconds_count{kind=\"%s\"} "
        "%" G_GUINT64_FORMAT "\n",
        kind, k->count, kind, k->sum, kind, k->count);
  }

  g_string_append (out,
      "# HELP callpipe_pipeline_errors_total "
      "Errors posted on session pipeline buses.\n"
      "# TYPE callpipe_pipeline_errors_total counter\n");
  for (i = 0; i < pipes->len; i++) {
    const gchar *p = g_ptr_array_index (pipes, i);
    guint64 *n = g_hash_table_lookup (m->pipeline_errors, p);

    g_string_append_printf (out,
        "callpipe_pipeline_errors_total"
        "{pipeline=\"%s\"} %" G_GUINT64_FORMAT "\n",
        p, *n);
  }

  g_string_append (out,
      "# HELP callpipe_sessions_refused_total "
      "Sessions refused before they started, by reason.\n"
      "# TYPE callpipe_sessions_refused_total counter\n");
  for (i = 0; i < refusals->len; i++) {
    const gchar *key = g_ptr_array_index (refusals, i);
    const gchar *nl = strchr (key, '\n');
    guint64 *n = g_hash_table_lookup (m->refused, key);

    g_string_append_printf (out,
        "callpipe_sessions_refused_total"
        "{kind=\"%.*s\",reason=\"%s\"} %" G_GUINT64_FORMAT "\n",
        (int) (nl - key), key, nl + 1, *n);
  }

  g_string_append (out,
      "# HELP callpipe_browser_audio_dropped_seconds_total "
      "Audio of browser sessions dropped: reply audio a slow browser did "
      "not read in time, caller audio sent faster than real time.\n"
      "# TYPE callpipe_browser_audio_dropped_seconds_total counter\n");
  for (i = 0; i < CP_METRICS_AUDIO_N; i++)
    g_string_append_printf (out,
        "callpipe_browser_audio_dropped_seconds_total"
        "{direction=\"%s\"} %.3f\n",
        directions[i], m->dropped[i]);

  g_string_append_printf (out,
      "# HELP callpipe_browser_stalled_total "
      "Browser sessions ended because the browser stopped reading.\n"
      "# TYPE callpipe_browser_stalled_total counter\n"
      "callpipe_browser_stalled_total %" G_GUINT64_FORMAT "\n",
      m->stalled);
  return g_string_free (out, FALSE);
}

/* bench-novasonic: latency and CPU of the novasonic element, both backends,
 * in real time (tests/bench/README.md runs it through bench-novasonic.sh).
 *
 * local: flite speaks ten questions into live pipelines (8 kHz, as on
 * a telephone line) through the default workflow, each question 1.6 s
 * after the previous one ends; latency is from the end of the caller's
 * speech (the moment the element has received its last sample) to the
 * first buffer of the reply on novasonic's src pad.
 *
 * bedrock: against sonicpeer.py --stamp, which writes the monotonic time
 * at which it handed each reply's first audio frame to the socket; the
 * element's own latency is from then to the reply's first buffer on the
 * src pad.
 *
 * CPU: this process's user+system time over the run, divided by the
 * conversations' total length (CPU seconds per conversation second).
 * --threads adds the same split by thread name (novasonic-send, cp-http2,
 * the src task, the feeders...) with each name's context switches per
 * conversation second, from /proc/self/task.
 *
 * Options pick the rows: --backend local|bedrock (both by default),
 * --counts 1,2,4 (conversations in parallel), --feed-ms 20 (the caller's
 * buffer length: 100 is what a bridged callpiped call delivers). */
#include <gst/app/app.h>
#include <gst/gst.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "speechtestutil.h"

#define LOCAL_RATE 8000
#define PEER_RATE 16000
#define DEFAULT_FEED_MS 20
/* A reply starts after this long without reply audio. */
#define REPLY_GAP_US (150 * G_TIME_SPAN_MILLISECOND)
#define QUESTION_GAP_MS 1600
#define PEER_TURNS 6
/* A reply more than this after its reference is counted as missing. */
#define MATCH_US (1000 * G_TIME_SPAN_MILLISECOND)
/* The peer stamps a frame once its send call returned, which can be
 * after the element received it. */
#define EARLY_US (5 * G_TIME_SPAN_MILLISECOND)

static guint feed_ms = DEFAULT_FEED_MS;

/* Questions that keep the default workflow talking (no transfer, no
 * goodbye): an intent, then its slot or confirmation, five times. */
static const gchar *const questions[] = {
    "I would like to check my account balance",
    "one two three four",
    "Where is my order",
    "one two three four five",
    "My credit card was stolen yesterday",
    "yes",
    "what is my balance",
    "five six seven eight",
    "track my order",
    "nine eight seven six",
    NULL,
};

typedef struct
{
  GstElement *pipeline;
  GstElement *src;
  guint rate;
  GArray *audio; /* gint16: the caller's whole side */
  GArray *speech_ends; /* guint64 sample index after each question */
  GMutex lock;
  GArray *reply_starts_us; /* gint64, from the pad probe */
  gint64 last_buf_us;
  GArray *ends_us; /* gint64: when each question had been received */
  GThread *feeder;
  gint64 feeder_cpu_ns; /* its own CPU time, taken as it ends */
  GPid peer_pid;
  gint peer_stdin;
  gchar *peer_dir;
} Conv;

typedef struct
{
  gchar *name;
  gint64 cpu_ns; /* time on a CPU (schedstat: exact, where the stat
                  * file's ticks miss threads that run in short bursts) */
  gint64 switches; /* voluntary + involuntary */
} ThreadStat;

static void
thread_stat_free (ThreadStat *t)
{
  g_free (t->name);
  g_free (t);
}

static gint64
status_switches (const gchar *text)
{
  gint64 n = 0;
  const gchar *p = text;

  while ((p = strstr (p, "ctxt_switches:")) != NULL) {
    p += strlen ("ctxt_switches:");
    n += g_ascii_strtoll (p, NULL, 10);
  }
  return n;
}

/* tid -> ThreadStat of each of this process's threads now. */
static GHashTable *
sample_threads (void)
{
  GHashTable *stats = g_hash_table_new_full (g_direct_hash, g_direct_equal,
      NULL, (GDestroyNotify) thread_stat_free);
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const gchar *tid;

  while (dir && (tid = g_dir_read_name (dir)) != NULL) {
    g_autofree gchar *comm_path =
        g_strdup_printf ("/proc/self/task/%s/comm", tid);
    g_autofree gchar *sched_path =
        g_strdup_printf ("/proc/self/task/%s/schedstat", tid);
    g_autofree gchar *status_path =
        g_strdup_printf ("/proc/self/task/%s/status", tid);
    g_autofree gchar *comm = NULL;
    g_autofree gchar *sched = NULL;
    g_autofree gchar *status = NULL;
    ThreadStat *t;

    if (!g_file_get_contents (comm_path, &comm, NULL, NULL)
        || !g_file_get_contents (sched_path, &sched, NULL, NULL)
        || !g_file_get_contents (status_path, &status, NULL, NULL))
      continue;
    t = g_new0 (ThreadStat, 1);
    t->name = g_strdup (g_strstrip (comm));
    t->cpu_ns = g_ascii_strtoll (sched, NULL, 10);
    t->switches = status_switches (status);
    g_hash_table_insert (stats,
        GINT_TO_POINTER ((gint) g_ascii_strtoll (tid, NULL, 10)), t);
  }
  return stats;
}

/* Per thread name: what each thread alive at @after used since @before. */
static GHashTable *
diff_threads (GHashTable *before, GHashTable *after)
{
  GHashTable *by_name = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
      (GDestroyNotify) thread_stat_free);
  GHashTableIter iter;
  gpointer tid, value;

  g_hash_table_iter_init (&iter, after);
  while (g_hash_table_iter_next (&iter, &tid, &value)) {
    ThreadStat *a = value, *b = g_hash_table_lookup (before, tid), *sum;

    sum = g_hash_table_lookup (by_name, a->name);
    if (sum == NULL) {
      sum = g_new0 (ThreadStat, 1);
      sum->name = g_strdup (a->name);
      g_hash_table_insert (by_name, sum->name, sum);
    }
    sum->cpu_ns += a->cpu_ns - (b ? b->cpu_ns : 0);
    sum->switches += a->switches - (b ? b->switches : 0);
  }
  return by_name;
}

static gint64
cpu_us (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (gint64) ru.ru_utime.tv_sec * G_USEC_PER_SEC + ru.ru_utime.tv_usec
      + (gint64) ru.ru_stime.tv_sec * G_USEC_PER_SEC + ru.ru_stime.tv_usec;
}

static void
append_silence (GArray *audio, guint rate, guint ms, guint32 seed)
{
  gsize n = (gsize) rate * ms / 1000, at = audio->len;

  g_array_set_size (audio, at + n);
  memset (&g_array_index (audio, gint16, at), 0, n * sizeof (gint16));
  cp_test_add_noise (&g_array_index (audio, gint16, at), n, -60.0, seed);
}

/* The local script: a pause, then each question and a pause. */
static void
script_local (Conv *c)
{
  guint i;

  append_silence (c->audio, c->rate, 2000, 1);
  for (i = 0; questions[i] != NULL; i++) {
    gsize n, last;
    g_autofree gint16 *speech = cp_test_speak (questions[i], c->rate, &n);
    guint64 end;

    for (last = n; last > 0 && ABS (speech[last - 1]) < 500; last--)
      ;
    g_array_append_vals (c->audio, speech, last);
    end = c->audio->len;
    g_array_append_val (c->speech_ends, end);
    append_silence (c->audio, c->rate, QUESTION_GAP_MS, i + 2);
  }
}

/* The peer's script: loud bursts (the peer's speech detector is a
 * threshold), each followed by a pause for the reply. */
static void
script_peer (Conv *c)
{
  guint i, j;

  append_silence (c->audio, c->rate, 1000, 1);
  for (i = 0; i < PEER_TURNS; i++) {
    gsize n = c->rate * 600 / 1000, at = c->audio->len;
    guint64 end;

    g_array_set_size (c->audio, at + n);
    for (j = 0; j < n; j++)
      g_array_index (c->audio, gint16, at + j) = (j % 16 < 8) ? 8000 : -8000;
    end = c->audio->len;
    g_array_append_val (c->speech_ends, end);
    append_silence (c->audio, c->rate, 1500, i + 2);
  }
}

static GstPadProbeReturn
on_reply_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Conv *c = data;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&c->lock);
  if (now - c->last_buf_us > REPLY_GAP_US)
    g_array_append_val (c->reply_starts_us, now);
  c->last_buf_us = now;
  g_mutex_unlock (&c->lock);
  return GST_PAD_PROBE_OK;
}

static gint64
thread_cpu_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pushes the caller's audio in real time, one buffer every feed_ms. */
static gpointer
feed (gpointer data)
{
  Conv *c = data;
  gsize frame = c->rate * feed_ms / 1000, off;
  gint64 start = g_get_monotonic_time ();
  guint next_end = 0, k = 0;

  for (off = 0; off < c->audio->len; off += frame, k++) {
    gsize n = MIN (frame, c->audio->len - off);
    GstBuffer *buf =
        gst_buffer_new_memdup (&g_array_index (c->audio, gint16, off),
            n * sizeof (gint16));
    gint64 due = start + (gint64) k * feed_ms * G_TIME_SPAN_MILLISECOND;
    gint64 now = g_get_monotonic_time ();

    if (due > now)
      g_usleep (due - now);
    if (gst_app_src_push_buffer (GST_APP_SRC (c->src), buf) != GST_FLOW_OK)
      break;
    while (next_end < c->speech_ends->len
        && g_array_index (c->speech_ends, guint64, next_end) <= off + n) {
      gint64 t = g_get_monotonic_time ();

      g_mutex_lock (&c->lock);
      g_array_append_val (c->ends_us, t);
      g_mutex_unlock (&c->lock);
      next_end++;
    }
  }
  c->feeder_cpu_ns = thread_cpu_ns ();
  return NULL;
}

static Conv *
conv_new (const gchar *sonic, guint rate, gboolean live)
{
  Conv *c = g_new0 (Conv, 1);
  g_autofree gchar *desc =
      g_strdup_printf ("appsrc name=src is-live=%s do-timestamp=true "
                       "format=time "
                       "caps=audio/"
                       "x-raw,format=S16LE,layout=interleaved,channels=1,rate=%"
                       "u "
                       "! %s name=sonic ! fakesink sync=false async=false",
          live ? "true" : "false", rate, sonic);
  g_autoptr (GError) error = NULL;
  GstElement *el;
  GstPad *pad;

  c->pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  c->src = gst_bin_get_by_name (GST_BIN (c->pipeline), "src");
  c->rate = rate;
  c->audio = g_array_new (FALSE, FALSE, sizeof (gint16));
  c->speech_ends = g_array_new (FALSE, FALSE, sizeof (guint64));
  c->reply_starts_us = g_array_new (FALSE, FALSE, sizeof (gint64));
  c->ends_us = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_mutex_init (&c->lock);
  el = gst_bin_get_by_name (GST_BIN (c->pipeline), "sonic");
  pad = gst_element_get_static_pad (el, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_reply_buffer, c, NULL);
  gst_object_unref (pad);
  gst_object_unref (el);
  return c;
}

static void
conv_free (Conv *c)
{
  gst_element_set_state (c->pipeline, GST_STATE_NULL);
  gst_object_unref (c->src);
  gst_object_unref (c->pipeline);
  g_array_unref (c->audio);
  g_array_unref (c->speech_ends);
  g_array_unref (c->reply_starts_us);
  g_array_unref (c->ends_us);
  g_mutex_clear (&c->lock);
  if (c->peer_pid) {
    close (c->peer_stdin);
    waitpid (c->peer_pid, NULL, 0);
    g_spawn_close_pid (c->peer_pid);
  }
  g_free (c->peer_dir);
  g_free (c);
}

/* Non-live runs of @n conversations load @n recognizer decoders into the
 * plugin's pool, so that the timed runs do not pay for loading them. */
static void
warm_up (guint n)
{
  GPtrArray *convs = g_ptr_array_new ();
  guint i;

  for (i = 0; i < n; i++) {
    Conv *c = conv_new ("novasonic backend=local output-rate=8000", LOCAL_RATE,
        FALSE);

    append_silence (c->audio, c->rate, 500, 1);
    g_ptr_array_add (convs, c);
    gst_element_set_state (c->pipeline, GST_STATE_PLAYING);
    gst_app_src_push_buffer (GST_APP_SRC (c->src),
        gst_buffer_new_memdup (c->audio->data, c->audio->len * 2));
    gst_app_src_end_of_stream (GST_APP_SRC (c->src));
  }
  for (i = 0; i < n; i++) {
    Conv *c = g_ptr_array_index (convs, i);
    GstBus *bus = gst_element_get_bus (c->pipeline);
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);

    if (msg == NULL || GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
      g_error ("warm-up conversation %u failed", i);
    gst_message_unref (msg);
    gst_object_unref (bus);
    conv_free (c);
  }
  g_ptr_array_unref (convs);
}

/* Starts a peer for @c; returns its port, 0 if it did not start. */
static guint
start_peer (Conv *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOChannel) out = NULL;
  g_autofree gchar *line = NULL;
  const gchar *argv[] = {SONIC_PEER_PYTHON, SONIC_PEER_SCRIPT, "--record", NULL,
      "--stamp", "--reply-ms", "500", NULL};
  gint stdout_fd;

  if (SONIC_PEER_PYTHON[0] == '\0')
    return 0;
  c->peer_dir = g_dir_make_tmp ("benchsonic-XXXXXX", &error);
  g_assert_no_error (error);
  argv[3] = c->peer_dir;
  if (!g_spawn_async_with_pipes (NULL, (gchar **) argv, NULL,
          G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &c->peer_pid, &c->peer_stdin,
          &stdout_fd, NULL, &error))
    return 0;
  out = g_io_channel_unix_new (stdout_fd);
  g_io_channel_set_close_on_unref (out, TRUE);
  if (g_io_channel_read_line (out, &line, NULL, NULL, NULL)
      != G_IO_STATUS_NORMAL)
    return 0;
  return (guint) g_ascii_strtoull (line, NULL, 10);
}

static gint
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static gdouble
percentile_ms (GArray *us, gdouble p)
{
  guint i;

  if (us->len == 0)
    return -1.0;
  g_array_sort (us, cmp_gint64);
  i = (guint) MIN (us->len - 1, (guint) (p * us->len));
  return g_array_index (us, gint64, i) / 1000.0;
}

/* Reply start minus the question's end (local) or the peer's send time
 * (bedrock), for each reply seen within MATCH_US of it. Returns the
 * number of references. */
static guint
collect_latencies (Conv *c, gboolean peer, GArray *out)
{
  g_autoptr (GArray) refs = g_array_new (FALSE, FALSE, sizeof (gint64));
  guint i, j = 0;

  if (peer) {
    g_autofree gchar *path = g_build_filename (c->peer_dir, "sent", NULL);
    g_autofree gchar *text = NULL;
    g_auto (GStrv) lines = NULL;

    if (!g_file_get_contents (path, &text, NULL, NULL))
      return 0;
    lines = g_strsplit (text, "\n", -1);
    for (i = 0; lines[i] != NULL; i++) {
      gint64 t = g_ascii_strtoll (lines[i], NULL, 10) / 1000;

      if (t > 0)
        g_array_append_val (refs, t);
    }
  } else {
    g_array_append_vals (refs, c->ends_us->data, c->ends_us->len);
  }
  for (i = 0; i < refs->len; i++) {
    gint64 ref = g_array_index (refs, gint64, i);

    while (j < c->reply_starts_us->len
        && g_array_index (c->reply_starts_us, gint64, j) < ref - EARLY_US)
      j++;
    if (j < c->reply_starts_us->len
        && g_array_index (c->reply_starts_us, gint64, j) - ref < MATCH_US) {
      gint64 d = g_array_index (c->reply_starts_us, gint64, j) - ref;

      g_array_append_val (out, d);
    }
  }
  return refs->len;
}

typedef struct
{
  guint n;
  guint expected;
  guint replies;
  gdouble p50, p95, cpu;
  gdouble talk_s;
  GHashTable *threads; /* name -> ThreadStat over the run */
} Result;

static Result
run (guint n, gboolean bedrock)
{
  GPtrArray *convs = g_ptr_array_new ();
  g_autoptr (GArray) lat = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GHashTable) threads0 = NULL;
  g_autoptr (GHashTable) threads1 = NULL;
  gint64 cpu0;
  gdouble talk_s = 0;
  Result r = {n, 0, 0, 0, 0, 0, 0, NULL};
  guint i;

  for (i = 0; i < n; i++) {
    Conv *c;

    if (bedrock) {
      Conv peer = {0};
      guint port = start_peer (&peer);
      g_autofree gchar *sonic = NULL;

      if (port == 0)
        g_error ("sonicpeer.py did not start (needs python3-h2)");
      sonic = g_strdup_printf ("novasonic endpoint=http://127.0.0.1:%u "
                               "access-key=AKIDNOVATEST secret-key=novasecret "
                               "region=us-east-1 output-rate=%u "
                               "system-prompt=bench",
          port, PEER_RATE);
      c = conv_new (sonic, PEER_RATE, TRUE);
      c->peer_pid = peer.peer_pid;
      c->peer_stdin = peer.peer_stdin;
      c->peer_dir = peer.peer_dir;
      script_peer (c);
    } else {
      c = conv_new ("novasonic backend=local output-rate=8000", LOCAL_RATE,
          TRUE);
      script_local (c);
    }
    g_ptr_array_add (convs, c);
  }
  threads0 = sample_threads ();
  cpu0 = cpu_us ();
  for (i = 0; i < n; i++) {
    Conv *c = g_ptr_array_index (convs, i);

    gst_element_set_state (c->pipeline, GST_STATE_PLAYING);
    c->feeder = g_thread_new ("feeder", feed, c);
  }
  for (i = 0; i < n; i++) {
    Conv *c = g_ptr_array_index (convs, i);

    g_thread_join (c->feeder);
    talk_s += (gdouble) c->audio->len / c->rate;
  }
  r.cpu = (cpu_us () - cpu0) / (gdouble) G_USEC_PER_SEC / talk_s;
  threads1 = sample_threads ();
  r.threads = diff_threads (threads0, threads1);
  {
    ThreadStat *feeders = g_new0 (ThreadStat, 1);

    /* The feeders have ended: their CPU time is their own count. */
    feeders->name = g_strdup ("feeder (the bench's appsrc pushes)");
    feeders->switches = -1;
    for (i = 0; i < n; i++)
      feeders->cpu_ns += ((Conv *) g_ptr_array_index (convs, i))->feeder_cpu_ns;
    g_hash_table_insert (r.threads, feeders->name, feeders);
  }
  r.talk_s = talk_s;
  for (i = 0; i < n; i++) {
    Conv *c = g_ptr_array_index (convs, i);

    r.expected += collect_latencies (c, bedrock, lat);
    conv_free (c);
  }
  g_ptr_array_unref (convs);
  r.replies = lat->len;
  r.p50 = percentile_ms (lat, 0.50);
  r.p95 = percentile_ms (lat, 0.95);
  return r;
}

static void
print_row (const gchar *what, const Result *r)
{
  g_print ("| %s | %u | %u/%u | %.1f ms | %.1f ms | %.3f |\n", what, r->n,
      r->replies, r->expected, r->p50, r->p95, r->cpu);
}

static gint
cmp_ticks (gconstpointer a, gconstpointer b)
{
  const ThreadStat *x = *(ThreadStat *const *) a;
  const ThreadStat *y = *(ThreadStat *const *) b;

  return x->cpu_ns < y->cpu_ns ? 1 : x->cpu_ns > y->cpu_ns ? -1 : 0;
}

/* The CPU and context switches of @r by thread name; what threads that
 * ended before the end of the run used is the remainder. */
static void
print_threads (const gchar *what, const Result *r)
{
  g_autoptr (GPtrArray) rows = g_ptr_array_new ();
  gdouble sum = 0;
  GHashTableIter iter;
  gpointer value;
  guint i;

  g_hash_table_iter_init (&iter, r->threads);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (rows, value);
  g_ptr_array_sort (rows, cmp_ticks);
  for (i = 0; i < rows->len; i++) {
    ThreadStat *t = g_ptr_array_index (rows, i);
    gdouble cpu = t->cpu_ns / 1e9 / r->talk_s;

    sum += cpu;
    if (t->cpu_ns == 0 && t->switches == 0)
      continue;
    if (t->switches < 0)
      g_print ("| %s | %u | %s | %.4f | - |\n", what, r->n, t->name, cpu);
    else
      g_print ("| %s | %u | %s | %.4f | %.1f |\n", what, r->n, t->name, cpu,
          t->switches / r->talk_s);
  }
  g_print ("| %s | %u | (threads ended before the end) | %.4f | |\n", what,
      r->n, MAX (0.0, r->cpu - sum));
}

static GArray *
parse_counts (const gchar *text)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  GArray *counts = g_array_new (FALSE, FALSE, sizeof (guint));
  guint i;

  for (i = 0; parts[i] != NULL; i++) {
    guint n = (guint) g_ascii_strtoull (parts[i], NULL, 10);

    if (n == 0 || n > 256) {
      g_printerr ("--counts: \"%s\" is not a count of 1 to 256\n", parts[i]);
      exit (2);
    }
    g_array_append_val (counts, n);
  }
  return counts;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *backend = NULL;
  g_autofree gchar *counts_text = NULL;
  gint feed = DEFAULT_FEED_MS;
  gboolean threads = FALSE;
  GOptionEntry entries[] = {
      {"backend", 0, 0, G_OPTION_ARG_STRING, &backend,
          "local or bedrock (default: both)", "NAME"},
      {"counts", 0, 0, G_OPTION_ARG_STRING, &counts_text,
          "conversations in parallel per row (default 1,2,4)", "N,N,..."},
      {"feed-ms", 0, 0, G_OPTION_ARG_INT, &feed,
          "length of the caller's buffers (default 20)", "MS"},
      {"threads", 0, 0, G_OPTION_ARG_NONE, &threads,
          "also print the CPU and context switches by thread name", NULL},
      {NULL},
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) counts = NULL;
  g_autoptr (GArray) local = g_array_new (FALSE, TRUE, sizeof (Result));
  g_autoptr (GArray) bedrock = g_array_new (FALSE, TRUE, sizeof (Result));
  gboolean run_local, run_bedrock;
  guint i;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (backend && g_strcmp0 (backend, "local") != 0
      && g_strcmp0 (backend, "bedrock") != 0) {
    g_printerr ("--backend: local or bedrock, not \"%s\"\n", backend);
    return 2;
  }
  if (feed < 10 || feed > 1000) {
    g_printerr ("--feed-ms: 10 to 1000\n");
    return 2;
  }
  feed_ms = (guint) feed;
  run_local = backend == NULL || g_strcmp0 (backend, "local") == 0;
  run_bedrock = backend == NULL || g_strcmp0 (backend, "bedrock") == 0;
  counts = parse_counts (counts_text ? counts_text : "1,2,4");

  if (run_local)
    warm_up (g_array_index (counts, guint, counts->len - 1));
  for (i = 0; run_local && i < counts->len; i++) {
    Result r = run (g_array_index (counts, guint, i), FALSE);

    g_array_append_val (local, r);
  }
  for (i = 0; run_bedrock && i < counts->len; i++) {
    Result r = run (g_array_index (counts, guint, i), TRUE);

    g_array_append_val (bedrock, r);
  }

  g_print ("| backend: latency measured | conversations | replies seen | "
           "p50 | p95 | CPU s per conversation s |\n");
  g_print ("|---|---|---|---|---|---|\n");
  for (i = 0; i < local->len; i++)
    print_row ("local: end of caller speech -> first reply buffer",
        &g_array_index (local, Result, i));
  for (i = 0; i < bedrock->len; i++)
    print_row ("bedrock (sonicpeer.py): reply's first frame sent -> pushed",
        &g_array_index (bedrock, Result, i));
  if (threads) {
    g_print ("\n| backend | conversations | thread | CPU s per conversation "
             "s | context switches per conversation s |\n");
    g_print ("|---|---|---|---|---|\n");
    for (i = 0; i < local->len; i++)
      print_threads ("local", &g_array_index (local, Result, i));
    for (i = 0; i < bedrock->len; i++)
      print_threads ("bedrock", &g_array_index (bedrock, Result, i));
  }
  for (i = 0; i < local->len; i++)
    g_hash_table_unref (g_array_index (local, Result, i).threads);
  for (i = 0; i < bedrock->len; i++)
    g_hash_table_unref (g_array_index (bedrock, Result, i).threads);
  return 0;
}

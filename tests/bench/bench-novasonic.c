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
 * conversations' total length (CPU seconds per conversation second). */
#include <gst/app/app.h>
#include <gst/gst.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "speechtestutil.h"

#define LOCAL_RATE 8000
#define PEER_RATE 16000
#define FRAME_MS 20
/* A reply starts after this long without reply audio. */
#define REPLY_GAP_US (150 * G_TIME_SPAN_MILLISECOND)
#define QUESTION_GAP_MS 1600
#define PEER_TURNS 6
/* A reply more than this after its reference is counted as missing. */
#define MATCH_US (1000 * G_TIME_SPAN_MILLISECOND)
/* The peer stamps a frame once its send call returned, which can be
 * after the element received it. */
#define EARLY_US (5 * G_TIME_SPAN_MILLISECOND)

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
  GPid peer_pid;
  gint peer_stdin;
  gchar *peer_dir;
} Conv;

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

/* Pushes the caller's audio in real time, one frame every FRAME_MS. */
static gpointer
feed (gpointer data)
{
  Conv *c = data;
  gsize frame = c->rate * FRAME_MS / 1000, off;
  gint64 start = g_get_monotonic_time ();
  guint next_end = 0, k = 0;

  for (off = 0; off < c->audio->len; off += frame, k++) {
    gsize n = MIN (frame, c->audio->len - off);
    GstBuffer *buf =
        gst_buffer_new_memdup (&g_array_index (c->audio, gint16, off),
            n * sizeof (gint16));
    gint64 due = start + (gint64) k * FRAME_MS * G_TIME_SPAN_MILLISECOND;
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
} Result;

static Result
run (guint n, gboolean bedrock)
{
  GPtrArray *convs = g_ptr_array_new ();
  g_autoptr (GArray) lat = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 cpu0;
  gdouble talk_s = 0;
  Result r = {n, 0, 0, 0, 0, 0};
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

int
main (int argc, char **argv)
{
  static const guint counts[] = {1, 2, 4};
  Result local[G_N_ELEMENTS (counts)], bedrock[G_N_ELEMENTS (counts)];
  guint i;

  gst_init (&argc, &argv);
  warm_up (counts[G_N_ELEMENTS (counts) - 1]);
  for (i = 0; i < G_N_ELEMENTS (counts); i++)
    local[i] = run (counts[i], FALSE);
  for (i = 0; i < G_N_ELEMENTS (counts); i++)
    bedrock[i] = run (counts[i], TRUE);

  g_print ("| backend: latency measured | conversations | replies seen | "
           "p50 | p95 | CPU s per conversation s |\n");
  g_print ("|---|---|---|---|---|---|\n");
  for (i = 0; i < G_N_ELEMENTS (counts); i++)
    print_row ("local: end of caller speech -> first reply buffer", &local[i]);
  for (i = 0; i < G_N_ELEMENTS (counts); i++)
    print_row ("bedrock (sonicpeer.py): reply's first frame sent -> pushed",
        &bedrock[i]);
  return 0;
}

/* GstCheck tests of the novasonic element against sonicpeer.py, a local
 * Nova Sonic peer that verifies every signature and the event order and
 * records the caller audio it receives. The harness is a live upstream:
 * the element paces its replies on the harness's test clock, which the
 * tests crank. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RATE 16000
#define PEER_KEY "AKIDNOVATEST"
#define PEER_SECRET "novasecret"
/* Bounds every wait on the peer. */
#define DEADLINE_US (60 * G_USEC_PER_SEC)

typedef struct
{
  GPid pid;
  gint stdin_fd;
  guint16 port;
  gchar *dir;
} Peer;

static gboolean
peer_start (Peer *peer, const gchar *const *extra)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOChannel) out = NULL;
  g_autofree gchar *line = NULL;
  gint stdout_fd;

  if (SONIC_PEER_PYTHON[0] == '\0'
      || !g_file_test (SONIC_PEER_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    return FALSE;
  peer->dir = g_dir_make_tmp ("sonicpeer-XXXXXX", &error);
  g_assert_no_error (error);
  g_ptr_array_add (argv, (gpointer) SONIC_PEER_PYTHON);
  g_ptr_array_add (argv, (gpointer) SONIC_PEER_SCRIPT);
  g_ptr_array_add (argv, (gpointer) "--record");
  g_ptr_array_add (argv, peer->dir);
  for (; extra && *extra; extra++)
    g_ptr_array_add (argv, (gpointer) *extra);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_async_with_pipes (NULL, (gchar **) argv->pdata, NULL,
          G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &peer->pid, &peer->stdin_fd,
          &stdout_fd, NULL, &error))
    return FALSE;
  out = g_io_channel_unix_new (stdout_fd);
  g_io_channel_set_close_on_unref (out, TRUE);
  if (g_io_channel_read_line (out, &line, NULL, NULL, NULL)
      != G_IO_STATUS_NORMAL) {
    close (peer->stdin_fd);
    g_spawn_close_pid (peer->pid);
    return FALSE;
  }
  peer->port = (guint16) g_ascii_strtoull (line, NULL, 10);
  return peer->port > 0;
}

static void
remove_dir (const gchar *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d && (name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);

    g_unlink (path);
  }
  g_rmdir (dir);
}

static void
peer_stop (Peer *peer)
{
  gint status;

  close (peer->stdin_fd);
  waitpid (peer->pid, &status, 0);
  g_spawn_close_pid (peer->pid);
  remove_dir (peer->dir);
  g_free (peer->dir);
}

static gchar *
peer_file (Peer *peer, const gchar *name)
{
  g_autofree gchar *path = g_build_filename (peer->dir, name, NULL);
  gchar *contents = NULL;

  g_file_get_contents (path, &contents, NULL, NULL);
  return contents;
}

#define START_PEER(peer, ...)                                            \
  G_STMT_START                                                           \
  {                                                                      \
    const gchar *const extra_[] = {__VA_ARGS__, NULL};                   \
    if (!peer_start (&(peer), extra_)) {                                 \
      g_print ("SKIP: sonicpeer.py did not start (needs python3-h2)\n"); \
      return;                                                            \
    }                                                                    \
  }                                                                      \
  G_STMT_END

typedef struct
{
  GstHarness *h;
  GstBus *bus;
  guint64 sample; /* caller samples pushed */
  GArray *pushed; /* every non-zero sample pushed */
} Call;

static void
call_init (Call *call, Peer *peer, const gchar *first_prop, ...)
{
  g_autofree gchar *url = g_strdup_printf ("http://127.0.0.1:%u", peer->port);
  va_list args;

  call->h = gst_harness_new ("novasonic");
  call->bus = gst_bus_new ();
  call->sample = 0;
  call->pushed = g_array_new (FALSE, FALSE, sizeof (gint16));
  gst_element_set_bus (call->h->element, call->bus);
  g_object_set (call->h->element, "endpoint", url, "access-key", PEER_KEY,
      "secret-key", PEER_SECRET, "region", "us-east-1", "output-rate", RATE,
      "system-prompt", "You are a test bot.", NULL);
  if (first_prop) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (call->h->element), first_prop, args);
    va_end (args);
  }
  gst_harness_set_src_caps_str (call->h,
      "audio/x-raw, format=S16LE, "
      "layout=interleaved, channels=1, rate=16000");
}

static void
call_clear (Call *call)
{
  gst_harness_teardown (call->h);
  gst_bus_set_flushing (call->bus, TRUE);
  gst_object_unref (call->bus);
  g_array_unref (call->pushed);
}

/* Speech is loud noise from a hash of the sample index, so that any 16
 * samples in a row say where they come from; it is never 0, silence is. */
static gint16
speech_value (guint64 n)
{
  guint32 x = (guint32) n * 2654435761u;

  x ^= x >> 15;
  x *= 2246822519u;
  x ^= x >> 13;
  return (gint16) (1100 + x % 30000);
}

/* @ms of audio in buffers of @buffer_ms. */
static void
push_buffers (Call *call, guint ms, guint buffer_ms, gboolean speech,
    gboolean real_time)
{
  guint n = RATE / 1000 * buffer_ms, i, j;

  for (i = 0; i < ms / buffer_ms; i++) {
    GstBuffer *buf = gst_buffer_new_allocate (NULL, n * 2, NULL);
    GstMapInfo map;
    gint16 *s;

    gst_buffer_map (buf, &map, GST_MAP_WRITE);
    s = (gint16 *) map.data;
    for (j = 0; j < n; j++) {
      s[j] = speech ? speech_value (call->sample + j) : 0;
      if (speech)
        g_array_append_val (call->pushed, s[j]);
    }
    gst_buffer_unmap (buf, &map);
    GST_BUFFER_PTS (buf) =
        gst_util_uint64_scale (call->sample, GST_SECOND, RATE);
    GST_BUFFER_DURATION (buf) = buffer_ms * GST_MSECOND;
    call->sample += n;
    fail_unless_equals_int (gst_harness_push (call->h, buf), GST_FLOW_OK);
    /* A live source delivers its audio in real time. */
    if (real_time)
      g_usleep (buffer_ms * 1000);
  }
}

static void
push_audio (Call *call, guint ms, gboolean speech, gboolean real_time)
{
  push_buffers (call, ms, 20, speech, real_time);
}

/* Waits for an element message named @name, cranking the test clock so
 * paced replies keep flowing. */
static GstStructure *
wait_message (Call *call, const gchar *name)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_US;

  while (g_get_monotonic_time () < deadline) {
    GstMessage *msg = gst_bus_timed_pop_filtered (call->bus, 20 * GST_MSECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR);

    if (msg == NULL)
      continue;
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) err = NULL;

      gst_message_parse_error (msg, &err, NULL);
      gst_message_unref (msg);
      fail ("error while waiting for %s: %s", name, err->message);
    }
    if (gst_structure_has_name (gst_message_get_structure (msg), name)) {
      GstStructure *s = gst_structure_copy (gst_message_get_structure (msg));

      gst_message_unref (msg);
      return s;
    }
    gst_message_unref (msg);
  }
  fail ("no %s message", name);
  return NULL;
}

typedef struct
{
  GArray *samples; /* of gint16 */
  GstClockTime first_pts;
  gboolean contiguous;
} Output;

/* The next reply buffer, cranking the test clock that paces it. */
static GstBuffer *
pull_cranking (Call *call)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_US;
  GstTestClock *clock = gst_harness_get_testclock (call->h);
  GstBuffer *buf = NULL;

  while (buf == NULL && g_get_monotonic_time () < deadline) {
    buf = gst_harness_try_pull (call->h);
    if (buf == NULL && gst_test_clock_peek_id_count (clock) > 0)
      gst_test_clock_crank (clock);
    else if (buf == NULL)
      g_usleep (5000);
  }
  gst_object_unref (clock);
  fail_unless (buf != NULL, "no reply audio");
  return buf;
}

/* Pulls reply audio until EOS, cranking the test clock. */
static void
collect_until_eos (Call *call, Output *out)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_US;
  GstTestClock *clock = gst_harness_get_testclock (call->h);
  GstClockTime expect = GST_CLOCK_TIME_NONE;

  out->samples = g_array_new (FALSE, FALSE, sizeof (gint16));
  out->first_pts = GST_CLOCK_TIME_NONE;
  out->contiguous = TRUE;
  while (g_get_monotonic_time () < deadline) {
    GstBuffer *buf = gst_harness_try_pull (call->h);
    GstEvent *ev;

    if (buf) {
      GstMapInfo map;

      if (!GST_CLOCK_TIME_IS_VALID (out->first_pts))
        out->first_pts = GST_BUFFER_PTS (buf);
      else if (GST_BUFFER_PTS (buf) != expect)
        out->contiguous = FALSE;
      expect = GST_BUFFER_PTS (buf) + GST_BUFFER_DURATION (buf);
      gst_buffer_map (buf, &map, GST_MAP_READ);
      g_array_append_vals (out->samples, map.data, map.size / 2);
      gst_buffer_unmap (buf, &map);
      gst_buffer_unref (buf);
      continue;
    }
    while ((ev = gst_harness_try_pull_event (call->h)) != NULL) {
      gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;

      gst_event_unref (ev);
      if (eos) {
        gst_object_unref (clock);
        return;
      }
    }
    if (gst_test_clock_peek_id_count (clock) > 0)
      gst_test_clock_crank (clock);
    else
      g_usleep (5000);
  }
  gst_object_unref (clock);
  fail ("no EOS from novasonic");
}

static void
output_clear (Output *out)
{
  g_array_unref (out->samples);
}

/* Every element message posted so far, by name. */
static GPtrArray *
drain_messages (Call *call)
{
  GPtrArray *all =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (call->bus, GST_MESSAGE_ELEMENT))) {
    g_ptr_array_add (all, gst_structure_copy (gst_message_get_structure (msg)));
    gst_message_unref (msg);
  }
  return all;
}

static gboolean
has_message (GPtrArray *all, const gchar *name, const gchar *field,
    const gchar *value, const gchar *field2, const gchar *value2)
{
  guint i;

  for (i = 0; i < all->len; i++) {
    GstStructure *s = g_ptr_array_index (all, i);

    if (gst_structure_has_name (s, name)
        && (!field || !g_strcmp0 (gst_structure_get_string (s, field), value))
        && (!field2
            || !g_strcmp0 (gst_structure_get_string (s, field2), value2)))
      return TRUE;
  }
  return FALSE;
}

static void
assert_no_peer_errors (Peer *peer)
{
  g_autofree gchar *errors = peer_file (peer, "errors");

  fail_unless (errors == NULL, "the peer saw protocol errors: %s", errors);
}

GST_START_TEST (test_conversation)
{
  Peer peer;
  Call call;
  Output out;
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gchar *events = NULL;
  guint i;

  START_PEER (peer, "--reply-ms", "500");
  call_init (&call, &peer, NULL);
  push_audio (&call, 1000, TRUE, FALSE);
  push_audio (&call, 500, FALSE, FALSE);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call, &out);

  /* The reply: 500 ms of the peer's value 1001, contiguous. */
  fail_unless_equals_int (out.samples->len, RATE / 2);
  for (i = 0; i < out.samples->len; i++)
    fail_unless_equals_int (g_array_index (out.samples, gint16, i), 1001);
  fail_unless (out.contiguous);

  msgs = drain_messages (&call);
  fail_unless (
      has_message (msgs, "novasonic-session", "event", "started", NULL, NULL));
  fail_unless (has_message (msgs, "novasonic-transcript", "role", "USER",
      "text", "turn 1"));
  fail_unless (has_message (msgs, "novasonic-transcript", "stage",
      "SPECULATIVE", "text", "reply 1"));
  fail_unless (has_message (msgs, "novasonic-transcript", "stage", "FINAL",
      "text", "reply 1"));
  fail_unless (has_message (msgs, "novasonic-usage", NULL, NULL, NULL, NULL));
  fail_unless (
      has_message (msgs, "novasonic-session", "event", "ended", NULL, NULL));
  call_clear (&call);

  assert_no_peer_errors (&peer);
  events = peer_file (&peer, "stream-1.events");
  fail_unless (g_str_has_prefix (events,
      "sessionStart\npromptStart\n"
      "contentStart SYSTEM TEXT\ntextInput\ncontentEnd\n"
      "contentStart USER AUDIO\naudioInput\n"));
  fail_unless (g_str_has_suffix (events,
                   "contentEnd\npromptEnd\n"
                   "sessionEnd\nend-frame\n"),
      "teardown missing: %s", events);
  output_clear (&out);
  peer_stop (&peer);
}

GST_END_TEST;

GST_START_TEST (test_barge_in)
{
  Peer peer;
  Call call;
  Output out;
  GstStructure *s;
  GstBuffer *first;
  guint64 dropped = 0;

  START_PEER (peer, "--reply-ms", "3000", "--barge-in");
  call_init (&call, &peer, NULL);
  push_audio (&call, 600, TRUE, FALSE);
  push_audio (&call, 400, FALSE, FALSE);
  /* The reply starts: the first buffer plays, the rest is queued. */
  s = wait_message (&call, "novasonic-transcript");
  gst_structure_free (s);
  first = pull_cranking (&call);
  gst_buffer_unref (first);
  /* The caller talks over it: the peer interrupts. */
  push_audio (&call, 300, TRUE, FALSE);
  s = wait_message (&call, "novasonic-barge-in");
  fail_unless (gst_structure_get_uint64 (s, "dropped", &dropped));
  gst_structure_free (s);
  fail_unless (dropped > 0);
  push_audio (&call, 100, FALSE, FALSE);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call, &out);
  /* What was dropped of the first reply (value 1001) never plays. */
  {
    guint i, first_reply = 0;

    for (i = 0; i < out.samples->len; i++)
      first_reply += g_array_index (out.samples, gint16, i) == 1001;
    fail_unless (first_reply + RATE / 10 < RATE * 3);
  }
  call_clear (&call);
  assert_no_peer_errors (&peer);
  output_clear (&out);
  peer_stop (&peer);
}

GST_END_TEST;

GST_START_TEST (test_tool_result)
{
  Peer peer;
  Call call;
  Output out;
  GstStructure *s;
  g_autofree gchar *id = NULL;
  g_autofree gchar *events = NULL;
  gboolean ok = FALSE;

  START_PEER (peer, "--tool", "lookup_order", "--tool-input",
      "{\"order\":\"42\"}");
  call_init (&call, &peer, NULL);
  push_audio (&call, 600, TRUE, FALSE);
  push_audio (&call, 400, FALSE, FALSE);
  s = wait_message (&call, "novasonic-tool-use");
  fail_unless_equals_string (gst_structure_get_string (s, "tool-name"),
      "lookup_order");
  fail_unless_equals_string (gst_structure_get_string (s, "input"),
      "{\"order\":\"42\"}");
  id = g_strdup (gst_structure_get_string (s, "tool-use-id"));
  gst_structure_free (s);
  g_signal_emit_by_name (call.h->element, "tool-result", id,
      "{\"status\":\"shipped\"}", &ok);
  fail_unless (ok);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call, &out);
  fail_unless_equals_int (out.samples->len, RATE);
  call_clear (&call);
  assert_no_peer_errors (&peer);
  events = peer_file (&peer, "stream-1.events");
  fail_unless (strstr (events,
                   "contentStart TOOL TOOL\ntoolResult\n"
                   "contentEnd\n")
      != NULL);
  output_clear (&out);
  peer_stop (&peer);
}

GST_END_TEST;

GST_START_TEST (test_transfer_intent)
{
  Peer peer;
  Call call;
  Output out;
  GstStructure *s;

  START_PEER (peer, "--tool", "transfer_to_agent", "--tool-input",
      "{\"reason\":\"wants a human\"}");
  call_init (&call, &peer, NULL);
  push_audio (&call, 600, TRUE, FALSE);
  push_audio (&call, 400, FALSE, FALSE);
  s = wait_message (&call, "novasonic-intent");
  fail_unless_equals_string (gst_structure_get_string (s, "intent"),
      "transfer");
  fail_unless_equals_string (gst_structure_get_string (s, "reason"),
      "wants a human");
  gst_structure_free (s);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  /* The element answered the tool itself: the reply follows. */
  collect_until_eos (&call, &out);
  fail_unless_equals_int (out.samples->len, RATE);
  call_clear (&call);
  assert_no_peer_errors (&peer);
  output_clear (&out);
  peer_stop (&peer);
}

GST_END_TEST;

static GArray *
nonzero_samples (Peer *peer, const gchar *name)
{
  g_autofree gchar *path = g_build_filename (peer->dir, name, NULL);
  g_autofree gchar *data = NULL;
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint16));
  gsize len = 0, i;

  fail_unless (g_file_get_contents (path, &data, &len, NULL), "no %s", name);
  for (i = 0; i + 1 < len; i += 2) {
    gint16 v = (gint16) GUINT16_FROM_LE (*(guint16 *) (data + i));

    if (v != 0)
      g_array_append_val (out, v);
  }
  return out;
}

/* Where @part's first samples are in @all, searching from @from. */
static gint
find_part (GArray *all, GArray *part, guint from)
{
  guint n = MIN (16, part->len), i;

  for (i = from; i + n <= all->len; i++) {
    if (memcmp (all->data + i * 2, part->data, n * 2) == 0)
      return (gint) i;
  }
  return -1;
}

/* Each stream carries a contiguous piece of the caller audio that starts
 * inside what the previous streams carried (the replayed seconds), the
 * first from the start, the last to the end: no sample is lost across
 * the switches. Returns the number of streams. */
static guint
assert_audio_complete (Call *call, Peer *peer)
{
  GArray *all = call->pushed;
  guint covered = 0, i;

  for (i = 1;; i++) {
    g_autofree gchar *name = g_strdup_printf ("stream-%u.pcm", i);
    g_autofree gchar *path = g_build_filename (peer->dir, name, NULL);
    g_autoptr (GArray) part = NULL;
    gint at;

    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      break;
    part = nonzero_samples (peer, name);
    if (part->len == 0)
      continue;
    at = find_part (all, part, 0);
    fail_unless (at >= 0, "stream %u holds audio never pushed", i);
    fail_unless ((guint) at <= covered,
        "stream %u starts %u samples after "
        "the audio sent before",
        i, at - covered);
    fail_unless (at + part->len <= all->len
            && memcmp (all->data + at * 2, part->data, part->len * 2) == 0,
        "stream %u is not contiguous caller audio", i);
    covered = MAX (covered, at + part->len);
  }
  fail_unless_equals_int (covered, all->len);
  return i - 1;
}

GST_START_TEST (test_timeout_reconnect)
{
  Peer peer;
  Call call;
  Output out;
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gchar *events2 = NULL;

  START_PEER (peer, "--timeout-frames", "60", "--reply-ms", "300");
  call_init (&call, &peer, NULL);
  push_audio (&call, 1000, TRUE, TRUE);
  push_audio (&call, 500, FALSE, TRUE);
  push_audio (&call, 1500, TRUE, TRUE);
  push_audio (&call, 500, FALSE, TRUE);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call, &out);
  msgs = drain_messages (&call);
  fail_unless (
      has_message (msgs, "novasonic-session", "event", "renewed", NULL, NULL));
  assert_no_peer_errors (&peer);
  fail_unless (assert_audio_complete (&call, &peer) >= 2);
  call_clear (&call);
  /* The second stream starts over: prologue, then history from USER. */
  events2 = peer_file (&peer, "stream-2.events");
  fail_unless (g_str_has_prefix (events2,
      "sessionStart\npromptStart\n"
      "contentStart SYSTEM TEXT\n"));
  output_clear (&out);
  peer_stop (&peer);
}

GST_END_TEST;

GST_START_TEST (test_planned_renewal)
{
  Peer peer;
  Call call;
  Output out;
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gchar *events = NULL, *last = NULL;
  guint streams;

  START_PEER (peer, "--reply-ms", "300");
  call_init (&call, &peer, "session-renewal", 1, NULL);
  push_audio (&call, 800, TRUE, TRUE);
  push_audio (&call, 500, FALSE, TRUE);
  push_audio (&call, 800, TRUE, TRUE);
  push_audio (&call, 500, FALSE, TRUE);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call, &out);
  msgs = drain_messages (&call);
  fail_unless (
      has_message (msgs, "novasonic-session", "event", "renewed", NULL, NULL));
  assert_no_peer_errors (&peer);
  streams = assert_audio_complete (&call, &peer);
  fail_unless (streams >= 2);
  call_clear (&call);
  /* The last stream (after the first turn) starts with the history. */
  last = g_strdup_printf ("stream-%u.events", streams);
  events = peer_file (&peer, last);
  fail_unless (strstr (events,
                   "contentStart SYSTEM TEXT\ntextInput\n"
                   "contentEnd\ncontentStart USER "
                   "TEXT\ntextInput\ncontentEnd\n")
          != NULL,
      "no history replayed: %s", events);
  output_clear (&out);
  peer_stop (&peer);
}

GST_END_TEST;

static gchar *
wait_error (Call *call)
{
  GstMessage *msg = gst_bus_timed_pop_filtered (call->bus, 60 * GST_SECOND,
      GST_MESSAGE_ERROR);
  g_autoptr (GError) err = NULL;

  fail_unless (msg != NULL, "no error posted");
  gst_message_parse_error (msg, &err, NULL);
  gst_message_unref (msg);
  return g_strdup (err->message);
}

GST_START_TEST (test_malformed_output)
{
  Peer peer;
  Call call;
  g_autofree gchar *message = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  gint i;

  START_PEER (peer, "--malformed", "--reply-ms", "100");
  call_init (&call, &peer, "session-renewal", 0, NULL);
  push_audio (&call, 600, TRUE, FALSE);
  push_audio (&call, 400, FALSE, FALSE);
  message = wait_error (&call);
  fail_unless (strstr (message, "malformed") != NULL, "%s", message);
  /* The streaming thread reports the failure upstream too. */
  for (i = 0; i < 100 && ret == GST_FLOW_OK; i++) {
    GstBuffer *buf = gst_buffer_new_allocate (NULL, 640, NULL);

    gst_buffer_memset (buf, 0, 0, 640);
    ret = gst_harness_push (call.h, buf);
    g_usleep (10000);
  }
  call_clear (&call);
  peer_stop (&peer);
}

GST_END_TEST;

/* Every sample of stream @index the peer has received so far. */
static GArray *
received_samples (Peer *peer, guint index)
{
  g_autofree gchar *name = g_strdup_printf ("stream-%u.pcm", index);
  g_autofree gchar *path = g_build_filename (peer->dir, name, NULL);
  g_autofree gchar *data = NULL;
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint16));
  gsize len = 0;

  if (g_file_get_contents (path, &data, &len, NULL))
    g_array_append_vals (out, data, len / 2);
  return out;
}

/* Zero samples after the first non-zero one, and where that is. */
static guint
zeros_after_speech (GArray *all, guint *first)
{
  guint i, zeros = 0;

  for (*first = 0; *first < all->len; (*first)++) {
    if (g_array_index (all, gint16, *first) != 0)
      break;
  }
  for (i = *first; i < all->len; i++)
    zeros += g_array_index (all, gint16, i) == 0;
  return zeros;
}

/* A live caller in 160 ms buffers (longer than the 100 ms pause after
 * which the caller counts as quiet) is not quiet between them: its audio
 * reaches the service whole, without silence slipped in. Once it does
 * stop, silence flows, in real time: not faster than the clock. */
GST_START_TEST (test_silence_pacing)
{
  Peer peer;
  Call call;
  g_autoptr (GArray) got = NULL;
  gint64 deadline, stopped;
  guint first = 0, zeros = 0;

  START_PEER (peer, "--reply-ms", "300");
  call_init (&call, &peer, NULL);
  push_buffers (&call, 1600, 160, TRUE, TRUE);
  stopped = g_get_monotonic_time ();

  deadline = stopped + DEADLINE_US;
  while (zeros < RATE / 2 && g_get_monotonic_time () < deadline) {
    g_usleep (20 * 1000);
    g_clear_pointer (&got, g_array_unref);
    got = received_samples (&peer, 1);
    zeros = zeros_after_speech (got, &first);
  }
  fail_unless (zeros >= RATE / 2, "no silence while the caller is quiet");
  /* Received by now, so sent by now: at most the time since the caller
   * stopped, and one frame. */
  fail_unless (zeros
          <= (g_get_monotonic_time () - stopped) * RATE / G_USEC_PER_SEC
              + RATE * 32 / 1000,
      "%u samples of silence %" G_GINT64_FORMAT " ms after the caller stopped",
      zeros, (g_get_monotonic_time () - stopped) / 1000);
  fail_unless (first + call.pushed->len <= got->len
          && memcmp (got->data + first * 2, call.pushed->data,
                 call.pushed->len * 2)
              == 0,
      "the caller's audio did not arrive whole");
  call_clear (&call);
  assert_no_peer_errors (&peer);
  peer_stop (&peer);
}

GST_END_TEST;

/* A Connect call through kvsdemux in fragment mode: the caller's audio
 * comes a fragment (~1 s of 64 ms blocks) at once, a fragment's length
 * apart. The waits between bursts are not pauses: the audio reaches the
 * service whole, with no silence slipped in between the fragments. */
GST_START_TEST (test_burst_input)
{
  Peer peer;
  Call call;
  g_autoptr (GArray) got = NULL;
  gint64 deadline;
  guint first = 0, zeros = 0, i;

  START_PEER (peer, "--reply-ms", "300");
  call_init (&call, &peer, NULL);
  for (i = 0; i < 3; i++) {
    gint64 start = g_get_monotonic_time ();

    push_buffers (&call, 1024, 64, TRUE, FALSE);
    g_usleep (1024 * 1000 - (g_get_monotonic_time () - start));
  }

  deadline = g_get_monotonic_time () + DEADLINE_US;
  while (zeros < RATE / 4 && g_get_monotonic_time () < deadline) {
    g_usleep (20 * 1000);
    g_clear_pointer (&got, g_array_unref);
    got = received_samples (&peer, 1);
    zeros = zeros_after_speech (got, &first);
  }
  fail_unless (zeros >= RATE / 4, "no silence after the caller stopped");
  fail_unless (first + call.pushed->len <= got->len
          && memcmp (got->data + first * 2, call.pushed->data,
                 call.pushed->len * 2)
              == 0,
      "silence was slipped in between the caller's bursts");
  call_clear (&call);
  assert_no_peer_errors (&peer);
  peer_stop (&peer);
}

GST_END_TEST;

static Suite *
novasonic_suite (void)
{
  Suite *s = suite_create ("novasonic");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_conversation);
  tcase_add_test (tc, test_barge_in);
  tcase_add_test (tc, test_tool_result);
  tcase_add_test (tc, test_transfer_intent);
  tcase_add_test (tc, test_timeout_reconnect);
  tcase_add_test (tc, test_planned_renewal);
  tcase_add_test (tc, test_malformed_output);
  tcase_add_test (tc, test_silence_pacing);
  tcase_add_test (tc, test_burst_input);
  return s;
}

GST_CHECK_MAIN (novasonic);

/* transcribesink with backend=aws against transcribepeer.py, a local
 * Amazon Transcribe streaming peer that verifies the request and every
 * chunk signature with its own SigV4 code and answers scripted results.
 *
 * The audio scripts the speech: a word is a run of one nonzero sample
 * value v (recognized as "w<v>"), words are separated by zeros, 300 ms of
 * zeros end a sentence. So every test knows exactly which words, with
 * which times, a correct transcript has. */
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RATE 16000
#define ACCESS_KEY "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SESSION "6c2b8a4e-3f1d-4c5e-9a7b-0d1e2f3a4b5c"
#define BUFFER_MS 20
#define WAIT_US (20 * G_USEC_PER_SEC)

typedef struct
{
  GPid pid;
  gint stdin_fd;
  guint16 port;
  gchar *dir;
  gchar *endpoint;
} Peer;

/* A span of scripted audio: @value for @ms milliseconds (0 = silence). */
typedef struct
{
  gint16 value;
  guint ms;
} Span;

static gboolean
peer_start (Peer *peer, const gchar *const *extra)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOChannel) out = NULL;
  g_autofree gchar *line = NULL;
  gint stdout_fd;

  if (!g_file_test (TRANSCRIBE_PEER_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    return FALSE;
  peer->dir = g_dir_make_tmp ("transcribesink-XXXXXX", &error);
  g_assert_no_error (error);
  g_ptr_array_add (argv, (gpointer) TRANSCRIBE_PEER_PYTHON);
  g_ptr_array_add (argv, (gpointer) TRANSCRIBE_PEER_SCRIPT);
  g_ptr_array_add (argv, (gpointer) "--access-key");
  g_ptr_array_add (argv, (gpointer) ACCESS_KEY);
  g_ptr_array_add (argv, (gpointer) "--secret");
  g_ptr_array_add (argv, (gpointer) SECRET);
  g_ptr_array_add (argv, (gpointer) "--dump-dir");
  g_ptr_array_add (argv, peer->dir);
  for (; extra && *extra; extra++)
    g_ptr_array_add (argv, (gpointer) *extra);
  g_ptr_array_add (argv, NULL);
  g_spawn_async_with_pipes (NULL, (gchar **) argv->pdata, NULL,
      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &peer->pid, &peer->stdin_fd,
      &stdout_fd, NULL, &error);
  g_assert_no_error (error);
  out = g_io_channel_unix_new (stdout_fd);
  g_io_channel_set_close_on_unref (out, TRUE);
  g_io_channel_read_line (out, &line, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  peer->port = (guint16) g_ascii_strtoull (line, NULL, 10);
  g_assert_cmpuint (peer->port, >, 0);
  peer->endpoint = g_strdup_printf ("http://127.0.0.1:%u", peer->port);
  return TRUE;
}

static void
remove_dir (const gchar *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree gchar *file = g_build_filename (path, name, NULL);

    g_unlink (file);
  }
  g_rmdir (path);
}

static void
peer_stop (Peer *peer)
{
  gint status;

  /* The peer exits when its stdin closes. */
  close (peer->stdin_fd);
  waitpid (peer->pid, &status, 0);
  g_spawn_close_pid (peer->pid);
  remove_dir (peer->dir);
  g_free (peer->dir);
  g_free (peer->endpoint);
}

static gint16 *
make_audio (const Span *spans, guint n_spans, guint channels, gsize *n_frames)
{
  gsize total = 0, pos = 0;
  gint16 *samples;
  guint i;

  for (i = 0; i < n_spans; i++)
    total += (gsize) spans[i].ms * RATE / 1000;
  samples = g_new0 (gint16, total * channels);
  for (i = 0; i < n_spans; i++) {
    gsize n = (gsize) spans[i].ms * RATE / 1000, k;

    for (k = 0; k < n * channels; k++)
      samples[pos * channels + k] = spans[i].value;
    pos += n;
  }
  *n_frames = total;
  return samples;
}

/* @props: more property name/value pairs, NULL-terminated. The element
 * is configured before the harness starts it. */
static GstHarness *
harness_new (const Peer *peer, GstBus *bus, guint channels,
    const gchar *first_prop, ...)
{
  GstElement *sink = gst_element_factory_make ("transcribesink", NULL);
  g_autofree gchar *caps =
      g_strdup_printf ("audio/x-raw,format=S16LE,"
                       "layout=interleaved,rate=%d,channels=%u",
          RATE, channels);
  g_autofree gchar *location =
      g_build_filename (peer->dir, "transcript.json", NULL);
  GstHarness *h;
  va_list args;

  fail_unless (sink != NULL);
  gst_element_set_bus (sink, bus);
  gst_util_set_object_arg (G_OBJECT (sink), "backend", "aws");
  g_object_set (sink, "endpoint", peer->endpoint, "region", "us-east-1",
      "access-key", ACCESS_KEY, "secret-key", SECRET, "location", location,
      "sync", FALSE, "keepalive-interval", 0, NULL);
  va_start (args, first_prop);
  g_object_set_valist (G_OBJECT (sink), first_prop, args);
  va_end (args);
  h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_object_unref (sink);
  gst_harness_set_src_caps_str (h, caps);
  return h;
}

/* Pushes frames [from, to) in BUFFER_MS buffers; returns the first flow
 * that is not OK. */
static GstFlowReturn
push_audio (GstHarness *h, const gint16 *samples, gsize from, gsize to,
    guint channels)
{
  gsize step = RATE * BUFFER_MS / 1000;

  while (from < to) {
    gsize n = MIN (step, to - from);
    GstBuffer *buf = gst_buffer_new_memdup (samples + from * channels,
        n * channels * sizeof (gint16));
    GstFlowReturn ret;

    GST_BUFFER_PTS (buf) = gst_util_uint64_scale (from, GST_SECOND, RATE);
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (n, GST_SECOND, RATE);
    ret = gst_harness_push (h, buf);
    if (ret != GST_FLOW_OK)
      return ret;
    from += n;
  }
  return GST_FLOW_OK;
}

/* The messages up to EOS or an error, in order. */
static GPtrArray *
collect_messages (GstBus *bus)
{
  GPtrArray *msgs =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_message_unref);

  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT);

    fail_unless (msg != NULL, "no EOS or error on the bus");
    g_ptr_array_add (msgs, msg);
    if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT)
      return msgs;
  }
}

static guint
count_element_messages (GPtrArray *msgs, const gchar *name, const gchar *field,
    const gchar *value)
{
  guint i, n = 0;

  for (i = 0; i < msgs->len; i++) {
    const GstStructure *s = gst_message_get_structure (msgs->pdata[i]);

    if (s == NULL || !gst_structure_has_name (s, name))
      continue;
    if (field == NULL
        || g_strcmp0 (gst_structure_get_string (s, field), value) == 0)
      n++;
  }
  return n;
}

static const gchar *
error_text (GPtrArray *msgs)
{
  GstMessage *last = msgs->pdata[msgs->len - 1];
  static gchar text[1024];
  g_autoptr (GError) error = NULL;

  fail_unless_equals_int (GST_MESSAGE_TYPE (last), GST_MESSAGE_ERROR);
  gst_message_parse_error (last, &error, NULL);
  g_strlcpy (text, error->message, sizeof (text));
  return text;
}

static JsonNode *
read_json (const gchar *dir, const gchar *name)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!json_parser_load_from_file (parser, path, &error))
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

static GBytes *
read_raw (const gchar *dir, guint stream)
{
  g_autofree gchar *name = g_strdup_printf ("stream-%u.raw", stream);
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  gchar *data;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return NULL;
  return g_bytes_new_take (data, len);
}

static JsonObject *
stream_report (JsonNode **holder, const gchar *dir, guint stream)
{
  g_autofree gchar *name = g_strdup_printf ("stream-%u.json", stream);

  *holder = read_json (dir, name);
  return *holder ? json_node_get_object (*holder) : NULL;
}

/* The transcript document's items as "content@start-end" (punctuation as
 * "content"), space separated, with channel prefixes when asked. */
static gchar *
document_items (JsonObject *doc, gboolean with_channel)
{
  JsonObject *results = json_object_get_object_member (doc, "results");
  JsonArray *items = json_object_get_array_member (results, "items");
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; i < json_array_get_length (items); i++) {
    JsonObject *item = json_array_get_object_element (items, i);
    JsonObject *alt =
        json_array_get_object_element (json_object_get_array_member (item,
                                           "alternatives"),
            0);
    const gchar *type = json_object_get_string_member (item, "type");

    if (s->len)
      g_string_append_c (s, ' ');
    if (with_channel)
      g_string_append_printf (s,
          "%s:", json_object_get_string_member (item, "channel_label"));
    g_string_append (s, json_object_get_string_member (alt, "content"));
    if (g_str_equal (type, "pronunciation")) {
      g_string_append_printf (s, "@%s-%s",
          json_object_get_string_member (item, "start_time"),
          json_object_get_string_member (item, "end_time"));
      fail_unless (json_object_has_member (alt, "confidence"));
    } else {
      fail_unless_equals_string (type, "punctuation");
      fail_if (json_object_has_member (item, "start_time"));
    }
  }
  return g_string_free (s, FALSE);
}

static const gchar *
document_transcript (JsonObject *doc)
{
  JsonObject *results = json_object_get_object_member (doc, "results");
  JsonArray *transcripts =
      json_object_get_array_member (results, "transcripts");

  return json_object_get_string_member (
      json_array_get_object_element (transcripts, 0), "transcript");
}

#define SKIP_WITHOUT_PEER(peer, extra)                                 \
  G_STMT_START                                                         \
  {                                                                    \
    if (!peer_start (peer, extra)) {                                   \
      GST_INFO ("skipped: " TRANSCRIBE_PEER_PYTHON " with python3-h2 " \
                "is missing");                                         \
      return;                                                          \
    }                                                                  \
  }                                                                    \
  G_STMT_END

/* Sentence 1 "w1 w2." (0.2-0.5, 0.6-0.9), sentence 2 "w3." (1.3-1.6). */
static const Span happy_spans[] = {
    {0, 200},
    {1, 300},
    {0, 100},
    {2, 300},
    {0, 400},
    {3, 300},
    {0, 200},
};

GST_START_TEST (test_happy_path)
{
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  g_autoptr (GBytes) sent = NULL;
  g_autoptr (GBytes) got = NULL;
  g_autoptr (JsonNode) report_node = NULL;
  g_autoptr (JsonNode) doc_node = NULL;
  g_autofree gchar *items = NULL;
  JsonObject *report, *headers, *doc;
  JsonArray *chunks;
  GstHarness *h;
  gsize frames;
  guint i, partials = 0, finals = 0;

  SKIP_WITHOUT_PEER (&peer, NULL);
  audio = make_audio (happy_spans, G_N_ELEMENTS (happy_spans), 1, &frames);
  h = harness_new (&peer, bus, 1, "session-id", SESSION, "vocabulary-name",
      "callcenter", "results-stability", 3, NULL);
  fail_unless_equals_int (push_audio (h, audio, 0, frames, 1), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msgs->pdata[msgs->len - 1]),
      GST_MESSAGE_EOS);

  /* The peer decoded exactly the audio pushed, in 100 ms chunks. */
  sent = g_bytes_new (audio, frames * sizeof (gint16));
  got = read_raw (peer.dir, 0);
  fail_unless (got != NULL);
  fail_unless (g_bytes_equal (sent, got));
  report = stream_report (&report_node, peer.dir, 0);
  fail_unless_equals_string (json_object_get_string_member (report, "ended"),
      "end");
  chunks = json_object_get_array_member (report, "chunk_ms");
  for (i = 0; i < json_array_get_length (chunks); i++)
    fail_unless_equals_float (json_array_get_double_element (chunks, i), 100.0);
  headers = json_object_get_object_member (report, "headers");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-language-code"),
      "en-US");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-sample-rate"),
      "16000");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-session-id"),
      SESSION);
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-vocabulary-name"),
      "callcenter");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-enable-partial-results-"
                                 "stabilization"),
      "true");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-partial-results-stability"),
      "high");
  fail_if (json_object_has_member (headers,
      "x-amzn-transcribe-enable-channel-identification"));

  /* Messages: partials while words come, then the two finals. */
  fail_unless_equals_int (count_element_messages (msgs, "transcribe-stream",
                              "event", "started"),
      1);
  for (i = 0; i < msgs->len; i++) {
    const GstStructure *s = gst_message_get_structure (msgs->pdata[i]);
    gboolean partial;
    gdouble start, end;

    if (s == NULL || !gst_structure_has_name (s, "transcript"))
      continue;
    fail_unless (gst_structure_get_boolean (s, "is-partial", &partial));
    fail_unless (gst_structure_get_double (s, "start-time", &start));
    fail_unless (gst_structure_get_double (s, "end-time", &end));
    fail_unless_equals_string (gst_structure_get_string (s, "channel"), "ch_0");
    fail_unless (gst_structure_get_string (s, "result-id") != NULL);
    if (partial) {
      partials++;
      continue;
    }
    if (finals++ == 0) {
      fail_unless_equals_string (gst_structure_get_string (s, "text"),
          "w1 w2.");
      fail_unless_equals_float (start, 0.2);
      fail_unless_equals_float (end, 0.9);
    } else {
      fail_unless_equals_string (gst_structure_get_string (s, "text"), "w3.");
      fail_unless_equals_float (start, 1.3);
      fail_unless_equals_float (end, 1.6);
    }
  }
  fail_unless_equals_int (finals, 2);
  fail_unless (partials >= 3);

  /* The batch document. */
  doc_node = read_json (peer.dir, "transcript.json");
  fail_unless (doc_node != NULL);
  doc = json_node_get_object (doc_node);
  fail_unless_equals_string (json_object_get_string_member (doc, "jobName"),
      SESSION);
  fail_unless_equals_string (json_object_get_string_member (doc, "status"),
      "COMPLETED");
  fail_unless_equals_string (document_transcript (doc), "w1 w2. w3.");
  items = document_items (doc, FALSE);
  fail_unless_equals_string (items, "w1@0.2-0.5 w2@0.6-0.9 . w3@1.3-1.6 .");
  fail_if (
      json_object_has_member (json_object_get_object_member (doc, "results"),
          "channel_labels"));

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

/* Two channels with channel identification: ch_0 says w1, ch_1 w2. */
GST_START_TEST (test_two_channels)
{
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autoptr (JsonNode) report_node = NULL;
  g_autoptr (JsonNode) doc_node = NULL;
  g_autofree gchar *items = NULL;
  gint16 *audio;
  JsonObject *headers, *doc, *labels;
  GstHarness *h;
  gsize frames = RATE, i;

  SKIP_WITHOUT_PEER (&peer, NULL);
  audio = g_new0 (gint16, frames * 2);
  for (i = RATE / 10; i < RATE * 4 / 10; i++)
    audio[2 * i] = 1;
  for (i = RATE * 5 / 10; i < RATE * 7 / 10; i++)
    audio[2 * i + 1] = 2;
  h = harness_new (&peer, bus, 2, NULL);
  fail_unless_equals_int (push_audio (h, audio, 0, frames, 2), GST_FLOW_OK);
  g_free (audio);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msgs->pdata[msgs->len - 1]),
      GST_MESSAGE_EOS);

  headers =
      json_object_get_object_member (stream_report (&report_node, peer.dir, 0),
          "headers");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-enable-channel-"
                                 "identification"),
      "true");
  fail_unless_equals_string (json_object_get_string_member (headers,
                                 "x-amzn-transcribe-number-of-channels"),
      "2");
  fail_unless_equals_int (count_element_messages (msgs, "transcript", "channel",
                              "ch_1"),
      2);

  doc_node = read_json (peer.dir, "transcript.json");
  doc = json_node_get_object (doc_node);
  items = document_items (doc, TRUE);
  fail_unless_equals_string (items,
      "ch_0:w1@0.1-0.4 ch_0:. ch_1:w2@0.5-0.7 ch_1:.");
  labels = json_object_get_object_member (json_object_get_object_member (doc,
                                              "results"),
      "channel_labels");
  fail_unless_equals_int (json_object_get_int_member (labels,
                              "number_of_channels"),
      2);
  fail_unless_equals_int (json_array_get_length (
                              json_object_get_array_member (labels,
                                  "channels")),
      2);

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

/* A wrong secret: the peer's own SigV4 check refuses the request. */
GST_START_TEST (test_bad_signature)
{
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  g_autoptr (JsonNode) report_node = NULL;
  GstHarness *h;
  gsize frames;

  SKIP_WITHOUT_PEER (&peer, NULL);
  audio = make_audio (happy_spans, G_N_ELEMENTS (happy_spans), 1, &frames);
  h = harness_new (&peer, bus, 1, "secret-key", "not-the-secret", NULL);
  if (push_audio (h, audio, 0, frames, 1) == GST_FLOW_OK)
    fail_if (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless (strstr (error_text (msgs), "InvalidSignatureException"));
  fail_unless (strstr (error_text (msgs), "403"));
  fail_unless (stream_report (&report_node, peer.dir, 0) == NULL);

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

/* A service exception mid-stream becomes an element error naming it. */
GST_START_TEST (test_exception)
{
  const gchar *extra[] = {"--exception", "BadRequestException",
      "--exception-after-ms", "500", NULL};
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  GstHarness *h;
  gsize frames;

  SKIP_WITHOUT_PEER (&peer, extra);
  audio = make_audio (happy_spans, G_N_ELEMENTS (happy_spans), 1, &frames);
  h = harness_new (&peer, bus, 1, NULL);
  if (push_audio (h, audio, 0, frames, 1) == GST_FLOW_OK)
    fail_if (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless (strstr (error_text (msgs), "BadRequestException"));
  fail_unless (strstr (error_text (msgs), "Injected by the peer"));

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

/* Words before and after the drop, each once, with their own times. */
static const Span reconnect_spans[] = {
    {0, 100},
    {1, 300},
    {0, 100},
    {2, 300},
    {0, 400},
    {3, 300},
    {0, 100},
    {4, 300},
    {0, 100},
    {5, 300},
    {0, 200},
};

#define RECONNECT_DOC \
  "w1@0.1-0.4 w2@0.5-0.8 . w3@1.2-1.5 w4@1.6-1.9 w5@2.0-2.3 ."

static void
check_resent_tail (const Peer *peer, const gint16 *audio, gsize frames,
    gsize from_frame)
{
  g_autoptr (GBytes) tail =
      g_bytes_new (audio + from_frame, (frames - from_frame) * sizeof (gint16));
  g_autoptr (GBytes) got = read_raw (peer->dir, 1);

  fail_unless (got != NULL);
  fail_unless (g_bytes_equal (tail, got));
}

/* A retryable exception (InternalFailureException) on the first stream:
 * the element reconnects and loses nothing. */
GST_START_TEST (test_retryable_exception)
{
  const gchar *extra[] = {"--exception", "InternalFailureException",
      "--exception-after-ms", "1700", NULL};
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  g_autoptr (JsonNode) doc_node = NULL;
  g_autofree gchar *items = NULL;
  GstHarness *h;
  gsize frames;

  SKIP_WITHOUT_PEER (&peer, extra);
  audio =
      make_audio (reconnect_spans, G_N_ELEMENTS (reconnect_spans), 1, &frames);
  h = harness_new (&peer, bus, 1, NULL);
  fail_unless_equals_int (push_audio (h, audio, 0, frames, 1), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msgs->pdata[msgs->len - 1]),
      GST_MESSAGE_EOS);
  fail_unless_equals_int (count_element_messages (msgs, "transcribe-stream",
                              "event", "reconnected"),
      1);
  check_resent_tail (&peer, audio, frames, RATE * 8 / 10);
  doc_node = read_json (peer.dir, "transcript.json");
  items = document_items (json_node_get_object (doc_node), FALSE);
  fail_unless_equals_string (items, RECONNECT_DOC);

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

/* The connection drops in the middle of sentence 2, after sentence 1's
 * final result: the next stream starts at the end of that result (0.8 s),
 * and the document has every word once. */
GST_START_TEST (test_reconnect)
{
  const gchar *extra[] = {"--drop-after-ms", "1700", NULL};
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  g_autoptr (JsonNode) report_node = NULL;
  g_autoptr (JsonNode) doc_node = NULL;
  g_autofree gchar *items = NULL;
  JsonObject *doc;
  GstHarness *h;
  gsize frames;

  SKIP_WITHOUT_PEER (&peer, extra);
  audio =
      make_audio (reconnect_spans, G_N_ELEMENTS (reconnect_spans), 1, &frames);
  h = harness_new (&peer, bus, 1, NULL);
  fail_unless_equals_int (push_audio (h, audio, 0, frames, 1), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msgs->pdata[msgs->len - 1]),
      GST_MESSAGE_EOS);

  fail_unless_equals_string (
      json_object_get_string_member (stream_report (&report_node, peer.dir, 0),
          "ended"),
      "dropped");
  fail_unless_equals_int (count_element_messages (msgs, "transcribe-stream",
                              "event", "reconnected"),
      1);
  check_resent_tail (&peer, audio, frames, RATE * 8 / 10);

  doc_node = read_json (peer.dir, "transcript.json");
  doc = json_node_get_object (doc_node);
  items = document_items (doc, FALSE);
  fail_unless_equals_string (items, RECONNECT_DOC);
  fail_unless_equals_string (document_transcript (doc), "w1 w2. w3 w4 w5.");

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

static gint64
stream_audio_frames (const Peer *peer, guint stream)
{
  g_autoptr (JsonNode) node = NULL;
  JsonObject *report = stream_report (&node, peer->dir, stream);

  return report ? json_object_get_int_member (report, "audio_frames") : -1;
}

/* Upstream goes quiet: silence keeps the stream alive, and the words
 * after the pause keep their own times (the silence is not counted). */
GST_START_TEST (test_keepalive)
{
  static const Span spans[] = {{0, 100}, {1, 300}, {0, 400}, {2, 300},
      {0, 100}};
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  g_autoptr (JsonNode) doc_node = NULL;
  g_autofree gchar *items = NULL;
  GstHarness *h;
  gsize frames, pause_at = RATE * 8 / 10;
  gint64 deadline, got = 0;

  SKIP_WITHOUT_PEER (&peer, NULL);
  audio = make_audio (spans, G_N_ELEMENTS (spans), 1, &frames);
  h = harness_new (&peer, bus, 1, "keepalive-interval", 100, NULL);
  fail_unless_equals_int (push_audio (h, audio, 0, pause_at, 1), GST_FLOW_OK);

  /* Nothing is pushed now: wait until the peer has received at least
   * three chunks of keep-alive silence beyond the audio. */
  deadline = g_get_monotonic_time () + WAIT_US;
  while (g_get_monotonic_time () < deadline) {
    got = stream_audio_frames (&peer, 0);
    if (got >= (gint64) pause_at + 3 * RATE / 10)
      break;
    g_usleep (20 * 1000);
  }
  fail_unless (got >= (gint64) pause_at + 3 * RATE / 10,
      "no keep-alive silence reached the peer (%" G_GINT64_FORMAT " frames)",
      got);

  fail_unless_equals_int (push_audio (h, audio, pause_at, frames, 1),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msgs->pdata[msgs->len - 1]),
      GST_MESSAGE_EOS);
  doc_node = read_json (peer.dir, "transcript.json");
  items = document_items (json_node_get_object (doc_node), FALSE);
  fail_unless_equals_string (items, "w1@0.1-0.4 . w2@0.8-1.1 .");

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

/* A 1 s stream limit over 3.5 s of speech: the element rolls to new
 * streams before each reaches it; every word comes out once, whole. */
GST_START_TEST (test_rollover)
{
  static const Span spans[] = {
      {0, 100},
      {1, 200},
      {0, 350},
      {2, 200},
      {0, 350},
      {3, 200},
      {0, 350},
      {4, 200},
      {0, 350},
      {5, 200},
      {0, 350},
      {6, 200},
      {0, 450},
  };
  Peer peer = {0};
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autofree gint16 *audio = NULL;
  g_autoptr (JsonNode) doc_node = NULL;
  g_autofree gchar *items = NULL;
  GstHarness *h;
  gsize frames;
  guint n_streams = 0;
  gint64 n;

  SKIP_WITHOUT_PEER (&peer, NULL);
  audio = make_audio (spans, G_N_ELEMENTS (spans), 1, &frames);
  h = harness_new (&peer, bus, 1, "max-stream-duration",
      G_GUINT64_CONSTANT (1000), NULL);
  fail_unless_equals_int (push_audio (h, audio, 0, frames, 1), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  msgs = collect_messages (bus);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msgs->pdata[msgs->len - 1]),
      GST_MESSAGE_EOS);

  while ((n = stream_audio_frames (&peer, n_streams)) >= 0) {
    fail_unless (n <= RATE,
        "stream %u carried %" G_GINT64_FORMAT " frames, over the 1 s limit",
        n_streams, n);
    n_streams++;
  }
  fail_unless (n_streams >= 4, "only %u streams", n_streams);
  fail_unless_equals_int (count_element_messages (msgs, "transcribe-stream",
                              "event", "rolled-over"),
      n_streams - 1);
  doc_node = read_json (peer.dir, "transcript.json");
  items = document_items (json_node_get_object (doc_node), FALSE);
  fail_unless_equals_string (items,
      "w1@0.1-0.3 . w2@0.65-0.85 . w3@1.2-1.4 . w4@1.75-1.95 . "
      "w5@2.3-2.5 . w6@2.85-3.05 .");

  gst_harness_teardown (h);
  peer_stop (&peer);
}

GST_END_TEST;

static Suite *
transcribesink_suite (void)
{
  Suite *s = suite_create ("transcribesink");
  TCase *tc = tcase_create ("aws");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_happy_path);
  tcase_add_test (tc, test_two_channels);
  tcase_add_test (tc, test_bad_signature);
  tcase_add_test (tc, test_exception);
  tcase_add_test (tc, test_retryable_exception);
  tcase_add_test (tc, test_reconnect);
  tcase_add_test (tc, test_keepalive);
  tcase_add_test (tc, test_rollover);
  return s;
}

GST_CHECK_MAIN (transcribesink);

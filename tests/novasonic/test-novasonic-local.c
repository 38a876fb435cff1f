/* GstCheck tests of novasonic backend=local: flite speaks the caller's
 * side of scripted conversations through the default customer-service
 * workflow (and a test workflow with a caller-run tool). Transcripts are
 * checked by their text, not their timing. Non-live tests push the whole
 * call as fast as they can, like a file; the live test paces replies on
 * the harness's test clock. */
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <glib/gstdio.h>
#include <string.h>

#include "speechtestutil.h"

#define DEADLINE_US (90 * G_USEC_PER_SEC)
#define NOISE_DBFS -60.0
#define GREETING                                                         \
  "Hello, thank you for calling. I can help with your account balance, " \
  "the status of an order, or a lost card. How can I help you today?"

typedef struct
{
  GstHarness *h;
  GstBus *bus;
  guint rate;
  guint64 sample; /* caller samples pushed */
  GPtrArray *seen; /* element messages popped by wait_message() */
} Call;

static void
call_init (Call *call, guint rate, gboolean live, const gchar *first_prop, ...)
{
  g_autofree gchar *caps = NULL;
  va_list args;

  call->h = gst_harness_new ("novasonic");
  call->bus = gst_bus_new ();
  call->rate = rate;
  call->sample = 0;
  call->seen =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  gst_element_set_bus (call->h->element, call->bus);
  gst_harness_set_live (call->h, live);
  g_object_set (call->h->element, "backend", 1, NULL);
  if (first_prop) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (call->h->element), first_prop, args);
    va_end (args);
  }
  caps = g_strdup_printf ("audio/x-raw, format=S16LE, layout=interleaved, "
                          "channels=1, rate=%u",
      rate);
  gst_harness_set_src_caps_str (call->h, caps);
}

static void
call_clear (Call *call)
{
  gst_harness_teardown (call->h);
  gst_bus_set_flushing (call->bus, TRUE);
  gst_object_unref (call->bus);
  g_ptr_array_unref (call->seen);
}

static void
push_samples (Call *call, const gint16 *samples, gsize n)
{
  gsize frame = call->rate / 50, off, i;

  for (off = 0; off < n; off += frame) {
    gsize len = MIN (frame, n - off);
    GstBuffer *buf = gst_buffer_new_allocate (NULL, len * 2, NULL);
    GstMapInfo map;

    gst_buffer_map (buf, &map, GST_MAP_WRITE);
    for (i = 0; i < len; i++)
      ((gint16 *) map.data)[i] = GINT16_TO_LE (samples[off + i]);
    gst_buffer_unmap (buf, &map);
    GST_BUFFER_PTS (buf) =
        gst_util_uint64_scale (call->sample, GST_SECOND, call->rate);
    GST_BUFFER_DURATION (buf) =
        gst_util_uint64_scale (len, GST_SECOND, call->rate);
    call->sample += len;
    fail_unless_equals_int (gst_harness_push (call->h, buf), GST_FLOW_OK);
  }
}

/* A quiet line: faint noise, as on a real call. */
static void
push_silence (Call *call, guint ms)
{
  gsize n = (gsize) call->rate * ms / 1000;
  g_autofree gint16 *samples = g_new0 (gint16, n);

  cp_test_add_noise (samples, n, NOISE_DBFS, (guint32) call->sample);
  push_samples (call, samples, n);
}

/* flite's 16 kHz speech brought to @rate: 8 kHz as on a telephone line,
 * 24 kHz with the GStreamer resampler. */
static gint16 *
speak (const gchar *text, guint rate, gsize *n)
{
  GstAudioResampler *resampler;
  GstStructure *options;
  gint16 *wide, *out;
  gsize n_wide;
  gpointer in_planes[1], out_planes[1];

  if (rate != 24000)
    return cp_test_speak (text, rate, n);
  wide = cp_test_speak (text, 16000, &n_wide);
  options = gst_structure_new_empty ("options");
  resampler = gst_audio_resampler_new (GST_AUDIO_RESAMPLER_METHOD_KAISER,
      GST_AUDIO_RESAMPLER_FLAG_NONE, GST_AUDIO_FORMAT_S16, 1, 16000, 24000,
      options);
  gst_structure_free (options);
  *n = gst_audio_resampler_get_out_frames (resampler, n_wide);
  out = g_new0 (gint16, *n);
  in_planes[0] = wide;
  out_planes[0] = out;
  gst_audio_resampler_resample (resampler, in_planes, n_wide, out_planes, *n);
  gst_audio_resampler_free (resampler);
  g_free (wide);
  return out;
}

/* The caller says @text, then is quiet for @quiet_ms. */
static void
say (Call *call, const gchar *text, guint quiet_ms)
{
  gsize n;
  g_autofree gint16 *speech = speak (text, call->rate, &n);

  cp_test_add_noise (speech, n, NOISE_DBFS, 7);
  push_samples (call, speech, n);
  push_silence (call, quiet_ms);
}

/* Waits for an element message named @name; fails on an error. The
 * test clock stands still meanwhile: live replies do not play on. */
static GstStructure *
wait_message (Call *call, const gchar *name)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_US;

  while (g_get_monotonic_time () < deadline) {
    GstMessage *msg = gst_bus_timed_pop_filtered (call->bus, 10 * GST_MSECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR);

    if (msg == NULL)
      continue;
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) err = NULL;

      gst_message_parse_error (msg, &err, NULL);
      gst_message_unref (msg);
      fail ("error while waiting for %s: %s", name, err->message);
    }
    g_ptr_array_add (call->seen,
        gst_structure_copy (gst_message_get_structure (msg)));
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
      g_usleep (2000);
  }
  gst_object_unref (clock);
  fail_unless (buf != NULL, "no reply audio");
  return buf;
}

/* Reply audio until EOS, cranking the test clock; returns the number of
 * samples. */
static guint64
collect_until_eos (Call *call)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_US;
  GstTestClock *clock = gst_harness_get_testclock (call->h);
  guint64 samples = 0;

  while (g_get_monotonic_time () < deadline) {
    GstBuffer *buf = gst_harness_try_pull (call->h);
    GstEvent *ev;

    if (buf) {
      samples += gst_buffer_get_size (buf) / 2;
      gst_buffer_unref (buf);
      continue;
    }
    while ((ev = gst_harness_try_pull_event (call->h)) != NULL) {
      gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;

      gst_event_unref (ev);
      if (eos) {
        gst_object_unref (clock);
        return samples;
      }
    }
    if (gst_test_clock_peek_id_count (clock) > 0)
      gst_test_clock_crank (clock);
    else
      g_usleep (2000);
  }
  gst_object_unref (clock);
  fail ("no EOS from novasonic");
  return 0;
}

/* Every element message posted so far, in order; fails on an error. */
static GPtrArray *
drain_messages (Call *call)
{
  GPtrArray *all = g_steal_pointer (&call->seen);
  GstMessage *msg;

  call->seen =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  while ((msg = gst_bus_pop_filtered (call->bus,
              GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR))) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) err = NULL;

      gst_message_parse_error (msg, &err, NULL);
      fail ("novasonic posted an error: %s", err->message);
    }
    g_ptr_array_add (all, gst_structure_copy (gst_message_get_structure (msg)));
    gst_message_unref (msg);
  }
  return all;
}

static guint
count_messages (GPtrArray *all, const gchar *name)
{
  guint i, n = 0;

  for (i = 0; i < all->len; i++)
    n += gst_structure_has_name (g_ptr_array_index (all, i), name);
  return n;
}

static const GstStructure *
find_message (GPtrArray *all, const gchar *name)
{
  guint i;

  for (i = 0; i < all->len; i++) {
    if (gst_structure_has_name (g_ptr_array_index (all, i), name))
      return g_ptr_array_index (all, i);
  }
  return NULL;
}

/* The transcripts must be @expected, in order: "USER:text" is matched
 * in full (case aside), "ASSISTANT:text" as a prefix. */
static void
assert_transcripts (GPtrArray *all, const gchar *const *expected)
{
  guint i, k = 0;

  for (i = 0; i < all->len; i++) {
    const GstStructure *s = g_ptr_array_index (all, i);
    g_autofree gchar *got = NULL, *lower_got = NULL, *lower_want = NULL;

    if (!gst_structure_has_name (s, "novasonic-transcript"))
      continue;
    fail_unless_equals_string (gst_structure_get_string (s, "stage"), "FINAL");
    got = g_strdup_printf ("%s:%s", gst_structure_get_string (s, "role"),
        gst_structure_get_string (s, "text"));
    fail_unless (expected[k] != NULL, "unexpected transcript %s", got);
    lower_got = g_ascii_strdown (got, -1);
    lower_want = g_ascii_strdown (expected[k], -1);
    if (g_str_has_prefix (expected[k], "USER:"))
      fail_unless (g_str_equal (lower_got, lower_want),
          "transcript %u: \"%s\", expected \"%s\"", k, got, expected[k]);
    else
      fail_unless (g_str_has_prefix (lower_got, lower_want),
          "transcript %u: \"%s\", expected \"%s\"", k, got, expected[k]);
    k++;
  }
  fail_unless (expected[k] == NULL, "missing transcript %s", expected[k]);
}

/* The whole call from a file: the greeting comes out before the caller
 * says anything, each question is answered, the agent request posts the
 * transfer intent. */
GST_START_TEST (test_conversation_file)
{
  static const gchar *const expected[] = {
      "ASSISTANT:" GREETING,
      "USER:has my order shipped",
      "ASSISTANT:I can check that. What is your order number?",
      "USER:one two three four five",
      "ASSISTANT:Thank you. Order 1 2 3 4 5 is on its way",
      "USER:i want to talk to a person",
      "ASSISTANT:Of course. I am transferring you to an agent now.",
      NULL,
  };
  g_autoptr (GPtrArray) msgs = NULL;
  const GstStructure *s;
  GstBuffer *first;
  Call call;

  call_init (&call, 8000, FALSE, "output-rate", 8000, NULL);
  first = gst_harness_pull (call.h);
  fail_unless (first != NULL, "no greeting before the caller spoke");
  gst_buffer_unref (first);

  push_silence (&call, 12000);
  say (&call, "Has my order shipped?", 5000);
  say (&call, "one two three four five", 14000);
  say (&call, "I want to talk to a person.", 5000);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  fail_unless (collect_until_eos (&call) > 8000 * 10);

  msgs = drain_messages (&call);
  assert_transcripts (msgs, expected);
  s = find_message (msgs, "novasonic-session");
  fail_unless_equals_string (gst_structure_get_string (s, "event"), "started");
  fail_unless_equals_int (count_messages (msgs, "novasonic-barge-in"), 0);
  s = find_message (msgs, "novasonic-tool-use");
  fail_unless (s != NULL);
  fail_unless_equals_string (gst_structure_get_string (s, "tool-name"),
      "transfer_to_agent");
  s = find_message (msgs, "novasonic-intent");
  fail_unless (s != NULL);
  fail_unless_equals_string (gst_structure_get_string (s, "intent"),
      "transfer");
  fail_unless_equals_string (gst_structure_get_string (s, "reason"),
      "The caller asked for an agent");
  s = g_ptr_array_index (msgs, msgs->len - 1);
  fail_unless (gst_structure_has_name (s, "novasonic-session"));
  fail_unless_equals_string (gst_structure_get_string (s, "event"), "ended");
  call_clear (&call);
}

GST_END_TEST;

/* Live: the caller talks over the greeting, which stops with what was
 * queued of it dropped; the request is still answered. */
GST_START_TEST (test_barge_in_live)
{
  g_autoptr (GPtrArray) msgs = NULL;
  GstStructure *s;
  GstBuffer *first;
  guint64 dropped = 0, played;
  Call call;

  call_init (&call, 16000, TRUE, "output-rate", 24000, NULL);
  s = wait_message (&call, "novasonic-transcript");
  fail_unless_equals_string (gst_structure_get_string (s, "text"), GREETING);
  gst_structure_free (s);
  first = pull_cranking (&call);
  gst_buffer_unref (first);

  say (&call, "I want to talk to a person.", 2000);
  s = wait_message (&call, "novasonic-barge-in");
  fail_unless (gst_structure_get_uint64 (s, "dropped", &dropped));
  gst_structure_free (s);
  /* The greeting lasts about 9 s: all but its first seconds are gone. */
  fail_unless (dropped > 5 * GST_SECOND, "dropped only %" GST_TIME_FORMAT,
      GST_TIME_ARGS (dropped));
  s = wait_message (&call, "novasonic-intent");
  fail_unless_equals_string (gst_structure_get_string (s, "intent"),
      "transfer");
  gst_structure_free (s);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  played = collect_until_eos (&call);
  /* The transfer reply (about 3 s) and less than half of the greeting. */
  fail_unless (played < 24000 * 8, "played %" G_GUINT64_FORMAT, played);
  msgs = drain_messages (&call);
  fail_unless_equals_int (count_messages (msgs, "novasonic-barge-in"), 1);
  call_clear (&call);
}

GST_END_TEST;

/* 24 kHz caller audio is resampled for the recognizer. */
GST_START_TEST (test_wideband_input)
{
  static const gchar *const expected[] = {
      "ASSISTANT:" GREETING,
      "USER:i want to talk to a person",
      "ASSISTANT:Of course.",
      NULL,
  };
  g_autoptr (GPtrArray) msgs = NULL;
  Call call;

  call_init (&call, 24000, FALSE, "output-rate", 16000, NULL);
  push_silence (&call, 12000);
  say (&call, "I want to talk to a person.", 1000);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call);
  msgs = drain_messages (&call);
  assert_transcripts (msgs, expected);
  fail_unless (find_message (msgs, "novasonic-intent") != NULL);
  call_clear (&call);
}

GST_END_TEST;

static const gchar tool_json[] =
    "{\"name\": \"lookup_order\", \"description\": \"Looks an order up.\", "
    "\"input_schema\": {\"type\": \"object\", \"properties\": {}}, "
    "\"instruction\": \"\", \"category\": \"data\"}";

static const gchar workflow_json[] =
    "{\"name\": \"orders\", \"greeting\": \"Hello.\", \"intents\": [{"
    "\"name\": \"order_status\", \"examples\": [\"where is my order\"], "
    "\"keywords\": [\"order\"], "
    "\"tool\": {\"name\": \"lookup_order\", \"input\": {\"kind\": \"web\"}}, "
    "\"progress\": \"One moment please.\", "
    "\"reply\": \"Your order is {result.status}.\", "
    "\"failure\": \"Sorry, I could not find it.\"}], "
    "\"fallback\": {\"reprompts\": [\"Sorry?\"], \"reply\": \"Goodbye.\", "
    "\"tool\": {\"name\": \"end_call\", \"input\": {\"reason\": \"lost\"}}}}";

/* A caller-run tool: novasonic-tool-use, answered with the tool-result
 * action signal; the reply uses the result. */
GST_START_TEST (test_tool_result)
{
  static const gchar *const expected[] = {
      "ASSISTANT:Hello.",
      "USER:where is my order",
      "ASSISTANT:One moment please.",
      "ASSISTANT:Your order is shipped.",
      NULL,
  };
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("soniclocal-XXXXXX", &error);
  g_autofree gchar *workflow = g_build_filename (dir, "orders.json", NULL);
  g_autofree gchar *tools = g_build_filename (dir, "tools", NULL);
  g_autofree gchar *tool = g_build_filename (tools, "lookup_order.json", NULL);
  g_autoptr (GPtrArray) msgs = NULL;
  GstStructure *s;
  gboolean ok = FALSE;
  Call call;

  g_assert_no_error (error);
  fail_unless (g_file_set_contents (workflow, workflow_json, -1, NULL));
  fail_unless_equals_int (g_mkdir (tools, 0700), 0);
  fail_unless (g_file_set_contents (tool, tool_json, -1, NULL));
  call_init (&call, 16000, FALSE, "workflow", workflow, "tools-dir", tools,
      "output-rate", 16000, NULL);
  push_silence (&call, 2000);
  say (&call, "Where is my order?", 1000);
  s = wait_message (&call, "novasonic-tool-use");
  fail_unless_equals_string (gst_structure_get_string (s, "tool-name"),
      "lookup_order");
  fail_unless_equals_string (gst_structure_get_string (s, "input"),
      "{\"kind\":\"web\"}");
  g_signal_emit_by_name (call.h->element, "tool-result",
      gst_structure_get_string (s, "tool-use-id"), "{\"status\":\"shipped\"}",
      &ok);
  gst_structure_free (s);
  fail_unless (ok);
  push_silence (&call, 3000);
  gst_harness_push_event (call.h, gst_event_new_eos ());
  collect_until_eos (&call);
  msgs = drain_messages (&call);
  assert_transcripts (msgs, expected);
  fail_unless (find_message (msgs, "novasonic-intent") == NULL);
  call_clear (&call);
  g_unlink (tool);
  g_rmdir (tools);
  g_unlink (workflow);
  g_rmdir (dir);
}

GST_END_TEST;

/* A workflow that cannot be loaded is an error naming it. */
GST_START_TEST (test_bad_workflow)
{
  GstHarness *h = gst_harness_new ("novasonic");
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  g_autoptr (GError) err = NULL;

  gst_element_set_bus (h->element, bus);
  g_object_set (h->element, "backend", 1, "workflow", "/nonexistent/wf.json",
      NULL);
  gst_harness_set_src_caps_str (h,
      "audio/x-raw, format=S16LE, "
      "layout=interleaved, channels=1, rate=16000");
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (strstr (err->message, "/nonexistent/wf.json") != NULL, "%s",
      err->message);
  gst_message_unref (msg);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

GST_END_TEST;

/* A workflow phrase the recognizer cannot spell fails the start, naming
 * the file, the JSON path, the phrase and the word. */
GST_START_TEST (test_unknown_word)
{
  static const gchar *json =
      "{\"name\": \"w\", \"greeting\": \"Hi.\","
      " \"intents\": [{\"name\": \"a\", \"examples\": [\"goodbye\","
      "   \"talk to an xqzzyv\"], \"reply\": \"ok\"}],"
      " \"fallback\": {\"reprompts\": [\"Pardon?\"], \"reply\": \"Bye.\"}}";
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("soniclocal-XXXXXX", &error);
  g_autofree gchar *workflow = g_build_filename (dir, "words.json", NULL);
  GstHarness *h = gst_harness_new ("novasonic");
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;

  g_assert_no_error (error);
  fail_unless (g_file_set_contents (workflow, json, -1, NULL));
  gst_element_set_bus (h->element, bus);
  g_object_set (h->element, "backend", 1, "workflow", workflow, NULL);
  gst_harness_set_src_caps_str (h,
      "audio/x-raw, format=S16LE, "
      "layout=interleaved, channels=1, rate=8000");
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("%s", err->message);
  fail_unless (strstr (err->message, workflow) != NULL, "%s", err->message);
  fail_unless (strstr (err->message,
                   "$.intents[0].examples[1]: The word \"xqzzyv\" of the "
                   "phrase \"talk to an xqzzyv\" is not in the pronunciation "
                   "dictionary")
          != NULL,
      "%s", err->message);
  gst_message_unref (msg);
  gst_harness_teardown (h);
  gst_object_unref (bus);
  g_unlink (workflow);
  g_rmdir (dir);
}

GST_END_TEST;

static Suite *
novasonic_local_suite (void)
{
  Suite *s = suite_create ("novasonic-local");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_conversation_file);
  tcase_add_test (tc, test_barge_in_live);
  tcase_add_test (tc, test_wideband_input);
  tcase_add_test (tc, test_tool_result);
  tcase_add_test (tc, test_bad_workflow);
  tcase_add_test (tc, test_unknown_word);
  return s;
}

GST_CHECK_MAIN (novasonic_local);

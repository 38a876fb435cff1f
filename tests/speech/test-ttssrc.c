/* GstCheck tests of the ttssrc element. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/audio/audio.h>

#include "speech/speechtts.h"

#define PROMPT "Please leave a message after the tone."

/* Waits for EOS, then checks that the buffers before it have contiguous
 * timestamps and offsets; returns the number of samples. */
static guint64
pull_all (GstHarness *h, guint rate)
{
  GstClockTime expected_pts = 0;
  guint64 samples = 0;
  GstEvent *event;
  GstBuffer *buf;

  /* Events and buffers queue apart: EOS comes after the last buffer. */
  for (;;) {
    gboolean eos;

    event = gst_harness_pull_event (h);
    fail_unless (event != NULL, "no EOS after the audio");
    eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;
    gst_event_unref (event);
    if (eos)
      break;
  }
  while ((buf = gst_harness_try_pull (h)) != NULL) {
    gsize n = gst_buffer_get_size (buf) / 2;

    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), expected_pts);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (buf), samples);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (buf), samples + n);
    samples += n;
    expected_pts = gst_util_uint64_scale_int (samples, GST_SECOND, rate);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf) + GST_BUFFER_DURATION (buf),
        expected_pts);
    gst_buffer_unref (buf);
  }
  return samples;
}

static void
check_caps (GstHarness *h, gint rate)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstAudioInfo info;

  fail_unless (caps != NULL);
  fail_unless (gst_audio_info_from_caps (&info, caps));
  fail_unless_equals_int (GST_AUDIO_INFO_FORMAT (&info),
      GST_AUDIO_FORMAT_S16LE);
  fail_unless_equals_int (GST_AUDIO_INFO_CHANNELS (&info), 1);
  fail_unless_equals_int (GST_AUDIO_INFO_RATE (&info), rate);
  gst_caps_unref (caps);
}

/* The engine's output for the same text, in samples. */
static gsize
engine_samples (const gchar *voice, const gchar *text)
{
  g_autoptr (GBytes) audio = cp_speech_tts_synthesize (voice, text, NULL, NULL);

  fail_unless (audio != NULL);
  return g_bytes_get_size (audio) / 2;
}

GST_START_TEST (test_speaks_prompt)
{
  GstHarness *h = gst_harness_new ("ttssrc");
  GstQuery *query;
  gint64 duration = 0;
  guint64 samples;

  g_object_set (h->element, "text", PROMPT, NULL);
  gst_harness_play (h);
  samples = pull_all (h, 16000);
  check_caps (h, 16000);
  /* Up to the noise flite draws from rand(), the same length. */
  fail_unless_equals_uint64 (samples, engine_samples (NULL, PROMPT));
  fail_unless (samples > 16000);

  query = gst_query_new_duration (GST_FORMAT_TIME);
  fail_unless (gst_element_query (h->element, query));
  gst_query_parse_duration (query, NULL, &duration);
  fail_unless_equals_uint64 (duration,
      gst_util_uint64_scale_int (samples, GST_SECOND, 16000));
  gst_query_unref (query);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_voice_rate)
{
  const gchar *const *voices = cp_speech_tts_list_voices ();
  guint i;

  for (i = 0; voices[i] != NULL; i++) {
    GstHarness *h = gst_harness_new ("ttssrc");
    guint rate = cp_speech_tts_voice_rate (voices[i], NULL);

    g_object_set (h->element, "text", "Goodbye.", "voice", voices[i], NULL);
    gst_harness_play (h);
    fail_unless (pull_all (h, rate) > rate / 4);
    check_caps (h, rate);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* Live: each buffer waits for its time on the clock. */
GST_START_TEST (test_live)
{
  GstHarness *h = gst_harness_new ("ttssrc");
  GstClockTime expected_pts = 0;
  GstBuffer *buf;
  guint n_buffers = 0;
  gboolean live = FALSE;

  g_object_set (h->element, "text", "Hello.", "is-live", TRUE, NULL);
  g_object_get (h->element, "is-live", &live, NULL);
  fail_unless (live);
  gst_harness_use_testclock (h);
  gst_harness_play (h);
  for (;;) {
    fail_unless (gst_harness_crank_single_clock_wait (h));
    buf = gst_harness_pull (h);
    fail_unless (buf != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), expected_pts);
    expected_pts += GST_BUFFER_DURATION (buf);
    n_buffers++;
    gst_buffer_unref (buf);
    if (expected_pts
        >= gst_util_uint64_scale_int (engine_samples (NULL, "Hello."),
            GST_SECOND, 16000))
      break;
  }
  fail_unless (n_buffers > 10);
  gst_harness_teardown (h);
}

GST_END_TEST;

static void
check_state_change_fails (const gchar *text, const gchar *voice,
    const gchar *expected)
{
  GstElement *src = gst_element_factory_make ("ttssrc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *error = NULL;

  fail_unless (src != NULL);
  gst_element_set_bus (src, bus);
  g_object_set (src, "text", text, "voice", voice, NULL);
  fail_unless_equals_int (gst_element_set_state (src, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (strstr (error->message, expected) != NULL, "%s", error->message);
  g_error_free (error);
  gst_message_unref (msg);
  gst_element_set_state (src, GST_STATE_NULL);
  gst_element_set_bus (src, NULL);
  gst_object_unref (bus);
  gst_object_unref (src);
}

GST_START_TEST (test_bad_settings)
{
  check_state_change_fails (PROMPT, "hal9000", "hal9000");
  check_state_change_fails ("", "slt", "empty");
  check_state_change_fails (NULL, "slt", "empty");
}

GST_END_TEST;

/* Reusable after PAUSED->READY, with a new text. */
GST_START_TEST (test_restart)
{
  GstHarness *h = gst_harness_new ("ttssrc");
  guint64 first, second;

  g_object_set (h->element, "text", "One.", NULL);
  gst_harness_play (h);
  first = pull_all (h, 16000);
  fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  g_object_set (h->element, "text", "One, two, three, four.", NULL);
  fail_if (gst_element_set_state (h->element, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE);
  second = pull_all (h, 16000);
  fail_unless (second > 2 * first);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
ttssrc_suite (void)
{
  Suite *s = suite_create ("ttssrc");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_speaks_prompt);
  tcase_add_test (tc, test_voice_rate);
  tcase_add_test (tc, test_live);
  tcase_add_test (tc, test_bad_settings);
  tcase_add_test (tc, test_restart);
  return s;
}

int
main (int argc, char **argv)
{
  const gchar *registry = g_getenv ("GST_REGISTRY_1_0");

  /* Scan in this process (under AddressSanitizer the instrumented plugin
   * cannot load into the uninstrumented gst-plugin-scanner), only our own
   * plugins (the system ones leak at load), into a registry of our own. */
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  if (registry != NULL) {
    g_autofree gchar *own = g_strconcat (registry, ".ttssrc", NULL);

    g_setenv ("GST_REGISTRY_1_0", own, TRUE);
  }
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (ttssrc_suite (), "ttssrc", __FILE__);
}

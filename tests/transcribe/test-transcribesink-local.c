/* transcribesink with backend=local: flite speaks a sentence (the speech
 * engines' TTS), the offline recognizer transcribes it. */
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "speech/speechtts.h"

#define SENTENCE "please check the balance of my account"
#define CAPS_FORMAT \
  "audio/x-raw,format=S16LE,layout=interleaved,rate=%u,channels=1"

static GstHarness *
speak_into (GstBus *bus, const gchar *location, guint *out_rate, gsize *out_len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) speech = NULL;
  g_autofree gchar *caps = NULL;
  GstElement *sink;
  GstHarness *h;
  GstBuffer *buf;
  guint rate;
  gsize len;
  /* A second of silence around the sentence, as on a call. */
  gsize pad;

  speech = cp_speech_tts_synthesize (CP_SPEECH_TTS_DEFAULT_VOICE, SENTENCE,
      &rate, &error);
  g_assert_no_error (error);
  len = g_bytes_get_size (speech);
  pad = rate * 2;

  sink = gst_element_factory_make ("transcribesink", NULL);
  fail_unless (sink != NULL);
  gst_element_set_bus (sink, bus);
  g_object_set (sink, "location", location, "sync", FALSE, "job-name",
      "local-test", NULL);
  h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_object_unref (sink);
  caps = g_strdup_printf (CAPS_FORMAT, rate);
  gst_harness_set_src_caps_str (h, caps);

  buf = gst_buffer_new_wrapped (g_malloc0 (pad), pad);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  buf = gst_buffer_new_memdup (g_bytes_get_data (speech, NULL), len);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  buf = gst_buffer_new_wrapped (g_malloc0 (pad), pad);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  *out_rate = rate;
  *out_len = len;
  return h;
}

GST_START_TEST (test_local_flite_sentence)
{
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autofree gchar *dir = g_dir_make_tmp ("transcribelocal-XXXXXX", NULL);
  g_autofree gchar *location = g_build_filename (dir, "t.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) finals = g_string_new (NULL);
  g_auto (GStrv) reference = g_strsplit (SENTENCE, " ", -1);
  GstHarness *h;
  GstMessage *msg;
  JsonObject *doc, *results;
  JsonArray *items;
  guint rate, i, hits = 0, words = 0;
  gsize len;
  gdouble speech_start, speech_end, last_end = 0;

  h = speak_into (bus, location, &rate, &len);
  speech_start = 1.0;
  speech_end = 1.0 + (gdouble) len / 2 / rate;

  while ((msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
              GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (msg);
    gboolean partial;
    gdouble start, end;

    if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT) {
      fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
      gst_message_unref (msg);
      break;
    }
    fail_unless (gst_structure_has_name (s, "transcript"));
    fail_unless (gst_structure_get_boolean (s, "is-partial", &partial));
    fail_unless (gst_structure_get_double (s, "start-time", &start));
    fail_unless (gst_structure_get_double (s, "end-time", &end));
    fail_unless_equals_string (gst_structure_get_string (s, "channel"), "ch_0");
    fail_unless (start <= end);
    if (!partial)
      g_string_append_printf (finals, "%s ",
          gst_structure_get_string (s, "text"));
    gst_message_unref (msg);
  }
  GST_INFO ("heard: %s", finals->str);
  for (i = 0; reference[i]; i++)
    if (strstr (finals->str, reference[i]))
      hits++;
  /* The recognizer is not perfect; most of the sentence must be there. */
  fail_unless (hits * 2 >= g_strv_length (reference), "heard \"%s\"",
      finals->str);

  fail_unless (json_parser_load_from_file (parser, location, &error));
  doc = json_node_get_object (json_parser_get_root (parser));
  fail_unless_equals_string (json_object_get_string_member (doc, "jobName"),
      "local-test");
  fail_unless_equals_string (json_object_get_string_member (doc, "status"),
      "COMPLETED");
  results = json_object_get_object_member (doc, "results");
  items = json_object_get_array_member (results, "items");
  for (i = 0; i < json_array_get_length (items); i++) {
    JsonObject *item = json_array_get_object_element (items, i);
    gdouble start, end;

    if (!g_str_equal (json_object_get_string_member (item, "type"),
            "pronunciation"))
      continue;
    start = g_ascii_strtod (json_object_get_string_member (item, "start_time"),
        NULL);
    end =
        g_ascii_strtod (json_object_get_string_member (item, "end_time"), NULL);
    /* Word times fall within the speech, in order. */
    fail_unless (start >= speech_start - 0.3 && end <= speech_end + 0.3,
        "word at %f-%f outside the speech %f-%f", start, end, speech_start,
        speech_end);
    fail_unless (start >= last_end - 0.001 && end >= start);
    last_end = end;
    words++;
  }
  fail_unless (words >= 3, "only %u words in the document", words);

  gst_harness_teardown (h);
  g_unlink (location);
  g_rmdir (dir);
}

GST_END_TEST;

static Suite *
transcribesink_local_suite (void)
{
  Suite *s = suite_create ("transcribesink-local");
  TCase *tc = tcase_create ("local");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_local_flite_sentence);
  return s;
}

GST_CHECK_MAIN (transcribesink_local);

/* The transcript model without GStreamer: TranscriptEvent parsing (the
 * Transcribe docs' example and hostile input), trimming repeats, and the
 * batch output document. */
#include <json-glib/json-glib.h>

#include "transcript.h"

/* From the Transcribe developer guide (streaming partial results), with
 * stabilization on. */
static const gchar doc_event[] =
    "{\"Transcript\":{\"Results\":[{\"Alternatives\":[{\"Items\":["
    "{\"Confidence\":0.99,\"Content\":\"Hello\",\"EndTime\":0.545,"
    "\"StartTime\":0.025,\"Type\":\"pronunciation\","
    "\"VocabularyFilterMatch\":false,\"Stable\":true},"
    "{\"Content\":\",\",\"EndTime\":0.545,\"StartTime\":0.545,"
    "\"Type\":\"punctuation\",\"Stable\":true},"
    "{\"Confidence\":0.5,\"Content\":\"world\",\"EndTime\":4.545,"
    "\"StartTime\":0.9,\"Type\":\"pronunciation\",\"Stable\":false}],"
    "\"Transcript\":\"Hello, world\"}],\"ChannelId\":\"ch_1\","
    "\"EndTime\":4.545,\"IsPartial\":true,"
    "\"ResultId\":\"12345-abcd\",\"StartTime\":0.025}]}}";

static void
test_parse_doc_example (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) results =
      cp_transcript_event_parse (doc_event, strlen (doc_event), &error);
  CpTranscriptResult *r;
  CpTranscriptItem *item;

  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 1);
  r = g_ptr_array_index (results, 0);
  g_assert_cmpstr (r->result_id, ==, "12345-abcd");
  g_assert_true (r->is_partial);
  g_assert_cmpuint (r->channel, ==, 1);
  g_assert_cmpfloat (r->start, ==, 0.025);
  g_assert_cmpfloat (r->end, ==, 4.545);
  g_assert_cmpstr (r->text, ==, "Hello, world");
  g_assert_cmpuint (r->items->len, ==, 3);
  item = &g_array_index (r->items, CpTranscriptItem, 0);
  g_assert_true (item->stable && item->has_confidence);
  g_assert_cmpfloat (item->confidence, ==, 0.99);
  item = &g_array_index (r->items, CpTranscriptItem, 1);
  g_assert_true (item->is_punctuation);
  g_assert_cmpfloat (item->start, ==, 0.0);
  item = &g_array_index (r->items, CpTranscriptItem, 2);
  g_assert_false (item->stable);
}

static void
test_parse_hostile (void)
{
  const gchar *bad[] = {
      "",
      "null",
      "[]",
      "{}",
      "{\"Transcript\":[]}",
      "{\"Transcript\":{\"Results\":[{\"ChannelId\":\"ch_7\"}]}}",
      "{\"Transcript\":",
      "\xff\xfe",
  };
  g_autofree gchar *deep = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    GPtrArray *r = cp_transcript_event_parse (bad[i], strlen (bad[i]), &error);

    g_assert_null (r);
    g_assert_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_PARSE);
  }

  {
    GString *s = g_string_new ("{\"Transcript\":{\"Results\":");

    for (i = 0; i < 100000; i++)
      g_string_append_c (s, '[');
    deep = g_string_free (s, FALSE);
  }
  {
    g_autoptr (GError) error = NULL;

    g_assert_null (cp_transcript_event_parse (deep, strlen (deep), &error));
    g_assert_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_PARSE);
  }

  /* Wrong types and negative or reversed times are ignored, not
   * trusted. */
  {
    const gchar *odd =
        "{\"Transcript\":{\"Results\":[{\"IsPartial\":\"no\","
        "\"StartTime\":-5,\"EndTime\":\"x\",\"Alternatives\":[{\"Items\":["
        "{\"Content\":\"hi\",\"StartTime\":3,\"EndTime\":1,"
        "\"Confidence\":7},{\"Content\":5},7]}]},3]}}";
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) results =
        cp_transcript_event_parse (odd, strlen (odd), &error);
    CpTranscriptResult *r;
    CpTranscriptItem *item;

    g_assert_no_error (error);
    g_assert_cmpuint (results->len, ==, 1);
    r = g_ptr_array_index (results, 0);
    g_assert_false (r->is_partial);
    g_assert_cmpfloat (r->start, ==, 0.0);
    g_assert_cmpuint (r->items->len, ==, 1);
    item = &g_array_index (r->items, CpTranscriptItem, 0);
    g_assert_cmpfloat (item->end, ==, 0.0);
    g_assert_false (item->has_confidence);
    g_assert_cmpstr (r->text, ==, "hi");
  }
}

static CpTranscriptResult *
sentence (const gchar *id, guint channel, gdouble t0)
{
  CpTranscriptResult *r = cp_transcript_result_new (id, FALSE, channel);

  cp_transcript_result_add_item (r, "good", FALSE, t0, t0 + 0.3, 0.9, TRUE);
  cp_transcript_result_add_item (r, "morning", FALSE, t0 + 0.4, t0 + 0.8, 1.0,
      TRUE);
  cp_transcript_result_add_item (r, ".", TRUE, 0, 0, 0, FALSE);
  r->start = t0;
  r->end = t0 + 0.8;
  return r;
}

static void
test_trim (void)
{
  g_autoptr (CpTranscriptResult) r = sentence ("a", 0, 1.0);
  g_autoptr (CpTranscriptResult) old = sentence ("b", 0, 1.0);

  g_assert_true (cp_transcript_result_trim_before (r, 1.2));
  g_assert_cmpstr (r->text, ==, "morning.");
  g_assert_cmpfloat (r->start, ==, 1.4);
  g_assert_false (cp_transcript_result_trim_before (old, 1.8));
}

static void
test_batch_document (void)
{
  g_autoptr (CpTranscript) t = cp_transcript_new (2);
  g_autoptr (CpTranscriptResult) a = sentence ("a", 1, 2.0);
  g_autoptr (CpTranscriptResult) b = sentence ("b", 0, 0.5);
  g_autoptr (CpTranscriptResult) p = sentence ("p", 0, 9.0);
  g_autofree gchar *json = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *doc, *results, *item, *labels;
  JsonArray *items;

  p->is_partial = TRUE;
  cp_transcript_add (t, a);
  cp_transcript_add (t, b);
  cp_transcript_add (t, p);
  g_assert_cmpuint (cp_transcript_get_n_items (t), ==, 6);
  json = cp_transcript_to_json (t, "call-1", "en-US");
  g_assert_true (json_parser_load_from_data (parser, json, -1, NULL));
  doc = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (doc, "jobName"), ==,
      "call-1");
  g_assert_cmpstr (json_object_get_string_member (doc, "status"), ==,
      "COMPLETED");
  results = json_object_get_object_member (doc, "results");
  g_assert_cmpstr (json_object_get_string_member (results, "language_code"), ==,
      "en-US");
  g_assert_cmpstr (
      json_object_get_string_member (
          json_array_get_object_element (json_object_get_array_member (results,
                                             "transcripts"),
              0),
          "transcript"),
      ==, "good morning. good morning.");
  items = json_object_get_array_member (results, "items");
  g_assert_cmpuint (json_array_get_length (items), ==, 6);
  /* Merged by time: channel 0's sentence at 0.5 s comes first. */
  item = json_array_get_object_element (items, 0);
  g_assert_cmpstr (json_object_get_string_member (item, "start_time"), ==,
      "0.5");
  g_assert_cmpstr (json_object_get_string_member (item, "end_time"), ==, "0.8");
  g_assert_cmpstr (json_object_get_string_member (item, "channel_label"), ==,
      "ch_0");
  g_assert_cmpstr (json_object_get_string_member (
                       json_array_get_object_element (
                           json_object_get_array_member (item, "alternatives"),
                           0),
                       "confidence"),
      ==, "0.9");
  item = json_array_get_object_element (items, 2);
  g_assert_cmpstr (json_object_get_string_member (item, "type"), ==,
      "punctuation");
  g_assert_false (json_object_has_member (item, "start_time"));
  item = json_array_get_object_element (items, 3);
  g_assert_cmpstr (json_object_get_string_member (item, "channel_label"), ==,
      "ch_1");
  g_assert_cmpstr (json_object_get_string_member (item, "start_time"), ==,
      "2.0");
  labels = json_object_get_object_member (results, "channel_labels");
  g_assert_cmpint (json_object_get_int_member (labels, "number_of_channels"),
      ==, 2);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (
                        json_array_get_object_element (
                            json_object_get_array_member (labels, "channels"),
                            1),
                        "items")),
      ==, 3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/transcript/parse-doc-example", test_parse_doc_example);
  g_test_add_func ("/transcript/parse-hostile", test_parse_hostile);
  g_test_add_func ("/transcript/trim", test_trim);
  g_test_add_func ("/transcript/batch-document", test_batch_document);
  return g_test_run ();
}

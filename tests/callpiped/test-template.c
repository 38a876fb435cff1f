/* Unit tests: ${NAME} substitution, validation and gst-launch quoting. */
#include "cp-factory.h"
#include "cp-template.h"

#include <gst/gst.h>
#include <string.h>

static GHashTable *
values_new (void)
{
  return g_hash_table_new (g_str_hash, g_str_equal);
}

static void
set (GHashTable *values, const gchar *name, const gchar *value)
{
  g_hash_table_insert (values, (gpointer) name, (gpointer) value);
}

static void
test_expand_quotes_every_value (void)
{
  g_autoptr (GHashTable) v = values_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *out = NULL;

  set (v, "CONTACT_ID", "abc-123");
  set (v, "RECORDING_LOCATION", "/tmp/a b/c.wav");
  out = cp_template_expand ("x contact-id=${CONTACT_ID} ! "
                            "filesink location=${RECORDING_LOCATION}",
      v, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==,
      "x contact-id=\"abc-123\" ! "
      "filesink location=\"/tmp/a b/c.wav\"");
}

static void
test_quote_escapes (void)
{
  g_autofree gchar *q = cp_template_quote ("a\"b\\c");

  g_assert_cmpstr (q, ==, "\"a\\\"b\\\\c\"");
}

static void
expect_invalid (const gchar *name, const gchar *value)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (cp_template_check_value (name, value, &error));
  g_assert_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_INVALID_VALUE);
  g_assert_nonnull (strstr (error->message, name));
}

static void
test_hostile_values_rejected (void)
{
  expect_invalid ("CONTACT_ID", "a\" ! filesink location=/etc/passwd");
  expect_invalid ("CONTACT_ID", "a ! fakesink");
  expect_invalid ("CONTACT_ID", "a\nb");
  expect_invalid ("CONTACT_ID", "${SESSION_ID}");
  expect_invalid ("CONTACT_ID", "NULL");
  expect_invalid ("CONTACT_ID", "");
  expect_invalid ("STREAM_ARN", "arn:aws:x ! y");
  expect_invalid ("STREAM_ARN", "not-an-arn");
  expect_invalid ("START_TIMESTAMP", "12a");
  expect_invalid ("START_TIMESTAMP", "-1");
  expect_invalid ("RECORDING_LOCATION", "relative/x.wav");
  expect_invalid ("RECORDING_LOCATION", "/tmp/../etc/passwd");
  expect_invalid ("RECORDING_LOCATION", "/tmp/x\".wav");
  expect_invalid ("RECORDING_LOCATION", "/tmp/x\\y.wav");
  expect_invalid ("RECORDING_LOCATION", "/tmp/x\n.wav");
  expect_invalid ("RECORDING_LOCATION", "/tmp/${SESSION_ID}.wav");
  expect_invalid ("MEDIA_URI", "ftp://host/x.wav");
  expect_invalid ("MEDIA_URI", "file:///tmp/a b.wav");
  expect_invalid ("MEDIA_URI", "file:///tmp/a\".wav");
  expect_invalid ("MEDIA_URI", "/tmp/a.wav");
  expect_invalid ("MEDIA_URI", "javascript:alert(1)");
  expect_invalid ("RECORDING_LOCATION", "s3://bucket");
  expect_invalid ("RECORDING_LOCATION", "s3://bucket/a/../b.wav");
  expect_invalid ("RECORDING_LOCATION", "s3://bucket//b.wav");
  expect_invalid ("RECORDING_LOCATION", "s3://bucket/a b.wav");
  expect_invalid ("RECORDING_LOCATION", "s3://b/x\" ! fakesink");
  expect_invalid ("RECORDING_SINK", "fakesink");
  expect_invalid ("RECORDING_SINK", "filesink location=/etc/passwd");
  expect_invalid ("BOT_ENDPOINT", "http://h/ ! fakesink");
}

/* Element variables are the one unquoted substitution: only the fixed
 * names pass, and they are written bare so gst-launch sees an element. */
static void
test_element_variables (void)
{
  g_autoptr (GHashTable) v = values_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *out = NULL;

  set (v, "RECORDING_SINK", "s3sink");
  set (v, "RECORDING_LOCATION", "s3://calls-bucket/prefix/recordings/a.wav");
  set (v, "BOT_ENDPOINT", "");
  out = cp_template_expand ("wavenc ! ${RECORDING_SINK} "
                            "location=${RECORDING_LOCATION} e=${BOT_ENDPOINT}",
      v, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==,
      "wavenc ! s3sink "
      "location=\"s3://calls-bucket/prefix/recordings/a.wav\" e=\"\"");
}

static void
test_good_values_accepted (void)
{
  g_assert_true (cp_template_check_value ("CONTACT_ID",
      "4a573372-1f28-4e26-b97b-ae3e1a8a0000", NULL));
  g_assert_true (cp_template_check_value ("STREAM_ARN",
      "arn:aws:kinesisvideo:eu-west-2:111111111111:stream/"
      "instance-contact-1/1565781909613",
      NULL));
  g_assert_true (cp_template_check_value ("START_FRAGMENT",
      "91343852333181432392682062622220590765191907586", NULL));
  g_assert_true (cp_template_check_value ("START_FRAGMENT", "", NULL));
  g_assert_true (cp_template_check_value ("MEDIA_URI",
      "https://example.com/a%20b.wav?x=1", NULL));
  g_assert_true (cp_template_check_value ("RECORDING_LOCATION",
      "/tmp/it's a path!/x.wav", NULL));
  g_assert_true (
      cp_template_check_value ("BOT_ENDPOINT", "http://127.0.0.1:8443", NULL));
  g_assert_true (cp_template_check_value ("AUDIO_SOURCE", "s3src", NULL));
}

static void
test_unknown_and_missing_variables (void)
{
  g_autoptr (GHashTable) v = values_new ();
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;
  g_autoptr (GError) e4 = NULL;
  g_auto (GStrv) names = NULL;

  g_assert_null (cp_template_expand ("a x=${NOPE}", v, &e1));
  g_assert_error (e1, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_UNKNOWN_VARIABLE);
  g_assert_null (cp_template_expand ("a x=${CONTACT_ID}", v, &e2));
  g_assert_error (e2, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_MISSING_VARIABLE);
  g_assert_null (cp_template_expand ("a x=${CONTACT_ID", v, &e3));
  g_assert_error (e3, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_SYNTAX);
  g_assert_null (cp_template_expand ("a x=${${CONTACT_ID}}", v, &e4));
  g_assert_error (e4, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_SYNTAX);

  names = cp_template_variables ("a ${CONTACT_ID} ${MEDIA_URI} "
                                 "${CONTACT_ID}",
      NULL);
  g_assert_nonnull (names);
  g_assert_cmpuint (g_strv_length (names), ==, 2);
  g_assert_cmpstr (names[0], ==, "CONTACT_ID");
  g_assert_cmpstr (names[1], ==, "MEDIA_URI");
}

/* A '$' that starts no placeholder stays literal, and adjacent
 * placeholders expand independently. */
static void
test_single_pass (void)
{
  g_autoptr (GHashTable) v = values_new ();
  g_autofree gchar *out = NULL;

  set (v, "START_FRAGMENT", "");
  set (v, "CONTACT_ID", "c1");
  out = cp_template_expand ("a x=${START_FRAGMENT}${CONTACT_ID} y=$HOME", v,
      NULL);
  g_assert_cmpstr (out, ==, "a x=\"\"\"c1\" y=$HOME");
}

/* A non-empty integer goes in bare, so that it can stand in caps. */
static void
test_integer_bare (void)
{
  g_autoptr (GHashTable) v = values_new ();
  g_autofree gchar *out = NULL;
  g_autoptr (GError) error = NULL;

  set (v, "BOT_INPUT_RATE", "8000");
  out = cp_template_expand ("audio/x-raw,rate=${BOT_INPUT_RATE}", v, NULL);
  g_assert_cmpstr (out, ==, "audio/x-raw,rate=8000");
  g_clear_pointer (&out, g_free);
  set (v, "BOT_INPUT_RATE", "8000 ! filesink");
  out = cp_template_expand ("rate=${BOT_INPUT_RATE}", v, &error);
  g_assert_null (out);
  g_assert_error (error, CP_TEMPLATE_ERROR, CP_TEMPLATE_ERROR_INVALID_VALUE);
}

static void
test_comments_stripped (void)
{
  g_autofree gchar *s =
      cp_template_strip_comments ("# a ${NOPE}\n"
                                  "  # indented\n\nfakesrc\n  ! fakesink\n");

  g_assert_cmpstr (s, ==, "fakesrc\n  ! fakesink\n");
}

/* The quoted value reaches the element property byte for byte, and gst
 * parses no extra element or property out of it. */
static void
test_gst_parse_round_trip (void)
{
  const gchar *path = "/tmp/it's a path ! with=spaces, (and) {braces}.wav";
  g_autoptr (GHashTable) v = values_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (CpFactory) f = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autofree gchar *location = NULL;
  GstIterator *it;
  GValue item = G_VALUE_INIT;
  guint n = 0;

  f = cp_factory_new_from_text ("roundtrip",
      "fakesrc ! filesink name=out location=${RECORDING_LOCATION}", &error);
  g_assert_no_error (error);
  g_assert_true (cp_factory_is_available (f));
  set (v, "RECORDING_LOCATION", path);
  pipeline = cp_factory_create_pipeline (f, "p", v, &error);
  g_assert_no_error (error);
  g_assert_true (GST_IS_PIPELINE (pipeline));
  gst_object_ref_sink (pipeline);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  g_assert_nonnull (sink);
  g_object_get (sink, "location", &location, NULL);
  g_assert_cmpstr (location, ==, path);

  it = gst_bin_iterate_recurse (GST_BIN (pipeline));
  while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    n++;
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  /* the description's bin, fakesrc and filesink */
  g_assert_cmpuint (n, ==, 3);
}

static void
test_factory_reports_missing_elements (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpFactory) f = cp_factory_new_from_text ("missing",
      "fakesrc ! callpipenosuchelement contact-id=${CONTACT_ID} ! fakesink",
      &error);
  g_autoptr (GHashTable) v = values_new ();
  GstElement *p;

  g_assert_no_error (error);
  g_assert_false (cp_factory_is_available (f));
  g_assert_cmpstr (cp_factory_get_missing (f)[0], ==, "callpipenosuchelement");
  set (v, "CONTACT_ID", "c1");
  p = cp_factory_create_pipeline (f, "p", v, &error);
  g_assert_null (p);
  g_assert_error (error, CP_FACTORY_ERROR, CP_FACTORY_ERROR_MISSING_ELEMENTS);
  g_assert_nonnull (strstr (error->message, "callpipenosuchelement"));
}

static void
test_factory_rejects_bad_files (void)
{
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;

  g_assert_null (cp_factory_new_from_text ("bad", "fakesrc ! ! fakesink", &e1));
  g_assert_error (e1, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID);
  g_assert_null (cp_factory_new_from_text ("empty", "# nothing\n", &e2));
  g_assert_error (e2, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID);
  g_assert_null (cp_factory_load ("/nonexistent", "../etc/passwd", &e3));
  g_assert_error (e3, CP_FACTORY_ERROR, CP_FACTORY_ERROR_INVALID);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/callpiped/template/expand-quotes",
      test_expand_quotes_every_value);
  g_test_add_func ("/callpiped/template/quote-escapes", test_quote_escapes);
  g_test_add_func ("/callpiped/template/element-variables",
      test_element_variables);
  g_test_add_func ("/callpiped/template/hostile-values",
      test_hostile_values_rejected);
  g_test_add_func ("/callpiped/template/good-values",
      test_good_values_accepted);
  g_test_add_func ("/callpiped/template/unknown-missing",
      test_unknown_and_missing_variables);
  g_test_add_func ("/callpiped/template/single-pass", test_single_pass);
  g_test_add_func ("/callpiped/template/integer-bare", test_integer_bare);
  g_test_add_func ("/callpiped/template/comments", test_comments_stripped);
  g_test_add_func ("/callpiped/template/gst-round-trip",
      test_gst_parse_round_trip);
  g_test_add_func ("/callpiped/factory/missing-elements",
      test_factory_reports_missing_elements);
  g_test_add_func ("/callpiped/factory/bad-files",
      test_factory_rejects_bad_files);
  return g_test_run ();
}

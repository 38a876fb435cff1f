/* s3sink and s3src without a peer: properties, the URI handler, and
 * clear errors for a bad location or an endpoint that refuses. */
#include <gst/check/gstcheck.h>

#include <gio/gio.h>
#include <string.h>

static guint16
closed_port (void)
{
  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any = g_inet_socket_address_new (lo, 0);
  GSocketAddress *bound;
  guint16 port;

  fail_unless (g_socket_bind (sock, any, FALSE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  g_object_unref (any);
  g_object_unref (lo);
  g_object_unref (sock);
  return port;
}

/* Runs @desc to EOS or error; returns the error (or NULL). */
static GError *
run (const gchar *desc)
{
  GstElement *pipeline = gst_parse_launch (desc, NULL);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;
  GError *error = NULL;

  fail_unless (pipeline != NULL);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no EOS or error");
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
    gst_message_parse_error (msg, &error, NULL);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return error;
}

GST_START_TEST (test_sink_properties)
{
  GstElement *sink = gst_element_factory_make ("s3sink", NULL);
  gchar *secret = NULL;
  guint64 part_size;
  guint inflight;
  gint on_error;

  fail_unless (sink != NULL);
  g_object_get (sink, "part-size", &part_size, "max-inflight-parts", &inflight,
      "on-error", &on_error, NULL);
  fail_unless_equals_uint64 (part_size, 8 * 1024 * 1024);
  fail_unless_equals_int (inflight, 4);
  fail_unless_equals_int (on_error, 0);

  g_object_set (sink, "secret-key", "wJalrXUtnFEMI", NULL);
  g_object_get (sink, "secret-key", &secret, NULL);
  fail_unless (strstr (secret, "wJalr") == NULL);
  g_free (secret);

  gst_util_set_object_arg (G_OBJECT (sink), "on-error", "complete");
  g_object_get (sink, "on-error", &on_error, NULL);
  fail_unless_equals_int (on_error, 1);
  gst_util_set_object_arg (G_OBJECT (sink), "metadata", "m, contact-id=x");
  gst_object_unref (sink);
}

GST_END_TEST;

/* Asks @sink's sink pad whether it can seek in @format. */
static gboolean
query_seeking (GstElement *sink, GstFormat format, gint64 *start, gint64 *end)
{
  GstPad *pad = gst_element_get_static_pad (sink, "sink");
  GstQuery *query = gst_query_new_seeking (format);
  gboolean seekable = FALSE;

  fail_unless (gst_pad_query (pad, query));
  gst_query_parse_seeking (query, NULL, &seekable, start, end);
  gst_query_unref (query);
  gst_object_unref (pad);
  return seekable;
}

/* Seekable in bytes over the first part (the range muxers rewrite their
 * header in), as long as header-rewrite holds it; never in time. */
GST_START_TEST (test_sink_seeking_query)
{
  GstElement *sink = gst_element_factory_make ("s3sink", NULL);
  gboolean header_rewrite = FALSE;
  gint64 start = -1, end = -1;

  g_object_get (sink, "header-rewrite", &header_rewrite, NULL);
  fail_unless (header_rewrite);
  g_object_set (sink, "part-size", (guint64) 6 * 1024 * 1024, NULL);
  fail_unless (query_seeking (sink, GST_FORMAT_BYTES, &start, &end));
  fail_unless_equals_int64 (start, 0);
  fail_unless_equals_int64 (end, 6 * 1024 * 1024);
  fail_if (query_seeking (sink, GST_FORMAT_TIME, NULL, NULL));

  g_object_set (sink, "header-rewrite", FALSE, NULL);
  fail_if (query_seeking (sink, GST_FORMAT_BYTES, NULL, NULL));
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_uri_handler)
{
  GError *error = NULL;
  GstElement *src = gst_element_make_from_uri (GST_URI_SRC,
      "s3://bucket/a/b.wav", NULL, &error);
  GstElement *sink = gst_element_make_from_uri (GST_URI_SINK,
      "s3://bucket/out.wav", NULL, &error);
  gchar *location = NULL;

  g_assert_no_error (error);
  fail_unless_equals_string (G_OBJECT_TYPE_NAME (src), "GstS3Src");
  fail_unless_equals_string (G_OBJECT_TYPE_NAME (sink), "GstS3Sink");
  g_object_get (src, "location", &location, NULL);
  fail_unless_equals_string (location, "s3://bucket/a/b.wav");
  g_free (location);
  fail_if (
      gst_uri_handler_set_uri (GST_URI_HANDLER (sink), "s3://nokey", &error));
  g_clear_error (&error);
  gst_object_unref (src);
  gst_object_unref (sink);
}

GST_END_TEST;

GST_START_TEST (test_bad_location)
{
  GError *error = run ("fakesrc num-buffers=1 ! s3sink location=s3://bucket");

  fail_unless (
      g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS));
  fail_unless (strstr (error->message, "s3://bucket/key") != NULL, "%s",
      error->message);
  g_error_free (error);

  error = run ("s3src ! fakesink");
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND));
  g_error_free (error);
}

GST_END_TEST;

GST_START_TEST (test_bad_metadata)
{
  GError *error = run ("fakesrc num-buffers=1 ! s3sink location=s3://b/k "
                       "access-key=a secret-key=b endpoint=http://127.0.0.1:1 "
                       "metadata=\"m, note=\\\"caf\xc3\xa9\\\"\"");

  fail_unless (
      g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS));
  g_error_free (error);
}

GST_END_TEST;

/* The connection is refused: an error naming the operation and the
 * object, after the retries, never a hang. */
GST_START_TEST (test_endpoint_refuses)
{
  gchar *desc =
      g_strdup_printf ("fakesrc num-buffers=3 sizetype=fixed "
                       "sizemax=1000 filltype=zero ! s3sink "
                       "location=s3://b/k.bin "
                       "endpoint=http://127.0.0.1:%u access-key=a secret-key=b "
                       "retry-attempts=1",
          closed_port ());
  GError *error = run (desc);

  fail_unless (
      g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_WRITE));
  fail_unless (strstr (error->message, "PutObject of s3://b/k.bin") != NULL,
      "%s", error->message);
  g_error_free (error);
  g_free (desc);

  desc =
      g_strdup_printf ("s3src location=s3://b/k.bin "
                       "endpoint=http://127.0.0.1:%u access-key=a secret-key=b "
                       "retry-attempts=1 ! fakesink",
          closed_port ());
  error = run (desc);
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_READ));
  fail_unless (strstr (error->message, "HeadObject of s3://b/k.bin") != NULL,
      "%s", error->message);
  g_error_free (error);
  g_free (desc);
}

GST_END_TEST;

static Suite *
s3elements_suite (void)
{
  Suite *s = suite_create ("s3elements");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_sink_properties);
  tcase_add_test (tc, test_sink_seeking_query);
  tcase_add_test (tc, test_uri_handler);
  tcase_add_test (tc, test_bad_location);
  tcase_add_test (tc, test_bad_metadata);
  tcase_add_test (tc, test_endpoint_refuses);
  return s;
}

GST_CHECK_MAIN (s3elements);

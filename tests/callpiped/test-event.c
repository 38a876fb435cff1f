/* Unit tests: POST /calls bodies (Connect Lambda event and flat form). */
#include "cp-event.h"

#include <string.h>

/* Shaped as Amazon Connect sends it from an "Invoke AWS Lambda function"
 * block after "Start media streaming". */
static const gchar connect_event[] =
    "{\n"
    "  \"Details\": {\n"
    "    \"ContactData\": {\n"
    "      \"Attributes\": {\"language\": \"en-US\", \"tier\": \"gold\"},\n"
    "      \"AwsRegion\": \"eu-west-2\",\n"
    "      \"Channel\": \"VOICE\",\n"
    "      \"ContactId\": \"4a573372-1f28-4e26-b97b-ae3e1a8a0000\",\n"
    "      \"CustomerEndpoint\": {\"Address\": \"+441234567890\",\n"
    "                             \"Type\": \"TELEPHONE_NUMBER\"},\n"
    "      \"InitialContactId\": \"4a573372-1f28-4e26-b97b-ae3e1a8a0000\",\n"
    "      \"InitiationMethod\": \"INBOUND\",\n"
    "      \"InstanceARN\": \"arn:aws:connect:eu-west-2:111111111111:"
    "instance/aaaa-bbbb\",\n"
    "      \"MediaStreams\": {\n"
    "        \"Customer\": {\n"
    "          \"Audio\": {\n"
    "            \"StartFragmentNumber\": "
    "\"91343852333181432392682062622220590765191907586\",\n"
    "            \"StartTimestamp\": \"1565781909613\",\n"
    "            \"StreamARN\": \"arn:aws:kinesisvideo:eu-west-2:"
    "111111111111:stream/instance-alias-contact-ddddddd/1565272947806\"\n"
    "          }\n"
    "        }\n"
    "      },\n"
    "      \"PreviousContactId\": \"4a573372-1f28-4e26-b97b-ae3e1a8a0000\",\n"
    "      \"Queue\": null,\n"
    "      \"SystemEndpoint\": {\"Address\": \"+441234000000\",\n"
    "                           \"Type\": \"TELEPHONE_NUMBER\"}\n"
    "    },\n"
    "    \"Parameters\": {\"sampleKey\": \"sampleValue\"}\n"
    "  },\n"
    "  \"Name\": \"ContactFlowEvent\"\n"
    "}\n";

static CpCallRequest *
parse (const gchar *body, GError **error)
{
  return cp_call_request_parse (body, strlen (body), error);
}

static void
test_connect_event (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpCallRequest) r = parse (connect_event, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (r->contact_id, ==, "4a573372-1f28-4e26-b97b-ae3e1a8a0000");
  g_assert_cmpstr (r->stream_arn, ==,
      "arn:aws:kinesisvideo:eu-west-2:"
      "111111111111:stream/instance-alias-contact-ddddddd/1565272947806");
  g_assert_cmpstr (r->start_fragment, ==,
      "91343852333181432392682062622220590765191907586");
  g_assert_cmpint (r->start_timestamp, ==, G_GINT64_CONSTANT (1565781909613));
  g_assert_null (r->media_uri);
  g_assert_nonnull (strstr (r->attributes_json, "\"tier\":\"gold\""));
}

static void
test_connect_event_media_parameter (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpCallRequest) r =
      parse ("{\"Details\": {\"ContactData\": "
             "{\"ContactId\": \"c-1\"}, \"Parameters\": "
             "{\"mediaUri\": \"file:///tmp/call.wav\"}}}",
          &error);

  g_assert_no_error (error);
  g_assert_cmpstr (r->contact_id, ==, "c-1");
  g_assert_null (r->stream_arn);
  g_assert_cmpstr (r->media_uri, ==, "file:///tmp/call.wav");
}

static void
test_flat_event (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpCallRequest) r =
      parse ("{\"contactId\": \"c-2\", "
             "\"streamArn\": \"arn:aws:kinesisvideo:us-east-1:1:stream/s/1\", "
             "\"startFragmentNumber\": \"123\", \"startTimestamp\": "
             "1565781909613, "
             "\"mediaUri\": \"http://127.0.0.1:1/x.wav\"}",
          &error);

  g_assert_no_error (error);
  g_assert_cmpstr (r->contact_id, ==, "c-2");
  g_assert_cmpstr (r->start_fragment, ==, "123");
  g_assert_cmpint (r->start_timestamp, ==, G_GINT64_CONSTANT (1565781909613));
  g_assert_cmpstr (r->media_uri, ==, "http://127.0.0.1:1/x.wav");
}

static void
expect_error (const gchar *body, gint code, const gchar *field)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpCallRequest) r = parse (body, &error);

  g_assert_null (r);
  g_assert_error (error, CP_EVENT_ERROR, code);
  if (field != NULL && strstr (error->message, field) == NULL)
    g_error ("'%s' does not name %s", error->message, field);
}

static void
test_bad_events (void)
{
  expect_error ("{\"contactId\": ", CP_EVENT_ERROR_MALFORMED, NULL);
  expect_error ("[1, 2]", CP_EVENT_ERROR_MALFORMED, NULL);
  expect_error ("", CP_EVENT_ERROR_MALFORMED, NULL);
  expect_error ("{\"Details\": {\"ContactData\": {}}}",
      CP_EVENT_ERROR_MISSING_FIELD, "Details.ContactData.ContactId");
  expect_error ("{\"Details\": {}}", CP_EVENT_ERROR_MISSING_FIELD,
      "Details.ContactData");
  expect_error ("{\"Details\": \"x\"}", CP_EVENT_ERROR_INVALID_FIELD,
      "Details");
  expect_error ("{\"Details\": {\"ContactData\": {\"ContactId\": 7}}}",
      CP_EVENT_ERROR_INVALID_FIELD, "Details.ContactData.ContactId");
  expect_error ("{\"Details\": {\"ContactData\": {\"ContactId\": \"c\", "
                "\"MediaStreams\": {\"Customer\": {\"Audio\": {\"StreamARN\": "
                "\"arn:x\", \"StartTimestamp\": \"soon\"}}}}}}",
      CP_EVENT_ERROR_INVALID_FIELD,
      "Details.ContactData.MediaStreams.Customer.Audio.StartTimestamp");
  expect_error ("{\"Details\": {\"ContactData\": {\"ContactId\": \"c\", "
                "\"Attributes\": {\"a\": 1}}}, \"mediaUri\": \"file:///x\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "Details.ContactData.Attributes.a");
  expect_error ("{\"contactId\": 5}", CP_EVENT_ERROR_INVALID_FIELD,
      "contactId");
  expect_error ("{\"streamArn\": \"arn:a\"}", CP_EVENT_ERROR_MISSING_FIELD,
      "contactId");
  expect_error ("{\"contactId\": \"c\"}", CP_EVENT_ERROR_MISSING_FIELD,
      "mediaUri");
  expect_error ("{\"contactId\": \"c\\\" ! filesink\", \"mediaUri\": "
                "\"file:///x\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "contactId");
  expect_error ("{\"contactId\": \"c\", \"mediaUri\": \"file:///a\\\"b\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "mediaUri");
  expect_error ("{\"contactId\": \"c\", \"mediaUri\": \"s3://b/k.wav\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "mediaUri");
  expect_error ("{\"contactId\": \"c\", \"streamArn\": \"stream/x\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "streamArn");
  expect_error ("{\"contactId\": \"c\", \"startTimestamp\": -5, "
                "\"mediaUri\": \"file:///x\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "startTimestamp");
  expect_error ("{\"contactId\": \"c\", \"startFragmentNumber\": 1.5, "
                "\"mediaUri\": \"file:///x\"}",
      CP_EVENT_ERROR_INVALID_FIELD, "startFragmentNumber");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/callpiped/event/connect", test_connect_event);
  g_test_add_func ("/callpiped/event/connect-media-parameter",
      test_connect_event_media_parameter);
  g_test_add_func ("/callpiped/event/flat", test_flat_event);
  g_test_add_func ("/callpiped/event/bad", test_bad_events);
  return g_test_run ();
}

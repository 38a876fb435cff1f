/* Unit tests of the Nova Sonic protocol module: the signing test vector
 * of research/novasonic.md, the input events, output parsing (malformed
 * input included), tool files and the history rules. */
#include <json-glib/json-glib.h>
#include <string.h>

#include "aws/awscrypto.h"
#include "aws/eventsigner.h"
#include "sonicprotocol.h"

#define VECTOR_HOST "bedrock-runtime.us-east-1.amazonaws.com"
#define VECTOR_TIME G_GINT64_CONSTANT (1735787045) /* 2025-01-02T03:04:05Z */

/* The fixture was made by the JS SDK, which signs ":authority" as we do
 * for HTTP/2: path double encoding, headers and payload hash must match
 * the SDK's byte for byte to give its signature. */
static void
test_request_signature_vector (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpAwsSigV4Result) res = NULL;

  res = sonic_sign_request (VECTOR_HOST, "amazon.nova-sonic-v1:0", "us-east-1",
      "AKIDEXAMPLE", "SECRET", "TOKEN", VECTOR_TIME, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->path, ==,
      "/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream");
  g_assert_true (
      strstr (res->canonical_request,
          "/model/amazon.nova-sonic-v1%253A0/invoke-with-bidirectional-stream")
      != NULL);
  g_assert_true (strstr (res->canonical_request,
                     "\n:authority:" VECTOR_HOST "\ncontent-type:")
      != NULL);
  g_assert_cmpstr (res->signed_headers, ==,
      ":authority;content-type;x-amz-content-sha256;x-amz-date;"
      "x-amz-security-token");
  g_assert_cmpstr (res->signature, ==,
      "f8bc2fe45a51f6c7bebafdf7becbfc1a47900ff20ef2ac10dfaa4ae9dcaf4012");
}

/* The first event of the fixture: our wrapping of sessionStart gives the
 * inner message byte for byte, and signed on the fixture's seed the frame
 * of 226 bytes with the fixture's chunk signature and CRC. */
static void
test_first_chunk_vector (void)
{
  static const gchar inner_hex[] =
      "0000008f0000004bb79a60320b3a6576656e742d747970650700056368756e6b0d3a"
      "6d6573736167652d747970650700056576656e740d3a636f6e74656e742d74797065"
      "0700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c64"
      "6d56756443493665794a7a5a584e7a6157397555335268636e51694f6e7439665830"
      "3d227d2e4b83b9";
  g_autoptr (CpAwsEventMessage) inner =
      sonic_wrap_event ("{\"event\":{\"sessionStart\":{}}}");
  g_autoptr (CpAwsEventSigner) signer = NULL;
  g_autoptr (CpAwsEventMessage) outer = NULL;
  g_autoptr (GBytes) encoded = NULL, frame = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *hex = NULL, *sig_hex = NULL, *crc_hex = NULL;
  GBytes *sig;
  const guint8 *data;
  gsize len;

  encoded = cp_aws_event_message_encode (inner, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (encoded, &len);
  hex = cp_aws_hex_encode (data, len);
  g_assert_cmpstr (hex, ==, inner_hex);

  signer = cp_aws_event_signer_new ("SECRET", "us-east-1", "bedrock",
      "f8bc2fe45a51f6c7bebafdf7becbfc1a47900ff20ef2ac10dfaa4ae9dcaf4012",
      &error);
  g_assert_no_error (error);
  frame = cp_aws_event_signer_sign_event (signer, inner, VECTOR_TIME * 1000,
      &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (frame, &len);
  g_assert_cmpuint (len, ==, 226);
  crc_hex = cp_aws_hex_encode (data + len - 4, 4);
  g_assert_cmpstr (crc_hex, ==, "15a3ac90");
  outer = cp_aws_event_message_decode (data, len, &error);
  g_assert_no_error (error);
  sig = cp_aws_event_message_get_bytes (outer, ":chunk-signature");
  g_assert_nonnull (sig);
  sig_hex = cp_aws_hex_encode (g_bytes_get_data (sig, NULL), 32);
  g_assert_cmpstr (sig_hex, ==,
      "08b474e6f667cd89ca6012ea35a890850a3b372aa1c8bfc9ccc55102601e5421");
}

static JsonObject *
event_body (JsonParser *parser, const gchar *json, const gchar *name)
{
  JsonObject *root;

  g_assert_true (json_parser_load_from_data (parser, json, -1, NULL));
  root = json_node_get_object (json_parser_get_root (parser));
  return json_object_get_object_member (json_object_get_object_member (root,
                                            "event"),
      name);
}

static void
test_input_events (void)
{
  g_autoptr (SonicConfig) config = sonic_config_new ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree gchar *start = NULL, *prompt = NULL, *audio = NULL;
  g_autofree gchar *tool = NULL, *system = NULL, *schema = NULL;
  JsonObject *o, *spec;
  SonicTool *t;
  static const guint8 pcm[] = {1, 0, 2, 0};

  config->model_id = g_strdup ("amazon.nova-2-sonic-v1:0");
  config->output_rate = 8000;
  config->endpointing = g_strdup ("HIGH");
  config->system_prompt = g_strdup ("Be brief.");
  config->tools =
      g_ptr_array_new_with_free_func ((GDestroyNotify) sonic_tool_free);
  t = sonic_tool_parse ("{\"name\":\"end_call\",\"description\":\"d\","
                        "\"input_schema\":{\"type\":\"object\"},"
                        "\"instruction\":\"Say bye.\"}",
      -1, NULL);
  g_assert_nonnull (t);
  g_ptr_array_add (config->tools, t);

  start = sonic_event_session_start (config);
  o = event_body (parser, start, "sessionStart");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o,
                                                   "inferenceConfiguration"),
                       "maxTokens"),
      ==, 1024);
  g_assert_cmpstr (
      json_object_get_string_member (json_object_get_object_member (o,
                                         "turnDetectionConfiguration"),
          "endpointingSensitivity"),
      ==, "HIGH");

  prompt = sonic_event_prompt_start (config, "p1");
  o = event_body (parser, prompt, "promptStart");
  g_assert_cmpstr (json_object_get_string_member (o, "promptName"), ==, "p1");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o,
                                                   "audioOutputConfiguration"),
                       "sampleRateHertz"),
      ==, 8000);
  spec = json_object_get_object_member (
      json_array_get_object_element (
          json_object_get_array_member (json_object_get_object_member (o,
                                            "toolConfiguration"),
              "tools"),
          0),
      "toolSpec");
  schema = g_strdup (
      json_object_get_string_member (json_object_get_object_member (spec,
                                         "inputSchema"),
          "json"));
  g_assert_cmpstr (schema, ==, "{\"type\":\"object\"}");

  audio = sonic_event_audio_input ("p1", "a1", pcm, sizeof pcm);
  o = event_body (parser, audio, "audioInput");
  g_assert_cmpstr (json_object_get_string_member (o, "content"), ==,
      "AQACAA==");

  tool = sonic_event_tool_content_start ("p1", "t1", "u1");
  o = event_body (parser, tool, "contentStart");
  g_assert_cmpstr (
      json_object_get_string_member (json_object_get_object_member (o,
                                         "toolResultInputConfiguration"),
          "toolUseId"),
      ==, "u1");

  system = sonic_config_system_text (config);
  g_assert_cmpstr (system, ==, "Be brief.\n\nTool end_call: Say bye.");
}

static CpAwsEventMessage *
chunk_of (const gchar *json)
{
  return sonic_wrap_event (json);
}

static SonicOutputEvent *
parse_json_event (const gchar *json, GError **error)
{
  g_autoptr (CpAwsEventMessage) msg = chunk_of (json);

  return sonic_output_event_parse (msg, error);
}

static void
test_output_events (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SonicOutputEvent) ev = NULL;
  g_autoptr (CpAwsEventMessage) exc = cp_aws_event_message_new ();
  g_autoptr (GBytes) payload = NULL;

  ev = parse_json_event ("{\"event\":{\"contentStart\":{\"contentId\":\"k\","
                         "\"type\":\"TEXT\",\"role\":\"ASSISTANT\","
                         "\"additionalModelFields\":"
                         "\"{\\\"generationStage\\\":\\\"SPECULATIVE\\\"}\"}}}",
      &error);
  g_assert_no_error (error);
  g_assert_cmpint (ev->kind, ==, SONIC_OUT_CONTENT_START);
  g_assert_cmpint (ev->stage, ==, SONIC_STAGE_SPECULATIVE);
  g_assert_cmpint (ev->role, ==, SONIC_ROLE_ASSISTANT);
  g_clear_pointer (&ev, sonic_output_event_free);

  ev = parse_json_event ("{\"event\":{\"textOutput\":{\"contentId\":\"k\","
                         "\"role\":\"ASSISTANT\",\"content\":\"{ "
                         "\\\"interrupted\\\" : true }\"}}}",
      &error);
  g_assert_no_error (error);
  g_assert_true (ev->interrupted);
  g_clear_pointer (&ev, sonic_output_event_free);

  ev = parse_json_event ("{\"event\":{\"audioOutput\":{\"contentId\":\"k\","
                         "\"content\":\"AQACAA==\"}}}",
      &error);
  g_assert_no_error (error);
  g_assert_cmpint (ev->kind, ==, SONIC_OUT_AUDIO);
  g_assert_cmpuint (g_bytes_get_size (ev->audio), ==, 4);
  g_clear_pointer (&ev, sonic_output_event_free);

  ev = parse_json_event ("{\"event\":{\"toolUse\":{\"toolName\":\"t\","
                         "\"toolUseId\":\"u\",\"content\":\"{}\"}}}",
      &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ev->tool_use_id, ==, "u");
  g_clear_pointer (&ev, sonic_output_event_free);

  ev = parse_json_event ("{\"event\":{\"usageEvent\":{\"totalInputTokens\":3,"
                         "\"totalOutputTokens\":4,\"totalTokens\":7}}}",
      &error);
  g_assert_no_error (error);
  g_assert_cmpint (ev->total_tokens, ==, 7);
  g_clear_pointer (&ev, sonic_output_event_free);

  ev = parse_json_event ("{\"event\":{\"somethingNew\":{}}}", &error);
  g_assert_no_error (error);
  g_assert_cmpint (ev->kind, ==, SONIC_OUT_UNKNOWN);
  g_clear_pointer (&ev, sonic_output_event_free);

  cp_aws_event_message_set_string (exc, ":message-type", "exception");
  cp_aws_event_message_set_string (exc, ":exception-type",
      "modelTimeoutException");
  payload = g_bytes_new_static ("{\"message\":\"timed out\"}", 23);
  cp_aws_event_message_set_payload (exc, payload);
  ev = sonic_output_event_parse (exc, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ev->kind, ==, SONIC_OUT_EXCEPTION);
  g_assert_cmpstr (ev->exception_message, ==, "timed out");
  g_assert_true (sonic_exception_is_retryable (ev->exception_type));
  g_assert_false (sonic_exception_is_retryable ("validationException"));
}

static void
test_malformed_events (void)
{
  static const gchar *const bad[] = {
      "not json",
      "{\"event\":5}",
      "{\"event\":{}}",
      "{\"event\":{\"a\":{},\"b\":{}}}",
      "{\"event\":{\"textOutput\":{\"content\":3}}}",
      "{\"event\":{\"audioOutput\":{\"content\":\"@@@@\"}}}",
      "{\"event\":{\"audioOutput\":{\"content\":\"AQID\"}}}",
      "{\"event\":{\"toolUse\":{\"toolName\":\"x\"}}}",
      "{\"event\":{\"contentStart\":[]}}",
  };
  g_autoptr (CpAwsEventMessage) raw = cp_aws_event_message_new ();
  g_autoptr (CpAwsEventMessage) untyped = cp_aws_event_message_new ();
  g_autoptr (GBytes) payload = NULL;
  GError *error = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_test_message ("case %s", bad[i]);
    g_assert_null (parse_json_event (bad[i], &error));
    g_assert_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED);
    g_clear_error (&error);
  }
  cp_aws_event_message_set_string (raw, ":message-type", "event");
  cp_aws_event_message_set_string (raw, ":event-type", "chunk");
  payload = g_bytes_new_static ("{\"bytes\":\"not base64!\"}", 23);
  cp_aws_event_message_set_payload (raw, payload);
  g_assert_null (sonic_output_event_parse (raw, &error));
  g_assert_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED);
  g_clear_error (&error);
  g_assert_null (sonic_output_event_parse (untyped, &error));
  g_assert_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED);
  g_clear_error (&error);
}

static void
test_history (void)
{
  g_autoptr (SonicHistory) history = sonic_history_new ();
  g_autoptr (GPtrArray) out = NULL;
  g_autofree gchar *big = g_strnfill (3000, 'x');
  SonicHistoryEntry *e;
  guint i;

  sonic_history_add (history, SONIC_ROLE_ASSISTANT, "Hello, how can I help?");
  sonic_history_add (history, SONIC_ROLE_USER, "my order");
  sonic_history_add (history, SONIC_ROLE_USER, "is late");
  sonic_history_add (history, SONIC_ROLE_ASSISTANT, big);
  out = sonic_history_export (history);
  g_assert_cmpuint (out->len, ==, 2);
  e = g_ptr_array_index (out, 0);
  g_assert_cmpint (e->role, ==, SONIC_ROLE_USER);
  g_assert_cmpstr (e->text, ==, "my order is late");
  e = g_ptr_array_index (out, 1);
  g_assert_cmpuint (strlen (e->text), ==, SONIC_HISTORY_MAX_MESSAGE);
  g_clear_pointer (&out, g_ptr_array_unref);

  for (i = 0; i < 200; i++) {
    sonic_history_add (history, SONIC_ROLE_USER, big);
    sonic_history_add (history, SONIC_ROLE_ASSISTANT, big);
  }
  out = sonic_history_export (history);
  {
    gsize total = 0;

    for (i = 0; i < out->len; i++) {
      e = g_ptr_array_index (out, i);
      total += strlen (e->text);
      g_assert_cmpint (e->role, ==,
          i % 2 ? SONIC_ROLE_ASSISTANT : SONIC_ROLE_USER);
    }
    g_assert_cmpuint (total, <=, SONIC_HISTORY_MAX_TOTAL);
    g_assert_cmpuint (total, >, SONIC_HISTORY_MAX_TOTAL - 2048);
  }
}

static void
test_shipped_tools (void)
{
  const gchar *dir = g_getenv ("CALLPIPE_PIPELINES_DIR");
  g_autofree gchar *tools_dir = NULL;
  g_autoptr (GPtrArray) tools = NULL;
  g_autoptr (GError) error = NULL;
  gboolean transfer = FALSE, end = FALSE;
  guint i;

  g_assert_nonnull (dir);
  tools_dir = g_build_filename (dir, "tools", NULL);
  tools = sonic_tools_load_dir (tools_dir, &error);
  g_assert_no_error (error);
  for (i = 0; i < tools->len; i++) {
    SonicTool *t = g_ptr_array_index (tools, i);

    transfer |= g_strcmp0 (t->name, "transfer_to_agent") == 0
        && strstr (t->input_schema, "reason") != NULL;
    end |= g_strcmp0 (t->name, "end_call") == 0;
  }
  g_assert_true (transfer);
  g_assert_true (end);

  g_assert_null (sonic_tool_parse ("{\"name\":\"x\"}", -1, &error));
  g_assert_error (error, SONIC_ERROR, SONIC_ERROR_TOOL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/novasonic/protocol/request-signature-vector",
      test_request_signature_vector);
  g_test_add_func ("/novasonic/protocol/first-chunk-vector",
      test_first_chunk_vector);
  g_test_add_func ("/novasonic/protocol/input-events", test_input_events);
  g_test_add_func ("/novasonic/protocol/output-events", test_output_events);
  g_test_add_func ("/novasonic/protocol/malformed-events",
      test_malformed_events);
  g_test_add_func ("/novasonic/protocol/history", test_history);
  g_test_add_func ("/novasonic/protocol/shipped-tools", test_shipped_tools);
  return g_test_run ();
}

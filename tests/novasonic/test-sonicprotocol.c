/* Unit tests of the Nova Sonic protocol module: the signing test vector
 * of research/novasonic.md, the input events, output parsing (malformed
 * input included), tool files and the history rules; and the in-place
 * encoding the sender batches audio with (the chunk message, the signed
 * frames of gst/aws one after the other in one buffer). */
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

static SonicOutputEvent *
parse_payload (const gchar *payload, GError **error)
{
  g_autoptr (CpAwsEventMessage) raw = cp_aws_event_message_new ();
  g_autoptr (GBytes) bytes = g_bytes_new (payload, strlen (payload));

  cp_aws_event_message_set_string (raw, ":message-type", "event");
  cp_aws_event_message_set_string (raw, ":event-type", "chunk");
  cp_aws_event_message_set_payload (raw, bytes);
  return sonic_output_event_parse (raw, error);
}

/* The compact {"bytes":"..."} the service writes is read without the JSON
 * parser; every other spelling of the same JSON reads the same, and near
 * misses are malformed either way. */
static void
test_chunk_payload_forms (void)
{
  static const gchar json[] =
      "{\"event\":{\"textOutput\":{\"contentId\":\"c1\","
      "\"role\":\"USER\",\"content\":\"hi\"}}}";
  g_autofree gchar *b64 =
      g_base64_encode ((const guchar *) json, strlen (json));
  g_autofree gchar *b64_short = g_strndup (b64, strlen (b64) - 1);
  gchar *good[6], *bad[4];
  guint i;

  /* Its first character spelt \u0065: only a JSON parser reads that. */
  g_assert_cmpint (b64[0], ==, 'e');
  good[0] = g_strdup_printf ("{\"bytes\":\"%s\"}", b64);
  good[1] = g_strdup_printf ("{ \"bytes\" : \"%s\" }", b64);
  good[2] = g_strdup_printf ("{\"bytes\":\"%s\",\"p\":\"x\"}", b64);
  good[3] = g_strdup_printf ("{\"p\":1,\"bytes\":\"%s\"}", b64);
  good[4] = g_strdup_printf ("{\"bytes\":\"\\u0065%s\"}", b64 + 1);
  good[5] = g_strdup_printf ("{\"bytes\":\"%s\"}\n", b64);
  bad[0] = g_strdup_printf ("{\"bytes\":\"%s\"}", b64_short);
  bad[1] = g_strdup_printf ("{\"bytes\":\"%s\"}}", b64);
  bad[2] = g_strdup_printf ("{\"bytes\":\"%s=\"}", b64);
  bad[3] = g_strdup ("{\"bytes\":\"\"}");
  for (i = 0; i < G_N_ELEMENTS (good); i++) {
    g_autoptr (SonicOutputEvent) ev = NULL;
    g_autoptr (GError) error = NULL;

    g_test_message ("good %s", good[i]);
    ev = parse_payload (good[i], &error);
    g_assert_no_error (error);
    g_assert_cmpint (ev->kind, ==, SONIC_OUT_TEXT);
    g_assert_cmpstr (ev->text, ==, "hi");
    g_assert_cmpstr (ev->content_id, ==, "c1");
    g_free (good[i]);
  }
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;

    g_test_message ("bad %s", bad[i]);
    g_assert_null (parse_payload (bad[i], &error));
    g_assert_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED);
    g_free (bad[i]);
  }
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

/* The audio chunk built in place is the message the generic path gives,
 * wherever it starts in the buffer and whatever the scratch held. */
static void
test_audio_chunk_in_place (void)
{
  static const gsize lengths[] = {0, 1, 2, 3, 4, 512, 1024, 1025, 4096};
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GString) scratch = g_string_new ("left over");
  g_autofree guint8 *pcm = g_malloc (4096);
  guint i;

  for (i = 0; i < 4096; i++)
    pcm[i] = (guint8) (i * 37 + 11);
  g_byte_array_append (out, (const guint8 *) "prefix", 6);
  for (i = 0; i < G_N_ELEMENTS (lengths); i++) {
    g_autofree gchar *json =
        sonic_event_audio_input ("prompt-1", "content-1", pcm, lengths[i]);
    g_autoptr (CpAwsEventMessage) msg = sonic_wrap_event (json);
    g_autoptr (GBytes) expected = cp_aws_event_message_encode (msg, NULL);
    g_autoptr (CpAwsEventMessage) decoded = NULL;
    g_autoptr (GError) error = NULL;
    gsize start = out->len;

    g_assert_true (sonic_append_audio_chunk (out, scratch, "prompt-1",
        "content-1", pcm, lengths[i], &error));
    g_assert_no_error (error);
    g_assert_cmpmem (out->data + start, out->len - start,
        g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
    decoded = cp_aws_event_message_decode (out->data + start, out->len - start,
        &error);
    g_assert_no_error (error);
    g_assert_cmpstr (cp_aws_event_message_get_event_type (decoded), ==,
        "chunk");
  }
  g_assert_cmpmem (out->data, 6, "prefix", 6);
}

/* A headers section over the limit fails and leaves the buffer as it
 * was before the message began. */
static void
test_message_in_place_limits (void)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  gsize start;

  g_byte_array_append (out, (const guint8 *) "abc", 3);
  start = cp_aws_event_stream_begin_message (out);
  g_assert_cmpuint (start, ==, 3);
  g_byte_array_set_size (out,
      out->len + CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN + 1);
  g_assert_false (cp_aws_event_stream_end_message (out, start,
      CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN + 1, &error));
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR,
      CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH);
  g_assert_cmpuint (out->len, ==, 3);
}

/* The signature of a frame as the chain defines it, computed with the
 * one-shot helpers of awscrypto (not the signer's own hashing). */
static gchar *
expected_signature (const gchar *prior, gint64 date_ms, const guint8 *inner,
    gsize inner_len)
{
  g_autoptr (CpAwsEventMessage) date_only = cp_aws_event_message_new ();
  g_autoptr (GByteArray) date_header = g_byte_array_new ();
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (date_ms / 1000);
  g_autofree gchar *amz = g_date_time_format (dt, "%Y%m%dT%H%M%SZ");
  g_autofree gchar *day = g_strndup (amz, 8);
  g_autofree gchar *date_hash = NULL, *payload_hash = NULL, *sts = NULL;
  guint8 key[CP_AWS_SHA256_LEN], mac[CP_AWS_SHA256_LEN];

  cp_aws_event_message_set_timestamp (date_only, ":date", date_ms);
  g_assert_true (
      cp_aws_event_message_encode_headers (date_only, date_header, NULL));
  date_hash = cp_aws_sha256_hex (date_header->data, date_header->len);
  payload_hash = cp_aws_sha256_hex (inner, inner_len);
  sts = g_strdup_printf ("AWS4-HMAC-SHA256-PAYLOAD\n%s\n"
                         "%s/us-east-1/bedrock/aws4_request\n%s\n%s\n%s",
      amz, day, prior, date_hash, payload_hash);
  cp_aws_derive_signing_key ("SECRET", day, "us-east-1", "bedrock", key);
  cp_aws_hmac_sha256 (key, sizeof (key), sts, strlen (sts), mac);
  return cp_aws_hex_encode (mac, sizeof (mac));
}

/* Frames signed one after the other in one buffer (as the sender batches
 * audio): each is the frame the one-at-a-time signer gives, each chains
 * on the one before, across a second and across midnight (a new signing
 * key); a bad date fails, cutting the buffer back, and the chain stays. */
static void
test_signed_batch (void)
{
  static const gchar seed[] =
      "f8bc2fe45a51f6c7bebafdf7becbfc1a47900ff20ef2ac10dfaa4ae9dcaf4012";
  /* 2025-01-01T23:59:59.500Z and on. */
  static const gint64 dates[] = {G_GINT64_CONSTANT (1735775999500),
      G_GINT64_CONSTANT (1735775999900), G_GINT64_CONSTANT (1735776000250),
      G_GINT64_CONSTANT (1735776001000)};
  g_autoptr (CpAwsEventSigner) batch_signer = NULL;
  g_autoptr (CpAwsEventSigner) single_signer = NULL;
  g_autoptr (GByteArray) batch = g_byte_array_new ();
  g_autoptr (GByteArray) singles = g_byte_array_new ();
  g_autoptr (GString) scratch = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *prior = g_strdup (seed);
  guint8 pcm[640];
  gsize off = 0, start;
  guint i;

  for (i = 0; i < sizeof (pcm); i++)
    pcm[i] = (guint8) i;
  batch_signer =
      cp_aws_event_signer_new ("SECRET", "us-east-1", "bedrock", seed, &error);
  g_assert_no_error (error);
  single_signer =
      cp_aws_event_signer_new ("SECRET", "us-east-1", "bedrock", seed, &error);
  g_assert_no_error (error);

  for (i = 0; i < G_N_ELEMENTS (dates); i++) {
    /* The last frame is the empty end-of-stream frame. */
    gboolean end = i == G_N_ELEMENTS (dates) - 1;
    g_autofree gchar *json =
        sonic_event_audio_input ("p", "c", pcm, sizeof (pcm) - 64 * i);
    g_autoptr (CpAwsEventMessage) inner = sonic_wrap_event (json);
    g_autoptr (GBytes) encoded = cp_aws_event_message_encode (inner, NULL);
    g_autoptr (GBytes) single = cp_aws_event_signer_sign_message (single_signer,
        end ? NULL : encoded, dates[i], &error);

    g_assert_no_error (error);
    g_byte_array_append (singles, g_bytes_get_data (single, NULL),
        g_bytes_get_size (single));
    start = cp_aws_event_signer_begin_frame (batch);
    if (!end)
      g_assert_true (sonic_append_audio_chunk (batch, scratch, "p", "c", pcm,
          sizeof (pcm) - 64 * i, NULL));
    g_assert_true (cp_aws_event_signer_end_frame (batch_signer, batch, start,
        dates[i], &error));
    g_assert_no_error (error);
  }
  g_assert_cmpmem (batch->data, batch->len, singles->data, singles->len);
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (batch_signer), ==,
      cp_aws_event_signer_get_prior_signature (single_signer));

  for (i = 0; i < G_N_ELEMENTS (dates); i++) {
    g_autoptr (CpAwsEventMessage) outer = NULL;
    g_autofree gchar *want = NULL, *got = NULL;
    gint64 date_ms = 0;
    GBytes *payload, *sig;
    guint32 len32;
    gsize len;

    g_assert_cmpuint (off + 4, <=, batch->len);
    memcpy (&len32, batch->data + off, 4);
    len = GUINT32_FROM_BE (len32);
    outer = cp_aws_event_message_decode (batch->data + off, len, &error);
    g_assert_no_error (error);
    g_assert_true (
        cp_aws_event_message_get_timestamp (outer, ":date", &date_ms));
    g_assert_cmpint (date_ms, ==, dates[i]);
    payload = cp_aws_event_message_get_payload (outer);
    sig = cp_aws_event_message_get_bytes (outer, ":chunk-signature");
    g_assert_nonnull (sig);
    got = cp_aws_hex_encode (g_bytes_get_data (sig, NULL),
        g_bytes_get_size (sig));
    want = expected_signature (prior, dates[i],
        g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
    g_assert_cmpstr (got, ==, want);
    g_free (prior);
    prior = g_steal_pointer (&got);
    off += len;
  }
  g_assert_cmpuint (off, ==, batch->len);

  start = cp_aws_event_signer_begin_frame (batch);
  g_assert_false (
      cp_aws_event_signer_end_frame (batch_signer, batch, start, -1, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE);
  g_assert_cmpuint (batch->len, ==, off);
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (batch_signer), ==,
      prior);
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
  g_test_add_func ("/novasonic/protocol/chunk-payload-forms",
      test_chunk_payload_forms);
  g_test_add_func ("/novasonic/protocol/history", test_history);
  g_test_add_func ("/novasonic/protocol/shipped-tools", test_shipped_tools);
  g_test_add_func ("/novasonic/protocol/audio-chunk-in-place",
      test_audio_chunk_in_place);
  g_test_add_func ("/novasonic/protocol/message-in-place-limits",
      test_message_in_place_limits);
  g_test_add_func ("/novasonic/protocol/signed-batch", test_signed_batch);
  return g_test_run ();
}

/* Unit tests for the STREAMING-AWS4-HMAC-SHA256-EVENTS chain: the public
 * vectors (aws-c-auth, aws-sdk-go, the Nova Sonic fixture), the envelope
 * layout of the Transcribe docs' frame, and the verifier. */
#include "aws/eventsigner.h"

#include <json-glib/json-glib.h>
#include <string.h>

static JsonObject *
load_streaming_vectors (JsonParser *parser)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autofree gchar *path = NULL;
  g_autoptr (GError) error = NULL;

  if (shared)
    path = g_build_filename (shared, "conformance", "sigv4",
        "streaming-and-s3-vectors.json", NULL);
  if (path == NULL || !g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_test_skip ("conformance/sigv4/streaming-and-s3-vectors.json not found "
                 "under CALLPIPE_SHARED_DIR: the signing-chain vectors are not "
                 "available");
    return NULL;
  }
  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static gint64
parse_iso8601_ms (const gchar *text)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_iso8601 (text, NULL);

  g_assert_nonnull (dt);
  return g_date_time_to_unix (dt) * 1000
      + g_date_time_get_microsecond (dt) / 1000;
}

static gchar *
chunk_signature_hex (GBytes *frame)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpAwsEventMessage) outer = NULL;
  GBytes *sig;

  outer = cp_aws_event_message_decode (g_bytes_get_data (frame, NULL),
      g_bytes_get_size (frame), &error);
  g_assert_no_error (error);
  sig = cp_aws_event_message_get_bytes (outer, ":chunk-signature");
  g_assert_nonnull (sig);
  return cp_aws_hex_encode (g_bytes_get_data (sig, NULL),
      g_bytes_get_size (sig));
}

static CpAwsEventSigner *
new_signer (const gchar *secret, const gchar *region, const gchar *service,
    const gchar *seed)
{
  g_autoptr (GError) error = NULL;
  CpAwsEventSigner *signer =
      cp_aws_event_signer_new (secret, region, service, seed, &error);

  g_assert_no_error (error);
  g_assert_nonnull (signer);
  return signer;
}

/* aws-c-auth tests/test_event_signing.c: payloads "A", "B", "C", then
 * the empty end-of-stream frame, one second apart. Each frame must also
 * verify on an independent chain. */
static void
test_aws_c_auth_chain (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (CpAwsEventSigner) signer = NULL;
  g_autoptr (CpAwsEventSigner) verifier = NULL;
  JsonObject *root = load_streaming_vectors (parser);
  JsonObject *vec;
  JsonArray *events;
  const gchar *seed;
  guint i;

  if (root == NULL)
    return;
  vec = json_object_get_object_member (root,
      "event_stream_STREAMING-AWS4-HMAC-SHA256-EVENTS");
  seed = json_object_get_string_member (vec, "seed_signature");
  g_assert_true (
      strstr (json_object_get_string_member (vec, "authorization"), seed)
      != NULL);
  signer = new_signer (json_object_get_string_member (vec, "secret_key"),
      json_object_get_string_member (vec, "region"),
      json_object_get_string_member (vec, "service"), seed);
  verifier = new_signer (json_object_get_string_member (vec, "secret_key"),
      json_object_get_string_member (vec, "region"),
      json_object_get_string_member (vec, "service"), seed);

  events = json_object_get_array_member (vec, "events");
  g_assert_cmpuint (json_array_get_length (events), ==, 4);
  for (i = 0; i < json_array_get_length (events); i++) {
    JsonObject *ev = json_array_get_object_element (events, i);
    const gchar *text = json_object_get_string_member (ev, "payload");
    const gchar *expected = json_object_get_string_member (ev, "signature");
    gint64 date_ms =
        parse_iso8601_ms (json_object_get_string_member (ev, "date"));
    gboolean end = g_str_has_prefix (text, "(empty");
    g_autoptr (GBytes) payload = end ? NULL : g_bytes_new (text, strlen (text));
    g_autoptr (GBytes) frame = NULL;
    g_autoptr (CpAwsEventMessage) outer = NULL;
    g_autofree gchar *hex = NULL;
    g_autoptr (GError) error = NULL;

    frame = cp_aws_event_signer_sign_message (signer, payload, date_ms, &error);
    g_assert_no_error (error);
    hex = chunk_signature_hex (frame);
    g_assert_cmpstr (hex, ==, expected);
    g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (signer), ==,
        expected);

    outer = cp_aws_event_message_decode (g_bytes_get_data (frame, NULL),
        g_bytes_get_size (frame), &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_bytes_get_size (
                          cp_aws_event_message_get_payload (outer)),
        ==, end ? 0 : strlen (text));
    g_assert_true (cp_aws_event_signer_verify (verifier, outer, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (verifier), ==,
        expected);
  }
}

/* aws-sdk-go aws/signer/v4/stream_test.go: the raw StreamSigner over
 * arbitrary header and payload bytes. */
static void
test_aws_sdk_go_chain (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (CpAwsEventSigner) signer = NULL;
  JsonObject *root = load_streaming_vectors (parser);
  JsonObject *vec;
  JsonArray *chunks;
  gint64 date_ms;
  guint i;

  if (root == NULL)
    return;
  vec = json_object_get_object_member (root,
      "event_stream_aws_sdk_go_v1_StreamSigner");
  signer = new_signer (json_object_get_string_member (vec, "secret_key"),
      json_object_get_string_member (vec, "region"),
      json_object_get_string_member (vec, "service"),
      json_object_get_string_member (vec, "seed_signature"));
  date_ms = parse_iso8601_ms (json_object_get_string_member (vec, "time"));

  chunks = json_object_get_array_member (vec, "chunks");
  g_assert_cmpuint (json_array_get_length (chunks), ==, 2);
  for (i = 0; i < json_array_get_length (chunks); i++) {
    JsonObject *chunk = json_array_get_object_element (chunks, i);
    const gchar *headers =
        json_object_get_string_member (chunk, "headers_bytes");
    const gchar *payload =
        json_object_get_string_member (chunk, "payload_bytes");
    guint8 signature[CP_AWS_SHA256_LEN];
    g_autofree gchar *hex = NULL;
    g_autoptr (GError) error = NULL;

    g_assert_true (cp_aws_event_signer_sign (signer, (const guint8 *) headers,
        strlen (headers), (const guint8 *) payload, strlen (payload), date_ms,
        signature, &error));
    g_assert_no_error (error);
    hex = cp_aws_hex_encode (signature, sizeof (signature));
    g_assert_cmpstr (hex, ==,
        json_object_get_string_member (chunk, "signature"));
    g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (signer), ==, hex);
  }
}

static GBytes *
bytes_from_hex (const gchar *hex)
{
  gsize len = strlen (hex) / 2, i;
  guint8 *data = g_malloc (len);

  for (i = 0; i < len; i++)
    data[i] = (g_ascii_xdigit_value (hex[2 * i]) << 4)
        | g_ascii_xdigit_value (hex[2 * i + 1]);
  return g_bytes_new_take (data, len);
}

/* The Nova Sonic fixture in research/novasonic.md (generated with the
 * JS SDK): the whole 226-byte outer frame, checked through its message
 * CRC, shows the header order and encoding match byte for byte. */
static void
test_nova_sonic_frame (void)
{
  static const gchar inner_hex[] =
      "0000008f0000004bb79a60320b3a6576656e742d747970650700056368756e6b0d3a"
      "6d6573736167652d747970650700056576656e740d3a636f6e74656e742d74797065"
      "0700106170706c69636174696f6e2f6a736f6e7b226279746573223a2265794a6c64"
      "6d56756443493665794a7a5a584e7a6157397555335268636e51694f6e7439665830"
      "3d227d2e4b83b9";
  g_autoptr (CpAwsEventSigner) signer = NULL;
  g_autoptr (GBytes) inner = bytes_from_hex (inner_hex);
  g_autoptr (GBytes) frame = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *hex = NULL;
  g_autofree gchar *crc_hex = NULL;
  const guint8 *data;
  gsize len;

  signer = new_signer ("SECRET", "us-east-1", "bedrock",
      "f8bc2fe45a51f6c7bebafdf7becbfc1a47900ff20ef2ac10dfaa4ae9dcaf4012");
  frame = cp_aws_event_signer_sign_message (signer, inner,
      G_GINT64_CONSTANT (1735787045000), &error);
  g_assert_no_error (error);
  hex = chunk_signature_hex (frame);
  g_assert_cmpstr (hex, ==,
      "08b474e6f667cd89ca6012ea35a890850a3b372aa1c8bfc9ccc55102601e5421");
  data = g_bytes_get_data (frame, &len);
  g_assert_cmpuint (len, ==, 226);
  crc_hex = cp_aws_hex_encode (data + len - 4, 4);
  g_assert_cmpstr (crc_hex, ==, "15a3ac90");
}

/* The Transcribe developer guide's signed end frame: its key material is
 * not published, so it checks the envelope layout: everything up to the
 * signature bytes must be what our signer writes for the same date. */
static void
test_transcribe_doc_envelope (void)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autofree gchar *path = NULL;
  g_autofree gchar *doc = NULL;
  g_autoptr (CpAwsEventSigner) signer = NULL;
  g_autoptr (CpAwsEventMessage) outer = NULL;
  g_autoptr (GBytes) frame = NULL;
  g_autoptr (GError) error = NULL;
  const gsize signature_offset = 12 + 15 + 1 + 16 + 1 + 2;
  gint64 date_ms;
  gsize doc_len;

  if (shared)
    path = g_build_filename (shared, "conformance", "eventstream",
        "transcribe-docs", "signed_envelope_date_chunksig.bin", NULL);
  if (path == NULL || !g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_test_skip (
        "conformance/eventstream/transcribe-docs not found under "
        "CALLPIPE_SHARED_DIR: the documented signed frame is not available");
    return;
  }
  g_file_get_contents (path, &doc, &doc_len, &error);
  g_assert_no_error (error);
  outer = cp_aws_event_message_decode ((const guint8 *) doc, doc_len, &error);
  g_assert_no_error (error);
  g_assert_true (cp_aws_event_message_get_timestamp (outer, ":date", &date_ms));
  g_assert_cmpint (date_ms, ==, G_GINT64_CONSTANT (1548726977291));
  g_assert_cmpuint (g_bytes_get_size (cp_aws_event_message_get_bytes (outer,
                        ":chunk-signature")),
      ==, CP_AWS_SHA256_LEN);
  g_assert_cmpuint (g_bytes_get_size (cp_aws_event_message_get_payload (outer)),
      ==, 0);

  signer = new_signer ("secret", "us-west-2", "transcribe",
      "0000000000000000000000000000000000000000000000000000000000000000");
  frame = cp_aws_event_signer_sign_message (signer, NULL, date_ms, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (frame), ==, doc_len);
  g_assert_cmpmem (g_bytes_get_data (frame, NULL), signature_offset, doc,
      signature_offset);
}

/* The string to sign built here by hand, with the signing key derived
 * from each frame's own date: a chain crossing midnight must switch
 * keys. */
static void
test_key_follows_frame_date (void)
{
  const gchar *seed =
      "e1d8e8c8815e60969f2a34765c9a15945ffc0badbaa4b7e3b163ea19131e949b";
  const gint64 before_midnight = G_GINT64_CONSTANT (1735775999500);
  const gint64 after_midnight = G_GINT64_CONSTANT (1735776000250);
  const struct
  {
    gint64 ms;
    const gchar *amz_date;
    const gchar *date;
  } frames[] = {
      {before_midnight, "20250101T235959Z", "20250101"},
      {after_midnight, "20250102T000000Z", "20250102"},
  };
  g_autoptr (CpAwsEventSigner) signer = NULL;
  g_autofree gchar *prior = g_strdup (seed);
  guint i;

  signer = new_signer ("secret", "eu-west-1", "transcribe", seed);
  for (i = 0; i < G_N_ELEMENTS (frames); i++) {
    g_autoptr (CpAwsEventMessage) date_only = cp_aws_event_message_new ();
    g_autoptr (GByteArray) date_header = g_byte_array_new ();
    g_autoptr (GBytes) payload = g_bytes_new_static ("inner", 5);
    g_autoptr (GBytes) frame = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *date_hash = NULL;
    g_autofree gchar *payload_hash = NULL;
    g_autofree gchar *sts = NULL;
    g_autofree gchar *expected = NULL;
    g_autofree gchar *actual = NULL;
    guint8 key[CP_AWS_SHA256_LEN], mac[CP_AWS_SHA256_LEN];

    cp_aws_event_message_set_timestamp (date_only, ":date", frames[i].ms);
    g_assert_true (
        cp_aws_event_message_encode_headers (date_only, date_header, &error));
    g_assert_cmpuint (date_header->len, ==, 15);
    date_hash = cp_aws_sha256_hex (date_header->data, date_header->len);
    payload_hash = cp_aws_sha256_hex ("inner", 5);
    sts = g_strdup_printf ("AWS4-HMAC-SHA256-PAYLOAD\n%s\n"
                           "%s/eu-west-1/transcribe/aws4_request\n%s\n%s\n%s",
        frames[i].amz_date, frames[i].date, prior, date_hash, payload_hash);
    cp_aws_derive_signing_key ("secret", frames[i].date, "eu-west-1",
        "transcribe", key);
    cp_aws_hmac_sha256 (key, sizeof (key), sts, strlen (sts), mac);
    expected = cp_aws_hex_encode (mac, sizeof (mac));

    frame = cp_aws_event_signer_sign_message (signer, payload, frames[i].ms,
        &error);
    g_assert_no_error (error);
    actual = chunk_signature_hex (frame);
    g_assert_cmpstr (actual, ==, expected);
    g_free (prior);
    prior = g_steal_pointer (&expected);
  }
}

static CpAwsEventMessage *
decode_frame (GBytes *frame)
{
  g_autoptr (GError) error = NULL;
  CpAwsEventMessage *msg =
      cp_aws_event_message_decode (g_bytes_get_data (frame, NULL),
          g_bytes_get_size (frame), &error);

  g_assert_no_error (error);
  return msg;
}

/* What a local Transcribe peer does: decode, verify, unwrap the inner
 * event. A tampered, reordered or unsigned frame fails and leaves the
 * chain where it was. */
static void
test_verify_round_trip (void)
{
  const gchar *seed =
      "9d9ab996c81f32c9d4e6fc166c92584f3741d1cb5ce325cd11a77d1f962c8de2";
  g_autoptr (CpAwsEventSigner) signer =
      new_signer ("key", "us-east-1", "transcribe", seed);
  g_autoptr (CpAwsEventSigner) verifier =
      new_signer ("key", "us-east-1", "transcribe", seed);
  g_autoptr (CpAwsEventSigner) wrong_key =
      new_signer ("other", "us-east-1", "transcribe", seed);
  g_autoptr (CpAwsEventMessage) inner = cp_aws_event_message_new ();
  g_autoptr (GBytes) audio = g_bytes_new_static ("\x01\x00\x02\x00", 4);
  g_autoptr (GBytes) f1 = NULL, f2 = NULL, end = NULL;
  g_autoptr (CpAwsEventMessage) m1 = NULL, m2 = NULL, mend = NULL;
  g_autoptr (CpAwsEventMessage) tampered = NULL, unwrapped = NULL;
  g_autoptr (CpAwsEventMessage) unsigned_msg = cp_aws_event_message_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *before = NULL;
  GBytes *payload;

  cp_aws_event_message_set_string (inner, ":message-type", "event");
  cp_aws_event_message_set_string (inner, ":event-type", "AudioEvent");
  cp_aws_event_message_set_string (inner, ":content-type",
      "application/octet-stream");
  cp_aws_event_message_set_payload (inner, audio);

  f1 = cp_aws_event_signer_sign_event (signer, inner, 1700000000000, &error);
  g_assert_no_error (error);
  f2 = cp_aws_event_signer_sign_event (signer, inner, 1700000000032, &error);
  g_assert_no_error (error);
  end = cp_aws_event_signer_sign_message (signer, NULL, 1700000000064, &error);
  g_assert_no_error (error);
  m1 = decode_frame (f1);
  m2 = decode_frame (f2);
  mend = decode_frame (end);

  /* Out of order: the second frame does not chain on the seed. */
  before = g_strdup (cp_aws_event_signer_get_prior_signature (verifier));
  g_assert_false (cp_aws_event_signer_verify (verifier, m2, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH);
  g_clear_error (&error);
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (verifier), ==,
      before);

  /* Another secret key. */
  g_assert_false (cp_aws_event_signer_verify (wrong_key, m1, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH);
  g_clear_error (&error);

  /* A changed payload under the original signature. */
  tampered = decode_frame (f1);
  cp_aws_event_message_set_payload (tampered, audio);
  g_assert_false (cp_aws_event_signer_verify (verifier, tampered, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH);
  g_clear_error (&error);

  /* A changed date. */
  cp_aws_event_message_set_payload (tampered,
      cp_aws_event_message_get_payload (m1));
  cp_aws_event_message_set_timestamp (tampered, ":date", 1700000000001);
  g_assert_false (cp_aws_event_signer_verify (verifier, tampered, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH);
  g_clear_error (&error);

  g_assert_false (cp_aws_event_signer_verify (verifier, unsigned_msg, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_MISSING_HEADER);
  g_clear_error (&error);
  cp_aws_event_message_set_timestamp (unsigned_msg, ":date", 1);
  g_assert_false (cp_aws_event_signer_verify (verifier, unsigned_msg, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_MISSING_HEADER);
  g_clear_error (&error);
  cp_aws_event_message_set_bytes (unsigned_msg, ":chunk-signature", audio);
  g_assert_false (cp_aws_event_signer_verify (verifier, unsigned_msg, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH);
  g_clear_error (&error);
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (verifier), ==,
      before);

  /* In order, everything verifies and the inner event comes back. */
  g_assert_true (cp_aws_event_signer_verify (verifier, m1, &error));
  g_assert_no_error (error);
  payload = cp_aws_event_message_get_payload (m1);
  unwrapped = cp_aws_event_message_decode (g_bytes_get_data (payload, NULL),
      g_bytes_get_size (payload), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cp_aws_event_message_get_event_type (unwrapped), ==,
      "AudioEvent");
  g_assert_true (
      g_bytes_equal (cp_aws_event_message_get_payload (unwrapped), audio));
  g_assert_true (cp_aws_event_signer_verify (verifier, m2, &error));
  g_assert_no_error (error);
  g_assert_true (cp_aws_event_signer_verify (verifier, mend, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (cp_aws_event_message_get_payload (mend)),
      ==, 0);
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (verifier), ==,
      cp_aws_event_signer_get_prior_signature (signer));
}

static void
test_invalid_input (void)
{
  static const gchar *const bad_seeds[] = {
      "",
      "e1d8e8c8815e60969f2a34765c9a15945ffc0badbaa4b7e3b163ea19131e949",
      "e1d8e8c8815e60969f2a34765c9a15945ffc0badbaa4b7e3b163ea19131e949bb",
      "g1d8e8c8815e60969f2a34765c9a15945ffc0badbaa4b7e3b163ea19131e949b",
  };
  g_autoptr (CpAwsEventSigner) upper = NULL;
  g_autoptr (CpAwsEventSigner) lower = NULL;
  g_autoptr (GBytes) frame = NULL;
  g_autoptr (GBytes) frame_lower = NULL;
  g_autoptr (GBytes) huge = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *before = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad_seeds); i++) {
    g_autoptr (GError) seed_error = NULL;

    g_assert_null (
        cp_aws_event_signer_new ("s", "r", "svc", bad_seeds[i], &seed_error));
    g_assert_error (seed_error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_INVALID_SEED);
  }

  /* The seed is quoted lowercase in the string to sign. */
  upper = new_signer ("s", "r", "svc",
      "E1D8E8C8815E60969F2A34765C9A15945FFC0BADBAA4B7E3B163EA19131E949B");
  lower = new_signer ("s", "r", "svc",
      "e1d8e8c8815e60969f2a34765c9a15945ffc0badbaa4b7e3b163ea19131e949b");
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (upper), ==,
      cp_aws_event_signer_get_prior_signature (lower));

  before = g_strdup (cp_aws_event_signer_get_prior_signature (upper));
  g_assert_null (cp_aws_event_signer_sign_message (upper, NULL, -1, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE);
  g_clear_error (&error);
  g_assert_null (
      cp_aws_event_signer_sign_message (upper, NULL, G_MAXINT64, &error));
  g_assert_error (error, CP_AWS_EVENT_SIGNER_ERROR,
      CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE);
  g_clear_error (&error);

  /* A payload the envelope cannot carry fails without moving the
   * chain. */
  huge = g_bytes_new_take (g_malloc0 (CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN + 1),
      CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN + 1);
  g_assert_null (cp_aws_event_signer_sign_message (upper, huge, 0, &error));
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR,
      CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH);
  g_clear_error (&error);
  g_assert_cmpstr (cp_aws_event_signer_get_prior_signature (upper), ==, before);

  frame = cp_aws_event_signer_sign_message (upper, NULL, 0, &error);
  g_assert_no_error (error);
  frame_lower = cp_aws_event_signer_sign_message (lower, NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (frame, frame_lower));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/aws/eventsigner/aws-c-auth-chain", test_aws_c_auth_chain);
  g_test_add_func ("/aws/eventsigner/aws-sdk-go-chain", test_aws_sdk_go_chain);
  g_test_add_func ("/aws/eventsigner/nova-sonic-frame", test_nova_sonic_frame);
  g_test_add_func ("/aws/eventsigner/transcribe-doc-envelope",
      test_transcribe_doc_envelope);
  g_test_add_func ("/aws/eventsigner/key-follows-frame-date",
      test_key_follows_frame_date);
  g_test_add_func ("/aws/eventsigner/verify-round-trip",
      test_verify_round_trip);
  g_test_add_func ("/aws/eventsigner/invalid-input", test_invalid_input);
  return g_test_run ();
}

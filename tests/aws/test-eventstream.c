/* Unit tests for the event-stream codec: the public conformance vectors
 * (one case per file), the streaming decoder at every split, truncation
 * and the limits. */
#include "aws/eventstream.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define NOT_AN_ERROR (-1)

typedef struct
{
  const gchar *name;
  CpAwsEventHeaderType type;
  gint64 number;
  const gchar *data;
  gsize data_len;
} ExpectedHeader;

typedef struct
{
  /* Relative to conformance/eventstream. */
  const gchar *file;
  gint error_code;
  /* For failures: text the error message must contain, if any. */
  const gchar *error_text;
  /* For positives without a decoded/ JSON twin. A header with NULL data
   * and a length is only checked for that length. */
  const ExpectedHeader *headers;
  guint n_headers;
  const gchar *payload;
  gsize payload_len;
} Vector;

#define STR(s) s, sizeof (s) - 1
#define HEADERS(h) h, G_N_ELEMENTS (h)

static const ExpectedHeader smithy_all_headers[] = {
    {"true", CP_AWS_EVENT_HEADER_BOOL_TRUE},
    {"false", CP_AWS_EVENT_HEADER_BOOL_FALSE},
    {"byte", CP_AWS_EVENT_HEADER_BYTE, 50},
    {"short", CP_AWS_EVENT_HEADER_INT16, 20000},
    {"int", CP_AWS_EVENT_HEADER_INT32, 500000},
    {"long", CP_AWS_EVENT_HEADER_INT64, G_GINT64_CONSTANT (50000000000)},
    {"bytes", CP_AWS_EVENT_HEADER_BYTES, 0, STR ("some bytes")},
    {"str", CP_AWS_EVENT_HEADER_STRING, 0, STR ("some str")},
    {"time", CP_AWS_EVENT_HEADER_TIMESTAMP, G_GINT64_CONSTANT (5000000000)},
    {"uuid", CP_AWS_EVENT_HEADER_UUID, 0,
        STR ("\xb7\x9b\xc9\x14\xde\x21\x4e\x13\xb8\xb2\xbc\x47\xe8\x5b\x7f"
             "\x0b")},
};

static const ExpectedHeader smithy_empty_payload[] = {
    {"some-header", CP_AWS_EVENT_HEADER_INT16, 500},
};

static const ExpectedHeader botocore_all_types[] = {
    {"0", CP_AWS_EVENT_HEADER_BOOL_TRUE},
    {"1", CP_AWS_EVENT_HEADER_BOOL_FALSE},
    {"2", CP_AWS_EVENT_HEADER_BYTE, 2},
    {"3", CP_AWS_EVENT_HEADER_INT16, 3},
    {"4", CP_AWS_EVENT_HEADER_INT32, 4},
    {"5", CP_AWS_EVENT_HEADER_INT64, 5},
    {"6", CP_AWS_EVENT_HEADER_BYTES, 0, STR ("bytes")},
    {"7", CP_AWS_EVENT_HEADER_STRING, 0, STR ("utf8")},
    {"8", CP_AWS_EVENT_HEADER_TIMESTAMP, 8},
    {"9", CP_AWS_EVENT_HEADER_UUID, 0, STR ("0123456789abcdef")},
};

static const ExpectedHeader botocore_error_event[] = {
    {":message-type", CP_AWS_EVENT_HEADER_STRING, 0, STR ("error")},
    {":error-code", CP_AWS_EVENT_HEADER_STRING, 0, STR ("code")},
    {":error-message", CP_AWS_EVENT_HEADER_STRING, 0, STR ("message")},
};

static const ExpectedHeader botocore_int8[] = {
    {"byte", CP_AWS_EVENT_HEADER_BYTE, -1},
};

static const ExpectedHeader botocore_int16[] = {
    {"short", CP_AWS_EVENT_HEADER_INT16, -1},
};

static const ExpectedHeader botocore_int32[] = {
    {"integer", CP_AWS_EVENT_HEADER_INT32, -1},
};

static const ExpectedHeader botocore_int64[] = {
    {"long", CP_AWS_EVENT_HEADER_INT64, -1},
};

static const ExpectedHeader content_type_json[] = {
    {"content-type", CP_AWS_EVENT_HEADER_STRING, 0, STR ("application/json")},
};

static const ExpectedHeader writer_inner[] = {
    {":message-type", CP_AWS_EVENT_HEADER_STRING, 0, STR ("event")},
    {":event-type", CP_AWS_EVENT_HEADER_STRING, 0, STR ("eventStructured")},
};

/* The signature bytes are checked in test-eventsigner.c. */
static const ExpectedHeader transcribe_envelope[] = {
    {":date", CP_AWS_EVENT_HEADER_TIMESTAMP, G_GINT64_CONSTANT (1548726977291)},
    {":chunk-signature", CP_AWS_EVENT_HEADER_BYTES, 0, NULL, 32},
};

static const Vector vectors[] = {
    /* aws-sdk-go: expectations in decoded/<kind>/<name>. */
    {"aws-sdk-go-testdata/encoded/positive/all_headers", NOT_AN_ERROR},
    {"aws-sdk-go-testdata/encoded/positive/empty_message", NOT_AN_ERROR},
    {"aws-sdk-go-testdata/encoded/positive/int32_header", NOT_AN_ERROR},
    {"aws-sdk-go-testdata/encoded/positive/payload_no_headers", NOT_AN_ERROR},
    {"aws-sdk-go-testdata/encoded/positive/payload_one_str_header",
        NOT_AN_ERROR},
    {"aws-sdk-go-testdata/encoded/negative/corrupted_header_len",
        CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM},
    {"aws-sdk-go-testdata/encoded/negative/corrupted_headers",
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM},
    {"aws-sdk-go-testdata/encoded/negative/corrupted_length",
        CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM},
    {"aws-sdk-go-testdata/encoded/negative/corrupted_payload",
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM},

    /* smithy-rs: expectations from MANIFEST.md. */
    {"smithy-rs-test_data/valid_with_all_headers_and_payload", NOT_AN_ERROR,
        NULL, HEADERS (smithy_all_headers), STR ("some payload")},
    {"smithy-rs-test_data/valid_empty_payload", NOT_AN_ERROR, NULL,
        HEADERS (smithy_empty_payload), STR ("")},
    {"smithy-rs-test_data/valid_no_headers", NOT_AN_ERROR, NULL, NULL, 0,
        STR ("another test payload")},
    {"smithy-rs-test_data/invalid_header_name_length",
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME, "255-byte name"},
    {"smithy-rs-test_data/invalid_header_name_length_too_long",
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME},
    {"smithy-rs-test_data/invalid_header_string_length_cut_off",
        CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE, "string length"},
    {"smithy-rs-test_data/invalid_header_string_value_length",
        CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE, "\"str\""},
    {"smithy-rs-test_data/invalid_header_value_type",
        CP_AWS_EVENT_STREAM_ERROR_HEADER_TYPE, "unknown type 0x60"},
    {"smithy-rs-test_data/invalid_headers_length",
        CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH},
    {"smithy-rs-test_data/invalid_message_checksum",
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM,
        "computed 0x01a05860, message says 0xdeadbeef"},
    {"smithy-rs-test_data/invalid_prelude_checksum",
        CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM,
        "computed 0x8bb495fb, message says 0xdeadbeef"},

    /* botocore: the file name says the expected error. */
    {"botocore-extra/positive_all_headers_types.bin", NOT_AN_ERROR, NULL,
        HEADERS (botocore_all_types), STR ("")},
    {"botocore-extra/positive_empty_message.bin", NOT_AN_ERROR, NULL, NULL, 0,
        STR ("")},
    {"botocore-extra/positive_error_event_message.bin", NOT_AN_ERROR, NULL,
        HEADERS (botocore_error_event), STR ("")},
    {"botocore-extra/positive_int8_header.bin", NOT_AN_ERROR, NULL,
        HEADERS (botocore_int8), STR ("")},
    {"botocore-extra/positive_int16_header.bin", NOT_AN_ERROR, NULL,
        HEADERS (botocore_int16), STR ("")},
    {"botocore-extra/positive_int32_header.bin", NOT_AN_ERROR, NULL,
        HEADERS (botocore_int32), STR ("")},
    {"botocore-extra/positive_int64_header.bin", NOT_AN_ERROR, NULL,
        HEADERS (botocore_int64), STR ("")},
    {"botocore-extra/positive_payload_no_headers.bin", NOT_AN_ERROR, NULL, NULL,
        0, STR ("{'foo':'bar'}")},
    {"botocore-extra/positive_payload_one_str_header.bin", NOT_AN_ERROR, NULL,
        HEADERS (content_type_json), STR ("{'foo':'bar'}")},
    {"botocore-extra/negative_corrupted_header_length__ChecksumMismatch.bin",
        CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM},
    {"botocore-extra/negative_corrupted_headers__ChecksumMismatch.bin",
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM},
    {"botocore-extra/negative_corrupted_length__ChecksumMismatch.bin",
        CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM},
    {"botocore-extra/negative_corrupted_payload__ChecksumMismatch.bin",
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM},
    {"botocore-extra/negative_duplicate_header__DuplicateHeader.bin",
        CP_AWS_EVENT_STREAM_ERROR_DUPLICATE_HEADER, "\"test\""},
    {"botocore-extra/"
     "negative_invalid_headers_length__InvalidHeadersLength.bin",
        CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH},

    {"aws-sdk-go-writer-test/inner_event_message.bin", NOT_AN_ERROR, NULL,
        HEADERS (writer_inner),
        STR ("{\"String\":\"stringfield\",\"Number\":123,\"Nested\":"
             "{\"String\":\"fieldstring\",\"Number\":321}}")},
    {"transcribe-docs/signed_envelope_date_chunksig.bin", NOT_AN_ERROR, NULL,
        HEADERS (transcribe_envelope), STR ("")},
    /* The doc's garbled example: its first name length swallows the next
   * header, NUL included, and its message CRC fails; the error must say
   * both. */
    {"transcribe-docs/CORRUPT_doc_audio_event_inner_message.bin",
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "the message checksum does not match"},
};

static guint32
reference_crc32 (const guint8 *p, gsize len)
{
  guint32 crc = 0xffffffffu;
  gsize i;
  gint k;

  for (i = 0; i < len; i++) {
    crc ^= p[i];
    for (k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

static guint32
read_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8)
      | p[3];
}

static void
append_be32 (GByteArray *out, guint32 v)
{
  guint8 b[4] = {v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};

  g_byte_array_append (out, b, sizeof (b));
}

/* A prelude with a correct CRC, whatever lengths it announces. */
static GByteArray *
make_prelude (guint32 total_len, guint32 headers_len)
{
  GByteArray *out = g_byte_array_new ();

  append_be32 (out, total_len);
  append_be32 (out, headers_len);
  append_be32 (out, reference_crc32 (out->data, 8));
  return out;
}

/* A whole message with correct CRCs around raw header bytes. */
static GBytes *
make_message (const void *headers, gsize headers_len, const void *payload,
    gsize payload_len)
{
  GByteArray *out = make_prelude ((guint32) (16 + headers_len + payload_len),
      (guint32) headers_len);

  g_byte_array_append (out, headers, (guint) headers_len);
  g_byte_array_append (out, payload, (guint) payload_len);
  append_be32 (out, reference_crc32 (out->data, out->len));
  return g_byte_array_free_to_bytes (out);
}

static gchar *
conformance_path (const gchar *rel)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autofree gchar *dir = NULL;

  if (shared == NULL)
    return NULL;
  dir = g_build_filename (shared, "conformance", "eventstream", NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    return NULL;
  return g_build_filename (dir, rel, NULL);
}

static gboolean
skip_without_vectors (void)
{
  g_autofree gchar *dir = conformance_path ("");

  if (dir != NULL)
    return FALSE;
  g_test_skip ("conformance/eventstream not found under CALLPIPE_SHARED_DIR: "
               "the public event-stream vectors are not available");
  return TRUE;
}

static GBytes *
load_vector (const gchar *rel)
{
  g_autofree gchar *path = conformance_path (rel);
  g_autoptr (GError) error = NULL;
  gchar *contents;
  gsize len;

  g_assert_nonnull (path);
  g_file_get_contents (path, &contents, &len, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (contents, len);
}

static void
assert_bytes_equal (GBytes *actual, const void *expected, gsize expected_len)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (actual, &len);

  g_assert_cmpmem (data, len, expected, expected_len);
}

static void
assert_encodes_to (const CpAwsEventMessage *msg, GBytes *expected)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) encoded = cp_aws_event_message_encode (msg, &error);

  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (encoded, expected));
}

static void
assert_header (const CpAwsEventHeader *h, const ExpectedHeader *e)
{
  g_assert_cmpstr (h->name, ==, e->name);
  g_assert_cmpint (h->type, ==, e->type);
  switch (e->type) {
    case CP_AWS_EVENT_HEADER_BOOL_TRUE:
    case CP_AWS_EVENT_HEADER_BOOL_FALSE:
      break;
    case CP_AWS_EVENT_HEADER_BYTE:
      g_assert_cmpint (h->value.byte, ==, e->number);
      break;
    case CP_AWS_EVENT_HEADER_INT16:
      g_assert_cmpint (h->value.int16, ==, e->number);
      break;
    case CP_AWS_EVENT_HEADER_INT32:
      g_assert_cmpint (h->value.int32, ==, e->number);
      break;
    case CP_AWS_EVENT_HEADER_INT64:
    case CP_AWS_EVENT_HEADER_TIMESTAMP:
      g_assert_cmpint (h->value.int64, ==, e->number);
      break;
    case CP_AWS_EVENT_HEADER_BYTES:
      if (e->data == NULL)
        g_assert_cmpuint (g_bytes_get_size (h->value.bytes), ==, e->data_len);
      else
        assert_bytes_equal (h->value.bytes, e->data, e->data_len);
      break;
    case CP_AWS_EVENT_HEADER_STRING:
      g_assert_cmpmem (h->value.string, strlen (h->value.string), e->data,
          e->data_len);
      break;
    case CP_AWS_EVENT_HEADER_UUID:
      g_assert_cmpmem (h->value.uuid, sizeof (h->value.uuid), e->data,
          e->data_len);
      break;
    default:
      g_assert_not_reached ();
  }
}

static void
check_against_table (const CpAwsEventMessage *msg, const Vector *v)
{
  guint i;

  g_assert_cmpuint (cp_aws_event_message_get_n_headers (msg), ==, v->n_headers);
  for (i = 0; i < v->n_headers; i++)
    assert_header (cp_aws_event_message_get_header (msg, i), &v->headers[i]);
  assert_bytes_equal (cp_aws_event_message_get_payload (msg), v->payload,
      v->payload_len);
}

static gsize
decode_base64_member (JsonObject *obj, const gchar *member, guchar **out)
{
  gsize len;

  *out = g_base64_decode (json_object_get_string_member (obj, member), &len);
  return len;
}

/* aws-sdk-go's decoded/positive/<name>: lengths, CRCs (signed), headers
 * and payload, with string, bytes and uuid values in base64. */
static void
check_against_json (const CpAwsEventMessage *msg, GBytes *raw, const gchar *rel)
{
  g_autofree gchar *json_rel = NULL;
  g_autofree gchar *path = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autofree guchar *payload = NULL;
  const guint8 *data;
  JsonObject *root;
  JsonArray *headers;
  gsize len, payload_len;
  guint i;

  json_rel = g_strdup (rel);
  memcpy (strstr (json_rel, "/encoded/"), "/decoded/", 9);
  path = conformance_path (json_rel);
  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  data = g_bytes_get_data (raw, &len);

  g_assert_cmpint (json_object_get_int_member (root, "total_length"), ==, len);
  g_assert_cmpint (json_object_get_int_member (root, "headers_length"), ==,
      read_be32 (data + 4));
  g_assert_cmpint (json_object_get_int_member (root, "prelude_crc"), ==,
      (gint32) read_be32 (data + 8));
  g_assert_cmpint (json_object_get_int_member (root, "message_crc"), ==,
      (gint32) read_be32 (data + len - 4));

  headers = json_object_get_array_member (root, "headers");
  g_assert_cmpuint (cp_aws_event_message_get_n_headers (msg), ==,
      json_array_get_length (headers));
  for (i = 0; i < json_array_get_length (headers); i++) {
    JsonObject *jh = json_array_get_object_element (headers, i);
    const CpAwsEventHeader *h = cp_aws_event_message_get_header (msg, i);
    ExpectedHeader e = {0};
    g_autofree guchar *value = NULL;

    e.name = json_object_get_string_member (jh, "name");
    e.type = json_object_get_int_member (jh, "type");
    switch (e.type) {
      case CP_AWS_EVENT_HEADER_BOOL_TRUE:
      case CP_AWS_EVENT_HEADER_BOOL_FALSE:
        g_assert_cmpint (json_object_get_boolean_member (jh, "value"), ==,
            e.type == CP_AWS_EVENT_HEADER_BOOL_TRUE);
        break;
      case CP_AWS_EVENT_HEADER_BYTES:
      case CP_AWS_EVENT_HEADER_STRING:
      case CP_AWS_EVENT_HEADER_UUID:
        e.data_len = decode_base64_member (jh, "value", &value);
        e.data = (const gchar *) value;
        break;
      default:
        e.number = json_object_get_int_member (jh, "value");
        break;
    }
    assert_header (h, &e);
  }

  payload_len = decode_base64_member (root, "payload", &payload);
  assert_bytes_equal (cp_aws_event_message_get_payload (msg), payload,
      payload_len);
}

static void
check_streaming_positive (GBytes *raw)
{
  g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
  g_autoptr (CpAwsEventMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  gsize len, i;
  const guint8 *data = g_bytes_get_data (raw, &len);

  for (i = 0; i < len; i++) {
    g_assert_true (cp_aws_event_decoder_feed (dec, data + i, 1, &error));
    g_assert_no_error (error);
    if (i + 1 < len) {
      g_assert_null (cp_aws_event_decoder_pop (dec));
      g_assert_cmpuint (cp_aws_event_decoder_get_pending (dec), ==, i + 1);
    }
  }
  msg = cp_aws_event_decoder_pop (dec);
  g_assert_nonnull (msg);
  assert_encodes_to (msg, raw);
  g_assert_null (cp_aws_event_decoder_pop (dec));
  g_assert_cmpuint (cp_aws_event_decoder_get_pending (dec), ==, 0);
  g_assert_true (cp_aws_event_decoder_finish (dec, &error));
  g_assert_no_error (error);
}

static void
check_truncations (GBytes *raw)
{
  gsize len, cut;
  const guint8 *data = g_bytes_get_data (raw, &len);

  for (cut = 0; cut < len; cut++) {
    g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
    g_autoptr (CpAwsEventMessage) msg = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (GError) finish_error = NULL;

    msg = cp_aws_event_message_decode (data, cut, &error);
    g_assert_null (msg);
    g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_TRUNCATED);
    g_clear_error (&error);

    g_assert_true (cp_aws_event_decoder_feed (dec, data, cut, &error));
    g_assert_no_error (error);
    g_assert_null (cp_aws_event_decoder_pop (dec));
    if (cut == 0) {
      g_assert_true (cp_aws_event_decoder_finish (dec, &finish_error));
    } else {
      g_assert_false (cp_aws_event_decoder_finish (dec, &finish_error));
      g_assert_error (finish_error, CP_AWS_EVENT_STREAM_ERROR,
          CP_AWS_EVENT_STREAM_ERROR_TRUNCATED);
    }
  }
}

static void
check_positive (const Vector *v, GBytes *raw)
{
  g_autoptr (CpAwsEventMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (raw, &len);

  msg = cp_aws_event_message_decode (data, len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (msg);
  if (strstr (v->file, "/encoded/positive/"))
    check_against_json (msg, raw, v->file);
  else
    check_against_table (msg, v);
  assert_encodes_to (msg, raw);
  check_streaming_positive (raw);
  check_truncations (raw);
}

static void
assert_expected_error (const GError *error, const Vector *v)
{
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR, v->error_code);
  if (v->error_text && !strstr (error->message, v->error_text))
    g_error ("\"%s\" does not contain \"%s\"", error->message, v->error_text);
}

/* botocore's names end in the exception it raises; each maps to one or
 * two of our codes. */
static void
assert_botocore_suffix_agrees (const Vector *v)
{
  gint code = v->error_code;

  if (!g_str_has_prefix (v->file, "botocore-extra/negative_"))
    return;
  if (g_str_has_suffix (v->file, "__ChecksumMismatch.bin"))
    g_assert_true (code == CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM
        || code == CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM);
  else if (g_str_has_suffix (v->file, "__DuplicateHeader.bin"))
    g_assert_cmpint (code, ==, CP_AWS_EVENT_STREAM_ERROR_DUPLICATE_HEADER);
  else if (g_str_has_suffix (v->file, "__InvalidHeadersLength.bin"))
    g_assert_cmpint (code, ==, CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH);
  else
    g_error ("unknown botocore expectation in %s", v->file);
}

/* aws-sdk-go's decoded/negative/<name> holds its error text, which ours
 * starts with too. */
static void
assert_aws_sdk_go_text_agrees (const Vector *v, const GError *error)
{
  g_autofree gchar *text_rel = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *expected = NULL;
  g_autoptr (GError) read_error = NULL;

  if (!strstr (v->file, "/encoded/negative/"))
    return;
  text_rel = g_strdup (v->file);
  memcpy (strstr (text_rel, "/encoded/"), "/decoded/", 9);
  path = conformance_path (text_rel);
  g_file_get_contents (path, &expected, NULL, &read_error);
  g_assert_no_error (read_error);
  g_strstrip (expected);
  g_assert_true (g_str_has_prefix (error->message, expected));
}

static void
check_negative (const Vector *v, GBytes *raw)
{
  g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
  g_autoptr (CpAwsEventDecoder) bytewise = cp_aws_event_decoder_new ();
  g_autoptr (CpAwsEventMessage) msg = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) sticky = NULL;
  g_autoptr (GError) finish_error = NULL;
  g_autoptr (GError) bytewise_error = NULL;
  g_autoptr (GError) oneshot_error = NULL;
  gsize len, one_len, i;
  const guint8 *data = g_bytes_get_data (raw, &len);

  assert_botocore_suffix_agrees (v);

  g_assert_false (cp_aws_event_decoder_feed (dec, data, len, &error));
  assert_expected_error (error, v);
  assert_aws_sdk_go_text_agrees (v, error);
  g_assert_null (cp_aws_event_decoder_pop (dec));
  g_assert_false (cp_aws_event_decoder_feed (dec, data, 1, &sticky));
  g_assert_error (sticky, CP_AWS_EVENT_STREAM_ERROR, v->error_code);
  g_assert_false (cp_aws_event_decoder_finish (dec, &finish_error));
  g_assert_error (finish_error, CP_AWS_EVENT_STREAM_ERROR, v->error_code);

  for (i = 0; i < len && bytewise_error == NULL; i++)
    cp_aws_event_decoder_feed (bytewise, data + i, 1, &bytewise_error);
  assert_expected_error (bytewise_error, v);
  g_assert_null (cp_aws_event_decoder_pop (bytewise));

  /* Some files carry bytes past the message they announce; the one-shot
   * decoder is given just the message. */
  one_len = len;
  if (len >= 4 && read_be32 (data) < len)
    one_len = read_be32 (data);
  msg = cp_aws_event_message_decode (data, one_len, &oneshot_error);
  g_assert_null (msg);
  assert_expected_error (oneshot_error, v);
}

static void
test_vector (gconstpointer user_data)
{
  const Vector *v = user_data;
  g_autoptr (GBytes) raw = NULL;

  if (skip_without_vectors ())
    return;
  raw = load_vector (v->file);
  if (v->error_code == NOT_AN_ERROR)
    check_positive (v, raw);
  else
    check_negative (v, raw);
}

static gboolean
vector_listed (const gchar *rel)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (vectors); i++) {
    if (strcmp (vectors[i].file, rel) == 0)
      return TRUE;
  }
  return FALSE;
}

static void
collect_unlisted (const gchar *root, const gchar *rel, GPtrArray *unlisted)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir))) {
    g_autofree gchar *child =
        *rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
    g_autofree gchar *child_path = g_build_filename (root, child, NULL);

    if (strcmp (child, "MANIFEST.md") == 0
        || strcmp (child, "aws-sdk-go-testdata/decoded") == 0)
      continue;
    if (g_file_test (child_path, G_FILE_TEST_IS_DIR))
      collect_unlisted (root, child, unlisted);
    else if (!vector_listed (child))
      g_ptr_array_add (unlisted, g_steal_pointer (&child));
  }
}

/* A vector added to the shared folder must get an expectation here. */
static void
test_every_vector_listed (void)
{
  g_autofree gchar *root = NULL;
  g_autoptr (GPtrArray) unlisted = g_ptr_array_new_with_free_func (g_free);

  if (skip_without_vectors ())
    return;
  root = conformance_path ("");
  collect_unlisted (root, "", unlisted);
  if (unlisted->len > 0)
    g_error ("vector without an expectation: %s",
        (const gchar *) g_ptr_array_index (unlisted, 0));
}

static const guint8 test_uuid[16] = {0xb7, 0x9b, 0xc9, 0x14, 0xde, 0x21, 0x4e,
    0x13, 0xb8, 0xb2, 0xbc, 0x47, 0xe8, 0x5b, 0x7f, 0x0b};

static CpAwsEventMessage *
make_all_types_message (void)
{
  CpAwsEventMessage *msg = cp_aws_event_message_new ();
  g_autoptr (GBytes) bytes = g_bytes_new_static ("\x00\x01\xfe", 3);
  g_autoptr (GBytes) payload = g_bytes_new_static ("audio\x00"
                                                   "data",
      10);

  cp_aws_event_message_set_bool (msg, "t", TRUE);
  cp_aws_event_message_set_bool (msg, "f", FALSE);
  cp_aws_event_message_set_byte (msg, "byte", -128);
  cp_aws_event_message_set_int16 (msg, "int16", G_MININT16);
  cp_aws_event_message_set_int32 (msg, "int32", G_MAXINT32);
  cp_aws_event_message_set_int64 (msg, "int64", G_MININT64);
  cp_aws_event_message_set_bytes (msg, "bytes", bytes);
  cp_aws_event_message_set_string (msg, ":event-type", "AudioEvent");
  cp_aws_event_message_set_timestamp (msg, ":date",
      G_GINT64_CONSTANT (1548726977291));
  cp_aws_event_message_set_uuid (msg, "uuid", test_uuid);
  cp_aws_event_message_set_payload (msg, payload);
  return msg;
}

static void
test_roundtrip_all_types (void)
{
  static const ExpectedHeader expected[] = {
      {"t", CP_AWS_EVENT_HEADER_BOOL_TRUE},
      {"f", CP_AWS_EVENT_HEADER_BOOL_FALSE},
      {"byte", CP_AWS_EVENT_HEADER_BYTE, -128},
      {"int16", CP_AWS_EVENT_HEADER_INT16, G_MININT16},
      {"int32", CP_AWS_EVENT_HEADER_INT32, G_MAXINT32},
      {"int64", CP_AWS_EVENT_HEADER_INT64, G_MININT64},
      {"bytes", CP_AWS_EVENT_HEADER_BYTES, 0, STR ("\x00\x01\xfe")},
      {":event-type", CP_AWS_EVENT_HEADER_STRING, 0, STR ("AudioEvent")},
      {":date", CP_AWS_EVENT_HEADER_TIMESTAMP,
          G_GINT64_CONSTANT (1548726977291)},
      {"uuid", CP_AWS_EVENT_HEADER_UUID, 0, (const gchar *) test_uuid, 16},
  };
  static const Vector v = {"all types", NOT_AN_ERROR, NULL, HEADERS (expected),
      STR ("audio\x00"
           "data")};
  g_autoptr (CpAwsEventMessage) msg = make_all_types_message ();
  g_autoptr (CpAwsEventMessage) decoded = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) encoded = NULL;
  g_autoptr (GByteArray) appended = g_byte_array_new ();
  g_autoptr (GByteArray) headers_only = g_byte_array_new ();
  const guint8 *data;
  gsize len;

  check_against_table (msg, &v);
  encoded = cp_aws_event_message_encode (msg, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (encoded, &len);
  g_assert_cmpuint (read_be32 (data), ==, len);
  g_assert_cmpuint (read_be32 (data + 8), ==, reference_crc32 (data, 8));
  g_assert_cmpuint (read_be32 (data + len - 4), ==,
      reference_crc32 (data, len - 4));

  decoded = cp_aws_event_message_decode (data, len, &error);
  g_assert_no_error (error);
  check_against_table (decoded, &v);
  assert_encodes_to (decoded, encoded);

  /* append_encoded appends; encode_headers is exactly the headers
   * section. */
  g_byte_array_append (appended, (const guint8 *) "xy", 2);
  g_assert_true (cp_aws_event_message_append_encoded (msg, appended, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (appended->data + 2, appended->len - 2, data, len);
  g_assert_true (
      cp_aws_event_message_encode_headers (msg, headers_only, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (headers_only->data, headers_only->len, data + 12,
      read_be32 (data + 4));
}

static void
test_set_replaces_in_place (void)
{
  g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();
  const CpAwsEventHeader *h;

  cp_aws_event_message_set_string (msg, "a", "1");
  cp_aws_event_message_set_string (msg, "b", "2");
  cp_aws_event_message_set_int32 (msg, "a", 7);
  g_assert_cmpuint (cp_aws_event_message_get_n_headers (msg), ==, 2);
  h = cp_aws_event_message_get_header (msg, 0);
  g_assert_cmpstr (h->name, ==, "a");
  g_assert_cmpint (h->type, ==, CP_AWS_EVENT_HEADER_INT32);
  g_assert_cmpint (h->value.int32, ==, 7);
  g_assert_null (cp_aws_event_message_get_string (msg, "a"));
  g_assert_cmpstr (cp_aws_event_message_get_string (msg, "b"), ==, "2");
  g_assert_null (cp_aws_event_message_find_header (msg, "c"));

  cp_aws_event_message_set_payload (msg, NULL);
  g_assert_cmpuint (g_bytes_get_size (cp_aws_event_message_get_payload (msg)),
      ==, 0);
}

static void
test_getters (void)
{
  g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();
  g_autoptr (GBytes) sig = g_bytes_new_static ("0123", 4);
  gint64 ms = 0;

  g_assert_null (cp_aws_event_message_get_message_type (msg));
  cp_aws_event_message_set_string (msg, ":message-type", "exception");
  cp_aws_event_message_set_string (msg, ":exception-type",
      "BadRequestException");
  cp_aws_event_message_set_string (msg, ":event-type", "TranscriptEvent");
  cp_aws_event_message_set_timestamp (msg, ":date", 42);
  cp_aws_event_message_set_bytes (msg, ":chunk-signature", sig);

  g_assert_cmpstr (cp_aws_event_message_get_message_type (msg), ==,
      "exception");
  g_assert_cmpstr (cp_aws_event_message_get_exception_type (msg), ==,
      "BadRequestException");
  g_assert_cmpstr (cp_aws_event_message_get_event_type (msg), ==,
      "TranscriptEvent");
  g_assert_true (cp_aws_event_message_get_timestamp (msg, ":date", &ms));
  g_assert_cmpint (ms, ==, 42);
  g_assert_false (cp_aws_event_message_get_timestamp (msg, ":event-type", &ms));
  g_assert_true (
      cp_aws_event_message_get_bytes (msg, ":chunk-signature") == sig);
  g_assert_null (cp_aws_event_message_get_bytes (msg, ":date"));
  g_assert_null (cp_aws_event_message_get_string (msg, ":date"));
}

/* Three messages of different sizes, one over the decoder's in-place
 * threshold, fed in chunks of many sizes and split at every byte. */
static void
test_stream_any_split (void)
{
  static const gsize chunk_sizes[] = {1, 2, 3, 5, 7, 11, 13, 64, 4096};
  g_autoptr (GByteArray) stream = g_byte_array_new ();
  g_autoptr (GPtrArray) originals =
      g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr (GError) error = NULL;
  gsize payload_sizes[] = {0, 100, 70000};
  guint i, m;
  gsize k;

  for (m = 0; m < G_N_ELEMENTS (payload_sizes); m++) {
    g_autoptr (CpAwsEventMessage) msg = make_all_types_message ();
    g_autofree guint8 *payload = g_malloc (payload_sizes[m] + 1);
    g_autoptr (GBytes) pb = NULL;
    GBytes *encoded;

    memset (payload, 'a' + m, payload_sizes[m]);
    pb = g_bytes_new (payload, payload_sizes[m]);
    cp_aws_event_message_set_payload (msg, pb);
    cp_aws_event_message_set_int32 (msg, "index", m);
    encoded = cp_aws_event_message_encode (msg, &error);
    g_assert_no_error (error);
    g_byte_array_append (stream, g_bytes_get_data (encoded, NULL),
        g_bytes_get_size (encoded));
    g_ptr_array_add (originals, encoded);
  }

  for (i = 0; i <= G_N_ELEMENTS (chunk_sizes); i++) {
    g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
    gsize chunk = i < G_N_ELEMENTS (chunk_sizes) ? chunk_sizes[i] : stream->len;

    for (k = 0; k < stream->len; k += chunk) {
      g_assert_true (cp_aws_event_decoder_feed (dec, stream->data + k,
          MIN (chunk, stream->len - k), &error));
      g_assert_no_error (error);
    }
    for (m = 0; m < originals->len; m++) {
      g_autoptr (CpAwsEventMessage) msg = cp_aws_event_decoder_pop (dec);

      g_assert_nonnull (msg);
      assert_encodes_to (msg, g_ptr_array_index (originals, m));
    }
    g_assert_null (cp_aws_event_decoder_pop (dec));
    g_assert_true (cp_aws_event_decoder_finish (dec, &error));
    g_assert_no_error (error);
  }

  /* Two whole splits at every byte of the first two messages. */
  for (k = 0; k <= g_bytes_get_size (g_ptr_array_index (originals, 0))
           + g_bytes_get_size (g_ptr_array_index (originals, 1));
       k++) {
    g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
    guint n = 0;
    CpAwsEventMessage *msg;

    g_assert_true (cp_aws_event_decoder_feed (dec, stream->data, k, &error));
    g_assert_true (cp_aws_event_decoder_feed (dec, stream->data + k,
        stream->len - k, &error));
    g_assert_no_error (error);
    while ((msg = cp_aws_event_decoder_pop (dec))) {
      assert_encodes_to (msg, g_ptr_array_index (originals, n++));
      cp_aws_event_message_unref (msg);
    }
    g_assert_cmpuint (n, ==, originals->len);
  }
}

static void
assert_stream_rejects_prelude (guint32 total_len, guint32 headers_len,
    gint code)
{
  g_autoptr (GByteArray) prelude = make_prelude (total_len, headers_len);
  g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) oneshot_error = NULL;
  g_autoptr (CpAwsEventMessage) msg = NULL;
  guint i;

  for (i = 0; i + 1 < prelude->len; i++)
    g_assert_true (
        cp_aws_event_decoder_feed (dec, prelude->data + i, 1, &error));
  g_assert_false (
      cp_aws_event_decoder_feed (dec, prelude->data + i, 1, &error));
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR, code);

  msg =
      cp_aws_event_message_decode (prelude->data, prelude->len, &oneshot_error);
  g_assert_null (msg);
  g_assert_error (oneshot_error, CP_AWS_EVENT_STREAM_ERROR, code);
}

/* The limits are judged on the prelude alone, before any body is
 * buffered. */
static void
test_decode_limits (void)
{
  g_autoptr (GByteArray) largest = NULL;
  g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
  g_autoptr (GError) error = NULL;

  assert_stream_rejects_prelude (16 + CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN + 1,
      0, CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH);
  assert_stream_rejects_prelude (G_MAXUINT32, 0,
      CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH);
  assert_stream_rejects_prelude (16 + CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN + 1,
      CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN + 1,
      CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH);
  assert_stream_rejects_prelude (15, 0,
      CP_AWS_EVENT_STREAM_ERROR_MESSAGE_LENGTH);
  assert_stream_rejects_prelude (0, 0,
      CP_AWS_EVENT_STREAM_ERROR_MESSAGE_LENGTH);
  assert_stream_rejects_prelude (20, 5,
      CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH);

  /* The largest legal message is accepted as announced. */
  largest = make_prelude (CP_AWS_EVENT_STREAM_MAX_MESSAGE_LEN,
      CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN);
  g_assert_true (
      cp_aws_event_decoder_feed (dec, largest->data, largest->len, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (cp_aws_event_decoder_get_pending (dec), ==, 12);
  g_assert_false (cp_aws_event_decoder_finish (dec, &error));
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR,
      CP_AWS_EVENT_STREAM_ERROR_TRUNCATED);
}

static void
assert_encode_fails (CpAwsEventMessage *msg, gint code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) encoded = cp_aws_event_message_encode (msg, &error);

  g_assert_null (encoded);
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR, code);
}

static void
assert_encode_succeeds (CpAwsEventMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) encoded = cp_aws_event_message_encode (msg, &error);
  g_autoptr (CpAwsEventMessage) decoded = NULL;

  g_assert_no_error (error);
  decoded = cp_aws_event_message_decode (g_bytes_get_data (encoded, NULL),
      g_bytes_get_size (encoded), &error);
  g_assert_no_error (error);
  assert_encodes_to (decoded, encoded);
}

static void
test_encode_limits (void)
{
  g_autofree gchar *name255 = g_strnfill (255, 'n');
  g_autofree gchar *name256 = g_strnfill (256, 'n');
  g_autofree gchar *str65535 = g_strnfill (65535, 's');
  g_autofree gchar *str65536 = g_strnfill (65536, 's');
  g_autoptr (GBytes) bytes65535 = g_bytes_new (str65535, 65535);
  g_autoptr (GBytes) bytes65536 = g_bytes_new (str65536, 65536);
  gsize max_payload = CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN;
  g_autoptr (GBytes) payload_max =
      g_bytes_new_take (g_malloc0 (max_payload), max_payload);
  g_autoptr (GBytes) payload_over =
      g_bytes_new_take (g_malloc0 (max_payload + 1), max_payload + 1);
  struct
  {
    const gchar *name;
    const gchar *string;
    GBytes *bytes;
    gint code;
  } cases[] = {
      {name255, "v", NULL, NOT_AN_ERROR},
      {name256, "v", NULL, CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME},
      {"", "v", NULL, CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME},
      {"\xff", "v", NULL, CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME},
      {"s", str65535, NULL, NOT_AN_ERROR},
      {"s", str65536, NULL, CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE},
      {"s", "\xc3\x28", NULL, CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE},
      {"b", NULL, bytes65535, NOT_AN_ERROR},
      {"b", NULL, bytes65536, CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();

    if (cases[i].bytes)
      cp_aws_event_message_set_bytes (msg, cases[i].name, cases[i].bytes);
    else
      cp_aws_event_message_set_string (msg, cases[i].name, cases[i].string);
    if (cases[i].code == NOT_AN_ERROR)
      assert_encode_succeeds (msg);
    else
      assert_encode_fails (msg, cases[i].code);
  }

  {
    g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();

    /* Each header takes 6 bytes around its value: exactly 128 KiB. */
    g_autoptr (GBytes) fill = g_bytes_new (str65535, 65525);
    g_autoptr (GBytes) fill_over = g_bytes_new (str65535, 65526);

    cp_aws_event_message_set_bytes (msg, "b1", bytes65535);
    cp_aws_event_message_set_bytes (msg, "b2", fill);
    assert_encode_succeeds (msg);
    cp_aws_event_message_set_bytes (msg, "b2", fill_over);
    assert_encode_fails (msg, CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH);
  }
  {
    g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();

    cp_aws_event_message_set_payload (msg, payload_max);
    assert_encode_succeeds (msg);
    cp_aws_event_message_set_payload (msg, payload_over);
    assert_encode_fails (msg, CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH);
  }
}

static void
assert_decode_fails (GBytes *raw, gint code, const gchar *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpAwsEventMessage) msg =
      cp_aws_event_message_decode (g_bytes_get_data (raw, NULL),
          g_bytes_get_size (raw), &error);

  g_assert_null (msg);
  g_assert_error (error, CP_AWS_EVENT_STREAM_ERROR, code);
  if (text && !strstr (error->message, text))
    g_error ("\"%s\" does not contain \"%s\"", error->message, text);
}

/* Malformed headers inside messages whose CRCs are right. */
static void
test_decode_malformed_headers (void)
{
  static const struct
  {
    const gchar *headers;
    gsize len;
    gint code;
    const gchar *text;
  } cases[] = {
      /* Octal escapes: a hex escape would swallow the letters after it. */
      {STR ("\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME, "length of 0"},
      {STR ("\005ab"), CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME, "truncated"},
      {STR ("\001a"), CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME, "truncated"},
      {STR ("\001\377\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME, "UTF-8"},
      {STR ("\002a\000\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME, "NUL"},
      {STR ("\001a\012"), CP_AWS_EVENT_STREAM_ERROR_HEADER_TYPE,
          "unknown type 0x0a"},
      {STR ("\001a\377"), CP_AWS_EVENT_STREAM_ERROR_HEADER_TYPE,
          "unknown type 0xff"},
      {STR ("\001a\004\000\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
          "truncated"},
      {STR ("\001a\011\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE, "uuid"},
      {STR ("\001a\007\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
          "string length"},
      {STR ("\001a\006\000\005ab"), CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
          "truncated"},
      {STR ("\001a\007\000\001\377"), CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
          "UTF-8"},
      {STR ("\001a\007\000\001\000"), CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
          "NUL"},
      {STR ("\001a\000\001b\001\001a\002\007"),
          CP_AWS_EVENT_STREAM_ERROR_DUPLICATE_HEADER, "\"a\""},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GBytes) raw =
        make_message (cases[i].headers, cases[i].len, "p", 1);

    assert_decode_fails (raw, cases[i].code, cases[i].text);
  }
}

static void
test_decode_trailing_data (void)
{
  g_autoptr (GBytes) msg = make_message ("\001a\000", 3, "p", 1);
  g_autoptr (GByteArray) longer = g_byte_array_new ();
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
  g_autoptr (CpAwsEventMessage) first = NULL;
  g_autoptr (GError) error = NULL;

  g_byte_array_append (longer, g_bytes_get_data (msg, NULL),
      g_bytes_get_size (msg));
  g_byte_array_append (longer, (const guint8 *) "\x00", 1);
  raw = g_bytes_new (longer->data, longer->len);
  assert_decode_fails (raw, CP_AWS_EVENT_STREAM_ERROR_TRAILING_DATA, NULL);

  /* A stream holds the rest for the next message. */
  g_assert_true (
      cp_aws_event_decoder_feed (dec, longer->data, longer->len, &error));
  first = cp_aws_event_decoder_pop (dec);
  g_assert_nonnull (first);
  assert_encodes_to (first, msg);
  g_assert_cmpuint (cp_aws_event_decoder_get_pending (dec), ==, 1);
}

int
main (int argc, char **argv)
{
  guint i;

  g_test_init (&argc, &argv, NULL);

  for (i = 0; i < G_N_ELEMENTS (vectors); i++) {
    g_autofree gchar *path =
        g_strdup_printf ("/aws/eventstream/vector/%s", vectors[i].file);

    g_test_add_data_func (path, &vectors[i], test_vector);
  }
  g_test_add_func ("/aws/eventstream/every-vector-listed",
      test_every_vector_listed);
  g_test_add_func ("/aws/eventstream/roundtrip-all-types",
      test_roundtrip_all_types);
  g_test_add_func ("/aws/eventstream/set-replaces-in-place",
      test_set_replaces_in_place);
  g_test_add_func ("/aws/eventstream/getters", test_getters);
  g_test_add_func ("/aws/eventstream/stream-any-split", test_stream_any_split);
  g_test_add_func ("/aws/eventstream/decode-limits", test_decode_limits);
  g_test_add_func ("/aws/eventstream/encode-limits", test_encode_limits);
  g_test_add_func ("/aws/eventstream/decode-malformed-headers",
      test_decode_malformed_headers);
  g_test_add_func ("/aws/eventstream/decode-trailing-data",
      test_decode_trailing_data);
  return g_test_run ();
}

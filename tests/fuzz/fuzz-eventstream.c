/* libFuzzer target for the event-stream decoders.
 *
 * Each input goes through the one-shot decoder, then the streaming
 * decoder in chunks whose sizes come from the input's own bytes. The two
 * must agree on the first message, and whatever decodes must re-encode
 * to the bytes it came from. A copy with both CRCs repaired is decoded
 * too, so the header parser is reached without the fuzzer having to
 * solve CRC-32.
 */
#include "aws/eventstream.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static guint32
crc32_bitwise (const guint8 *p, gsize len)
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
write_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = (v >> 16) & 0xff;
  p[2] = (v >> 8) & 0xff;
  p[3] = v & 0xff;
}

static void
check_reencodes (const CpAwsEventMessage *msg, const guint8 *data, gsize size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) encoded = cp_aws_event_message_encode (msg, &error);

  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (encoded, NULL), g_bytes_get_size (encoded),
      data, size);
}

static CpAwsEventMessage *
decode_one_shot (const guint8 *data, gsize size)
{
  g_autoptr (GError) error = NULL;
  CpAwsEventMessage *msg = cp_aws_event_message_decode (data, size, &error);

  g_assert_true ((msg == NULL) != (error == NULL));
  if (msg)
    check_reencodes (msg, data, size);
  return msg;
}

static void
decode_streaming (const guint8 *data, gsize size,
    const CpAwsEventMessage *one_shot)
{
  g_autoptr (CpAwsEventDecoder) dec = cp_aws_event_decoder_new ();
  g_autoptr (GError) error = NULL;
  CpAwsEventMessage *msg;
  gsize pos = 0, consumed = 0, i = 0;
  gboolean ok = TRUE;

  while (ok && pos < size) {
    gsize chunk = 1 + data[i++ % size] % 97;

    chunk = MIN (chunk, size - pos);
    ok = cp_aws_event_decoder_feed (dec, data + pos, chunk, &error);
    g_assert_true (ok == (error == NULL));
    pos += chunk;
  }

  /* A whole input that is one valid message comes out the same way. */
  msg = cp_aws_event_decoder_pop (dec);
  if (one_shot) {
    g_assert_nonnull (msg);
    g_assert_null (cp_aws_event_decoder_pop (dec));
  }
  while (msg) {
    g_autoptr (GError) encode_error = NULL;
    g_autoptr (GBytes) encoded =
        cp_aws_event_message_encode (msg, &encode_error);
    gsize len = g_bytes_get_size (encoded);

    g_assert_no_error (encode_error);
    g_assert_cmpuint (consumed + len, <=, size);
    g_assert_cmpmem (g_bytes_get_data (encoded, NULL), len, data + consumed,
        len);
    consumed += len;
    cp_aws_event_message_unref (msg);
    msg = cp_aws_event_decoder_pop (dec);
  }
  if (ok)
    g_assert_cmpuint (consumed + cp_aws_event_decoder_get_pending (dec), ==,
        size);
  g_clear_error (&error);
  cp_aws_event_decoder_finish (dec, &error);
}

/* Rewrites the announced total length to the input size and recomputes
 * both CRCs, keeping the fuzzer's headers length. */
static void
decode_repaired (const guint8 *data, gsize size)
{
  g_autofree guint8 *copy = NULL;
  g_autoptr (CpAwsEventMessage) msg = NULL;

  if (size < CP_AWS_EVENT_STREAM_OVERHEAD
      || size > CP_AWS_EVENT_STREAM_MAX_MESSAGE_LEN)
    return;
  copy = g_memdup2 (data, size);
  write_be32 (copy, (guint32) size);
  write_be32 (copy + 8, crc32_bitwise (copy, 8));
  write_be32 (copy + size - 4, crc32_bitwise (copy, size - 4));
  msg = decode_one_shot (copy, size);
  decode_streaming (copy, size, msg);
  if (msg)
    g_assert_cmpuint (g_bytes_get_size (cp_aws_event_message_get_payload (msg)),
        ==, size - CP_AWS_EVENT_STREAM_OVERHEAD - read_be32 (copy + 4));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CpAwsEventMessage) msg = decode_one_shot (data, size);

  decode_streaming (data, size, msg);
  decode_repaired (data, size);
  return 0;
}

/* callpipe — AWS event-stream codec */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "eventstream.h"

#include <zlib.h>

#include <string.h>

struct _CpAwsEventMessage
{
  gatomicrefcount ref_count;
  GPtrArray *headers;
  GBytes *payload;
};

struct _CpAwsEventDecoder
{
  /* The message being assembled; its total length once the prelude is
   * complete and checked, else 0. */
  GByteArray *partial;
  guint32 partial_total;
  GQueue ready;
  GError *error;
};

/* Above this, a finished message's buffer is released rather than kept
 * for the next one, so one large message does not pin memory. */
#define DECODER_KEEP_BUFFER_LEN (64 * 1024)

GQuark
cp_aws_event_stream_error_quark (void)
{
  return g_quark_from_static_string ("cp-aws-event-stream-error-quark");
}

/* Both event-stream checksums are zlib's CRC-32. zlib computes it a word at
 * a time; a byte table showed up in profiles of bridged calls, where every
 * audio frame is checksummed twice on the way out. */
static guint32
crc32_update (guint32 crc, const guint8 *data, gsize len)
{
  while (len > 0) {
    uInt chunk = (uInt) MIN (len, (gsize) G_MAXUINT32);

    crc = (guint32) crc32 (crc, data, chunk);
    data += chunk;
    len -= chunk;
  }
  return crc;
}

static guint16
read_u16 (const guint8 *p)
{
  return (guint16) ((p[0] << 8) | p[1]);
}

static guint32
read_u32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8)
      | p[3];
}

static guint64
read_u64 (const guint8 *p)
{
  return ((guint64) read_u32 (p) << 32) | read_u32 (p + 4);
}

static void
append_u8 (GByteArray *out, guint8 v)
{
  g_byte_array_append (out, &v, 1);
}

static void
append_u16 (GByteArray *out, guint16 v)
{
  guint8 b[2] = {v >> 8, v & 0xff};

  g_byte_array_append (out, b, sizeof (b));
}

static void
append_u32 (GByteArray *out, guint32 v)
{
  guint8 b[4] = {v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};

  g_byte_array_append (out, b, sizeof (b));
}

static void
append_u64 (GByteArray *out, guint64 v)
{
  append_u32 (out, (guint32) (v >> 32));
  append_u32 (out, (guint32) v);
}

/* Headers */

static void
header_free (gpointer data)
{
  CpAwsEventHeader *header = data;

  if (header->type == CP_AWS_EVENT_HEADER_BYTES)
    g_bytes_unref (header->value.bytes);
  else if (header->type == CP_AWS_EVENT_HEADER_STRING)
    g_free (header->value.string);
  g_free (header->name);
  g_free (header);
}

static gint
find_header_index (const CpAwsEventMessage *msg, const gchar *name)
{
  guint i;

  for (i = 0; i < msg->headers->len; i++) {
    const CpAwsEventHeader *header = g_ptr_array_index (msg->headers, i);

    if (strcmp (header->name, name) == 0)
      return (gint) i;
  }
  return -1;
}

/* Takes ownership of @header, replacing any header of the same name in
 * its position. */
static void
message_put_header (CpAwsEventMessage *msg, CpAwsEventHeader *header)
{
  gint index = find_header_index (msg, header->name);

  if (index < 0) {
    g_ptr_array_add (msg->headers, header);
  } else {
    header_free (g_ptr_array_index (msg->headers, index));
    g_ptr_array_index (msg->headers, index) = header;
  }
}

static CpAwsEventHeader *
header_new (const gchar *name, CpAwsEventHeaderType type)
{
  CpAwsEventHeader *header = g_new0 (CpAwsEventHeader, 1);

  header->name = g_strdup (name);
  header->type = type;
  return header;
}

/* Messages */

CpAwsEventMessage *
cp_aws_event_message_new (void)
{
  CpAwsEventMessage *msg = g_new0 (CpAwsEventMessage, 1);

  g_atomic_ref_count_init (&msg->ref_count);
  msg->headers = g_ptr_array_new_with_free_func (header_free);
  msg->payload = g_bytes_new (NULL, 0);
  return msg;
}

CpAwsEventMessage *
cp_aws_event_message_ref (CpAwsEventMessage *msg)
{
  g_return_val_if_fail (msg != NULL, NULL);

  g_atomic_ref_count_inc (&msg->ref_count);
  return msg;
}

void
cp_aws_event_message_unref (CpAwsEventMessage *msg)
{
  g_return_if_fail (msg != NULL);

  if (!g_atomic_ref_count_dec (&msg->ref_count))
    return;
  g_ptr_array_unref (msg->headers);
  g_bytes_unref (msg->payload);
  g_free (msg);
}

void
cp_aws_event_message_set_bool (CpAwsEventMessage *msg, const gchar *name,
    gboolean value)
{
  g_return_if_fail (msg != NULL && name != NULL);

  message_put_header (msg,
      header_new (name,
          value ? CP_AWS_EVENT_HEADER_BOOL_TRUE
                : CP_AWS_EVENT_HEADER_BOOL_FALSE));
}

void
cp_aws_event_message_set_byte (CpAwsEventMessage *msg, const gchar *name,
    gint8 value)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_BYTE);
  header->value.byte = value;
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_int16 (CpAwsEventMessage *msg, const gchar *name,
    gint16 value)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_INT16);
  header->value.int16 = value;
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_int32 (CpAwsEventMessage *msg, const gchar *name,
    gint32 value)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_INT32);
  header->value.int32 = value;
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_int64 (CpAwsEventMessage *msg, const gchar *name,
    gint64 value)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_INT64);
  header->value.int64 = value;
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_bytes (CpAwsEventMessage *msg, const gchar *name,
    GBytes *value)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL && value != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_BYTES);
  header->value.bytes = g_bytes_ref (value);
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_string (CpAwsEventMessage *msg, const gchar *name,
    const gchar *value)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL && value != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_STRING);
  header->value.string = g_strdup (value);
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_timestamp (CpAwsEventMessage *msg, const gchar *name,
    gint64 ms_since_epoch)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_TIMESTAMP);
  header->value.int64 = ms_since_epoch;
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_uuid (CpAwsEventMessage *msg, const gchar *name,
    const guint8 *uuid16)
{
  CpAwsEventHeader *header;

  g_return_if_fail (msg != NULL && name != NULL && uuid16 != NULL);

  header = header_new (name, CP_AWS_EVENT_HEADER_UUID);
  memcpy (header->value.uuid, uuid16, CP_AWS_EVENT_STREAM_UUID_LEN);
  message_put_header (msg, header);
}

void
cp_aws_event_message_set_payload (CpAwsEventMessage *msg, GBytes *payload)
{
  g_return_if_fail (msg != NULL);

  g_bytes_unref (msg->payload);
  msg->payload = payload ? g_bytes_ref (payload) : g_bytes_new (NULL, 0);
}

guint
cp_aws_event_message_get_n_headers (const CpAwsEventMessage *msg)
{
  g_return_val_if_fail (msg != NULL, 0);

  return msg->headers->len;
}

const CpAwsEventHeader *
cp_aws_event_message_get_header (const CpAwsEventMessage *msg, guint index)
{
  g_return_val_if_fail (msg != NULL, NULL);
  g_return_val_if_fail (index < msg->headers->len, NULL);

  return g_ptr_array_index (msg->headers, index);
}

const CpAwsEventHeader *
cp_aws_event_message_find_header (const CpAwsEventMessage *msg,
    const gchar *name)
{
  gint index;

  g_return_val_if_fail (msg != NULL && name != NULL, NULL);

  index = find_header_index (msg, name);
  return index < 0 ? NULL : g_ptr_array_index (msg->headers, index);
}

GBytes *
cp_aws_event_message_get_payload (const CpAwsEventMessage *msg)
{
  g_return_val_if_fail (msg != NULL, NULL);

  return msg->payload;
}

const gchar *
cp_aws_event_message_get_string (const CpAwsEventMessage *msg,
    const gchar *name)
{
  const CpAwsEventHeader *header = cp_aws_event_message_find_header (msg, name);

  if (header == NULL || header->type != CP_AWS_EVENT_HEADER_STRING)
    return NULL;
  return header->value.string;
}

GBytes *
cp_aws_event_message_get_bytes (const CpAwsEventMessage *msg, const gchar *name)
{
  const CpAwsEventHeader *header = cp_aws_event_message_find_header (msg, name);

  if (header == NULL || header->type != CP_AWS_EVENT_HEADER_BYTES)
    return NULL;
  return header->value.bytes;
}

gboolean
cp_aws_event_message_get_timestamp (const CpAwsEventMessage *msg,
    const gchar *name, gint64 *ms_since_epoch)
{
  const CpAwsEventHeader *header = cp_aws_event_message_find_header (msg, name);

  if (header == NULL || header->type != CP_AWS_EVENT_HEADER_TIMESTAMP)
    return FALSE;
  if (ms_since_epoch)
    *ms_since_epoch = header->value.int64;
  return TRUE;
}

const gchar *
cp_aws_event_message_get_message_type (const CpAwsEventMessage *msg)
{
  return cp_aws_event_message_get_string (msg, ":message-type");
}

const gchar *
cp_aws_event_message_get_event_type (const CpAwsEventMessage *msg)
{
  return cp_aws_event_message_get_string (msg, ":event-type");
}

const gchar *
cp_aws_event_message_get_exception_type (const CpAwsEventMessage *msg)
{
  return cp_aws_event_message_get_string (msg, ":exception-type");
}

/* Encoding */

static gboolean
check_header_for_encoding (const CpAwsEventHeader *header, gsize *encoded_len,
    GError **error)
{
  gsize name_len = strlen (header->name);
  gsize value_len = 0;

  if (name_len == 0 || name_len > G_MAXUINT8) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "Header name is %" G_GSIZE_FORMAT " bytes long; it must be 1 to 255",
        name_len);
    return FALSE;
  }
  if (!g_utf8_validate_len (header->name, name_len, NULL)) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "Header name is not valid UTF-8");
    return FALSE;
  }

  switch (header->type) {
    case CP_AWS_EVENT_HEADER_BOOL_TRUE:
    case CP_AWS_EVENT_HEADER_BOOL_FALSE:
      break;
    case CP_AWS_EVENT_HEADER_BYTE:
      value_len = 1;
      break;
    case CP_AWS_EVENT_HEADER_INT16:
      value_len = 2;
      break;
    case CP_AWS_EVENT_HEADER_INT32:
      value_len = 4;
      break;
    case CP_AWS_EVENT_HEADER_INT64:
    case CP_AWS_EVENT_HEADER_TIMESTAMP:
      value_len = 8;
      break;
    case CP_AWS_EVENT_HEADER_UUID:
      value_len = CP_AWS_EVENT_STREAM_UUID_LEN;
      break;
    case CP_AWS_EVENT_HEADER_BYTES:
    case CP_AWS_EVENT_HEADER_STRING: {
      gsize len = header->type == CP_AWS_EVENT_HEADER_BYTES
          ? g_bytes_get_size (header->value.bytes)
          : strlen (header->value.string);

      if (len > G_MAXUINT16) {
        g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
            CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
            "Value of header \"%s\" is %" G_GSIZE_FORMAT
            " bytes long; at most 65535 fit",
            header->name, len);
        return FALSE;
      }
      if (header->type == CP_AWS_EVENT_HEADER_STRING
          && !g_utf8_validate_len (header->value.string, len, NULL)) {
        g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
            CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
            "Value of string header \"%s\" is not valid UTF-8", header->name);
        return FALSE;
      }
      value_len = 2 + len;
      break;
    }
    default:
      g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
          CP_AWS_EVENT_STREAM_ERROR_HEADER_TYPE,
          "Header \"%s\" has unknown type 0x%02x", header->name,
          (guint) header->type);
      return FALSE;
  }

  *encoded_len = 1 + name_len + 1 + value_len;
  return TRUE;
}

static void
append_header (GByteArray *out, const CpAwsEventHeader *header)
{
  gsize name_len = strlen (header->name);

  append_u8 (out, (guint8) name_len);
  g_byte_array_append (out, (const guint8 *) header->name, (guint) name_len);
  append_u8 (out, (guint8) header->type);

  switch (header->type) {
    case CP_AWS_EVENT_HEADER_BOOL_TRUE:
    case CP_AWS_EVENT_HEADER_BOOL_FALSE:
      break;
    case CP_AWS_EVENT_HEADER_BYTE:
      append_u8 (out, (guint8) header->value.byte);
      break;
    case CP_AWS_EVENT_HEADER_INT16:
      append_u16 (out, (guint16) header->value.int16);
      break;
    case CP_AWS_EVENT_HEADER_INT32:
      append_u32 (out, (guint32) header->value.int32);
      break;
    case CP_AWS_EVENT_HEADER_INT64:
    case CP_AWS_EVENT_HEADER_TIMESTAMP:
      append_u64 (out, (guint64) header->value.int64);
      break;
    case CP_AWS_EVENT_HEADER_UUID:
      g_byte_array_append (out, header->value.uuid,
          CP_AWS_EVENT_STREAM_UUID_LEN);
      break;
    case CP_AWS_EVENT_HEADER_BYTES: {
      gsize len;
      const guint8 *data = g_bytes_get_data (header->value.bytes, &len);

      append_u16 (out, (guint16) len);
      g_byte_array_append (out, data, (guint) len);
      break;
    }
    case CP_AWS_EVENT_HEADER_STRING: {
      gsize len = strlen (header->value.string);

      append_u16 (out, (guint16) len);
      g_byte_array_append (out, (const guint8 *) header->value.string,
          (guint) len);
      break;
    }
    default:
      g_assert_not_reached ();
  }
}

static gboolean
measure_headers (const CpAwsEventMessage *msg, gsize *headers_len,
    GError **error)
{
  gsize total = 0;
  guint i;

  for (i = 0; i < msg->headers->len; i++) {
    gsize len;

    if (!check_header_for_encoding (g_ptr_array_index (msg->headers, i), &len,
            error))
      return FALSE;
    total += len;
  }
  if (total > CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH,
        "Headers take %" G_GSIZE_FORMAT " bytes; the limit is %u", total,
        (guint) CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN);
    return FALSE;
  }
  *headers_len = total;
  return TRUE;
}

gboolean
cp_aws_event_message_encode_headers (const CpAwsEventMessage *msg,
    GByteArray *out, GError **error)
{
  gsize headers_len;
  guint i;

  g_return_val_if_fail (msg != NULL && out != NULL, FALSE);

  if (!measure_headers (msg, &headers_len, error))
    return FALSE;
  for (i = 0; i < msg->headers->len; i++)
    append_header (out, g_ptr_array_index (msg->headers, i));
  return TRUE;
}

gboolean
cp_aws_event_message_append_encoded (const CpAwsEventMessage *msg,
    GByteArray *out, GError **error)
{
  gsize headers_len, payload_len, total_len;
  const guint8 *payload;
  guint start;
  guint32 crc;
  guint i;

  g_return_val_if_fail (msg != NULL && out != NULL, FALSE);

  if (!measure_headers (msg, &headers_len, error))
    return FALSE;
  payload = g_bytes_get_data (msg->payload, &payload_len);
  if (payload_len > CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH,
        "Payload is %" G_GSIZE_FORMAT " bytes; the limit is %u", payload_len,
        (guint) CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN);
    return FALSE;
  }
  total_len = CP_AWS_EVENT_STREAM_OVERHEAD + headers_len + payload_len;

  start = out->len;
  append_u32 (out, (guint32) total_len);
  append_u32 (out, (guint32) headers_len);
  append_u32 (out, crc32_update (0, out->data + start, 8));
  for (i = 0; i < msg->headers->len; i++)
    append_header (out, g_ptr_array_index (msg->headers, i));
  if (payload_len > 0)
    g_byte_array_append (out, payload, (guint) payload_len);
  crc = crc32_update (0, out->data + start, out->len - start);
  append_u32 (out, crc);
  return TRUE;
}

gsize
cp_aws_event_stream_begin_message (GByteArray *out)
{
  gsize start;

  g_return_val_if_fail (out != NULL, 0);

  start = out->len;
  g_byte_array_set_size (out, start + CP_AWS_EVENT_STREAM_PRELUDE_LEN);
  return start;
}

static void
write_u32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = (v >> 16) & 0xff;
  p[2] = (v >> 8) & 0xff;
  p[3] = v & 0xff;
}

gboolean
cp_aws_event_stream_end_message (GByteArray *out, gsize start,
    gsize headers_len, GError **error)
{
  gsize body_len, payload_len;
  guint8 *p;

  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (start + CP_AWS_EVENT_STREAM_PRELUDE_LEN + headers_len
          <= out->len,
      FALSE);

  body_len = out->len - start - CP_AWS_EVENT_STREAM_PRELUDE_LEN;
  payload_len = body_len - headers_len;
  if (headers_len > CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH,
        "Headers take %" G_GSIZE_FORMAT " bytes; the limit is %u", headers_len,
        (guint) CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN);
    g_byte_array_set_size (out, start);
    return FALSE;
  }
  if (payload_len > CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH,
        "Payload is %" G_GSIZE_FORMAT " bytes; the limit is %u", payload_len,
        (guint) CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN);
    g_byte_array_set_size (out, start);
    return FALSE;
  }
  p = out->data + start;
  write_u32 (p, (guint32) (body_len + CP_AWS_EVENT_STREAM_OVERHEAD));
  write_u32 (p + 4, (guint32) headers_len);
  write_u32 (p + 8, crc32_update (0, p, 8));
  append_u32 (out, crc32_update (0, out->data + start, out->len - start));
  return TRUE;
}

GBytes *
cp_aws_event_message_encode (const CpAwsEventMessage *msg, GError **error)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();

  if (!cp_aws_event_message_append_encoded (msg, out, error))
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* Decoding */

static gboolean
parse_prelude (const guint8 *p, guint32 *total_len, guint32 *headers_len,
    GError **error)
{
  guint32 total = read_u32 (p);
  guint32 headers = read_u32 (p + 4);
  guint32 stored_crc = read_u32 (p + 8);
  guint32 crc = crc32_update (0, p, 8);

  if (crc != stored_crc) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM,
        "Prelude checksum mismatch: computed 0x%08x, message says 0x%08x", crc,
        stored_crc);
    return FALSE;
  }
  if (total < CP_AWS_EVENT_STREAM_OVERHEAD) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_LENGTH,
        "Message length %u is below the minimum of %u", total,
        (guint) CP_AWS_EVENT_STREAM_OVERHEAD);
    return FALSE;
  }
  if (headers > total - CP_AWS_EVENT_STREAM_OVERHEAD) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH,
        "Headers length %u does not fit in a message of %u bytes", headers,
        total);
    return FALSE;
  }
  if (headers > CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH,
        "Headers length %u is over the limit of %u", headers,
        (guint) CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN);
    return FALSE;
  }
  if (total - CP_AWS_EVENT_STREAM_OVERHEAD - headers
      > CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH,
        "Payload length %u is over the limit of %u",
        total - CP_AWS_EVENT_STREAM_OVERHEAD - headers,
        (guint) CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN);
    return FALSE;
  }
  *total_len = total;
  *headers_len = headers;
  return TRUE;
}

static const gchar *
header_type_name (guint8 type)
{
  static const gchar *const names[] = {"bool true", "bool false", "byte",
      "int16", "int32", "int64", "bytes", "string", "timestamp", "uuid"};

  return type < G_N_ELEMENTS (names) ? names[type] : "unknown";
}

/* Parses one header at @p (at most @avail bytes) into a new header and
 * returns how many bytes it took, or 0 with @error set. @index counts
 * headers from 0, for messages. */
static gsize
parse_header (const guint8 *p, gsize avail, guint index, CpAwsEventHeader **out,
    GError **error)
{
  g_autofree gchar *name = NULL;
  CpAwsEventHeader *header;
  gsize name_len, value_len, pos;
  guint8 type;

  name_len = p[0];
  if (name_len == 0) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "Header %u has a name length of 0", index);
    return 0;
  }
  if (1 + name_len + 1 > avail) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "Header %u is truncated: its %" G_GSIZE_FORMAT
        "-byte name and type run past the headers section",
        index, name_len);
    return 0;
  }
  /* Names and strings are kept as C strings: a NUL cannot be carried. */
  if (memchr (p + 1, '\0', name_len)) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "Header %u has a name containing a NUL byte", index);
    return 0;
  }
  if (!g_utf8_validate_len ((const gchar *) p + 1, name_len, NULL)) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
        "Header %u has a name that is not valid UTF-8", index);
    return 0;
  }
  name = g_strndup ((const gchar *) p + 1, name_len);
  pos = 1 + name_len;
  type = p[pos++];

  switch (type) {
    case CP_AWS_EVENT_HEADER_BOOL_TRUE:
    case CP_AWS_EVENT_HEADER_BOOL_FALSE:
      value_len = 0;
      break;
    case CP_AWS_EVENT_HEADER_BYTE:
      value_len = 1;
      break;
    case CP_AWS_EVENT_HEADER_INT16:
      value_len = 2;
      break;
    case CP_AWS_EVENT_HEADER_INT32:
      value_len = 4;
      break;
    case CP_AWS_EVENT_HEADER_INT64:
    case CP_AWS_EVENT_HEADER_TIMESTAMP:
      value_len = 8;
      break;
    case CP_AWS_EVENT_HEADER_UUID:
      value_len = CP_AWS_EVENT_STREAM_UUID_LEN;
      break;
    case CP_AWS_EVENT_HEADER_BYTES:
    case CP_AWS_EVENT_HEADER_STRING:
      if (pos + 2 > avail) {
        g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
            CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
            "Header \"%s\" is truncated: its %s length runs past the "
            "headers section",
            name, header_type_name (type));
        return 0;
      }
      value_len = read_u16 (p + pos);
      pos += 2;
      break;
    default:
      g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
          CP_AWS_EVENT_STREAM_ERROR_HEADER_TYPE,
          "Header \"%s\" has unknown type 0x%02x", name, type);
      return 0;
  }

  if (value_len > avail - pos) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
        "Header \"%s\" is truncated: its %" G_GSIZE_FORMAT "-byte %s value "
        "runs past the headers section (%" G_GSIZE_FORMAT " bytes left)",
        name, value_len, header_type_name (type), avail - pos);
    return 0;
  }
  if (type == CP_AWS_EVENT_HEADER_STRING && memchr (p + pos, '\0', value_len)) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
        "Value of string header \"%s\" contains a NUL byte", name);
    return 0;
  }
  if (type == CP_AWS_EVENT_HEADER_STRING
      && !g_utf8_validate_len ((const gchar *) p + pos, value_len, NULL)) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
        "Value of string header \"%s\" is not valid UTF-8", name);
    return 0;
  }

  header = g_new0 (CpAwsEventHeader, 1);
  header->name = g_steal_pointer (&name);
  header->type = type;
  switch (type) {
    case CP_AWS_EVENT_HEADER_BYTE:
      header->value.byte = (gint8) p[pos];
      break;
    case CP_AWS_EVENT_HEADER_INT16:
      header->value.int16 = (gint16) read_u16 (p + pos);
      break;
    case CP_AWS_EVENT_HEADER_INT32:
      header->value.int32 = (gint32) read_u32 (p + pos);
      break;
    case CP_AWS_EVENT_HEADER_INT64:
    case CP_AWS_EVENT_HEADER_TIMESTAMP:
      header->value.int64 = (gint64) read_u64 (p + pos);
      break;
    case CP_AWS_EVENT_HEADER_UUID:
      memcpy (header->value.uuid, p + pos, CP_AWS_EVENT_STREAM_UUID_LEN);
      break;
    case CP_AWS_EVENT_HEADER_BYTES:
      header->value.bytes = g_bytes_new (p + pos, value_len);
      break;
    case CP_AWS_EVENT_HEADER_STRING:
      header->value.string = g_strndup ((const gchar *) p + pos, value_len);
      break;
    default:
      break;
  }
  *out = header;
  return pos + value_len;
}

static gboolean
parse_headers (CpAwsEventMessage *msg, const guint8 *p, gsize len,
    GError **error)
{
  /* A hash set keeps duplicate detection linear: a hostile 128 KiB
   * headers section holds tens of thousands of headers. */
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  gsize pos = 0;

  while (pos < len) {
    CpAwsEventHeader *header = NULL;
    gsize used =
        parse_header (p + pos, len - pos, msg->headers->len, &header, error);

    if (used == 0)
      return FALSE;
    if (g_hash_table_contains (seen, header->name)) {
      g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
          CP_AWS_EVENT_STREAM_ERROR_DUPLICATE_HEADER, "Duplicate header \"%s\"",
          header->name);
      header_free (header);
      return FALSE;
    }
    g_hash_table_add (seen, header->name);
    g_ptr_array_add (msg->headers, header);
    pos += used;
  }
  return TRUE;
}

/* @p holds exactly one message of @total_len bytes whose prelude
 * parse_prelude() accepted.
 *
 * Headers are parsed before the message CRC is judged, as aws-sdk-go,
 * smithy-rs and aws-c-event-stream do: the structural defect is the more
 * precise diagnosis, and the error text still reports a CRC mismatch. */
static CpAwsEventMessage *
decode_checked_message (const guint8 *p, guint32 total_len, guint32 headers_len,
    GError **error)
{
  g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();
  g_autoptr (GError) header_error = NULL;
  guint32 body_end = total_len - 4;
  guint32 stored_crc = read_u32 (p + body_end);
  guint32 crc = crc32_update (0, p, body_end);
  const guint8 *payload = p + CP_AWS_EVENT_STREAM_PRELUDE_LEN + headers_len;

  if (!parse_headers (msg, p + CP_AWS_EVENT_STREAM_PRELUDE_LEN, headers_len,
          &header_error)) {
    if (crc == stored_crc)
      g_propagate_error (error, g_steal_pointer (&header_error));
    else
      g_set_error (error, header_error->domain, header_error->code,
          "%s; the message checksum does not match either (computed "
          "0x%08x, message says 0x%08x)",
          header_error->message, crc, stored_crc);
    return NULL;
  }
  if (crc != stored_crc) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM,
        "Message checksum mismatch: computed 0x%08x, message says 0x%08x", crc,
        stored_crc);
    return NULL;
  }

  g_bytes_unref (msg->payload);
  msg->payload = g_bytes_new (payload, body_end - (payload - p));
  return g_steal_pointer (&msg);
}

CpAwsEventMessage *
cp_aws_event_message_decode (const guint8 *data, gsize len, GError **error)
{
  guint32 total_len, headers_len;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (len < CP_AWS_EVENT_STREAM_PRELUDE_LEN) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_TRUNCATED,
        "Message truncated: %" G_GSIZE_FORMAT
        " bytes, shorter than the %u-byte prelude",
        len, (guint) CP_AWS_EVENT_STREAM_PRELUDE_LEN);
    return NULL;
  }
  if (!parse_prelude (data, &total_len, &headers_len, error))
    return NULL;
  if (len < total_len) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_TRUNCATED,
        "Message truncated: %" G_GSIZE_FORMAT " of %u bytes", len, total_len);
    return NULL;
  }
  if (len > total_len) {
    g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
        CP_AWS_EVENT_STREAM_ERROR_TRAILING_DATA,
        "%" G_GSIZE_FORMAT " bytes follow the %u-byte message", len - total_len,
        total_len);
    return NULL;
  }
  return decode_checked_message (data, total_len, headers_len, error);
}

/* Streaming decoder */

CpAwsEventDecoder *
cp_aws_event_decoder_new (void)
{
  CpAwsEventDecoder *dec = g_new0 (CpAwsEventDecoder, 1);

  dec->partial = g_byte_array_new ();
  g_queue_init (&dec->ready);
  return dec;
}

void
cp_aws_event_decoder_free (CpAwsEventDecoder *dec)
{
  if (dec == NULL)
    return;
  g_byte_array_unref (dec->partial);
  g_queue_clear_full (&dec->ready, (GDestroyNotify) cp_aws_event_message_unref);
  g_clear_error (&dec->error);
  g_free (dec);
}

static gboolean
decoder_fail (CpAwsEventDecoder *dec, GError *error, GError **out_error)
{
  dec->error = error;
  if (out_error)
    *out_error = g_error_copy (error);
  return FALSE;
}

static gboolean
decoder_emit (CpAwsEventDecoder *dec, const guint8 *p, guint32 total_len,
    guint32 headers_len, GError **error)
{
  GError *err = NULL;
  CpAwsEventMessage *msg =
      decode_checked_message (p, total_len, headers_len, &err);

  if (msg == NULL)
    return decoder_fail (dec, err, error);
  g_queue_push_tail (&dec->ready, msg);
  return TRUE;
}

gboolean
cp_aws_event_decoder_feed (CpAwsEventDecoder *dec, const guint8 *data,
    gsize len, GError **error)
{
  guint32 total_len, headers_len;
  GError *err = NULL;

  g_return_val_if_fail (dec != NULL, FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  if (dec->error) {
    g_propagate_error (error, g_error_copy (dec->error));
    return FALSE;
  }

  while (len > 0) {
    gsize want, take;

    /* Whole messages at the start of @data are decoded in place. */
    if (dec->partial->len == 0 && len >= CP_AWS_EVENT_STREAM_PRELUDE_LEN) {
      if (!parse_prelude (data, &total_len, &headers_len, &err))
        return decoder_fail (dec, err, error);
      if (len >= total_len) {
        if (!decoder_emit (dec, data, total_len, headers_len, error))
          return FALSE;
        data += total_len;
        len -= total_len;
        continue;
      }
      dec->partial_total = total_len;
    }

    want = dec->partial_total ? dec->partial_total
                              : CP_AWS_EVENT_STREAM_PRELUDE_LEN;
    take = MIN (want - dec->partial->len, len);
    g_byte_array_append (dec->partial, data, (guint) take);
    data += take;
    len -= take;
    if (dec->partial->len < want)
      break;

    if (dec->partial_total == 0) {
      if (!parse_prelude (dec->partial->data, &total_len, &headers_len, &err))
        return decoder_fail (dec, err, error);
      /* The prelude guarantees more bytes follow: at least the CRC. */
      dec->partial_total = total_len;
      continue;
    }

    headers_len = read_u32 (dec->partial->data + 4);
    if (!decoder_emit (dec, dec->partial->data, dec->partial_total, headers_len,
            error))
      return FALSE;
    if (dec->partial_total > DECODER_KEEP_BUFFER_LEN) {
      g_byte_array_unref (dec->partial);
      dec->partial = g_byte_array_new ();
    } else {
      g_byte_array_set_size (dec->partial, 0);
    }
    dec->partial_total = 0;
  }
  return TRUE;
}

CpAwsEventMessage *
cp_aws_event_decoder_pop (CpAwsEventDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, NULL);

  return g_queue_pop_head (&dec->ready);
}

gsize
cp_aws_event_decoder_get_pending (const CpAwsEventDecoder *dec)
{
  g_return_val_if_fail (dec != NULL, 0);

  return dec->partial->len;
}

gboolean
cp_aws_event_decoder_finish (CpAwsEventDecoder *dec, GError **error)
{
  g_return_val_if_fail (dec != NULL, FALSE);

  if (dec->error) {
    g_propagate_error (error, g_error_copy (dec->error));
    return FALSE;
  }
  if (dec->partial->len > 0) {
    if (dec->partial_total)
      g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
          CP_AWS_EVENT_STREAM_ERROR_TRUNCATED,
          "Stream ended inside a message: %u of %u bytes", dec->partial->len,
          dec->partial_total);
    else
      g_set_error (error, CP_AWS_EVENT_STREAM_ERROR,
          CP_AWS_EVENT_STREAM_ERROR_TRUNCATED,
          "Stream ended inside a prelude: %u of %u bytes", dec->partial->len,
          (guint) CP_AWS_EVENT_STREAM_PRELUDE_LEN);
    return FALSE;
  }
  return TRUE;
}

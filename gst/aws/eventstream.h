/* callpipe — AWS event-stream codec (application/vnd.amazon.eventstream)
 *
 * A message is a prelude (total length, headers length, prelude CRC-32),
 * typed headers, a payload and a message CRC-32, all big-endian. The
 * decoders treat their input as hostile: every malformed message fails
 * with a CP_AWS_EVENT_STREAM_ERROR naming the defect, and the streaming
 * decoder never buffers more than one message of at most
 * CP_AWS_EVENT_STREAM_MAX_MESSAGE_LEN bytes.
 */
#ifndef CP_AWS_EVENT_STREAM_H
#define CP_AWS_EVENT_STREAM_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_AWS_EVENT_STREAM_PRELUDE_LEN      12
#define CP_AWS_EVENT_STREAM_OVERHEAD         16
#define CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN  (128 * 1024)
#define CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN  (24 * 1024 * 1024)
#define CP_AWS_EVENT_STREAM_MAX_MESSAGE_LEN  \
    (CP_AWS_EVENT_STREAM_OVERHEAD + CP_AWS_EVENT_STREAM_MAX_HEADERS_LEN + \
     CP_AWS_EVENT_STREAM_MAX_PAYLOAD_LEN)
#define CP_AWS_EVENT_STREAM_UUID_LEN         16

#define CP_AWS_EVENT_STREAM_ERROR (cp_aws_event_stream_error_quark ())

typedef enum {
  CP_AWS_EVENT_STREAM_ERROR_TRUNCATED,
  CP_AWS_EVENT_STREAM_ERROR_TRAILING_DATA,
  CP_AWS_EVENT_STREAM_ERROR_PRELUDE_CHECKSUM,
  CP_AWS_EVENT_STREAM_ERROR_MESSAGE_CHECKSUM,
  CP_AWS_EVENT_STREAM_ERROR_MESSAGE_LENGTH,
  CP_AWS_EVENT_STREAM_ERROR_HEADERS_LENGTH,
  CP_AWS_EVENT_STREAM_ERROR_PAYLOAD_LENGTH,
  CP_AWS_EVENT_STREAM_ERROR_HEADER_NAME,
  CP_AWS_EVENT_STREAM_ERROR_HEADER_TYPE,
  CP_AWS_EVENT_STREAM_ERROR_HEADER_VALUE,
  CP_AWS_EVENT_STREAM_ERROR_DUPLICATE_HEADER,
} CpAwsEventStreamError;

/* The wire type bytes. */
typedef enum {
  CP_AWS_EVENT_HEADER_BOOL_TRUE  = 0,
  CP_AWS_EVENT_HEADER_BOOL_FALSE = 1,
  CP_AWS_EVENT_HEADER_BYTE       = 2,
  CP_AWS_EVENT_HEADER_INT16      = 3,
  CP_AWS_EVENT_HEADER_INT32      = 4,
  CP_AWS_EVENT_HEADER_INT64      = 5,
  CP_AWS_EVENT_HEADER_BYTES      = 6,
  CP_AWS_EVENT_HEADER_STRING     = 7,
  CP_AWS_EVENT_HEADER_TIMESTAMP  = 8,
  CP_AWS_EVENT_HEADER_UUID       = 9,
} CpAwsEventHeaderType;

/* Read-only view of one header; owned by its message. */
typedef struct {
  gchar                *name;
  CpAwsEventHeaderType  type;
  union {
    gint8   byte;
    gint16  int16;
    gint32  int32;
    gint64  int64;      /* INT64, and TIMESTAMP in ms since the epoch */
    GBytes *bytes;      /* BYTES */
    gchar  *string;     /* STRING: valid UTF-8 without NUL */
    guint8  uuid[CP_AWS_EVENT_STREAM_UUID_LEN];
  } value;
} CpAwsEventHeader;

typedef struct _CpAwsEventMessage CpAwsEventMessage;
typedef struct _CpAwsEventDecoder CpAwsEventDecoder;

GQuark              cp_aws_event_stream_error_quark (void);

/* Messages: headers keep their insertion (or wire) order; a setter
 * replaces an existing header of the same name in place. */
CpAwsEventMessage  *cp_aws_event_message_new      (void);
CpAwsEventMessage  *cp_aws_event_message_ref      (CpAwsEventMessage *msg);
void                cp_aws_event_message_unref    (CpAwsEventMessage *msg);

void     cp_aws_event_message_set_bool      (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             gboolean value);
void     cp_aws_event_message_set_byte      (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             gint8 value);
void     cp_aws_event_message_set_int16     (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             gint16 value);
void     cp_aws_event_message_set_int32     (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             gint32 value);
void     cp_aws_event_message_set_int64     (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             gint64 value);
void     cp_aws_event_message_set_bytes     (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             GBytes *value);
void     cp_aws_event_message_set_string    (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             const gchar *value);
void     cp_aws_event_message_set_timestamp (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             gint64 ms_since_epoch);
void     cp_aws_event_message_set_uuid      (CpAwsEventMessage *msg,
                                             const gchar *name,
                                             const guint8 *uuid16);
/* NULL means an empty payload. */
void     cp_aws_event_message_set_payload   (CpAwsEventMessage *msg,
                                             GBytes *payload);

guint    cp_aws_event_message_get_n_headers (const CpAwsEventMessage *msg);
const CpAwsEventHeader *
         cp_aws_event_message_get_header    (const CpAwsEventMessage *msg,
                                             guint index);
const CpAwsEventHeader *
         cp_aws_event_message_find_header   (const CpAwsEventMessage *msg,
                                             const gchar *name);
/* Never NULL; transfer none. */
GBytes  *cp_aws_event_message_get_payload   (const CpAwsEventMessage *msg);

/* Typed lookups: NULL / FALSE when the header is absent or of another
 * type. */
const gchar *cp_aws_event_message_get_string    (const CpAwsEventMessage *msg,
                                                 const gchar *name);
GBytes      *cp_aws_event_message_get_bytes     (const CpAwsEventMessage *msg,
                                                 const gchar *name);
gboolean     cp_aws_event_message_get_timestamp (const CpAwsEventMessage *msg,
                                                 const gchar *name,
                                                 gint64 *ms_since_epoch);
const gchar *cp_aws_event_message_get_message_type
                                                (const CpAwsEventMessage *msg);
const gchar *cp_aws_event_message_get_event_type
                                                (const CpAwsEventMessage *msg);
const gchar *cp_aws_event_message_get_exception_type
                                                (const CpAwsEventMessage *msg);

/* Encoding fails on what the wire cannot carry: an empty, over-long or
 * non-UTF-8 name, a string or bytes value over 65535 bytes, headers or
 * payload over the limits. */
GBytes   *cp_aws_event_message_encode         (const CpAwsEventMessage *msg,
                                               GError **error);
gboolean  cp_aws_event_message_append_encoded (const CpAwsEventMessage *msg,
                                               GByteArray *out,
                                               GError **error);
/* Only the headers section, as the event signer hashes it. */
gboolean  cp_aws_event_message_encode_headers (const CpAwsEventMessage *msg,
                                               GByteArray *out,
                                               GError **error);

/* Encoding in place, for hot paths that write the headers and payload
 * where they go: cp_aws_event_stream_begin_message() appends room for the
 * prelude to @out and returns the message's start; the caller appends the
 * encoded headers (@headers_len bytes) and the payload; then
 * cp_aws_event_stream_end_message() writes the prelude and appends the
 * message CRC. The result is what cp_aws_event_message_append_encoded()
 * writes for the same message. When the headers or the payload are over
 * the limits, end fails and cuts @out back to @start. */
gsize     cp_aws_event_stream_begin_message   (GByteArray *out);
gboolean  cp_aws_event_stream_end_message     (GByteArray *out,
                                               gsize start,
                                               gsize headers_len,
                                               GError **error);

/* Exactly one whole message: shorter input is TRUNCATED, longer input
 * is TRAILING_DATA. */
CpAwsEventMessage *cp_aws_event_message_decode (const guint8 *data,
                                                gsize len,
                                                GError **error);

/* Streaming decoder: feed bytes split anywhere, pop whole messages.
 * The first error is sticky: a stream cannot resynchronise after it. */
CpAwsEventDecoder *cp_aws_event_decoder_new      (void);
void               cp_aws_event_decoder_free     (CpAwsEventDecoder *dec);
gboolean           cp_aws_event_decoder_feed     (CpAwsEventDecoder *dec,
                                                  const guint8 *data,
                                                  gsize len,
                                                  GError **error);
/* The next complete message (transfer full), or NULL: need more data. */
CpAwsEventMessage *cp_aws_event_decoder_pop      (CpAwsEventDecoder *dec);
/* Bytes held of a message not yet complete. */
gsize              cp_aws_event_decoder_get_pending
                                                 (const CpAwsEventDecoder *dec);
/* End of input: fails with TRUNCATED when a message is incomplete. */
gboolean           cp_aws_event_decoder_finish   (CpAwsEventDecoder *dec,
                                                  GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsEventMessage, cp_aws_event_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsEventDecoder, cp_aws_event_decoder_free)

G_END_DECLS

#endif /* CP_AWS_EVENT_STREAM_H */

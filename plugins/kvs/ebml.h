/* EBML primitives: variable-length integers and leaf values.
 * Pure C on GLib, no GStreamer, so it can be unit-tested and fuzzed alone. */
#ifndef KVS_EBML_H
#define KVS_EBML_H

#include <glib.h>

G_BEGIN_DECLS

/* Element IDs, marker bits kept, as in the Matroska specification. */
#define KVS_EBML_ID_HEADER             0x1A45DFA3
#define KVS_EBML_ID_DOCTYPE            0x4282
#define KVS_EBML_ID_VOID               0xEC
#define KVS_EBML_ID_CRC32              0xBF
#define KVS_EBML_ID_SEGMENT            0x18538067
#define KVS_EBML_ID_SEEKHEAD           0x114D9B74
#define KVS_EBML_ID_INFO               0x1549A966
#define KVS_EBML_ID_TIMECODESCALE      0x2AD7B1
#define KVS_EBML_ID_TRACKS             0x1654AE6B
#define KVS_EBML_ID_TRACKENTRY         0xAE
#define KVS_EBML_ID_TRACKNUMBER        0xD7
#define KVS_EBML_ID_TRACKTYPE          0x83
#define KVS_EBML_ID_NAME               0x536E
#define KVS_EBML_ID_CODECID            0x86
#define KVS_EBML_ID_AUDIO              0xE1
#define KVS_EBML_ID_SAMPLINGFREQUENCY  0xB5
#define KVS_EBML_ID_CHANNELS           0x9F
#define KVS_EBML_ID_BITDEPTH           0x6264
#define KVS_EBML_ID_CLUSTER            0x1F43B675
#define KVS_EBML_ID_TIMECODE           0xE7
#define KVS_EBML_ID_SIMPLEBLOCK        0xA3
#define KVS_EBML_ID_BLOCKGROUP         0xA0
#define KVS_EBML_ID_BLOCK              0xA1
#define KVS_EBML_ID_CUES               0x1C53BB6B
#define KVS_EBML_ID_CHAPTERS           0x1043A770
#define KVS_EBML_ID_ATTACHMENTS        0x1941A469
#define KVS_EBML_ID_TAGS               0x1254C367
#define KVS_EBML_ID_TAG                0x7373
#define KVS_EBML_ID_SIMPLETAG          0x67C8
#define KVS_EBML_ID_TAGNAME            0x45A3
#define KVS_EBML_ID_TAGSTRING          0x4487

/* An all-ones size field: the element runs until its parent's end or an
 * element that cannot be its child. */
#define KVS_EBML_SIZE_UNKNOWN          G_MAXUINT64

typedef enum
{
  KVS_EBML_OK,
  KVS_EBML_NEED_MORE,
  KVS_EBML_INVALID
} KvsEbmlResult;

guint         kvs_ebml_vint_length  (guint8 first);
KvsEbmlResult kvs_ebml_read_id      (const guint8 * data, gsize len,
                                     guint32 * id, guint * id_len);
KvsEbmlResult kvs_ebml_read_size    (const guint8 * data, gsize len,
                                     guint64 * size, guint * size_len);
KvsEbmlResult kvs_ebml_read_vint    (const guint8 * data, gsize len,
                                     guint64 * value, guint * vint_len);

gboolean      kvs_ebml_parse_uint   (const guint8 * data, gsize len,
                                     guint64 * value);
gboolean      kvs_ebml_parse_float  (const guint8 * data, gsize len,
                                     gdouble * value);
gchar *       kvs_ebml_parse_string (const guint8 * data, gsize len);

G_END_DECLS

#endif /* KVS_EBML_H */

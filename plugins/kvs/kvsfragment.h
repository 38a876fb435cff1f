/* KVS GetMedia stream parser: turns the concatenated per-fragment MKV
 * documents of a GetMedia response into KvsFragment records (tracks, tags,
 * audio blocks). Pure C on GLib, no GStreamer: unit-tested and fuzzed alone.
 *
 * Push parser: the caller keeps the input (a GstAdapter in kvsdemux) and
 * offers contiguous bytes; kvs_parser_parse() consumes whole elements and
 * says through kvs_parser_get_needed() how many contiguous bytes it needs
 * to go on. Skipped elements (video frames, Cues) are consumed piecewise,
 * so the caller never holds more than one capped element.
 *
 * Two ways to take the results. By default, kvs_parser_pop_fragment()
 * hands out each fragment once it is complete, blocks included. After
 * kvs_parser_set_incremental(), kvs_parser_pop_event() hands out, in
 * document order, each tag, each Cluster start (with the tracks) and each
 * audio block as soon as its bytes are parsed, then the complete fragment
 * without its blocks: a live consumer need not wait for the fragment's
 * end. The caps (KVS_MAX_FRAGMENT_AUDIO included) apply in both modes. */
#ifndef KVS_FRAGMENT_H
#define KVS_FRAGMENT_H

#include <glib.h>

G_BEGIN_DECLS

#define KVS_PARSER_ERROR (kvs_parser_error_quark ())
GQuark kvs_parser_error_quark (void);

typedef enum
{
  KVS_PARSER_ERROR_NOT_EBML,    /* the input does not start as EBML/MKV */
  KVS_PARSER_ERROR_MALFORMED,   /* bad vint, element overflows its parent */
  KVS_PARSER_ERROR_TOO_LARGE,   /* an element or fragment over our caps */
  KVS_PARSER_ERROR_TRUNCATED    /* input ended inside an element */
} KvsParserError;

/* Limits on what the parser will buffer or accept from the network. */
#define KVS_MAX_BLOCK_SIZE        (4 * 1024 * 1024)
#define KVS_MAX_MASTER_SIZE       (1024 * 1024)
#define KVS_MAX_STRING_SIZE       (64 * 1024)
#define KVS_MAX_SKIP_SIZE         (G_GUINT64_CONSTANT (256) * 1024 * 1024)
#define KVS_MAX_FRAGMENT_AUDIO    (16 * 1024 * 1024)
#define KVS_MAX_FRAGMENT_TAGS     4096
#define KVS_MAX_TRACKS            64
#define KVS_MAX_DEPTH             16

/* Value of a KvsFragment number field that no tag set. */
#define KVS_NONE                  G_MAXUINT64

/* Matroska TrackType values. */
#define KVS_TRACK_TYPE_VIDEO      1
#define KVS_TRACK_TYPE_AUDIO      2

typedef struct
{
  guint64 number;
  guint64 type;                 /* TrackType, 0 when absent */
  gchar *name;                  /* "" when absent */
  gchar *codec_id;              /* "" when absent */
  gdouble sampling_frequency;   /* Audio/SamplingFrequency, 0 when absent */
  guint64 channels;             /* Audio/Channels, 0 when absent */
  guint64 bit_depth;            /* Audio/BitDepth, 0 when absent */
} KvsTrack;

typedef struct
{
  guint64 track_number;
  /* Cluster Timecode + the block's relative timecode, in TimecodeScale
   * units; pts_ns is KVS_NONE when negative or out of range. */
  gint64 timecode;
  guint64 pts_ns;
  GBytes *payload;
} KvsBlock;

typedef struct
{
  gchar *name;
  gchar *value;
} KvsTag;

typedef struct
{
  GPtrArray *tracks;            /* KvsTrack, as of this fragment */
  GPtrArray *blocks;            /* KvsBlock of audio tracks, stream order;
                                 * empty in incremental mode */
  GPtrArray *tags;              /* KvsTag, document order, AWS ones too */
  guint64 timecode_scale;
  guint n_clusters;
  guint n_blocks;               /* every block, video ones included */
  gsize audio_bytes;
  /* Cut short by kvs_parser_discont() or by the end of the input. */
  gboolean truncated;

  /* Parsed AWS_KINESISVIDEO_* and Connect tags, NULL or KVS_NONE unset. */
  gchar *fragment_number;
  gchar *continuation_token;
  gchar *contact_id;
  gchar *mime_type;
  gchar *error_code;
  gchar *error_message;
  guint64 error_id;
  guint64 producer_timestamp_ms;
  guint64 server_timestamp_ms;
  guint64 millis_behind_now;
} KvsFragment;

typedef enum
{
  KVS_EVENT_TAG,                /* a SimpleTag of the current fragment */
  KVS_EVENT_CLUSTER,            /* a Cluster starts: the tracks to map */
  KVS_EVENT_BLOCK,              /* an audio block */
  KVS_EVENT_FRAGMENT            /* the fragment is complete (no blocks) */
} KvsEventType;

typedef struct
{
  KvsEventType type;
  KvsTag *tag;                  /* TAG */
  GPtrArray *tracks;            /* CLUSTER: KvsTrack, the Segment's */
  KvsBlock *block;              /* BLOCK */
  KvsFragment *fragment;        /* FRAGMENT: truncated, tags, metadata */
} KvsEvent;

typedef struct _KvsParser KvsParser;

KvsParser *   kvs_parser_new          (void);
void          kvs_parser_free         (KvsParser * parser);
void          kvs_parser_reset        (KvsParser * parser);

gboolean      kvs_parser_parse        (KvsParser * parser,
                                       const guint8 * data, gsize len,
                                       gsize * consumed, GError ** error);
gsize         kvs_parser_get_needed   (KvsParser * parser);
guint64       kvs_parser_get_offset   (KvsParser * parser);
KvsFragment * kvs_parser_pop_fragment (KvsParser * parser);
void          kvs_parser_set_incremental (KvsParser * parser,
                                       gboolean incremental);
KvsEvent *    kvs_parser_pop_event    (KvsParser * parser);

void          kvs_parser_discont      (KvsParser * parser);
gboolean      kvs_parser_finish       (KvsParser * parser, gsize pending,
                                       GError ** error);

const KvsTrack * kvs_fragment_find_track (const KvsFragment * fragment,
                                          guint64 number);
gboolean      kvs_track_is_audio      (const KvsTrack * track);
void          kvs_fragment_free       (KvsFragment * fragment);
void          kvs_event_free          (KvsEvent * event);
void          kvs_block_free          (KvsBlock * block);

gboolean      kvs_parse_timestamp_ms  (const gchar * str, guint64 * ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvsFragment, kvs_fragment_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvsParser, kvs_parser_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvsEvent, kvs_event_free)

G_END_DECLS

#endif /* KVS_FRAGMENT_H */

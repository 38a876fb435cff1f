/**
 * SECTION:element-kvsdemux
 * @title: kvsdemux
 *
 * Demuxes the byte stream of a Kinesis Video Streams GetMedia response (one
 * MKV document per fragment, concatenated, with unknown-size Segments and
 * Clusters) into raw audio, as Amazon Connect live media streaming writes
 * it: one sometimes pad per direction, `from_customer` (the track named
 * `AUDIO_FROM_CUSTOMER`, or the legacy `Track_audio/L16`) and `to_customer`
 * (`AUDIO_TO_CUSTOMER`), and `audio_%u` for any other audio track. Tracks
 * are mapped by their Name, never by number; video tracks are skipped.
 *
 * Connect's payload is S16LE mono PCM at 8000 Hz under a bogus `A_AAC`
 * CodecID, so the CodecID is ignored: caps come from the track's Audio
 * element, else from the fragment's `MimeType` tag (rate and channels),
 * else the Connect defaults.
 *
 * Blocks are pushed as soon as their bytes are parsed, unless the
 * fragment's contact has to be checked and is not known yet: the
 * `ContactId` tag may follow the Cluster (Connect's layout), and the
 * contact decides whether the audio belongs to the call (see
 * #GstKvsDemux:contact-id and #GstKvsDemux:stop-on-contact-change). A
 * fragment's contact is known when its ContactId tag came before its
 * audio; with #GstKvsDemux:latency-mode `block`, it is also taken to be
 * the call's once the call's contact is established by earlier fragments.
 * Otherwise the fragment's blocks wait for the tag or the fragment's end.
 * Without a contact to check against (no #GstKvsDemux:contact-id and no
 * ContactId seen yet, or #GstKvsDemux:stop-on-contact-change off) nothing
 * waits: the first fragment's contact becomes the call's whatever it is.
 *
 * The trade-off: in the default `fragment` mode no audio of another contact
 * ever goes out, at the cost of up to one fragment (about a second for
 * Connect) of latency when the ContactId tag trails the audio; in `block`
 * mode the element holds one block (64 ms for Connect), and when a
 * following contact's tag trails its audio, up to one fragment of that
 * contact goes out before EOS.
 *
 * The element answers the LATENCY query with the upstream minimum plus
 * what it holds: the longest block, or the longest fragment once it has
 * had to hold a fragment while audio was flowing (it then posts a LATENCY
 * message). PTS count samples from 0 with the first audio, so they never
 * drift; behind a live source such as kvssrc, the segment's base is the
 * running time at which the first audio went out, so that sinks
 * synchronized to the clock play it on time. A span a track has no blocks for (by its timecodes, or a
 * fragment without it) is filled with silence when #GstKvsDemux:fill-gaps
 * is set, else announced with a GAP event, so the two directions stay
 * sample-aligned.
 *
 * A `kvs-fragment` element message is posted for every fragment, with the
 * fields `fragment-number` (string), `producer-timestamp` and
 * `server-timestamp` (guint64, ms since the epoch), `contact-id`,
 * `continuation-token`, `millis-behind-now` (guint64), as present, and
 * `error-code`/`error-id` for in-band errors, which also become a warning
 * (an error for the KMS ones, 4500-4506).
 *
 * Resuming: a buffer flagged DISCONT (a source reconnecting) drops the
 * partial MKV document it interrupts and pushes its complete blocks not
 * pushed yet; each pad then remembers the fragment number it last pushed from and how many
 * of that fragment's blocks it pushed, so a fragment sent again from its
 * start after a reconnect only contributes the blocks not yet pushed: no
 * sample is lost or duplicated.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=call.mkv ! kvsdemux name=d \
 *     d.from_customer ! queue ! wavenc ! filesink location=customer.wav \
 *     d.to_customer ! queue ! wavenc ! filesink location=agent.wav
 * ]|
 * Live, with the lowest latency:
 * |[
 * gst-launch-1.0 kvssrc stream-arn=arn:aws:kinesisvideo:... ! \
 *     kvsdemux latency-mode=block ! audioconvert ! autoaudiosink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkvsdemux.h"
#include "gstkvselements.h"

#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_kvs_demux_debug);
#define GST_CAT_DEFAULT gst_kvs_demux_debug

enum
{
  PROP_0,
  PROP_CONTACT_ID,
  PROP_STOP_ON_CONTACT_CHANGE,
  PROP_FILL_GAPS,
  PROP_LATENCY_MODE,
};

#define DEFAULT_CONTACT_ID NULL
#define DEFAULT_STOP_ON_CONTACT_CHANGE TRUE
#define DEFAULT_FILL_GAPS TRUE
#define DEFAULT_LATENCY_MODE GST_KVS_DEMUX_LATENCY_FRAGMENT

#define DEFAULT_RATE 8000
#define DEFAULT_CHANNELS 1
/* Producer timecodes have millisecond resolution; a hole smaller than this
 * is timestamp jitter, not missing audio. */
#define GAP_THRESHOLD (20 * GST_MSECOND)
/* A bigger jump is a new timeline (a producer restart, another contact on a
 * reused stream), not silence to synthesize. */
#define MAX_GAP (60 * GST_SECOND)
#define PARSE_CHUNK (64 * 1024)
/* Connect's block, 512 samples at 8 kHz: the latency reported before the
 * first block says otherwise. */
#define DEFAULT_BLOCK_LATENCY (64 * GST_MSECOND)

/* What the current fragment's audio does. */
typedef enum
{
  FATE_UNDECIDED,
  FATE_PUSH,
  FATE_HOLD, /* until its contact is known */
  FATE_DROP,
} Fate;

/* What a fragment's contact means for the call. */
typedef enum
{
  VERDICT_ACCEPT,
  VERDICT_REJECT, /* not the call's yet: dropped */
  VERDICT_END, /* the call is over */
} Verdict;

/* The properties, read once per chain call. */
typedef struct
{
  gchar *target;
  gboolean stop;
  gboolean fill;
  GstKvsDemuxLatencyMode mode;
} Settings;

struct _GstKvsDemuxStream
{
  GstPad *pad;
  gchar *track_name;
  guint64 track_number; /* used only when the track has no name */
  gint rate;
  gint channels;
  gboolean big_endian;
  GstClockTime epoch_pts; /* PTS at which the current caps began */
  guint64 epoch_frames; /* frames pushed since then */
  gboolean discont;
  gboolean in_fragment; /* had blocks in the current fragment */
  guint fragment_blocks; /* its blocks seen in the current fragment */
  gchar *resume_fragment; /* last fragment number it pushed from */
  guint resume_blocks; /* and how many of its blocks */
};

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("video/x-matroska; audio/x-matroska; "
                         "video/webm; audio/webm"));

#define SRC_CAPS                                             \
  "audio/x-raw, format = (string) { S16LE, S16BE }, "        \
  "layout = (string) interleaved, rate = (int) [ 1, MAX ], " \
  "channels = (int) [ 1, MAX ]"

static GstStaticPadTemplate from_template =
    GST_STATIC_PAD_TEMPLATE ("from_customer", GST_PAD_SRC, GST_PAD_SOMETIMES,
        GST_STATIC_CAPS (SRC_CAPS));
static GstStaticPadTemplate to_template =
    GST_STATIC_PAD_TEMPLATE ("to_customer", GST_PAD_SRC, GST_PAD_SOMETIMES,
        GST_STATIC_CAPS (SRC_CAPS));
static GstStaticPadTemplate audio_template =
    GST_STATIC_PAD_TEMPLATE ("audio_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
        GST_STATIC_CAPS (SRC_CAPS));

#define gst_kvs_demux_parent_class parent_class
G_DEFINE_TYPE (GstKvsDemux, gst_kvs_demux, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (kvsdemux, "kvsdemux", GST_RANK_NONE,
    GST_TYPE_KVS_DEMUX);

static void gst_kvs_demux_finalize (GObject *object);
static void gst_kvs_demux_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_kvs_demux_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_kvs_demux_change_state (GstElement *element,
    GstStateChange transition);
static GstFlowReturn gst_kvs_demux_chain (GstPad *pad, GstObject *parent,
    GstBuffer *buffer);
static gboolean gst_kvs_demux_sink_event (GstPad *pad, GstObject *parent,
    GstEvent *event);
static gboolean gst_kvs_demux_src_query (GstPad *pad, GstObject *parent,
    GstQuery *query);

GType
gst_kvs_demux_latency_mode_get_type (void)
{
  static gsize id = 0;
  static const GEnumValue values[] = {
      {GST_KVS_DEMUX_LATENCY_FRAGMENT,
          "Hold a fragment whose contact must be checked until its ContactId "
          "tag: no audio of another contact goes out",
          "fragment"},
      {GST_KVS_DEMUX_LATENCY_BLOCK,
          "Push each block as it arrives once the call's contact is known: "
          "up to one fragment of a following contact can go out before EOS",
          "block"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&id)) {
    GType type = g_enum_register_static ("GstKvsDemuxLatencyMode", values);

    g_once_init_leave (&id, type);
  }
  return (GType) id;
}

static void
gst_kvs_demux_class_init (GstKvsDemuxClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_kvs_demux_debug, "kvsdemux", 0,
      "KVS GetMedia demuxer");

  gobject_class->finalize = gst_kvs_demux_finalize;
  gobject_class->set_property = gst_kvs_demux_set_property;
  gobject_class->get_property = gst_kvs_demux_get_property;

  g_object_class_install_property (gobject_class, PROP_CONTACT_ID,
      g_param_spec_string ("contact-id", "Contact ID",
          "Keep only the fragments whose ContactId tag is this Amazon "
          "Connect contact, and end the stream (EOS) when another contact "
          "follows it; NULL keeps every contact",
          DEFAULT_CONTACT_ID,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_STOP_ON_CONTACT_CHANGE,
      g_param_spec_boolean ("stop-on-contact-change", "Stop on contact change",
          "Without contact-id, take the first ContactId seen as the call's "
          "and end the stream (EOS) when another one follows, since Connect "
          "reuses streams across contacts",
          DEFAULT_STOP_ON_CONTACT_CHANGE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_FILL_GAPS,
      g_param_spec_boolean ("fill-gaps", "Fill gaps",
          "Fill spans a track has no audio for with silence, so that both "
          "directions stay sample-aligned; when FALSE, send GAP events "
          "instead",
          DEFAULT_FILL_GAPS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstKvsDemux:latency-mode:
   *
   * When the ContactId tag of a fragment follows its audio and the contact
   * has to be checked: `fragment` holds the fragment until the tag (no
   * audio of another contact goes out, up to a fragment of latency);
   * `block` pushes each block as it arrives once the call's contact is
   * established (one block of latency, but up to one fragment of a
   * following contact goes out before EOS).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY_MODE,
      g_param_spec_enum ("latency-mode", "Latency mode",
          "When a fragment's ContactId tag follows its audio: 'fragment' "
          "holds the fragment until the tag, so no audio of another contact "
          "goes out (up to a fragment, ~1 s, of latency); 'block' pushes "
          "each block as it arrives once the call's contact is known (one "
          "block, 64 ms, of latency), and up to one fragment of a following "
          "contact can go out before EOS",
          GST_TYPE_KVS_DEMUX_LATENCY_MODE, DEFAULT_LATENCY_MODE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
  gst_type_mark_as_plugin_api (GST_TYPE_KVS_DEMUX_LATENCY_MODE, 0);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &from_template);
  gst_element_class_add_static_pad_template (element_class, &to_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_set_static_metadata (element_class, "KVS GetMedia demuxer",
      "Codec/Demuxer/Audio",
      "Demuxes Amazon Kinesis Video Streams GetMedia output (Amazon Connect "
      "live media) into raw audio per direction",
      "callpipe <https://github.com/callpipe/callpipe>");

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_kvs_demux_change_state);
}

static void
gst_kvs_demux_init (GstKvsDemux *self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_kvs_demux_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_kvs_demux_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->adapter = gst_adapter_new ();
  self->parser = kvs_parser_new ();
  kvs_parser_set_incremental (self->parser, TRUE);
  self->needed = 1;
  self->streams = g_ptr_array_new ();
  self->held = g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_block_free);
  self->flowcombiner = gst_flow_combiner_new ();
  self->contact_id = g_strdup (DEFAULT_CONTACT_ID);
  self->stop_on_contact_change = DEFAULT_STOP_ON_CONTACT_CHANGE;
  self->fill_gaps = DEFAULT_FILL_GAPS;
  self->latency_mode = DEFAULT_LATENCY_MODE;
  self->latency = DEFAULT_BLOCK_LATENCY;
}

static void
stream_free (GstKvsDemuxStream *stream)
{
  g_free (stream->track_name);
  g_free (stream->resume_fragment);
  g_free (stream);
}

/* Forgets the fragment being parsed (a flush, a reset). */
static void
clear_fragment (GstKvsDemux *self)
{
  self->in_fragment = FALSE;
  self->fate = FATE_UNDECIDED;
  g_clear_pointer (&self->frag_number, g_free);
  g_clear_pointer (&self->frag_contact, g_free);
  g_clear_pointer (&self->frag_mime, g_free);
  g_clear_pointer (&self->tracks, g_ptr_array_unref);
  g_ptr_array_set_size (self->held, 0);
  self->audio_started = FALSE;
  self->frag_first_ns = KVS_NONE;
  self->frag_last_ns = 0;
  self->ending = FALSE;
}

static void
gst_kvs_demux_reset (GstKvsDemux *self)
{
  guint i;

  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *stream = g_ptr_array_index (self->streams, i);

    gst_flow_combiner_remove_pad (self->flowcombiner, stream->pad);
    gst_element_remove_pad (GST_ELEMENT (self), stream->pad);
    stream_free (stream);
  }
  g_ptr_array_set_size (self->streams, 0);
  gst_flow_combiner_reset (self->flowcombiner);
  gst_adapter_clear (self->adapter);
  kvs_parser_reset (self->parser);
  self->needed = 1;
  self->no_more_pads = FALSE;
  self->n_other_pads = 0;
  self->have_group_id = FALSE;
  self->have_origin = FALSE;
  self->origin_ns = 0;
  g_clear_pointer (&self->last_contact, g_free);
  g_clear_pointer (&self->call_contact, g_free);
  self->seen_target = FALSE;
  self->eos = FALSE;
  self->failed = FALSE;
  clear_fragment (self);
  g_clear_pointer (&self->last_mime, g_free);
  self->have_time_base = FALSE;
  self->live = FALSE;
  self->time_base = 0;
  self->block_ns = 0;
  self->fragment_ns = 0;
  self->held_live = FALSE;
  GST_OBJECT_LOCK (self);
  self->latency = DEFAULT_BLOCK_LATENCY;
  GST_OBJECT_UNLOCK (self);
}

static void
gst_kvs_demux_finalize (GObject *object)
{
  GstKvsDemux *self = GST_KVS_DEMUX (object);

  g_ptr_array_free (self->streams, TRUE);
  gst_flow_combiner_free (self->flowcombiner);
  g_object_unref (self->adapter);
  kvs_parser_free (self->parser);
  clear_fragment (self);
  g_ptr_array_unref (self->held);
  g_free (self->last_mime);
  g_free (self->last_contact);
  g_free (self->call_contact);
  g_free (self->contact_id);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_kvs_demux_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstKvsDemux *self = GST_KVS_DEMUX (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_CONTACT_ID:
      g_free (self->contact_id);
      self->contact_id = g_value_dup_string (value);
      break;
    case PROP_STOP_ON_CONTACT_CHANGE:
      self->stop_on_contact_change = g_value_get_boolean (value);
      break;
    case PROP_FILL_GAPS:
      self->fill_gaps = g_value_get_boolean (value);
      break;
    case PROP_LATENCY_MODE:
      self->latency_mode = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_kvs_demux_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstKvsDemux *self = GST_KVS_DEMUX (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_CONTACT_ID:
      g_value_set_string (value, self->contact_id);
      break;
    case PROP_STOP_ON_CONTACT_CHANGE:
      g_value_set_boolean (value, self->stop_on_contact_change);
      break;
    case PROP_FILL_GAPS:
      g_value_set_boolean (value, self->fill_gaps);
      break;
    case PROP_LATENCY_MODE:
      g_value_set_enum (value, self->latency_mode);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- timing and latency ---- */

/* What the element adds: the block being parsed, or a whole fragment once
 * one had to wait for its contact after audio had started to flow. A
 * fragment held before the first audio delays the timeline's start
 * instead (see start_timeline). */
static void
update_latency (GstKvsDemux *self, gboolean force)
{
  GstClockTime own = MAX (self->block_ns, DEFAULT_BLOCK_LATENCY);
  gboolean changed;

  if (self->held_live)
    own = MAX (own, self->fragment_ns);
  GST_OBJECT_LOCK (self);
  changed = own != self->latency;
  self->latency = own;
  GST_OBJECT_UNLOCK (self);
  if ((changed || force) && self->live) {
    GST_INFO_OBJECT (self, "latency %" GST_TIME_FORMAT, GST_TIME_ARGS (own));
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

/* Behind a live source, the first audio goes out at the running time at
 * which the pads appear (the segment's base), so that sinks synchronized
 * to the clock play it then plus the latency, not at 0 (long past); PTS
 * still count samples from 0. */
static void
start_timeline (GstKvsDemux *self)
{
  GstQuery *query = gst_query_new_latency ();
  GstClock *clock;

  self->have_time_base = TRUE;
  if (gst_pad_peer_query (self->sinkpad, query))
    gst_query_parse_latency (query, &self->live, NULL, NULL);
  gst_query_unref (query);
  clock = self->live ? gst_element_get_clock (GST_ELEMENT (self)) : NULL;
  if (clock != NULL) {
    GstClockTime now = gst_clock_get_time (clock);
    GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));

    self->time_base = now > base ? now - base : 0;
    gst_object_unref (clock);
  }
  GST_INFO_OBJECT (self,
      "%s input: the audio starts at running time %" GST_TIME_FORMAT,
      self->live ? "live" : "non-live", GST_TIME_ARGS (self->time_base));
}

/* ---- caps and pads ---- */

/* "audio/L16;rate=8000;channels=1;" -> rate, channels. The byte order of
 * the name is not trusted: Connect's L16 payload is little-endian. */
static void
parse_mime_type (const gchar *mime, gint *rate, gint *channels)
{
  g_auto (GStrv) params = g_strsplit (mime, ";", -1);
  guint i;

  for (i = 0; params[i] != NULL; i++) {
    gchar *p = g_strstrip (params[i]);
    guint64 v;

    if (g_str_has_prefix (p, "rate=")
        && g_ascii_string_to_unsigned (p + 5, 10, 1000, 384000, &v, NULL))
      *rate = (gint) v;
    else if (g_str_has_prefix (p, "channels=")
        && g_ascii_string_to_unsigned (p + 9, 10, 1, 64, &v, NULL))
      *channels = (gint) v;
  }
}

/* Raw 16-bit PCM is all Connect sends; its CodecID (A_AAC) is bogus, so
 * only real compressed codecs rule a track out. */
static gboolean
track_is_pcm (const KvsTrack *track)
{
  if (!kvs_track_is_audio (track))
    return FALSE;
  if (track->bit_depth != 0 && track->bit_depth != 16)
    return FALSE;
  return track->codec_id[0] == '\0' || !strcmp (track->codec_id, "A_AAC")
      || g_str_has_prefix (track->codec_id, "A_PCM/INT/");
}

static void
track_format (const KvsTrack *track, const gchar *mime, gint *rate,
    gint *channels, gboolean *big_endian)
{
  *rate = DEFAULT_RATE;
  *channels = DEFAULT_CHANNELS;
  if (mime)
    parse_mime_type (mime, rate, channels);
  if (track->sampling_frequency >= 1000 && track->sampling_frequency <= 384000)
    *rate = (gint) lround (track->sampling_frequency);
  if (track->channels >= 1 && track->channels <= 64)
    *channels = (gint) track->channels;
  *big_endian = !strcmp (track->codec_id, "A_PCM/INT/BIG");
}

static GstCaps *
stream_caps (GstKvsDemuxStream *stream)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING,
      stream->big_endian ? "S16BE" : "S16LE", "layout", G_TYPE_STRING,
      "interleaved", "rate", G_TYPE_INT, stream->rate, "channels", G_TYPE_INT,
      stream->channels, NULL);
}

static gboolean
stream_matches (GstKvsDemuxStream *stream, const KvsTrack *track)
{
  if (track->name[0] != '\0')
    return !g_strcmp0 (stream->track_name, track->name);
  return stream->track_name[0] == '\0' && stream->track_number == track->number;
}

static GstKvsDemuxStream *
find_stream (GstKvsDemux *self, const KvsTrack *track)
{
  guint i;

  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *stream = g_ptr_array_index (self->streams, i);

    if (stream_matches (stream, track))
      return stream;
  }
  return NULL;
}

static gboolean
pad_name_taken (GstKvsDemux *self, const gchar *name)
{
  guint i;

  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *stream = g_ptr_array_index (self->streams, i);

    if (!strcmp (GST_PAD_NAME (stream->pad), name))
      return TRUE;
  }
  return FALSE;
}

static void
add_stream (GstKvsDemux *self, const KvsTrack *track, const gchar *mime)
{
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (self);
  GstKvsDemuxStream *stream = g_new0 (GstKvsDemuxStream, 1);
  g_autofree gchar *name = NULL;
  g_autofree gchar *stream_id = NULL;
  GstPadTemplate *templ;
  GstCaps *caps;
  GstEvent *event;
  GstSegment segment;

  if (!strcmp (track->name, "AUDIO_FROM_CUSTOMER")
      || !strcmp (track->name, "Track_audio/L16"))
    name = g_strdup ("from_customer");
  else if (!strcmp (track->name, "AUDIO_TO_CUSTOMER"))
    name = g_strdup ("to_customer");
  if (name == NULL || pad_name_taken (self, name)) {
    g_free (name);
    name = g_strdup_printf ("audio_%u", self->n_other_pads++);
    templ = gst_element_class_get_pad_template (klass, "audio_%u");
  } else {
    templ = gst_element_class_get_pad_template (klass, name);
  }

  stream->track_name = g_strdup (track->name);
  stream->track_number = track->number;
  track_format (track, mime, &stream->rate, &stream->channels,
      &stream->big_endian);
  stream->discont = TRUE;
  stream->pad = gst_pad_new_from_template (templ, name);
  gst_pad_set_query_function (stream->pad,
      GST_DEBUG_FUNCPTR (gst_kvs_demux_src_query));
  gst_pad_use_fixed_caps (stream->pad);
  gst_pad_set_active (stream->pad, TRUE);

  if (!self->have_group_id) {
    self->group_id = gst_util_group_id_next ();
    self->have_group_id = TRUE;
  }
  stream_id = gst_pad_create_stream_id (stream->pad, GST_ELEMENT (self), name);
  event = gst_event_new_stream_start (stream_id);
  gst_event_set_group_id (event, self->group_id);
  gst_pad_push_event (stream->pad, event);
  caps = stream_caps (stream);
  gst_pad_push_event (stream->pad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  if (!self->have_time_base)
    start_timeline (self);
  segment.base = self->time_base;
  gst_pad_push_event (stream->pad, gst_event_new_segment (&segment));

  GST_INFO_OBJECT (self,
      "track %" G_GUINT64_FORMAT " '%s' -> pad %s, "
      "%d Hz, %d channel(s)",
      track->number, track->name, name, stream->rate, stream->channels);
  g_ptr_array_add (self->streams, stream);
  gst_element_add_pad (GST_ELEMENT (self), stream->pad);
  gst_flow_combiner_add_pad (self->flowcombiner, stream->pad);
}

static void
create_pads (GstKvsDemux *self, GPtrArray *tracks, const gchar *mime)
{
  guint i;

  for (i = 0; i < tracks->len; i++) {
    const KvsTrack *track = g_ptr_array_index (tracks, i);

    if (track_is_pcm (track))
      add_stream (self, track, mime);
    else
      GST_DEBUG_OBJECT (self,
          "skipping track %" G_GUINT64_FORMAT " (type %" G_GUINT64_FORMAT
          ", codec '%s')",
          track->number, track->type, track->codec_id);
  }
  gst_element_no_more_pads (GST_ELEMENT (self));
  self->no_more_pads = TRUE;
  /* Linked now: the pipeline must add this element's latency. */
  update_latency (self, TRUE);
}

static GstClockTime
stream_end (GstKvsDemuxStream *stream)
{
  return stream->epoch_pts
      + gst_util_uint64_scale_int (stream->epoch_frames, GST_SECOND,
          stream->rate);
}

/* A fragment may change a track's format: new caps, and sample counting
 * restarts from where the old format ended. */
static void
update_stream_format (GstKvsDemux *self, GstKvsDemuxStream *stream,
    const KvsTrack *track, const gchar *mime)
{
  gint rate, channels;
  gboolean big_endian;
  GstCaps *caps;

  track_format (track, mime, &rate, &channels, &big_endian);
  if (rate == stream->rate && channels == stream->channels
      && big_endian == stream->big_endian)
    return;
  stream->epoch_pts = stream_end (stream);
  stream->epoch_frames = 0;
  stream->rate = rate;
  stream->channels = channels;
  stream->big_endian = big_endian;
  caps = stream_caps (stream);
  GST_INFO_OBJECT (stream->pad, "format changed: %" GST_PTR_FORMAT, caps);
  gst_pad_push_event (stream->pad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
}

/* ---- pushing ---- */

static GstFlowReturn
push_buffer (GstKvsDemux *self, GstKvsDemuxStream *stream, GstBuffer *buf,
    guint64 frames)
{
  GstClockTime pos = stream_end (stream);
  GstFlowReturn ret;

  GST_BUFFER_PTS (buf) = pos;
  stream->epoch_frames += frames;
  GST_BUFFER_DTS (buf) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION (buf) = stream_end (stream) - pos;
  if (stream->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    stream->discont = FALSE;
  }
  ret = gst_pad_push (stream->pad, buf);
  return gst_flow_combiner_update_pad_flow (self->flowcombiner, stream->pad,
      ret);
}

static GstFlowReturn
fill_gap (GstKvsDemux *self, GstKvsDemuxStream *stream, guint64 frames,
    gboolean fill)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gsize bpf = 2 * stream->channels;

  GST_DEBUG_OBJECT (stream->pad,
      "%s of %" G_GUINT64_FORMAT " frames at %" GST_TIME_FORMAT,
      fill ? "silence" : "gap", frames, GST_TIME_ARGS (stream_end (stream)));
  if (!fill) {
    GstClockTime pts = stream_end (stream);

    stream->epoch_frames += frames;
    gst_pad_push_event (stream->pad,
        gst_event_new_gap (pts, stream_end (stream) - pts));
    return GST_FLOW_OK;
  }
  /* In buffers of at most a second, as a source of silence would. */
  while (frames > 0 && ret == GST_FLOW_OK) {
    guint64 n = MIN (frames, (guint64) stream->rate);
    GstBuffer *buf = gst_buffer_new_allocate (NULL, n * bpf, NULL);

    gst_buffer_memset (buf, 0, 0, n * bpf);
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
    ret = push_buffer (self, stream, buf, n);
    frames -= n;
  }
  return ret;
}

/* Keeps a track on the shared timeline: when its next block starts later
 * (by the producer's timecodes) than where its samples have got to, the
 * difference is missing audio. */
static GstFlowReturn
align_stream (GstKvsDemux *self, GstKvsDemuxStream *stream, guint64 block_ns,
    gboolean fill)
{
  GstClockTime expected, end;
  guint64 frames;

  if (!self->have_origin || block_ns == KVS_NONE || block_ns < self->origin_ns)
    return GST_FLOW_OK;
  expected = block_ns - self->origin_ns;
  end = stream_end (stream);
  if (expected <= end + GAP_THRESHOLD)
    return GST_FLOW_OK;
  if (expected - end > MAX_GAP) {
    GST_INFO_OBJECT (stream->pad,
        "timecodes jump by %" GST_TIME_FORMAT ": new timeline",
        GST_TIME_ARGS (expected - end));
    self->origin_ns += expected - end;
    stream->discont = TRUE;
    return GST_FLOW_OK;
  }
  frames =
      gst_util_uint64_scale_round (expected - end, stream->rate, GST_SECOND);
  return fill_gap (self, stream, frames, fill);
}

/* Resume bookkeeping by the fragment's FRAGMENT_NUMBER tag, which GetMedia
 * writes before the Cluster. */
static gboolean
already_pushed (GstKvsDemux *self, GstKvsDemuxStream *stream)
{
  return self->frag_number != NULL
      && !g_strcmp0 (stream->resume_fragment, self->frag_number)
      && stream->fragment_blocks < stream->resume_blocks;
}

static void
remember_pushed (GstKvsDemux *self, GstKvsDemuxStream *stream, guint blocks)
{
  if (self->frag_number == NULL)
    return;
  if (g_strcmp0 (stream->resume_fragment, self->frag_number)) {
    g_free (stream->resume_fragment);
    stream->resume_fragment = g_strdup (self->frag_number);
  }
  stream->resume_blocks = blocks;
}

static GstFlowReturn
push_block (GstKvsDemux *self, GstKvsDemuxStream *stream, const KvsBlock *block,
    gboolean fill)
{
  gsize bpf = 2 * stream->channels;
  gsize size = g_bytes_get_size (block->payload);
  guint64 frames = size / bpf;
  GstFlowReturn ret;
  GstBuffer *buf;

  if (already_pushed (self, stream)) {
    GST_DEBUG_OBJECT (stream->pad, "block %u of fragment %s already pushed",
        stream->fragment_blocks, self->frag_number);
    stream->fragment_blocks++;
    return GST_FLOW_OK;
  }
  stream->in_fragment = TRUE;
  if (gst_util_uint64_scale_int (frames, GST_SECOND, stream->rate)
      > self->block_ns) {
    self->block_ns =
        gst_util_uint64_scale_int (frames, GST_SECOND, stream->rate);
    if (self->have_time_base)
      update_latency (self, FALSE);
  }
  ret = align_stream (self, stream, block->pts_ns, fill);
  if (ret != GST_FLOW_OK || frames == 0)
    goto done;
  if (frames * bpf != size)
    GST_WARNING_OBJECT (stream->pad,
        "block of %" G_GSIZE_FORMAT " bytes is "
        "not a whole number of frames: tail dropped",
        size);
  buf = gst_buffer_new_wrapped_bytes (block->payload);
  if (frames * bpf != size)
    gst_buffer_resize (buf, 0, frames * bpf);
  ret = push_buffer (self, stream, buf, frames);

done:
  remember_pushed (self, stream, stream->fragment_blocks + 1);
  stream->fragment_blocks++;
  return ret;
}

static const KvsTrack *
find_track (GPtrArray *tracks, guint64 number)
{
  guint i;

  for (i = 0; tracks != NULL && i < tracks->len; i++) {
    const KvsTrack *t = g_ptr_array_index (tracks, i);

    if (t->number == number)
      return t;
  }
  return NULL;
}

static GstKvsDemuxStream *
block_stream (GstKvsDemux *self, const KvsBlock *block)
{
  const KvsTrack *t = find_track (self->tracks, block->track_number);

  return t != NULL && track_is_pcm (t) ? find_stream (self, t) : NULL;
}

/* PTS 0 is the earliest block the first audio pushed holds. */
static void
set_origin (GstKvsDemux *self, KvsBlock **blocks, guint n)
{
  guint i;

  for (i = 0; i < n; i++) {
    if (blocks[i]->pts_ns == KVS_NONE || block_stream (self, blocks[i]) == NULL)
      continue;
    if (!self->have_origin || blocks[i]->pts_ns < self->origin_ns)
      self->origin_ns = blocks[i]->pts_ns;
    self->have_origin = TRUE;
  }
}

/* The fragment's first audio: the pads (at the first fragment), and the
 * formats, from the MimeType tag seen so far or the last fragment's. */
static void
start_fragment_audio (GstKvsDemux *self)
{
  const gchar *mime = self->frag_mime ? self->frag_mime : self->last_mime;
  guint i;

  self->audio_started = TRUE;
  if (self->tracks == NULL)
    return;
  if (!self->no_more_pads && self->tracks->len > 0)
    create_pads (self, self->tracks, mime);
  for (i = 0; i < self->tracks->len; i++) {
    const KvsTrack *t = g_ptr_array_index (self->tracks, i);
    GstKvsDemuxStream *s = find_stream (self, t);

    if (s != NULL && track_is_pcm (t))
      update_stream_format (self, s, t, mime);
  }
}

static GstFlowReturn
release_blocks (GstKvsDemux *self, KvsBlock **blocks, guint n, gboolean fill)
{
  GstFlowReturn ret = GST_FLOW_OK;
  guint i;

  if (!self->audio_started)
    start_fragment_audio (self);
  if (!self->have_origin)
    set_origin (self, blocks, n);
  for (i = 0; i < n && ret == GST_FLOW_OK; i++) {
    GstKvsDemuxStream *s = block_stream (self, blocks[i]);

    if (s != NULL)
      ret = push_block (self, s, blocks[i], fill);
  }
  return ret;
}

static GstFlowReturn
release_held (GstKvsDemux *self, gboolean fill)
{
  GstFlowReturn ret;

  if (self->held->len == 0)
    return GST_FLOW_OK;
  GST_DEBUG_OBJECT (self, "contact %s: pushing %u held blocks",
      GST_STR_NULL (self->last_contact), self->held->len);
  ret = release_blocks (self, (KvsBlock **) self->held->pdata, self->held->len,
      fill);
  g_ptr_array_set_size (self->held, 0);
  return ret;
}

/* A track with no block at all in a fragment where the others have audio
 * (Connect streams one direction only for a while) is brought level with
 * them, so both directions stay aligned. A cut-short fragment does not
 * count: the rest of it may come again after a reconnect. */
static GstFlowReturn
level_streams (GstKvsDemux *self, const KvsFragment *frag, gboolean fill)
{
  GstClockTime target = 0;
  gboolean any = FALSE;
  GstFlowReturn ret = GST_FLOW_OK;
  guint i;

  if (frag->truncated)
    return GST_FLOW_OK;
  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *s = g_ptr_array_index (self->streams, i);

    if (s->in_fragment) {
      target = MAX (target, stream_end (s));
      any = TRUE;
    }
  }
  for (i = 0; any && i < self->streams->len && ret == GST_FLOW_OK; i++) {
    GstKvsDemuxStream *s = g_ptr_array_index (self->streams, i);
    GstClockTime end = stream_end (s);

    if (!s->in_fragment && target > end)
      ret = fill_gap (self, s,
          gst_util_uint64_scale_round (target - end, s->rate, GST_SECOND),
          fill);
  }
  return ret;
}

/* ---- fragments ---- */

static void
post_fragment_message (GstKvsDemux *self, const KvsFragment *frag)
{
  GstStructure *s = gst_structure_new_empty ("kvs-fragment");
  GstStructure *tags = gst_structure_new_empty ("tags");
  guint i;

  if (frag->fragment_number)
    gst_structure_set (s, "fragment-number", G_TYPE_STRING,
        frag->fragment_number, NULL);
  if (frag->producer_timestamp_ms != KVS_NONE)
    gst_structure_set (s, "producer-timestamp", G_TYPE_UINT64,
        frag->producer_timestamp_ms, NULL);
  if (frag->server_timestamp_ms != KVS_NONE)
    gst_structure_set (s, "server-timestamp", G_TYPE_UINT64,
        frag->server_timestamp_ms, NULL);
  if (self->last_contact)
    gst_structure_set (s, "contact-id", G_TYPE_STRING, self->last_contact,
        NULL);
  if (frag->continuation_token)
    gst_structure_set (s, "continuation-token", G_TYPE_STRING,
        frag->continuation_token, NULL);
  if (frag->millis_behind_now != KVS_NONE)
    gst_structure_set (s, "millis-behind-now", G_TYPE_UINT64,
        frag->millis_behind_now, NULL);
  if (frag->error_code)
    gst_structure_set (s, "error-code", G_TYPE_STRING, frag->error_code, NULL);
  if (frag->error_id != KVS_NONE)
    gst_structure_set (s, "error-id", G_TYPE_UINT64, frag->error_id, NULL);
  /* Every tag, by name, the last one winning: what the producer (Connect:
   * InstanceId, MimeType, AUDIO_*_CUSTOMER, Events) attached. */
  for (i = 0; i < frag->tags->len; i++) {
    const KvsTag *tag = g_ptr_array_index (frag->tags, i);

    if (tag->name[0] != '\0')
      gst_structure_set (tags, tag->name, G_TYPE_STRING, tag->value, NULL);
  }
  gst_structure_set (s, "tags", GST_TYPE_STRUCTURE, tags, "truncated",
      G_TYPE_BOOLEAN, frag->truncated, NULL);
  gst_structure_free (tags);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* KVS reports errors in-band, as a fragment with error tags and no
 * Cluster. A KMS failure (4500-4506) means no later fragment can be read
 * either. */
static GstFlowReturn
report_inband_error (GstKvsDemux *self, const KvsFragment *frag)
{
  const gchar *code = frag->error_code ? frag->error_code : "(no code)";
  g_autofree gchar *id = frag->error_id != KVS_NONE
      ? g_strdup_printf ("%" G_GUINT64_FORMAT, frag->error_id)
      : g_strdup ("(no id)");

  if (frag->error_id >= 4500 && frag->error_id <= 4506) {
    GST_ELEMENT_ERROR (self, STREAM, DECRYPT,
        ("Kinesis Video Streams error %s (id %s)", code, id),
        ("fragment %s: %s", GST_STR_NULL (frag->fragment_number),
            GST_STR_NULL (frag->error_message)));
    return GST_FLOW_ERROR;
  }
  GST_ELEMENT_WARNING (self, STREAM, DEMUX,
      ("Kinesis Video Streams error %s (id %s)", code, id),
      ("fragment %s: %s", GST_STR_NULL (frag->fragment_number),
          GST_STR_NULL (frag->error_message)));
  return GST_FLOW_OK;
}

static GstFlowReturn
end_stream (GstKvsDemux *self)
{
  guint i;

  self->eos = TRUE;
  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *s = g_ptr_array_index (self->streams, i);

    gst_pad_push_event (s->pad, gst_event_new_eos ());
  }
  return GST_FLOW_EOS;
}

/* Judges the contact a fragment's ContactId tag (or, without one, the
 * fragment before it) names; the first accepted one becomes the call's. */
static Verdict
judge_contact (GstKvsDemux *self, const Settings *set, const gchar *contact)
{
  if (set->target != NULL) {
    if (!g_strcmp0 (contact, set->target)) {
      self->seen_target = TRUE;
      return VERDICT_ACCEPT;
    }
    return self->seen_target ? VERDICT_END : VERDICT_REJECT;
  }
  if (!set->stop || contact == NULL)
    return VERDICT_ACCEPT;
  if (self->call_contact == NULL) {
    self->call_contact = g_strdup (contact);
    return VERDICT_ACCEPT;
  }
  return strcmp (self->call_contact, contact) ? VERDICT_END : VERDICT_ACCEPT;
}

/* The fate of a fragment's audio before its contact is known. Without a
 * contact to compare with, there is nothing to wait for: the contact it
 * turns out to have becomes the call's. In block mode, the call's contact
 * is taken to go on; otherwise the fragment waits. */
static Fate
presume_fate (GstKvsDemux *self, const Settings *set)
{
  if (set->target == NULL && (!set->stop || self->call_contact == NULL))
    return FATE_PUSH;
  if (set->mode == GST_KVS_DEMUX_LATENCY_BLOCK
      && (set->target == NULL
          || (self->seen_target
              && !g_strcmp0 (self->last_contact, set->target))))
    return FATE_PUSH;
  return FATE_HOLD;
}

static gboolean
pushed_in_fragment (GstKvsDemux *self)
{
  guint i;

  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *s = g_ptr_array_index (self->streams, i);

    if (s->in_fragment)
      return TRUE;
  }
  return FALSE;
}

static GstFlowReturn
apply_verdict (GstKvsDemux *self, const Settings *set, Verdict verdict)
{
  switch (verdict) {
    case VERDICT_ACCEPT:
      if (self->fate == FATE_PUSH || self->fate == FATE_DROP)
        return GST_FLOW_OK;
      self->fate = FATE_PUSH;
      return release_held (self, set->fill);
    case VERDICT_END:
      if (!self->ending) {
        GST_INFO_OBJECT (self, "contact %s follows %s: end of the call",
            GST_STR_NULL (self->last_contact),
            set->target ? set->target : self->call_contact);
        if (self->fate == FATE_PUSH && pushed_in_fragment (self))
          GST_WARNING_OBJECT (self,
              "contact %s: its ContactId tag came after some of its audio, "
              "which went out (latency-mode=block)",
              GST_STR_NULL (self->last_contact));
      }
      self->ending = TRUE;
      break;
    case VERDICT_REJECT:
      GST_DEBUG_OBJECT (self, "contact %s: not %s, dropped",
          GST_STR_NULL (self->last_contact), set->target);
      break;
  }
  self->fate = FATE_DROP;
  g_ptr_array_set_size (self->held, 0);
  return GST_FLOW_OK;
}

static void
begin_fragment (GstKvsDemux *self)
{
  guint i;

  clear_fragment (self);
  self->in_fragment = TRUE;
  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *s = g_ptr_array_index (self->streams, i);

    s->in_fragment = FALSE;
    s->fragment_blocks = 0;
  }
}

/* The number may follow blocks already pushed: they count for resuming. */
static void
set_fragment_number (GstKvsDemux *self, const gchar *number)
{
  guint i;

  g_free (self->frag_number);
  self->frag_number = g_strdup (number);
  for (i = 0; i < self->streams->len; i++) {
    GstKvsDemuxStream *s = g_ptr_array_index (self->streams, i);

    if (s->fragment_blocks > 0)
      remember_pushed (self, s, s->fragment_blocks);
  }
}

static GstFlowReturn
handle_tag (GstKvsDemux *self, const Settings *set, const KvsTag *tag)
{
  if (!strcmp (tag->name, "ContactId")) {
    g_free (self->frag_contact);
    self->frag_contact = g_strdup (tag->value);
    g_free (self->last_contact);
    self->last_contact = g_strdup (tag->value);
    return apply_verdict (self, set, judge_contact (self, set, tag->value));
  }
  if (!strcmp (tag->name, "MimeType")) {
    g_free (self->frag_mime);
    self->frag_mime = g_strdup (tag->value);
  } else if (!strcmp (tag->name, "AWS_KINESISVIDEO_FRAGMENT_NUMBER")) {
    set_fragment_number (self, tag->value);
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
handle_block (GstKvsDemux *self, const Settings *set, KvsEvent *ev)
{
  KvsBlock *block = ev->block;

  if (block->pts_ns != KVS_NONE) {
    self->frag_first_ns = MIN (self->frag_first_ns, block->pts_ns);
    self->frag_last_ns = MAX (self->frag_last_ns, block->pts_ns);
  }
  if (self->fate == FATE_UNDECIDED) {
    self->fate = presume_fate (self, set);
    if (self->fate == FATE_HOLD) {
      GST_DEBUG_OBJECT (self,
          "fragment %s: holding its audio until its "
          "ContactId tag",
          GST_STR_NULL (self->frag_number));
      if (self->have_time_base && !self->held_live) {
        self->held_live = TRUE;
        update_latency (self, FALSE);
      }
    }
  }
  switch (self->fate) {
    case FATE_PUSH:
      return release_blocks (self, &block, 1, set->fill);
    case FATE_HOLD:
      g_ptr_array_add (self->held, g_steal_pointer (&ev->block));
      break;
    default:
      break;
  }
  return GST_FLOW_OK;
}

/* The fragment is complete (or cut short): without a ContactId tag of its
 * own, the contact carried from the fragment before it decides. */
static GstFlowReturn
handle_fragment_end (GstKvsDemux *self, const Settings *set,
    const KvsFragment *frag)
{
  GstFlowReturn ret = GST_FLOW_OK;

  GST_DEBUG_OBJECT (self,
      "fragment %s: %u tracks, %u audio blocks, contact %s%s",
      GST_STR_NULL (frag->fragment_number), frag->tracks->len, frag->n_blocks,
      GST_STR_NULL (self->last_contact), frag->truncated ? ", truncated" : "");
  if (self->fate == FATE_UNDECIDED || self->fate == FATE_HOLD)
    ret = apply_verdict (self, set,
        judge_contact (self, set, self->last_contact));
  if (ret == GST_FLOW_OK && self->fate == FATE_PUSH) {
    if (!self->no_more_pads && frag->tracks->len > 0)
      create_pads (self, frag->tracks,
          frag->mime_type ? frag->mime_type : self->last_mime);
    ret = level_streams (self, frag, set->fill);
  }
  if (self->frag_first_ns != KVS_NONE) {
    self->fragment_ns = MAX (self->fragment_ns,
        self->frag_last_ns - self->frag_first_ns + self->block_ns);
    if (self->held_live)
      update_latency (self, FALSE);
  }
  if (self->frag_mime) {
    g_free (self->last_mime);
    self->last_mime = g_strdup (self->frag_mime);
  }
  self->in_fragment = FALSE;

  post_fragment_message (self, frag);
  if (frag->error_code || frag->error_id != KVS_NONE) {
    GstFlowReturn err = report_inband_error (self, frag);

    if (err != GST_FLOW_OK)
      return err;
  }
  if (self->ending)
    return end_stream (self);
  return ret;
}

static GstFlowReturn
handle_event (GstKvsDemux *self, const Settings *set, KvsEvent *ev)
{
  if (!self->in_fragment)
    begin_fragment (self);
  switch (ev->type) {
    case KVS_EVENT_TAG:
      return handle_tag (self, set, ev->tag);
    case KVS_EVENT_CLUSTER:
      g_clear_pointer (&self->tracks, g_ptr_array_unref);
      self->tracks = g_steal_pointer (&ev->tracks);
      return GST_FLOW_OK;
    case KVS_EVENT_BLOCK:
      return handle_block (self, set, ev);
    case KVS_EVENT_FRAGMENT:
      return handle_fragment_end (self, set, ev->fragment);
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
handle_events (GstKvsDemux *self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  Settings set;
  KvsEvent *ev;

  GST_OBJECT_LOCK (self);
  set.target = g_strdup (self->contact_id);
  set.stop = self->stop_on_contact_change;
  set.fill = self->fill_gaps;
  set.mode = self->latency_mode;
  GST_OBJECT_UNLOCK (self);

  while ((ev = kvs_parser_pop_event (self->parser)) != NULL) {
    if (ret == GST_FLOW_OK && !self->eos)
      ret = handle_event (self, &set, ev);
    kvs_event_free (ev);
  }
  g_free (set.target);
  if (self->eos)
    return GST_FLOW_EOS;
  return ret;
}

static void
post_parse_error (GstKvsDemux *self, const GError *err)
{
  if (g_error_matches (err, KVS_PARSER_ERROR, KVS_PARSER_ERROR_NOT_EBML))
    GST_ELEMENT_ERROR (self, STREAM, WRONG_TYPE, ("%s", err->message),
        ("kvsdemux reads Kinesis Video Streams GetMedia output (MKV)"));
  else
    GST_ELEMENT_ERROR (self, STREAM, DEMUX, ("%s", err->message),
        ("invalid or hostile KVS GetMedia stream"));
}

static GstFlowReturn
parse_available (GstKvsDemux *self)
{
  GstFlowReturn ret = GST_FLOW_OK;

  while (ret == GST_FLOW_OK) {
    gsize avail = gst_adapter_available (self->adapter);
    gsize len, consumed = 0;
    g_autoptr (GError) err = NULL;
    const guint8 *data;
    gboolean ok;

    if (avail == 0 || avail < self->needed)
      break;
    len = MIN (avail, MAX (self->needed, PARSE_CHUNK));
    data = gst_adapter_map (self->adapter, len);
    ok = kvs_parser_parse (self->parser, data, len, &consumed, &err);
    gst_adapter_unmap (self->adapter);
    gst_adapter_flush (self->adapter, consumed);
    self->needed = kvs_parser_get_needed (self->parser);

    ret = handle_events (self);
    if (!ok) {
      post_parse_error (self, err);
      self->failed = TRUE;
      return GST_FLOW_ERROR;
    }
    if (consumed == 0 && len == avail)
      break;
  }
  return ret;
}

static GstFlowReturn
gst_kvs_demux_chain (GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
  GstKvsDemux *self = GST_KVS_DEMUX (parent);

  if (self->eos || self->failed) {
    gst_buffer_unref (buffer);
    return self->eos ? GST_FLOW_EOS : GST_FLOW_ERROR;
  }
  /* A reconnecting source marks its first buffer DISCONT: whatever part of
   * an MKV document is pending will never be completed. */
  if (GST_BUFFER_IS_DISCONT (buffer)
      && (kvs_parser_get_offset (self->parser) > 0
          || gst_adapter_available (self->adapter) > 0)) {
    GstFlowReturn ret;

    GST_DEBUG_OBJECT (self,
        "discontinuity: dropping %" G_GSIZE_FORMAT " pending bytes",
        gst_adapter_available (self->adapter));
    gst_adapter_clear (self->adapter);
    kvs_parser_discont (self->parser);
    self->needed = 1;
    ret = handle_events (self);
    if (ret != GST_FLOW_OK) {
      gst_buffer_unref (buffer);
      return ret;
    }
  }
  gst_adapter_push (self->adapter, buffer);
  return parse_available (self);
}

static void
drain (GstKvsDemux *self)
{
  g_autoptr (GError) err = NULL;
  gboolean ok;

  if (self->eos || self->failed)
    return;
  /* kvssrc ends like this when the stream produced nothing before its
   * idle timeout: there is no MKV to judge. */
  if (kvs_parser_get_offset (self->parser) == 0
      && gst_adapter_available (self->adapter) == 0) {
    GST_ELEMENT_ERROR (self, STREAM, DEMUX,
        ("the stream ended before any media arrived"),
        ("end of stream before the first byte"));
    return;
  }
  ok = kvs_parser_finish (self->parser, gst_adapter_available (self->adapter),
      &err);
  gst_adapter_clear (self->adapter);
  handle_events (self);
  if (ok)
    return;
  /* A GetMedia session cut mid-fragment ends like this: what was complete
   * has been pushed, so it is worth a warning, not a failed pipeline. */
  if (g_error_matches (err, KVS_PARSER_ERROR, KVS_PARSER_ERROR_TRUNCATED))
    GST_ELEMENT_WARNING (self, STREAM, DEMUX, ("%s", err->message),
        ("the last fragment is incomplete; its complete blocks were pushed"));
  else
    post_parse_error (self, err);
}

static gboolean
gst_kvs_demux_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstKvsDemux *self = GST_KVS_DEMUX (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      if (!self->have_group_id)
        self->have_group_id = gst_event_parse_group_id (event, &self->group_id);
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_CAPS:
    case GST_EVENT_SEGMENT:
      /* A byte stream in; the TIME segments and caps go out per pad. */
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      gst_adapter_clear (self->adapter);
      kvs_parser_reset (self->parser);
      clear_fragment (self);
      self->needed = 1;
      self->eos = FALSE;
      self->failed = FALSE;
      gst_flow_combiner_reset (self->flowcombiner);
      break;
    case GST_EVENT_EOS:
      drain (self);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* Live: upstream's minimum plus what this element holds back (see
 * update_latency). */
static gboolean
gst_kvs_demux_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstKvsDemux *self = GST_KVS_DEMUX (parent);
  GstClockTime min, max, own;
  gboolean live;

  if (GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return gst_pad_query_default (pad, parent, query);
  if (!gst_pad_peer_query (self->sinkpad, query))
    return FALSE;
  gst_query_parse_latency (query, &live, &min, &max);
  if (live) {
    GST_OBJECT_LOCK (self);
    own = self->latency;
    GST_OBJECT_UNLOCK (self);
    min += own;
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += own;
    gst_query_set_latency (query, live, min, max);
  }
  return TRUE;
}

static GstStateChangeReturn
gst_kvs_demux_change_state (GstElement *element, GstStateChange transition)
{
  GstKvsDemux *self = GST_KVS_DEMUX (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    gst_kvs_demux_reset (self);
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    gst_kvs_demux_reset (self);
  return ret;
}

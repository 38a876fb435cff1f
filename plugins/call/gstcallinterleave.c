/**
 * SECTION:element-callinterleave
 * @title: callinterleave
 *
 * Records a call as one stereo stream: the caller on the left (channel 0),
 * the bot on the right (channel 1), aligned by running time.
 *
 * The caller is continuous and drives the output: each caller buffer is
 * pushed at once, interleaved with the bot audio that falls in its time
 * span (silence where the bot is quiet). The bot speaks in bursts, pushed
 * in real time from its own thread; its audio is held until the caller's
 * timeline reaches it. Bot audio that arrives after its moment has been
 * written is placed at the next sample not yet written, so nothing the bot
 * said is lost; a reply that starts while the previous one is still held
 * follows it. Caller audio is never dropped: a caller buffer behind what
 * is written (after a stall, see below) is appended and the timeline moves
 * with it. There are no clock waits and no thread of its own: unlike a
 * live aggregator (audiomixer, audiointerleave), it costs one buffer copy
 * per caller buffer and nothing while both sides are idle.
 *
 * Holes in the caller's timeline up to #GstCallInterleave:max-gap are
 * filled with silence (the bot side keeps its timing); longer ones are
 * closed up with a warning. When the bot gets more than
 * #GstCallInterleave:max-backlog ahead of the caller (the caller's audio
 * stalled), the held bot audio is written against a silent caller, with a
 * warning. At EOS on both pads, what the bot still holds is written, then
 * EOS. An unlinked bot pad counts as ended.
 *
 * Both inputs are S16LE mono at the same rate (the caller's; the bot pad's
 * CAPS query answers that rate, so an audioresample before it converts).
 * The output is S16LE stereo at that rate, timestamped from 0 at the
 * caller's first sample.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 callinterleave name=rec ! wavenc ! filesink location=call.wav \
 *     audiotestsrc num-buffers=100 ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! rec.caller \
 *     audiotestsrc num-buffers=50 freq=880 ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! rec.bot
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstcallinterleave.h"
#include "gstcallelements.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_call_interleave_debug);
#define GST_CAT_DEFAULT gst_call_interleave_debug

enum
{
  PROP_0,
  PROP_MAX_BACKLOG,
  PROP_MAX_GAP,
};

#define DEFAULT_MAX_BACKLOG (60 * GST_SECOND)
#define DEFAULT_MAX_GAP (10 * GST_SECOND)
/* Timestamps this close to the expected position are contiguous (rounding
 * and resampler jitter). */
#define ALIGN_TOLERANCE_MS 10
/* Silence and held bot audio are written in buffers of at most this. */
#define MAX_OUT_MS 1000

#define MONO_CAPS                                       \
  "audio/x-raw, format = (string) S16LE, "              \
  "layout = (string) interleaved, channels = (int) 1, " \
  "rate = (int) [ 1, MAX ]"
#define STEREO_CAPS                                     \
  "audio/x-raw, format = (string) S16LE, "              \
  "layout = (string) interleaved, channels = (int) 2, " \
  "channel-mask = (bitmask) 0x3, rate = (int) [ 1, MAX ]"

static GstStaticPadTemplate caller_template = GST_STATIC_PAD_TEMPLATE ("caller",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (MONO_CAPS));
static GstStaticPadTemplate bot_template = GST_STATIC_PAD_TEMPLATE ("bot",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (MONO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (STEREO_CAPS));

#define gst_call_interleave_parent_class parent_class
G_DEFINE_TYPE (GstCallInterleave, gst_call_interleave, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (callinterleave, "callinterleave", GST_RANK_NONE,
    GST_TYPE_CALL_INTERLEAVE);

/* Bot audio held until the caller's timeline reaches it. */
typedef struct
{
  GstBuffer *buffer;
  gsize n; /* samples in buffer */
  gsize offset; /* samples already written */
  gint64 pos; /* recording position of sample `offset`; -1: not placed */
  GstClockTime rt; /* running time, for placing */
} BotChunk;

static void
bot_chunk_free (BotChunk *chunk)
{
  gst_buffer_unref (chunk->buffer);
  g_free (chunk);
}

static void gst_call_interleave_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_call_interleave_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_call_interleave_finalize (GObject *object);
static GstStateChangeReturn
gst_call_interleave_change_state (GstElement *element,
    GstStateChange transition);
static GstFlowReturn gst_call_interleave_caller_chain (GstPad *pad,
    GstObject *parent, GstBuffer *buffer);
static GstFlowReturn gst_call_interleave_bot_chain (GstPad *pad,
    GstObject *parent, GstBuffer *buffer);
static gboolean gst_call_interleave_caller_event (GstPad *pad,
    GstObject *parent, GstEvent *event);
static gboolean gst_call_interleave_bot_event (GstPad *pad, GstObject *parent,
    GstEvent *event);
static gboolean gst_call_interleave_sink_query (GstPad *pad, GstObject *parent,
    GstQuery *query);
static gboolean gst_call_interleave_src_query (GstPad *pad, GstObject *parent,
    GstQuery *query);

static void
gst_call_interleave_class_init (GstCallInterleaveClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_call_interleave_debug, "callinterleave", 0,
      "caller and bot as one stereo recording");

  gobject_class->set_property = gst_call_interleave_set_property;
  gobject_class->get_property = gst_call_interleave_get_property;
  gobject_class->finalize = gst_call_interleave_finalize;

  g_object_class_install_property (gobject_class, PROP_MAX_BACKLOG,
      g_param_spec_uint64 ("max-backlog", "Max backlog",
          "How far (ns) the bot's audio may get ahead of the caller's "
          "before it is written against a silent caller (the caller's "
          "audio stalled); raise it for sources that deliver late",
          GST_SECOND, G_MAXUINT64, DEFAULT_MAX_BACKLOG,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_MAX_GAP,
      g_param_spec_uint64 ("max-gap", "Max gap",
          "The longest hole (ns) in the caller's timeline that is filled "
          "with silence; longer holes are closed up with a warning",
          0, G_MAXUINT64, DEFAULT_MAX_GAP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class, &caller_template);
  gst_element_class_add_static_pad_template (element_class, &bot_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Call interleave",
      "Filter/Audio",
      "Records a call as stereo: the caller left, the bot right, aligned "
      "by running time, driven by the caller",
      "callpipe");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_call_interleave_change_state);
}

static void
gst_call_interleave_init (GstCallInterleave *self)
{
  self->caller_pad =
      gst_pad_new_from_static_template (&caller_template, "caller");
  gst_pad_set_chain_function (self->caller_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_caller_chain));
  gst_pad_set_event_function (self->caller_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_caller_event));
  gst_pad_set_query_function (self->caller_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->caller_pad);

  self->bot_pad = gst_pad_new_from_static_template (&bot_template, "bot");
  gst_pad_set_chain_function (self->bot_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_bot_chain));
  gst_pad_set_event_function (self->bot_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_bot_event));
  gst_pad_set_query_function (self->bot_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->bot_pad);

  self->src_pad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->src_pad,
      GST_DEBUG_FUNCPTR (gst_call_interleave_src_query));
  gst_pad_use_fixed_caps (self->src_pad);
  gst_element_add_pad (GST_ELEMENT (self), self->src_pad);

  self->max_backlog = DEFAULT_MAX_BACKLOG;
  self->max_gap = DEFAULT_MAX_GAP;
  g_mutex_init (&self->lock);
  g_queue_init (&self->bot);
  gst_segment_init (&self->caller_segment, GST_FORMAT_TIME);
  gst_segment_init (&self->bot_segment, GST_FORMAT_TIME);
  self->need_segment = TRUE;
}

static void
gst_call_interleave_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MAX_BACKLOG:
      self->max_backlog = g_value_get_uint64 (value);
      break;
    case PROP_MAX_GAP:
      self->max_gap = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_call_interleave_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MAX_BACKLOG:
      g_value_set_uint64 (value, self->max_backlog);
      break;
    case PROP_MAX_GAP:
      g_value_set_uint64 (value, self->max_gap);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* Forgets the stream: FLUSH_STOP and READY. Lock held. */
static void
reset (GstCallInterleave *self)
{
  g_queue_clear_full (&self->bot, (GDestroyNotify) bot_chunk_free);
  gst_segment_init (&self->caller_segment, GST_FORMAT_TIME);
  gst_segment_init (&self->bot_segment, GST_FORMAT_TIME);
  self->have_base = FALSE;
  self->base_rt = 0;
  self->out_pos = 0;
  self->bot_end = 0;
  self->caller_eos = FALSE;
  self->bot_eos = FALSE;
  self->finished = FALSE;
  self->need_segment = TRUE;
}

static void
gst_call_interleave_finalize (GObject *object)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (object);

  g_queue_clear_full (&self->bot, (GDestroyNotify) bot_chunk_free);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static GstStateChangeReturn
gst_call_interleave_change_state (GstElement *element,
    GstStateChange transition)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    g_mutex_lock (&self->lock);
    reset (self);
    self->rate = 0;
    self->bot_rate = 0;
    g_mutex_unlock (&self->lock);
  }
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    g_mutex_lock (&self->lock);
    reset (self);
    g_mutex_unlock (&self->lock);
  }
  return ret;
}

/* ---- positions ---- */

static gint64
samples_for (GstCallInterleave *self, GstClockTime duration)
{
  return (
      gint64) gst_util_uint64_scale_round (duration, self->rate, GST_SECOND);
}

static GstClockTime
time_for (GstCallInterleave *self, gint64 samples)
{
  return gst_util_uint64_scale_round (samples, GST_SECOND, self->rate);
}

/* The recording position of running time @rt. */
static gint64
position_of (GstCallInterleave *self, GstClockTime rt)
{
  gint64 d = (gint64) rt - self->base_rt;

  return d >= 0 ? samples_for (self, d) : -samples_for (self, -d);
}

static GstClockTime
running_time (const GstSegment *segment, GstBuffer *buffer)
{
  if (!GST_BUFFER_PTS_IS_VALID (buffer))
    return GST_CLOCK_TIME_NONE;
  return gst_segment_to_running_time (segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buffer));
}

/* Gives a held chunk its place: its own time, unless that is already
 * written or taken by earlier bot audio. Lock held, base known. */
static void
place (GstCallInterleave *self, BotChunk *chunk)
{
  gint64 lower = MAX (self->bot_end, self->out_pos);
  gint64 pos = GST_CLOCK_TIME_IS_VALID (chunk->rt)
      ? position_of (self, chunk->rt)
      : lower;

  if (pos < lower + self->rate * ALIGN_TOLERANCE_MS / 1000)
    pos = lower;
  chunk->pos = pos;
  self->bot_end = pos + (gint64) chunk->n;
}

/* The caller's first buffer fixes sample 0; bot audio that came before
 * it is placed now. Lock held. */
static void
set_base (GstCallInterleave *self, GstClockTime rt)
{
  GList *l;

  self->have_base = TRUE;
  self->base_rt = GST_CLOCK_TIME_IS_VALID (rt) ? (gint64) rt : 0;
  for (l = self->bot.head; l; l = l->next)
    place (self, l->data);
}

/* ---- output ---- */

/* Writes recording samples [out_pos, out_pos + n): @caller (NULL:
 * silence) on the left, the held bot audio on the right. Lock held. */
static GstBuffer *
interleave (GstCallInterleave *self, const gint16 *caller, gint64 n)
{
  GstBuffer *out = gst_buffer_new_allocate (NULL, (gsize) n * 4, NULL);
  gint64 start = self->out_pos, end = start + n;
  GstMapInfo map;
  gint16 *dst;
  BotChunk *chunk;
  gint64 i;

  gst_buffer_map (out, &map, GST_MAP_WRITE);
  dst = (gint16 *) map.data;
  if (caller) {
    for (i = 0; i < n; i++) {
      dst[2 * i] = caller[i];
      dst[2 * i + 1] = 0;
    }
  } else {
    memset (dst, 0, map.size);
  }

  while ((chunk = g_queue_peek_head (&self->bot)) && chunk->pos >= 0
      && chunk->pos < end) {
    GstMapInfo bot;
    const gint16 *src;
    gint64 skip = MAX (start - chunk->pos, 0);
    gint64 k = MIN ((gint64) (chunk->n - chunk->offset), end - chunk->pos);

    gst_buffer_map (chunk->buffer, &bot, GST_MAP_READ);
    src = (const gint16 *) bot.data + chunk->offset;
    for (i = skip; i < k; i++)
      dst[2 * (chunk->pos - start + i) + 1] = src[i];
    gst_buffer_unmap (chunk->buffer, &bot);
    chunk->offset += k;
    chunk->pos += k;
    if (chunk->offset < chunk->n)
      break;
    bot_chunk_free (g_queue_pop_head (&self->bot));
  }
  gst_buffer_unmap (out, &map);

  GST_BUFFER_PTS (out) = time_for (self, start);
  GST_BUFFER_DURATION (out) = time_for (self, end) - time_for (self, start);
  GST_BUFFER_OFFSET (out) = start;
  GST_BUFFER_OFFSET_END (out) = end;
  self->out_pos = end;
  return out;
}

/* Queues silence on the caller's side (the bot's audio over it) up to
 * recording position @until. Lock held. */
static void
fill_until (GstCallInterleave *self, gint64 until, GQueue *out)
{
  gint64 max = (gint64) self->rate * MAX_OUT_MS / 1000;

  while (self->out_pos < until) {
    gint64 n = MIN (until - self->out_pos, max);

    g_queue_push_tail (out, interleave (self, NULL, n));
  }
}

/* Pushes what was queued for output, in order. Src stream lock held. */
static GstFlowReturn
push_all (GstCallInterleave *self, GQueue *out)
{
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer;

  if (!g_queue_is_empty (out) && self->need_segment) {
    GstSegment segment;

    gst_segment_init (&segment, GST_FORMAT_TIME);
    self->need_segment = FALSE;
    gst_pad_push_event (self->src_pad, gst_event_new_segment (&segment));
  }
  while ((buffer = g_queue_pop_head (out)) != NULL) {
    if (ret == GST_FLOW_OK)
      ret = gst_pad_push (self->src_pad, buffer);
    else
      gst_buffer_unref (buffer);
  }
  return ret;
}

/* Both sides ended: the bot audio still held, then EOS. Takes the src
 * stream lock. */
static void
finish (GstCallInterleave *self)
{
  GQueue out = G_QUEUE_INIT;
  gboolean push_eos;

  GST_PAD_STREAM_LOCK (self->src_pad);
  g_mutex_lock (&self->lock);
  push_eos = !self->finished;
  self->finished = TRUE;
  if (push_eos && self->rate > 0) {
    if (!self->have_base && !g_queue_is_empty (&self->bot))
      set_base (self, ((BotChunk *) g_queue_peek_head (&self->bot))->rt);
    fill_until (self, self->bot_end, &out);
  }
  g_mutex_unlock (&self->lock);
  push_all (self, &out);
  if (push_eos)
    gst_pad_push_event (self->src_pad, gst_event_new_eos ());
  GST_PAD_STREAM_UNLOCK (self->src_pad);
}

/* ---- caller ---- */

static GstFlowReturn
gst_call_interleave_caller_chain (GstPad *pad, GstObject *parent,
    GstBuffer *buffer)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (parent);
  GQueue out = G_QUEUE_INIT;
  GstFlowReturn ret = GST_FLOW_OK;
  gint64 skipped = 0, pos, n, tolerance, max_gap;
  GstClockTime rt;
  GstMapInfo map;

  GST_OBJECT_LOCK (self);
  max_gap = self->max_gap;
  GST_OBJECT_UNLOCK (self);

  GST_PAD_STREAM_LOCK (self->src_pad);
  g_mutex_lock (&self->lock);
  if (self->finished) {
    ret = GST_FLOW_EOS;
    goto done;
  }
  if (self->rate == 0) {
    ret = GST_FLOW_NOT_NEGOTIATED;
    goto done;
  }
  rt = running_time (&self->caller_segment, buffer);
  if (!self->have_base)
    set_base (self, rt);
  pos = GST_CLOCK_TIME_IS_VALID (rt) ? position_of (self, rt) : self->out_pos;
  tolerance = (gint64) self->rate * ALIGN_TOLERANCE_MS / 1000;
  if (pos > self->out_pos + tolerance) {
    if (pos - self->out_pos <= samples_for (self, max_gap)) {
      fill_until (self, pos, &out);
    } else {
      /* Close the hole: later times move back by its length. */
      skipped = pos - self->out_pos;
      self->base_rt += (gint64) time_for (self, skipped);
      pos = self->out_pos;
    }
  }

  if (pos < self->out_pos - tolerance) {
    /* Behind what is written (after a backlog flush): appended, and later
     * times move forward with it, so no caller audio is dropped. */
    GST_DEBUG_OBJECT (self, "caller %" G_GINT64_FORMAT " samples behind",
        self->out_pos - pos);
    self->base_rt -= (gint64) time_for (self, self->out_pos - pos);
  }

  gst_buffer_map (buffer, &map, GST_MAP_READ);
  n = (gint64) map.size / 2;
  if (n > 0)
    g_queue_push_tail (&out, interleave (self, (const gint16 *) map.data, n));
  gst_buffer_unmap (buffer, &map);

done:
  g_mutex_unlock (&self->lock);
  gst_buffer_unref (buffer);
  if (ret == GST_FLOW_OK)
    ret = push_all (self, &out);
  GST_PAD_STREAM_UNLOCK (self->src_pad);

  if (ret == GST_FLOW_NOT_NEGOTIATED)
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("caller audio arrived before its caps"));
  if (skipped > 0)
    GST_ELEMENT_WARNING (self, STREAM, FAILED, (NULL),
        ("a %.3f s hole in the caller's audio (more than max-gap) was "
         "closed up in the recording",
            (gdouble) time_for (self, skipped) / GST_SECOND));
  return ret;
}

static gboolean
rate_from_caps (GstCaps *caps, gint *rate)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);

  return gst_structure_get_int (s, "rate", rate) && *rate > 0;
}

static gboolean
check_rates (GstCallInterleave *self)
{
  gint caller, bot;

  g_mutex_lock (&self->lock);
  caller = self->rate;
  bot = self->bot_rate;
  g_mutex_unlock (&self->lock);
  if (caller == 0 || bot == 0 || caller == bot)
    return TRUE;
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
      ("the bot's audio is %d Hz, the caller's %d Hz: put audioresample "
       "and a rate=%d caps filter before the bot pad",
          bot, caller, caller));
  return FALSE;
}

static gboolean
caller_caps (GstCallInterleave *self, GstCaps *caps)
{
  g_autoptr (GstCaps) stereo = NULL;
  gint rate;

  if (!rate_from_caps (caps, &rate))
    return FALSE;
  g_mutex_lock (&self->lock);
  if (self->rate != 0 && self->rate != rate && self->have_base) {
    g_mutex_unlock (&self->lock);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("the caller's rate changed from %d to %d Hz mid-call", self->rate,
            rate));
    return FALSE;
  }
  self->rate = rate;
  g_mutex_unlock (&self->lock);
  if (!check_rates (self))
    return FALSE;
  stereo = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "layout", G_TYPE_STRING, "interleaved", "channels", G_TYPE_INT, 2,
      "channel-mask", GST_TYPE_BITMASK, (guint64) 0x3, "rate", G_TYPE_INT, rate,
      NULL);
  return gst_pad_push_event (self->src_pad, gst_event_new_caps (stereo));
}

/* Ends the output once both sides have ended. */
static void
maybe_finish (GstCallInterleave *self)
{
  gboolean both;

  g_mutex_lock (&self->lock);
  both =
      self->caller_eos && (self->bot_eos || !gst_pad_is_linked (self->bot_pad));
  g_mutex_unlock (&self->lock);
  if (both)
    finish (self);
}

/* A GAP on the caller's side: silence (and bot audio) up to its end. */
static GstFlowReturn
caller_gap (GstCallInterleave *self, GstEvent *event)
{
  GQueue out = G_QUEUE_INIT;
  GstClockTime ts, duration, rt;
  GstFlowReturn ret;

  gst_event_parse_gap (event, &ts, &duration);
  GST_PAD_STREAM_LOCK (self->src_pad);
  g_mutex_lock (&self->lock);
  if (self->rate > 0 && !self->finished && GST_CLOCK_TIME_IS_VALID (ts)) {
    rt = gst_segment_to_running_time (&self->caller_segment, GST_FORMAT_TIME,
        ts);
    if (GST_CLOCK_TIME_IS_VALID (rt)) {
      if (!self->have_base)
        set_base (self, rt);
      if (GST_CLOCK_TIME_IS_VALID (duration))
        fill_until (self, position_of (self, rt + duration), &out);
    }
  }
  g_mutex_unlock (&self->lock);
  ret = push_all (self, &out);
  GST_PAD_STREAM_UNLOCK (self->src_pad);
  return ret;
}

static gboolean
gst_call_interleave_caller_event (GstPad *pad, GstObject *parent,
    GstEvent *event)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (parent);
  gboolean ok = TRUE;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      ok = caller_caps (self, caps);
      gst_event_unref (event);
      break;
    }
    case GST_EVENT_SEGMENT:
      g_mutex_lock (&self->lock);
      gst_event_copy_segment (event, &self->caller_segment);
      g_mutex_unlock (&self->lock);
      if (self->caller_segment.format != GST_FORMAT_TIME) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
            ("the caller's segment is in %s, not time",
                gst_format_get_name (self->caller_segment.format)));
        ok = FALSE;
      }
      gst_event_unref (event);
      break;
    case GST_EVENT_GAP:
      caller_gap (self, event);
      gst_event_unref (event);
      break;
    case GST_EVENT_EOS:
      g_mutex_lock (&self->lock);
      self->caller_eos = TRUE;
      g_mutex_unlock (&self->lock);
      gst_event_unref (event);
      maybe_finish (self);
      break;
    case GST_EVENT_FLUSH_STOP:
      ok = gst_pad_push_event (self->src_pad, event);
      GST_PAD_STREAM_LOCK (self->src_pad);
      g_mutex_lock (&self->lock);
      reset (self);
      g_mutex_unlock (&self->lock);
      GST_PAD_STREAM_UNLOCK (self->src_pad);
      break;
    default:
      ok = gst_pad_event_default (pad, parent, event);
      break;
  }
  return ok;
}

/* ---- bot ---- */

/* The bot got too far ahead of the caller (or no caller came): write what
 * it holds against silence. Takes the src stream lock. */
static GstFlowReturn
flush_backlog (GstCallInterleave *self)
{
  GQueue out = G_QUEUE_INIT;
  GstFlowReturn ret;
  gint64 held = 0;

  GST_PAD_STREAM_LOCK (self->src_pad);
  g_mutex_lock (&self->lock);
  if (!self->finished && self->rate > 0) {
    if (!self->have_base && !g_queue_is_empty (&self->bot))
      set_base (self, ((BotChunk *) g_queue_peek_head (&self->bot))->rt);
    held = self->bot_end - self->out_pos;
    fill_until (self, self->bot_end, &out);
  }
  g_mutex_unlock (&self->lock);
  ret = push_all (self, &out);
  GST_PAD_STREAM_UNLOCK (self->src_pad);
  if (held > 0)
    GST_ELEMENT_WARNING (self, STREAM, FAILED, (NULL),
        ("the caller's audio stalled: %.3f s of the bot's audio were "
         "written against silence (max-backlog)",
            (gdouble) time_for (self, held) / GST_SECOND));
  return ret;
}

static GstFlowReturn
gst_call_interleave_bot_chain (GstPad *pad, GstObject *parent,
    GstBuffer *buffer)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (parent);
  BotChunk *chunk;
  gboolean overflow = FALSE;
  guint64 max_backlog;
  gint64 held;
  GList *l;

  GST_OBJECT_LOCK (self);
  max_backlog = self->max_backlog;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  if (self->finished) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (buffer);
    return GST_FLOW_EOS;
  }
  if (self->bot_rate == 0) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("bot audio arrived before its caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (gst_buffer_get_size (buffer) < 2) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (buffer);
    return GST_FLOW_OK;
  }
  chunk = g_new0 (BotChunk, 1);
  chunk->n = gst_buffer_get_size (buffer) / 2;
  chunk->rt = running_time (&self->bot_segment, buffer);
  chunk->pos = -1;
  chunk->buffer = buffer;
  g_queue_push_tail (&self->bot, chunk);
  if (self->have_base) {
    place (self, chunk);
    held = self->bot_end - self->out_pos;
  } else {
    for (held = 0, l = self->bot.head; l; l = l->next)
      held += (gint64) ((BotChunk *) l->data)->n;
  }
  if (self->rate > 0)
    overflow = held > samples_for (self, max_backlog);
  g_mutex_unlock (&self->lock);

  return overflow ? flush_backlog (self) : GST_FLOW_OK;
}

static gboolean
gst_call_interleave_bot_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (parent);
  gboolean ok = TRUE;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gint rate;

      gst_event_parse_caps (event, &caps);
      ok = rate_from_caps (caps, &rate);
      if (ok) {
        g_mutex_lock (&self->lock);
        self->bot_rate = rate;
        g_mutex_unlock (&self->lock);
        ok = check_rates (self);
      }
      break;
    }
    case GST_EVENT_SEGMENT:
      g_mutex_lock (&self->lock);
      gst_event_copy_segment (event, &self->bot_segment);
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_EOS:
      g_mutex_lock (&self->lock);
      self->bot_eos = TRUE;
      g_mutex_unlock (&self->lock);
      maybe_finish (self);
      break;
    case GST_EVENT_FLUSH_STOP:
      g_mutex_lock (&self->lock);
      gst_segment_init (&self->bot_segment, GST_FORMAT_TIME);
      self->bot_eos = FALSE;
      g_mutex_unlock (&self->lock);
      break;
    default:
      /* The caller's side carries the stream's events. */
      break;
  }
  gst_event_unref (event);
  return ok;
}

/* ---- queries ---- */

static GstCaps *
caps_at_rate (GstPad *pad, gint rate, GstCaps *filter)
{
  GstCaps *caps = gst_pad_get_pad_template_caps (pad);

  if (rate > 0) {
    caps = gst_caps_make_writable (caps);
    gst_caps_set_simple (caps, "rate", G_TYPE_INT, rate, NULL);
  }
  if (filter) {
    GstCaps *both =
        gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (caps);
    caps = both;
  }
  return caps;
}

static gboolean
gst_call_interleave_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS: {
      GstCaps *filter, *caps;
      gint rate;

      g_mutex_lock (&self->lock);
      /* The bot follows the caller; the caller is free until it has
       * started. */
      rate = pad == self->bot_pad || self->have_base ? self->rate : 0;
      g_mutex_unlock (&self->lock);
      gst_query_parse_caps (query, &filter);
      caps = caps_at_rate (pad, rate, filter);
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_ACCEPT_CAPS: {
      GstCaps *caps, *templ = gst_pad_get_pad_template_caps (pad);

      /* Any mono S16LE: a rate that differs from the other side's is
       * refused by the CAPS event, with an error that says so. */
      gst_query_parse_accept_caps (query, &caps);
      gst_query_set_accept_caps_result (query,
          gst_caps_can_intersect (caps, templ));
      gst_caps_unref (templ);
      return TRUE;
    }
    case GST_QUERY_ALLOCATION:
      /* Downstream sees stereo: nothing to propose for a mono input. */
      return FALSE;
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

static gboolean
gst_call_interleave_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstCallInterleave *self = GST_CALL_INTERLEAVE (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS: {
      GstCaps *filter, *caps;
      gint rate;

      g_mutex_lock (&self->lock);
      rate = self->rate;
      g_mutex_unlock (&self->lock);
      gst_query_parse_caps (query, &filter);
      caps = caps_at_rate (pad, rate, filter);
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_LATENCY:
      /* The caller's path sets the pace; nothing is held on it. */
      return gst_pad_peer_query (self->caller_pad, query);
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

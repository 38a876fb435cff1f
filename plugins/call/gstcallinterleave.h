/* callinterleave: the caller and the bot as one stereo recording. */
#ifndef GST_CALL_INTERLEAVE_H
#define GST_CALL_INTERLEAVE_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_CALL_INTERLEAVE (gst_call_interleave_get_type ())
G_DECLARE_FINAL_TYPE (GstCallInterleave, gst_call_interleave, GST,
    CALL_INTERLEAVE, GstElement)

struct _GstCallInterleave
{
  GstElement parent;

  GstPad *caller_pad;
  GstPad *bot_pad;
  GstPad *src_pad;

  /* under the object lock */
  guint64 max_backlog;
  guint64 max_gap;

  /* streaming state, under `lock`; output is serialized by the src pad's
   * stream lock, taken before `lock` */
  GMutex lock;
  gint rate; /* the caller's, 0 until its caps */
  gint bot_rate;
  GstSegment caller_segment;
  GstSegment bot_segment;
  gboolean have_base;
  gint64 base_rt; /* running time (ns) of recording sample 0 */
  gint64 out_pos; /* next recording sample to push */
  gint64 bot_end; /* end of the bot audio held */
  GQueue bot; /* of BotChunk, by position; unplaced ones (before the
                         * caller's first buffer) carry their running time */
  gboolean caller_eos;
  gboolean bot_eos;
  gboolean finished; /* EOS pushed */
  gboolean need_segment;
  guint64 backlog_flushes;
  guint64 gaps_skipped;
};

G_END_DECLS

#endif /* GST_CALL_INTERLEAVE_H */

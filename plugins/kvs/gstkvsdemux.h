/* kvsdemux: Amazon Connect / KVS GetMedia MKV stream -> raw audio pads. */
#ifndef GST_KVS_DEMUX_H
#define GST_KVS_DEMUX_H

#include <gst/gst.h>
#include <gst/base/gstadapter.h>
#include <gst/base/gstflowcombiner.h>

#include "kvsfragment.h"

G_BEGIN_DECLS

#define GST_TYPE_KVS_DEMUX (gst_kvs_demux_get_type ())
G_DECLARE_FINAL_TYPE (GstKvsDemux, gst_kvs_demux, GST, KVS_DEMUX, GstElement)

/**
 * GstKvsDemuxLatencyMode:
 * @GST_KVS_DEMUX_LATENCY_FRAGMENT: a fragment whose ContactId tag comes
 *     after its audio is held until the tag (or its end) when its contact
 *     has to be checked: no audio of another contact ever goes out.
 * @GST_KVS_DEMUX_LATENCY_BLOCK: each block goes out as soon as it is
 *     parsed once the call's contact is known: up to one fragment of a
 *     following contact can go out before EOS.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_KVS_DEMUX_LATENCY_FRAGMENT,
  GST_KVS_DEMUX_LATENCY_BLOCK
} GstKvsDemuxLatencyMode;

#define GST_TYPE_KVS_DEMUX_LATENCY_MODE \
    (gst_kvs_demux_latency_mode_get_type ())
GType gst_kvs_demux_latency_mode_get_type (void);

typedef struct _GstKvsDemuxStream GstKvsDemuxStream;

struct _GstKvsDemux
{
  GstElement parent;

  GstPad *sinkpad;
  GstAdapter *adapter;
  KvsParser *parser;
  gsize needed;

  GPtrArray *streams;           /* GstKvsDemuxStream */
  GstFlowCombiner *flowcombiner;
  gboolean no_more_pads;
  guint n_other_pads;
  guint group_id;
  gboolean have_group_id;

  gboolean have_origin;
  guint64 origin_ns;            /* producer time of position 0 */
  gchar *last_contact;          /* carried across fragments without one */
  gchar *call_contact;
  gboolean seen_target;
  gboolean eos;
  gboolean failed;              /* the input was rejected */

  /* The fragment being parsed, as the parser's events arrive. */
  gboolean in_fragment;
  gint fate;                    /* what its audio does: push, hold, drop */
  gchar *frag_number;
  gchar *frag_contact;          /* its own ContactId tag, once seen */
  gchar *frag_mime;
  gchar *last_mime;             /* carried across fragments without one */
  GPtrArray *tracks;            /* KvsTrack, from its Cluster */
  GPtrArray *held;              /* KvsBlock waiting for its contact */
  gboolean audio_started;       /* pads and formats set up for it */
  guint64 frag_first_ns;        /* its earliest block timecode */
  guint64 frag_last_ns;         /* its latest */
  gboolean ending;              /* another contact: EOS at its end */

  /* Live timing: PTS are time_base + samples pushed. */
  gboolean have_time_base;
  gboolean live;
  GstClockTime time_base;
  GstClockTime block_ns;        /* longest block pushed */
  GstClockTime fragment_ns;     /* longest fragment seen */
  gboolean held_live;           /* a fragment was held after audio flowed */

  /* properties and latency, under the object lock */
  gchar *contact_id;
  gboolean stop_on_contact_change;
  gboolean fill_gaps;
  GstKvsDemuxLatencyMode latency_mode;
  GstClockTime latency;         /* what the element adds */
};

G_END_DECLS

#endif /* GST_KVS_DEMUX_H */

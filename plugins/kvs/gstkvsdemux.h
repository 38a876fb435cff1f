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
  guint64 origin_ns;            /* producer time of PTS 0 */
  gchar *last_contact;          /* carried across fragments without one */
  gchar *call_contact;
  gboolean seen_target;
  gboolean eos;
  gboolean failed;              /* the input was rejected */

  /* properties, under the object lock */
  gchar *contact_id;
  gboolean stop_on_contact_change;
  gboolean fill_gaps;
};

G_END_DECLS

#endif /* GST_KVS_DEMUX_H */

/* kvssrc: Kinesis Video Streams GetMedia client, a live byte source. */
#ifndef GST_KVS_SRC_H
#define GST_KVS_SRC_H

#include <gst/gst.h>
#include <gst/base/gstadapter.h>
#include <gst/base/gstpushsrc.h>

#include "kvsclient.h"
#include "kvsfragment.h"

G_BEGIN_DECLS

#define GST_TYPE_KVS_SRC (gst_kvs_src_get_type ())
G_DECLARE_FINAL_TYPE (GstKvsSrc, gst_kvs_src, GST, KVS_SRC, GstPushSrc)

#define GST_TYPE_KVS_SRC_START_SELECTOR (gst_kvs_src_start_selector_get_type ())
GType gst_kvs_src_start_selector_get_type (void);

typedef struct _GstKvsSrcSession GstKvsSrcSession;

/* Lock order: the object lock (properties) is never held with lock. */
struct _GstKvsSrc
{
  GstPushSrc parent;

  /* properties, under the object lock */
  gchar *stream_arn;
  gchar *stream_name;
  gchar *region;
  gchar *endpoint;
  KvsStartSelectorType start_selector;
  gchar *start_fragment;
  guint64 start_timestamp;
  gchar *continuation_token;
  gchar *access_key;
  gchar *secret_key;
  gchar *session_token;
  gboolean reconnect;
  guint idle_timeout;

  /* streaming thread only, between start and stop */
  KvsClient *client;
  gchar *data_endpoint;
  KvsStartSelectorType first_type;   /* the request the stream began with */
  gchar *first_fragment;
  guint64 first_timestamp;
  gchar *first_token;
  gboolean do_reconnect;
  guint idle_timeout_ms;
  CpAwsRetryToken retry;
  /* Resume point, from the bytes forwarded so far: the last complete
   * fragment's continuation token, else its number. */
  GstAdapter *tracker_adapter;
  KvsParser *tracker;
  gboolean tracking;
  gsize tracker_needed;
  gchar *resume_token;
  gchar *resume_fragment;
  guint64 forwarded;
  gboolean discont;
  gboolean first_fragment_logged;

  /* shared with the HTTP transfer threads, under lock */
  GMutex lock;
  GCond cond;
  GCancellable *cancellable;
  gboolean flushing;
  GQueue chunks;                     /* GBytes received, not yet pushed */
  gsize queued;
  GstKvsSrcSession *session;
  gint64 last_data_us;               /* monotonic */
};

G_END_DECLS

#endif /* GST_KVS_SRC_H */

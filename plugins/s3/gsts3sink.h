/* callpipe — s3sink: S3 multipart upload with parts in flight */
#ifndef GST_S3_SINK_H
#define GST_S3_SINK_H

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_S3_SINK (gst_s3_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstS3Sink, gst_s3_sink, GST, S3_SINK, GstBaseSink)

/**
 * GstS3SinkOnError:
 * @GST_S3_SINK_ON_ERROR_ABORT: abort the multipart upload: nothing is
 *   stored and no upload is left behind
 * @GST_S3_SINK_ON_ERROR_COMPLETE: store what was uploaded (up to the first
 *   failed part) as the object
 *
 * What s3sink does with an unfinished upload when the pipeline stops
 * without EOS or a part fails.
 */
typedef enum
{
  GST_S3_SINK_ON_ERROR_ABORT,
  GST_S3_SINK_ON_ERROR_COMPLETE,
} GstS3SinkOnError;

#define GST_TYPE_S3_SINK_ON_ERROR (gst_s3_sink_on_error_get_type ())
GType gst_s3_sink_on_error_get_type (void);

G_END_DECLS

#endif /* GST_S3_SINK_H */

/* callpipe — s3src: ranged S3 reads with read-ahead, seekable in bytes */
#ifndef GST_S3_SRC_H
#define GST_S3_SRC_H

#include <gst/base/gstbasesrc.h>

G_BEGIN_DECLS

#define GST_TYPE_S3_SRC (gst_s3_src_get_type ())
G_DECLARE_FINAL_TYPE (GstS3Src, gst_s3_src, GST, S3_SRC, GstBaseSrc)

G_END_DECLS

#endif /* GST_S3_SRC_H */

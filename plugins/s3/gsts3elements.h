/* The elements of the callpipe s3 plugin. */
#ifndef GST_S3_ELEMENTS_H
#define GST_S3_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (s3sink);
GST_ELEMENT_REGISTER_DECLARE (s3src);

G_END_DECLS

#endif /* GST_S3_ELEMENTS_H */

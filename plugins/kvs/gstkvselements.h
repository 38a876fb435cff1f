/* The elements of the callpipe kvs plugin. */
#ifndef GST_KVS_ELEMENTS_H
#define GST_KVS_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (kvsdemux);
GST_ELEMENT_REGISTER_DECLARE (kvssrc);

G_END_DECLS

#endif /* GST_KVS_ELEMENTS_H */

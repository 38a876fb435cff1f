/* The elements of the callpipe call plugin. */
#ifndef GST_CALL_ELEMENTS_H
#define GST_CALL_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (callinterleave);

G_END_DECLS

#endif /* GST_CALL_ELEMENTS_H */

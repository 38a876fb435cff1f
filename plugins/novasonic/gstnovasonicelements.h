/* The elements of the callpipe novasonic plugin. */
#ifndef GST_NOVA_SONIC_ELEMENTS_H
#define GST_NOVA_SONIC_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (novasonic);

G_END_DECLS

#endif /* GST_NOVA_SONIC_ELEMENTS_H */

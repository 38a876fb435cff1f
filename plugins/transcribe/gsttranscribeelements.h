/* The elements of the callpipe transcribe plugin. */
#ifndef GST_TRANSCRIBE_ELEMENTS_H
#define GST_TRANSCRIBE_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (transcribesink);

G_END_DECLS

#endif /* GST_TRANSCRIBE_ELEMENTS_H */

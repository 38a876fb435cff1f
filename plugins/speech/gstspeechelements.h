/* The elements of the callpipe speech plugin. */
#ifndef GST_SPEECH_ELEMENTS_H
#define GST_SPEECH_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (ttssrc);

G_END_DECLS

#endif /* GST_SPEECH_ELEMENTS_H */

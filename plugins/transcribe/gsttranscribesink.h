/* transcribesink: speech to text, offline or with Amazon Transcribe. */
#ifndef GST_TRANSCRIBE_SINK_H
#define GST_TRANSCRIBE_SINK_H

#include <gst/audio/audio.h>
#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_TRANSCRIBE_SINK (gst_transcribe_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstTranscribeSink, gst_transcribe_sink, GST,
    TRANSCRIBE_SINK, GstBaseSink)

typedef enum
{
  GST_TRANSCRIBE_SINK_BACKEND_LOCAL,
  GST_TRANSCRIBE_SINK_BACKEND_AWS,
} GstTranscribeSinkBackend;

typedef enum
{
  GST_TRANSCRIBE_SINK_STABILITY_NONE,
  GST_TRANSCRIBE_SINK_STABILITY_LOW,
  GST_TRANSCRIBE_SINK_STABILITY_MEDIUM,
  GST_TRANSCRIBE_SINK_STABILITY_HIGH,
} GstTranscribeSinkStability;

#define GST_TYPE_TRANSCRIBE_SINK_BACKEND \
    (gst_transcribe_sink_backend_get_type ())
GType gst_transcribe_sink_backend_get_type (void);

#define GST_TYPE_TRANSCRIBE_SINK_STABILITY \
    (gst_transcribe_sink_stability_get_type ())
GType gst_transcribe_sink_stability_get_type (void);

G_END_DECLS

#endif /* GST_TRANSCRIBE_SINK_H */

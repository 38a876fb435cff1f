/* ttssrc: speaks a text with an offline flite voice. */
#ifndef GST_TTS_SRC_H
#define GST_TTS_SRC_H

#include <gst/gst.h>
#include <gst/base/gstbasesrc.h>

G_BEGIN_DECLS

#define GST_TYPE_TTS_SRC (gst_tts_src_get_type ())
G_DECLARE_FINAL_TYPE (GstTtsSrc, gst_tts_src, GST, TTS_SRC, GstBaseSrc)

struct _GstTtsSrc
{
  GstBaseSrc parent;

  /* the spoken text, from start() to stop() */
  GBytes *audio;
  guint rate;
  gsize n_samples;
  gsize position;               /* next sample to push */

  /* properties, under the object lock */
  gchar *text;
  gchar *voice;
};

G_END_DECLS

#endif /* GST_TTS_SRC_H */

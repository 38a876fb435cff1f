/* callpipe — novasonic: bidirectional speech-to-speech (Amazon Nova Sonic) */
#ifndef GST_NOVA_SONIC_H
#define GST_NOVA_SONIC_H

#include <gst/gst.h>

#include "sonicbackend.h"

G_BEGIN_DECLS

#define GST_TYPE_NOVA_SONIC (gst_nova_sonic_get_type ())
G_DECLARE_FINAL_TYPE (GstNovaSonic, gst_nova_sonic, GST, NOVA_SONIC,
    GstElement)

typedef enum {
  GST_NOVA_SONIC_BACKEND_BEDROCK,
  GST_NOVA_SONIC_BACKEND_LOCAL,
} GstNovaSonicBackend;

typedef enum {
  GST_NOVA_SONIC_ENDPOINTING_DEFAULT,
  GST_NOVA_SONIC_ENDPOINTING_LOW,
  GST_NOVA_SONIC_ENDPOINTING_MEDIUM,
  GST_NOVA_SONIC_ENDPOINTING_HIGH,
} GstNovaSonicEndpointing;

struct _GstNovaSonic
{
  GstElement parent;

  GstPad *sinkpad;
  GstPad *srcpad;

  /* properties, under the object lock */
  GstNovaSonicBackend backend_type;
  gchar *model_id;
  gchar *region;
  gchar *endpoint;
  gchar *voice_id;
  gchar *system_prompt;
  gchar *prompt_file;
  gchar *tools_dir;
  GstNovaSonicEndpointing endpointing;
  gint max_tokens;
  gdouble temperature;
  gdouble top_p;
  guint session_renewal;
  gint output_rate;
  gchar *access_key;
  gchar *secret_key;
  gchar *session_token;
  gchar *workflow;

  /* streaming thread only */
  SonicBackend *backend;        /* from the first caps to PAUSED->READY */
  gint input_rate;
  GstSegment in_segment;
  gboolean live_checked;

  /* Lock order: the object lock is never taken with `lock` held. */
  GMutex lock;
  GCond cond;
  /* protected by lock */
  GQueue queue;                 /* reply audio buffers to push */
  gboolean flushing;
  gboolean live;
  gboolean reply_active;
  GstClockTime next_pts;
  GstClockTime out_end;
  GstClockTime in_position;     /* running time of the caller audio end */
  gboolean finished;            /* the backend ended the conversation */
  gboolean need_start;          /* stream-start, caps, segment due */
  GError *error;                /* from a backend thread, posted by a
                                 * streaming thread */
  GstClockID clock_id;
  guint generation;             /* bumped by each barge-in and flush */
  gint out_rate;                /* output-rate as negotiated at start */
};

G_END_DECLS

#endif /* GST_NOVA_SONIC_H */

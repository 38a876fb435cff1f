/**
 * SECTION:element-ttssrc
 * @title: ttssrc
 *
 * Speaks #GstTtsSrc:text with an offline flite voice and ends with EOS:
 * prompts such as "Please leave a message after the tone". The output is
 * S16LE mono at the voice's own rate (16000 Hz for slt, awb and rms, 8000
 * Hz for kal), in 20 ms buffers with contiguous timestamps from 0. As a
 * live source (#GstTtsSrc:is-live) it delivers the audio in real time.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 ttssrc text="Please leave a message after the tone" ! \
 *     audioconvert ! audioresample ! wavenc ! filesink location=prompt.wav
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstttssrc.h"
#include "gstspeechelements.h"

#include <gst/audio/audio.h>

#include "speech/speechtts.h"

GST_DEBUG_CATEGORY_STATIC (gst_tts_src_debug);
#define GST_CAT_DEFAULT gst_tts_src_debug

#define BUFFERS_PER_SECOND 50

enum
{
  PROP_0,
  PROP_TEXT,
  PROP_VOICE,
  PROP_IS_LIVE,
};

#define DEFAULT_TEXT NULL
#define DEFAULT_VOICE CP_SPEECH_TTS_DEFAULT_VOICE
#define DEFAULT_IS_LIVE FALSE

#define SRC_CAPS                                        \
  "audio/x-raw, format = (string) S16LE, "              \
  "layout = (string) interleaved, channels = (int) 1, " \
  "rate = (int) [ 8000, 48000 ]"

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SRC_CAPS));

#define gst_tts_src_parent_class parent_class
G_DEFINE_TYPE (GstTtsSrc, gst_tts_src, GST_TYPE_BASE_SRC);
GST_ELEMENT_REGISTER_DEFINE (ttssrc, "ttssrc", GST_RANK_NONE, GST_TYPE_TTS_SRC);

static void gst_tts_src_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_tts_src_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_tts_src_finalize (GObject *object);
static gboolean gst_tts_src_start (GstBaseSrc *src);
static gboolean gst_tts_src_stop (GstBaseSrc *src);
static GstCaps *gst_tts_src_get_caps (GstBaseSrc *src, GstCaps *filter);
static gboolean gst_tts_src_is_seekable (GstBaseSrc *src);
static gboolean gst_tts_src_query (GstBaseSrc *src, GstQuery *query);
static void gst_tts_src_get_times (GstBaseSrc *src, GstBuffer *buffer,
    GstClockTime *start, GstClockTime *end);
static GstFlowReturn gst_tts_src_create (GstBaseSrc *src, guint64 offset,
    guint length, GstBuffer **buf);

static void
gst_tts_src_class_init (GstTtsSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_tts_src_debug, "ttssrc", 0,
      "offline text to speech source");

  gobject_class->set_property = gst_tts_src_set_property;
  gobject_class->get_property = gst_tts_src_get_property;
  gobject_class->finalize = gst_tts_src_finalize;

  /**
   * GstTtsSrc:text:
   *
   * The text to speak; required.
   */
  g_object_class_install_property (gobject_class, PROP_TEXT,
      g_param_spec_string ("text", "Text",
          "The text to speak (UTF-8, required)", DEFAULT_TEXT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));

  /**
   * GstTtsSrc:voice:
   *
   * The flite voice: slt (default), and kal, awb or rms when installed.
   */
  g_object_class_install_property (gobject_class, PROP_VOICE,
      g_param_spec_string ("voice", "Voice",
          "The flite voice: slt (female, 16 kHz), kal (male, 8 kHz), "
          "awb or rms (male, 16 kHz), as far as installed",
          DEFAULT_VOICE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));

  /**
   * GstTtsSrc:is-live:
   *
   * Deliver the audio in real time as a live source.
   */
  g_object_class_install_property (gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean ("is-live", "Is Live",
          "Act as a live source: push the audio in real time against the "
          "clock",
          DEFAULT_IS_LIVE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Offline text to speech source", "Source/Audio",
      "Speaks a text with an offline flite voice",
      "callpipe <https://github.com/callpipe/callpipe>");

  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_tts_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_tts_src_stop);
  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_tts_src_get_caps);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_tts_src_is_seekable);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_tts_src_query);
  basesrc_class->get_times = GST_DEBUG_FUNCPTR (gst_tts_src_get_times);
  basesrc_class->create = GST_DEBUG_FUNCPTR (gst_tts_src_create);
}

static void
gst_tts_src_init (GstTtsSrc *self)
{
  self->voice = g_strdup (DEFAULT_VOICE);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
  gst_base_src_set_live (GST_BASE_SRC (self), DEFAULT_IS_LIVE);
}

static void
gst_tts_src_finalize (GObject *object)
{
  GstTtsSrc *self = GST_TTS_SRC (object);

  g_free (self->text);
  g_free (self->voice);
  g_clear_pointer (&self->audio, g_bytes_unref);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_tts_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstTtsSrc *self = GST_TTS_SRC (object);

  switch (prop_id) {
    case PROP_TEXT:
      GST_OBJECT_LOCK (self);
      g_free (self->text);
      self->text = g_value_dup_string (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_VOICE:
      GST_OBJECT_LOCK (self);
      g_free (self->voice);
      self->voice = g_value_dup_string (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_IS_LIVE:
      gst_base_src_set_live (GST_BASE_SRC (self), g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_tts_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstTtsSrc *self = GST_TTS_SRC (object);

  switch (prop_id) {
    case PROP_TEXT:
      GST_OBJECT_LOCK (self);
      g_value_set_string (value, self->text);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_VOICE:
      GST_OBJECT_LOCK (self);
      g_value_set_string (value, self->voice);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_IS_LIVE:
      g_value_set_boolean (value, gst_base_src_is_live (GST_BASE_SRC (self)));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

/* Synthesis happens here, in READY->PAUSED, so that a bad voice or text
 * fails the state change and the rate is known before negotiation. */
static gboolean
gst_tts_src_start (GstBaseSrc *src)
{
  GstTtsSrc *self = GST_TTS_SRC (src);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *text = NULL;
  g_autofree gchar *voice = NULL;
  GBytes *audio;
  guint rate;

  GST_OBJECT_LOCK (self);
  text = g_strdup (self->text);
  voice = g_strdup (self->voice);
  GST_OBJECT_UNLOCK (self);

  audio = cp_speech_tts_synthesize (voice, text, &rate, &error);
  if (audio == NULL)
    goto synthesis_failed;

  self->audio = audio;
  self->rate = rate;
  self->n_samples = g_bytes_get_size (audio) / sizeof (gint16);
  self->position = 0;
  GST_DEBUG_OBJECT (self, "spoke %" G_GSIZE_FORMAT " samples at %u Hz",
      self->n_samples, rate);
  return TRUE;

  /* ERRORS */
synthesis_failed : {
  if (g_error_matches (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_UNKNOWN_VOICE)
      || g_error_matches (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_EMPTY_TEXT))
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message),
        (NULL));
  else
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("%s", error->message), (NULL));
  return FALSE;
}
}

static gboolean
gst_tts_src_stop (GstBaseSrc *src)
{
  GstTtsSrc *self = GST_TTS_SRC (src);

  g_clear_pointer (&self->audio, g_bytes_unref);
  self->n_samples = 0;
  self->position = 0;
  self->rate = 0;
  return TRUE;
}

static GstCaps *
gst_tts_src_get_caps (GstBaseSrc *src, GstCaps *filter)
{
  GstTtsSrc *self = GST_TTS_SRC (src);
  GstCaps *caps;

  caps = gst_pad_get_pad_template_caps (GST_BASE_SRC_PAD (src));
  if (self->rate != 0) {
    caps = gst_caps_make_writable (caps);
    gst_caps_set_simple (caps, "rate", G_TYPE_INT, (gint) self->rate, NULL);
  }
  if (filter != NULL) {
    GstCaps *tmp =
        gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (caps);
    caps = tmp;
  }
  return caps;
}

static gboolean
gst_tts_src_is_seekable (GstBaseSrc *src)
{
  return FALSE;
}

static gboolean
gst_tts_src_query (GstBaseSrc *src, GstQuery *query)
{
  GstTtsSrc *self = GST_TTS_SRC (src);
  GstFormat format;

  if (GST_QUERY_TYPE (query) == GST_QUERY_DURATION && self->rate != 0) {
    gst_query_parse_duration (query, &format, NULL);
    if (format == GST_FORMAT_TIME) {
      gst_query_set_duration (query, GST_FORMAT_TIME,
          gst_util_uint64_scale_int (self->n_samples, GST_SECOND, self->rate));
      return TRUE;
    }
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (src, query);
}

/* Live: wait for each buffer's time on the clock; otherwise push as fast
 * as downstream takes it. */
static void
gst_tts_src_get_times (GstBaseSrc *src, GstBuffer *buffer, GstClockTime *start,
    GstClockTime *end)
{
  if (gst_base_src_is_live (src)) {
    *start = GST_BUFFER_PTS (buffer);
    *end = *start + GST_BUFFER_DURATION (buffer);
  } else {
    *start = GST_CLOCK_TIME_NONE;
    *end = GST_CLOCK_TIME_NONE;
  }
}

static GstFlowReturn
gst_tts_src_create (GstBaseSrc *src, guint64 offset, guint length,
    GstBuffer **buf)
{
  GstTtsSrc *self = GST_TTS_SRC (src);
  GstBuffer *buffer;
  GBytes *chunk;
  gsize n;
  GstClockTime pts, next;

  if (self->position >= self->n_samples) {
    GST_DEBUG_OBJECT (self, "all %" G_GSIZE_FORMAT " samples pushed",
        self->n_samples);
    return GST_FLOW_EOS;
  }

  n = MIN (self->rate / BUFFERS_PER_SECOND, self->n_samples - self->position);
  chunk = g_bytes_new_from_bytes (self->audio, self->position * sizeof (gint16),
      n * sizeof (gint16));
  buffer = gst_buffer_new_wrapped_bytes (chunk);
  g_bytes_unref (chunk);

  pts = gst_util_uint64_scale_int (self->position, GST_SECOND, self->rate);
  next = gst_util_uint64_scale_int (self->position + n, GST_SECOND, self->rate);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = next - pts;
  GST_BUFFER_OFFSET (buffer) = self->position;
  GST_BUFFER_OFFSET_END (buffer) = self->position + n;
  if (self->position == 0)
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
  self->position += n;

  *buf = buffer;
  return GST_FLOW_OK;
}

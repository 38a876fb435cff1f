/**
 * SECTION:element-transcribesink
 * @title: transcribesink
 *
 * Transcribes speech: S16LE audio, mono or two interleaved channels (each
 * transcribed on its own, as `ch_0` and `ch_1`), 8000 to 48000 Hz.
 *
 * With #GstTranscribeSink:backend `local` (the default) an offline
 * pocketsphinx recognizer does the work; with `aws` the audio goes to
 * Amazon Transcribe streaming over HTTP/2 (SigV4, signed event stream).
 * That backend keeps a stream alive through silence, reconnects when a
 * stream drops and resends the audio that has no final result yet, and
 * rolls to a new stream before the service's 4-hour limit.
 *
 * Each result, partial or final, is posted as an element message named
 * `transcript` with the fields `is-partial` (boolean), `result-id`
 * (string), `channel` (string, `ch_0` or `ch_1`), `start-time` and
 * `end-time` (double, seconds of stream time, continuous across
 * reconnects) and `text` (string). The aws backend also posts
 * `transcribe-stream` (`event`: started, reconnected or rolled-over;
 * `stream`: its number; `request-id`) each time a stream is answered.
 *
 * With #GstTranscribeSink:location set, EOS writes the whole transcript in
 * the Amazon Transcribe batch output JSON schema before EOS is posted.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=call.wav ! wavparse ! audioconvert ! \
 *     audioresample ! audio/x-raw,rate=16000,channels=1 ! \
 *     transcribesink location=call.json sync=false
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsttranscribesink.h"
#include "gsttranscribeelements.h"

#include "aws/endpoint.h"
#include "transcribeclient.h"
#include "transcript.h"
#ifdef CP_TRANSCRIBE_HAVE_SPEECH
#include "speech/speechasr.h"
#endif

GST_DEBUG_CATEGORY_STATIC (gst_transcribe_sink_debug);
#define GST_CAT_DEFAULT gst_transcribe_sink_debug

/* Silence for GAP events is fed in pieces of this many milliseconds. */
#define GAP_PIECE_MS 100

enum
{
  PROP_0,
  PROP_BACKEND,
  PROP_LANGUAGE_CODE,
  PROP_VOCABULARY_NAME,
  PROP_SESSION_ID,
  PROP_RESULTS_STABILITY,
  PROP_REGION,
  PROP_ENDPOINT,
  PROP_ACCESS_KEY,
  PROP_SECRET_KEY,
  PROP_SESSION_TOKEN,
  PROP_LOCATION,
  PROP_JOB_NAME,
  PROP_CHUNK_MS,
  PROP_KEEPALIVE_INTERVAL,
  PROP_MAX_STREAM_DURATION,
  PROP_MAX_RESEND,
  PROP_FINISH_TIMEOUT,
};

#define DEFAULT_BACKEND GST_TRANSCRIBE_SINK_BACKEND_LOCAL
#define DEFAULT_LANGUAGE_CODE "en-US"
#define DEFAULT_RESULTS_STABILITY GST_TRANSCRIBE_SINK_STABILITY_NONE
#define DEFAULT_CHUNK_MS 100
#define DEFAULT_KEEPALIVE_INTERVAL 5000
/* Four hours is the service's limit; roll five minutes before it. */
#define DEFAULT_MAX_STREAM_DURATION \
  ((4 * 3600 - 300) * G_GUINT64_CONSTANT (1000))
#define DEFAULT_MAX_RESEND 30000
#define DEFAULT_FINISH_TIMEOUT 30000
#define DEFAULT_JOB_NAME "transcribesink"

#define SINK_CAPS                          \
  "audio/x-raw, format = (string) S16LE, " \
  "layout = (string) interleaved, "        \
  "rate = (int) [ 8000, 48000 ], channels = (int) [ 1, 2 ]"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (SINK_CAPS));

struct _GstTranscribeSink
{
  GstBaseSink parent;

  /* Properties (object lock). */
  GstTranscribeSinkBackend backend;
  gchar *language_code;
  gchar *vocabulary_name;
  gchar *session_id;
  GstTranscribeSinkStability stability;
  gchar *region;
  gchar *endpoint;
  gchar *access_key;
  gchar *secret_key;
  gchar *session_token;
  gchar *location;
  gchar *job_name;
  guint chunk_ms;
  guint keepalive_interval;
  guint64 max_stream_duration;
  guint max_resend;
  guint finish_timeout;

  /* Streaming thread; set up in start()/set_caps(), freed in stop(). */
  GstTranscribeSinkBackend active_backend;
  GstAudioInfo info;
  gboolean have_caps;
  gboolean have_offset;
  gdouble time_offset; /* stream time of the first sample, s */
  gboolean failed;
  CpTranscribeClient *client;
  gchar *resolved_region;
  gchar *resolved_endpoint;
#ifdef CP_TRANSCRIBE_HAVE_SPEECH
  CpSpeechModel *model;
  CpSpeechRecognizer *recognizers[CP_TRANSCRIPT_MAX_CHANNELS];
  GstAudioConverter *converter;
  GArray *channel_samples; /* gint16, one channel, scratch */
#endif

  /* Results arrive on the client's threads too. */
  GMutex transcript_lock;
  CpTranscript *transcript; /* (transcript_lock) */
};

#define gst_transcribe_sink_parent_class parent_class
G_DEFINE_TYPE (GstTranscribeSink, gst_transcribe_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE (transcribesink, "transcribesink", GST_RANK_NONE,
    GST_TYPE_TRANSCRIBE_SINK);

GType
gst_transcribe_sink_backend_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_TRANSCRIBE_SINK_BACKEND_LOCAL, "Offline pocketsphinx recognizer",
          "local"},
      {GST_TRANSCRIBE_SINK_BACKEND_AWS, "Amazon Transcribe streaming", "aws"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstTranscribeSinkBackend", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_transcribe_sink_stability_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_TRANSCRIBE_SINK_STABILITY_NONE, "No partial-results stabilization",
          "none"},
      {GST_TRANSCRIBE_SINK_STABILITY_LOW, "Low stability, lowest latency",
          "low"},
      {GST_TRANSCRIBE_SINK_STABILITY_MEDIUM, "Medium stability", "medium"},
      {GST_TRANSCRIBE_SINK_STABILITY_HIGH, "High stability", "high"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstTranscribeSinkStability", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static void gst_transcribe_sink_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_transcribe_sink_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static void gst_transcribe_sink_finalize (GObject *object);
static gboolean gst_transcribe_sink_start (GstBaseSink *sink);
static gboolean gst_transcribe_sink_stop (GstBaseSink *sink);
static gboolean gst_transcribe_sink_set_caps (GstBaseSink *sink, GstCaps *caps);
static gboolean gst_transcribe_sink_event (GstBaseSink *sink, GstEvent *event);
static GstFlowReturn gst_transcribe_sink_render (GstBaseSink *sink,
    GstBuffer *buffer);
static gboolean gst_transcribe_sink_unlock (GstBaseSink *sink);
static gboolean gst_transcribe_sink_unlock_stop (GstBaseSink *sink);

static void
gst_transcribe_sink_class_init (GstTranscribeSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);
  const GParamFlags flags =
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_transcribe_sink_debug, "transcribesink", 0,
      "speech to text sink");

  gobject_class->set_property = gst_transcribe_sink_set_property;
  gobject_class->get_property = gst_transcribe_sink_get_property;
  gobject_class->finalize = gst_transcribe_sink_finalize;

  /**
   * GstTranscribeSink:backend:
   *
   * Who transcribes: the offline recognizer or Amazon Transcribe.
   */
  g_object_class_install_property (gobject_class, PROP_BACKEND,
      g_param_spec_enum ("backend", "Backend",
          "local: offline pocketsphinx (no network); aws: Amazon Transcribe "
          "streaming",
          GST_TYPE_TRANSCRIBE_SINK_BACKEND, DEFAULT_BACKEND, flags));

  /**
   * GstTranscribeSink:language-code:
   *
   * The language spoken (aws; the local model is en-US).
   */
  g_object_class_install_property (gobject_class, PROP_LANGUAGE_CODE,
      g_param_spec_string ("language-code", "Language code",
          "Language of the speech, e.g. en-US, en-GB, es-US (the local "
          "backend only knows en-US)",
          DEFAULT_LANGUAGE_CODE, flags));

  g_object_class_install_property (gobject_class, PROP_VOCABULARY_NAME,
      g_param_spec_string ("vocabulary-name", "Vocabulary name",
          "Name of a custom vocabulary made in Amazon Transcribe (aws)", NULL,
          flags));

  g_object_class_install_property (gobject_class, PROP_SESSION_ID,
      g_param_spec_string ("session-id", "Session ID",
          "A UUID naming the Transcribe session (aws); also the default "
          "job name of the JSON document",
          NULL, flags));

  g_object_class_install_property (gobject_class, PROP_RESULTS_STABILITY,
      g_param_spec_enum ("results-stability", "Results stability",
          "Partial-results stabilization (aws): none turns it off; low, "
          "medium or high trade latency for partials that change less",
          GST_TYPE_TRANSCRIBE_SINK_STABILITY, DEFAULT_RESULTS_STABILITY,
          flags));

  g_object_class_install_property (gobject_class, PROP_REGION,
      g_param_spec_string ("region", "Region",
          "AWS region (aws); default: AWS_REGION, AWS_DEFAULT_REGION or the "
          "profile's region",
          NULL, flags));

  g_object_class_install_property (gobject_class, PROP_ENDPOINT,
      g_param_spec_string ("endpoint", "Endpoint",
          "Transcribe streaming endpoint URL (aws); default: "
          "AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING, AWS_ENDPOINT_URL, else "
          "https://transcribestreaming.<region>.amazonaws.com; http:// "
          "means h2c for local peers",
          NULL, flags));

  g_object_class_install_property (gobject_class, PROP_ACCESS_KEY,
      g_param_spec_string ("access-key", "Access key",
          "AWS access key ID (aws); default: the SDK credential chain", NULL,
          flags));

  g_object_class_install_property (gobject_class, PROP_SECRET_KEY,
      g_param_spec_string ("secret-key", "Secret key",
          "AWS secret access key (aws), with access-key", NULL, flags));

  g_object_class_install_property (gobject_class, PROP_SESSION_TOKEN,
      g_param_spec_string ("session-token", "Session token",
          "AWS session token of temporary credentials (aws)", NULL, flags));

  /**
   * GstTranscribeSink:location:
   *
   * A file path: on EOS the whole transcript is written there in the
   * Transcribe batch output schema. s3:// locations are not supported yet;
   * write locally and upload with s3sink.
   */
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "File to write the transcript to on EOS, as Amazon Transcribe "
          "batch output JSON (none: messages only)",
          NULL, flags));

  g_object_class_install_property (gobject_class, PROP_JOB_NAME,
      g_param_spec_string ("job-name", "Job name",
          "jobName in the JSON document (default: session-id, else "
          "\"" DEFAULT_JOB_NAME "\")",
          NULL, flags));

  g_object_class_install_property (gobject_class, PROP_CHUNK_MS,
      g_param_spec_uint ("chunk-ms", "Chunk duration",
          "Audio per AudioEvent in milliseconds (aws; AWS advises 50-200)", 50,
          200, DEFAULT_CHUNK_MS, flags));

  g_object_class_install_property (gobject_class, PROP_KEEPALIVE_INTERVAL,
      g_param_spec_uint ("keepalive-interval", "Keep-alive interval",
          "Send a chunk of silence after this many milliseconds without "
          "audio, so the service's 15 s no-audio timeout never fires "
          "(aws; 0 = never)",
          0, 14000, DEFAULT_KEEPALIVE_INTERVAL, flags));

  g_object_class_install_property (gobject_class, PROP_MAX_STREAM_DURATION,
      g_param_spec_uint64 ("max-stream-duration", "Maximum stream duration",
          "Audio per Transcribe stream in milliseconds before rolling to a "
          "new one (aws; the service stops a stream at 4 hours)",
          1000, 4 * 3600 * G_GUINT64_CONSTANT (1000),
          DEFAULT_MAX_STREAM_DURATION, flags));

  g_object_class_install_property (gobject_class, PROP_MAX_RESEND,
      g_param_spec_uint ("max-resend", "Maximum resend",
          "Milliseconds of audio without a final result kept to resend "
          "after a dropped stream (aws)",
          1000, 600000, DEFAULT_MAX_RESEND, flags));

  g_object_class_install_property (gobject_class, PROP_FINISH_TIMEOUT,
      g_param_spec_uint ("finish-timeout", "Finish timeout",
          "Milliseconds EOS waits for the last results (aws)", 100, 600000,
          DEFAULT_FINISH_TIMEOUT, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "Speech to text sink",
      "Sink/Audio/Text",
      "Transcribes speech offline or with Amazon Transcribe streaming, "
      "posting results and writing Transcribe batch output JSON",
      "callpipe <https://github.com/callpipe/callpipe>");

  basesink_class->start = GST_DEBUG_FUNCPTR (gst_transcribe_sink_start);
  basesink_class->stop = GST_DEBUG_FUNCPTR (gst_transcribe_sink_stop);
  basesink_class->set_caps = GST_DEBUG_FUNCPTR (gst_transcribe_sink_set_caps);
  basesink_class->event = GST_DEBUG_FUNCPTR (gst_transcribe_sink_event);
  basesink_class->render = GST_DEBUG_FUNCPTR (gst_transcribe_sink_render);
  basesink_class->unlock = GST_DEBUG_FUNCPTR (gst_transcribe_sink_unlock);
  basesink_class->unlock_stop =
      GST_DEBUG_FUNCPTR (gst_transcribe_sink_unlock_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_TRANSCRIBE_SINK_BACKEND, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_TRANSCRIBE_SINK_STABILITY, 0);
}

static void
gst_transcribe_sink_init (GstTranscribeSink *self)
{
  self->backend = DEFAULT_BACKEND;
  self->language_code = g_strdup (DEFAULT_LANGUAGE_CODE);
  self->stability = DEFAULT_RESULTS_STABILITY;
  self->chunk_ms = DEFAULT_CHUNK_MS;
  self->keepalive_interval = DEFAULT_KEEPALIVE_INTERVAL;
  self->max_stream_duration = DEFAULT_MAX_STREAM_DURATION;
  self->max_resend = DEFAULT_MAX_RESEND;
  self->finish_timeout = DEFAULT_FINISH_TIMEOUT;
  g_mutex_init (&self->transcript_lock);
}

static void
gst_transcribe_sink_finalize (GObject *object)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (object);

  g_free (self->language_code);
  g_free (self->vocabulary_name);
  g_free (self->session_id);
  g_free (self->region);
  g_free (self->endpoint);
  g_free (self->access_key);
  g_free (self->secret_key);
  g_free (self->session_token);
  g_free (self->location);
  g_free (self->job_name);
  g_mutex_clear (&self->transcript_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static gchar **
string_prop (GstTranscribeSink *self, guint prop_id)
{
  switch (prop_id) {
    case PROP_LANGUAGE_CODE:
      return &self->language_code;
    case PROP_VOCABULARY_NAME:
      return &self->vocabulary_name;
    case PROP_SESSION_ID:
      return &self->session_id;
    case PROP_REGION:
      return &self->region;
    case PROP_ENDPOINT:
      return &self->endpoint;
    case PROP_ACCESS_KEY:
      return &self->access_key;
    case PROP_SECRET_KEY:
      return &self->secret_key;
    case PROP_SESSION_TOKEN:
      return &self->session_token;
    case PROP_LOCATION:
      return &self->location;
    case PROP_JOB_NAME:
      return &self->job_name;
    default:
      return NULL;
  }
}

static void
gst_transcribe_sink_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (object);
  gchar **str = string_prop (self, prop_id);

  GST_OBJECT_LOCK (self);
  if (str != NULL) {
    g_free (*str);
    *str = g_value_dup_string (value);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  switch (prop_id) {
    case PROP_BACKEND:
      self->backend = g_value_get_enum (value);
      break;
    case PROP_RESULTS_STABILITY:
      self->stability = g_value_get_enum (value);
      break;
    case PROP_CHUNK_MS:
      self->chunk_ms = g_value_get_uint (value);
      break;
    case PROP_KEEPALIVE_INTERVAL:
      self->keepalive_interval = g_value_get_uint (value);
      break;
    case PROP_MAX_STREAM_DURATION:
      self->max_stream_duration = g_value_get_uint64 (value);
      break;
    case PROP_MAX_RESEND:
      self->max_resend = g_value_get_uint (value);
      break;
    case PROP_FINISH_TIMEOUT:
      self->finish_timeout = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_transcribe_sink_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (object);
  gchar **str = string_prop (self, prop_id);

  GST_OBJECT_LOCK (self);
  if (str != NULL) {
    g_value_set_string (value, *str);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  switch (prop_id) {
    case PROP_BACKEND:
      g_value_set_enum (value, self->backend);
      break;
    case PROP_RESULTS_STABILITY:
      g_value_set_enum (value, self->stability);
      break;
    case PROP_CHUNK_MS:
      g_value_set_uint (value, self->chunk_ms);
      break;
    case PROP_KEEPALIVE_INTERVAL:
      g_value_set_uint (value, self->keepalive_interval);
      break;
    case PROP_MAX_STREAM_DURATION:
      g_value_set_uint64 (value, self->max_stream_duration);
      break;
    case PROP_MAX_RESEND:
      g_value_set_uint (value, self->max_resend);
      break;
    case PROP_FINISH_TIMEOUT:
      g_value_set_uint (value, self->finish_timeout);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- results ---- */

/* Posts a result and keeps it for the document. Any thread. */
static void
handle_result (GstTranscribeSink *self, const CpTranscriptResult *result)
{
  g_autoptr (CpTranscriptResult) r = cp_transcript_result_copy (result);
  GstStructure *s;

  cp_transcript_result_shift (r, self->time_offset);
  GST_LOG_OBJECT (self, "%s result %s on ch_%u %.3f-%.3f: %s",
      r->is_partial ? "partial" : "final", r->result_id, r->channel, r->start,
      r->end, r->text);
  s = gst_structure_new ("transcript", "is-partial", G_TYPE_BOOLEAN,
      r->is_partial, "result-id", G_TYPE_STRING, r->result_id, "channel",
      G_TYPE_STRING, cp_transcript_channel_label (r->channel), "start-time",
      G_TYPE_DOUBLE, r->start, "end-time", G_TYPE_DOUBLE, r->end, "text",
      G_TYPE_STRING, r->text, NULL);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));

  if (!r->is_partial) {
    g_mutex_lock (&self->transcript_lock);
    if (self->transcript != NULL)
      cp_transcript_add (self->transcript, r);
    g_mutex_unlock (&self->transcript_lock);
  }
}

static void
on_client_result (CpTranscribeClient *client, const CpTranscriptResult *result,
    gpointer user_data)
{
  handle_result (GST_TRANSCRIBE_SINK (user_data), result);
}

static void
on_client_stream (CpTranscribeClient *client, CpTranscribeStreamEvent event,
    guint index, const gchar *request_id, gpointer user_data)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (user_data);
  static const gchar *const names[] = {
      "started",
      "reconnected",
      "rolled-over",
  };
  GstStructure *s;

  GST_INFO_OBJECT (self, "Transcribe stream %u %s (request %s)", index,
      names[event], request_id ? request_id : "?");
  s = gst_structure_new ("transcribe-stream", "event", G_TYPE_STRING,
      names[event], "stream", G_TYPE_UINT, index, "request-id", G_TYPE_STRING,
      request_id ? request_id : "", NULL);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

static const CpTranscribeClientCallbacks client_callbacks = {
    on_client_result,
    on_client_stream,
};

/* ---- the aws backend ---- */

static gboolean
aws_prepare (GstTranscribeSink *self)
{
  g_autofree gchar *region = NULL;
  g_autofree gchar *endpoint = NULL;
  g_autoptr (GError) error = NULL;

  GST_OBJECT_LOCK (self);
  region = g_strdup (self->region);
  endpoint = g_strdup (self->endpoint);
  GST_OBJECT_UNLOCK (self);

  self->resolved_region = cp_aws_resolve_region (region, NULL);
  if (self->resolved_region == NULL)
    goto no_region;
  self->resolved_endpoint =
      cp_aws_resolve_endpoint_full (endpoint, "TRANSCRIBE_STREAMING",
          "transcribestreaming", self->resolved_region, &error);
  if (self->resolved_endpoint == NULL)
    goto bad_endpoint;
  GST_INFO_OBJECT (self, "Amazon Transcribe at %s, region %s",
      self->resolved_endpoint, self->resolved_region);
  return TRUE;

  /* ERRORS */
no_region : {
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
      ("No AWS region: set the region property or AWS_REGION"), (NULL));
  return FALSE;
}
bad_endpoint : {
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
      ("Bad Transcribe endpoint: %s", error->message), (NULL));
  return FALSE;
}
}

static gboolean
aws_open (GstTranscribeSink *self)
{
  CpTranscribeClientConfig cfg = {0};
  CpAwsCredentialsProvider *creds;
  g_autoptr (GError) error = NULL;

  GST_OBJECT_LOCK (self);
  creds = cp_aws_credentials_provider_new_default (self->access_key,
      self->secret_key, self->session_token, NULL);
  cfg.endpoint = self->resolved_endpoint;
  cfg.region = self->resolved_region;
  cfg.language_code = self->language_code;
  cfg.vocabulary_name = self->vocabulary_name;
  cfg.session_id = self->session_id;
  cfg.stability = (CpTranscribeStability) self->stability;
  cfg.rate = GST_AUDIO_INFO_RATE (&self->info);
  cfg.channels = GST_AUDIO_INFO_CHANNELS (&self->info);
  cfg.chunk_ms = self->chunk_ms;
  cfg.keepalive_ms = self->keepalive_interval;
  cfg.max_stream_ms = self->max_stream_duration;
  cfg.max_tail_ms = self->max_resend;
  self->client =
      cp_transcribe_client_new (&cfg, creds, &client_callbacks, self, &error);
  GST_OBJECT_UNLOCK (self);

  if (self->client == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Cannot transcribe with Amazon Transcribe: %s", error->message),
        (NULL));
    return FALSE;
  }
  cp_transcribe_client_start (self->client);
  return TRUE;
}

static void
post_client_error (GstTranscribeSink *self, const GError *error)
{
  self->failed = TRUE;
  if (g_error_matches (error, CP_TRANSCRIBE_ERROR,
          CP_TRANSCRIBE_ERROR_CREDENTIALS))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
        ("Amazon Transcribe: %s", error->message), (NULL));
  else if (g_error_matches (error, CP_TRANSCRIBE_ERROR,
               CP_TRANSCRIBE_ERROR_SERVICE))
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Amazon Transcribe: %s", error->message), (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE,
        ("Amazon Transcribe: %s", error->message), (NULL));
}

static GstFlowReturn
aws_push (GstTranscribeSink *self, const guint8 *data, gsize len)
{
  g_autoptr (GError) error = NULL;

  if (cp_transcribe_client_push (self->client, data, len))
    return GST_FLOW_OK;
  error = cp_transcribe_client_dup_error (self->client);
  if (error == NULL)
    return GST_FLOW_FLUSHING;
  post_client_error (self, error);
  return GST_FLOW_ERROR;
}

/* ---- the local backend ---- */

#ifdef CP_TRANSCRIBE_HAVE_SPEECH
static void
local_pop_results (GstTranscribeSink *self, guint channel)
{
  CpSpeechResult *sr;

  while ((sr = cp_speech_recognizer_pop_result (self->recognizers[channel]))) {
    g_autofree gchar *id = g_strdup_printf ("%s-%u",
        cp_transcript_channel_label (channel), sr->utterance);
    g_autoptr (CpTranscriptResult) r =
        cp_transcript_result_new (id, sr->is_partial, channel);
    guint i;

    r->start = sr->start;
    r->end = sr->end;
    for (i = 0; i < sr->words->len; i++) {
      const CpSpeechWord *w = &g_array_index (sr->words, CpSpeechWord, i);

      cp_transcript_result_add_item (r, w->text, FALSE, w->start, w->end,
          CLAMP (w->confidence, 0.0, 1.0), TRUE);
    }
    g_free (r->text);
    r->text = g_strdup (sr->text ? sr->text : "");
    cp_speech_result_free (sr);
    handle_result (self, r);
  }
}

static gboolean
local_open (GstTranscribeSink *self)
{
  guint rate = GST_AUDIO_INFO_RATE (&self->info);
  guint channels = GST_AUDIO_INFO_CHANNELS (&self->info);
  guint rec_rate = rate == 8000 ? 8000 : 16000;
  g_autoptr (GError) error = NULL;
  guint ch;

  if (rate != rec_rate) {
    GstAudioInfo out;

    /* The recognizer hears 8 or 16 kHz; other rates are converted here so
     * that the element takes what Transcribe takes. */
    gst_audio_info_set_format (&out, GST_AUDIO_FORMAT_S16LE, rec_rate, channels,
        NULL);
    self->converter = gst_audio_converter_new (GST_AUDIO_CONVERTER_FLAG_NONE,
        &self->info, &out, NULL);
    if (self->converter == NULL)
      goto no_converter;
  }
  for (ch = 0; ch < channels; ch++) {
    self->recognizers[ch] =
        cp_speech_recognizer_new (self->model, rec_rate, &error);
    if (self->recognizers[ch] == NULL)
      goto no_recognizer;
  }
  self->channel_samples = g_array_new (FALSE, FALSE, sizeof (gint16));
  return TRUE;

  /* ERRORS */
no_converter : {
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("Cannot convert %u Hz audio for the recognizer", rate), (NULL));
  return FALSE;
}
no_recognizer : {
  GST_ELEMENT_ERROR (self, LIBRARY, INIT,
      ("Cannot start the offline recognizer: %s", error->message), (NULL));
  return FALSE;
}
}

static void
local_close (GstTranscribeSink *self)
{
  guint ch;

  for (ch = 0; ch < CP_TRANSCRIPT_MAX_CHANNELS; ch++)
    g_clear_pointer (&self->recognizers[ch], cp_speech_recognizer_free);
  g_clear_pointer (&self->converter, gst_audio_converter_free);
  g_clear_pointer (&self->channel_samples, g_array_unref);
}

static GstFlowReturn
local_feed (GstTranscribeSink *self, const gint16 *samples, gsize frames)
{
  guint channels = GST_AUDIO_INFO_CHANNELS (&self->info);
  g_autofree gint16 *converted = NULL;
  g_autoptr (GError) error = NULL;
  guint ch;
  gsize i;

  if (self->converter != NULL) {
    gsize out_frames =
        gst_audio_converter_get_out_frames (self->converter, frames);
    gpointer in[1] = {(gpointer) samples};
    gpointer out[1];

    converted = g_new0 (gint16, MAX (out_frames, 1) * channels);
    out[0] = converted;
    if (!gst_audio_converter_samples (self->converter,
            GST_AUDIO_CONVERTER_FLAG_NONE, in, frames, out, out_frames))
      goto convert_failed;
    samples = converted;
    frames = out_frames;
  }
  for (ch = 0; ch < channels; ch++) {
    const gint16 *mono = samples;

    if (channels > 1) {
      g_array_set_size (self->channel_samples, frames);
      for (i = 0; i < frames; i++)
        g_array_index (self->channel_samples, gint16, i) =
            samples[i * channels + ch];
      mono = (const gint16 *) self->channel_samples->data;
    }
    if (!cp_speech_recognizer_process (self->recognizers[ch], mono, frames,
            &error))
      goto decode_failed;
    local_pop_results (self, ch);
  }
  return GST_FLOW_OK;

  /* ERRORS */
convert_failed : {
  GST_ELEMENT_ERROR (self, STREAM, FAILED,
      ("Could not resample audio for the recognizer"), (NULL));
  return GST_FLOW_ERROR;
}
decode_failed : {
  GST_ELEMENT_ERROR (self, STREAM, DECODE,
      ("Offline recognizer failed: %s", error->message), (NULL));
  return GST_FLOW_ERROR;
}
}

static gboolean
local_finish (GstTranscribeSink *self)
{
  guint channels = GST_AUDIO_INFO_CHANNELS (&self->info);
  g_autoptr (GError) error = NULL;
  guint ch;

  for (ch = 0; ch < channels; ch++) {
    if (!cp_speech_recognizer_flush (self->recognizers[ch], &error)) {
      GST_ELEMENT_ERROR (self, STREAM, DECODE,
          ("Offline recognizer failed: %s", error->message), (NULL));
      return FALSE;
    }
    local_pop_results (self, ch);
  }
  return TRUE;
}
#endif

/* ---- GstBaseSink ---- */

static gboolean
gst_transcribe_sink_start (GstBaseSink *sink)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);

  GST_OBJECT_LOCK (self);
  self->active_backend = self->backend;
  GST_OBJECT_UNLOCK (self);
  self->have_caps = FALSE;
  self->have_offset = FALSE;
  self->time_offset = 0;
  self->failed = FALSE;

  if (self->active_backend == GST_TRANSCRIBE_SINK_BACKEND_AWS)
    return aws_prepare (self);

#ifdef CP_TRANSCRIBE_HAVE_SPEECH
  {
    g_autoptr (GError) error = NULL;

    self->model = cp_speech_model_get_default (&error);
    if (self->model == NULL) {
      GST_ELEMENT_ERROR (self, LIBRARY, INIT,
          ("Cannot load the offline speech model: %s", error->message), (NULL));
      return FALSE;
    }
    return TRUE;
  }
#else
  GST_ELEMENT_ERROR (self, LIBRARY, INIT,
      ("The local backend was not built (pocketsphinx missing); use "
       "backend=aws"),
      (NULL));
  return FALSE;
#endif
}

static gboolean
gst_transcribe_sink_stop (GstBaseSink *sink)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);

  CpTranscribeClient *client;

  GST_OBJECT_LOCK (self);
  client = g_steal_pointer (&self->client);
  GST_OBJECT_UNLOCK (self);
  cp_transcribe_client_free (client);
  g_clear_pointer (&self->resolved_region, g_free);
  g_clear_pointer (&self->resolved_endpoint, g_free);
#ifdef CP_TRANSCRIBE_HAVE_SPEECH
  local_close (self);
  g_clear_pointer (&self->model, cp_speech_model_unref);
#endif
  g_mutex_lock (&self->transcript_lock);
  g_clear_pointer (&self->transcript, cp_transcript_free);
  g_mutex_unlock (&self->transcript_lock);
  self->have_caps = FALSE;
  return TRUE;
}

static gboolean
gst_transcribe_sink_set_caps (GstBaseSink *sink, GstCaps *caps)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);
  GstAudioInfo info;

  if (!gst_audio_info_from_caps (&info, caps))
    goto bad_caps;
  if (self->have_caps) {
    if (gst_audio_info_is_equal (&info, &self->info))
      return TRUE;
    goto caps_changed;
  }
  self->info = info;
  self->have_caps = TRUE;

  g_mutex_lock (&self->transcript_lock);
  self->transcript = cp_transcript_new (GST_AUDIO_INFO_CHANNELS (&info));
  g_mutex_unlock (&self->transcript_lock);

  if (self->active_backend == GST_TRANSCRIBE_SINK_BACKEND_AWS)
    return aws_open (self);
#ifdef CP_TRANSCRIBE_HAVE_SPEECH
  return local_open (self);
#else
  return FALSE;
#endif

  /* ERRORS */
bad_caps : {
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("Invalid audio caps %" GST_PTR_FORMAT, caps), (NULL));
  return FALSE;
}
caps_changed : {
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("The audio format cannot change during a transcription"),
      ("new caps %" GST_PTR_FORMAT, caps));
  return FALSE;
}
}

static GstFlowReturn
feed (GstTranscribeSink *self, const guint8 *data, gsize len)
{
  if (self->active_backend == GST_TRANSCRIBE_SINK_BACKEND_AWS)
    return aws_push (self, data, len);
#ifdef CP_TRANSCRIBE_HAVE_SPEECH
  return local_feed (self, (const gint16 *) data,
      len / GST_AUDIO_INFO_BPF (&self->info));
#else
  return GST_FLOW_ERROR;
#endif
}

/* The stream time of the first sample: results are in stream time. */
static void
note_time_offset (GstTranscribeSink *self, GstClockTime pts)
{
  GstSegment *segment = &GST_BASE_SINK (self)->segment;
  guint64 stream_time;

  if (self->have_offset)
    return;
  self->have_offset = TRUE;
  if (!GST_CLOCK_TIME_IS_VALID (pts) || segment->format != GST_FORMAT_TIME)
    return;
  stream_time = gst_segment_to_stream_time (segment, GST_FORMAT_TIME, pts);
  if (GST_CLOCK_TIME_IS_VALID (stream_time))
    self->time_offset = (gdouble) stream_time / GST_SECOND;
}

static GstFlowReturn
gst_transcribe_sink_render (GstBaseSink *sink, GstBuffer *buffer)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);
  GstMapInfo map;
  GstFlowReturn ret;

  if (self->failed)
    return GST_FLOW_ERROR;
  if (!self->have_caps)
    goto not_negotiated;
  note_time_offset (self, GST_BUFFER_PTS (buffer));
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    goto map_failed;
  ret = feed (self, map.data,
      map.size - map.size % GST_AUDIO_INFO_BPF (&self->info));
  gst_buffer_unmap (buffer, &map);
  return ret;

  /* ERRORS */
not_negotiated : {
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No caps before audio"), (NULL));
  return GST_FLOW_NOT_NEGOTIATED;
}
map_failed : {
  GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not map a buffer"), (NULL));
  return GST_FLOW_ERROR;
}
}

/* A gap is silence of its duration: the transcript keeps its timeline. */
static GstFlowReturn
feed_gap (GstTranscribeSink *self, GstEvent *event)
{
  GstClockTime timestamp, duration;
  guint64 frames, piece_frames;
  g_autofree guint8 *silence = NULL;
  guint bpf;

  if (!self->have_caps || self->failed)
    return GST_FLOW_OK;
  gst_event_parse_gap (event, &timestamp, &duration);
  if (!GST_CLOCK_TIME_IS_VALID (duration))
    return GST_FLOW_OK;
  note_time_offset (self, timestamp);
  bpf = GST_AUDIO_INFO_BPF (&self->info);
  frames = gst_util_uint64_scale (duration, GST_AUDIO_INFO_RATE (&self->info),
      GST_SECOND);
  piece_frames = GST_AUDIO_INFO_RATE (&self->info) * GAP_PIECE_MS / 1000;
  silence = g_malloc0 (piece_frames * bpf);
  while (frames > 0) {
    guint64 n = MIN (frames, piece_frames);
    GstFlowReturn ret = feed (self, silence, n * bpf);

    if (ret != GST_FLOW_OK)
      return ret;
    frames -= n;
  }
  return GST_FLOW_OK;
}

static gchar *
job_name (GstTranscribeSink *self)
{
  gchar *name;

  GST_OBJECT_LOCK (self);
  if (self->job_name != NULL)
    name = g_strdup (self->job_name);
  else if (self->session_id != NULL)
    name = g_strdup (self->session_id);
  else
    name = g_strdup (DEFAULT_JOB_NAME);
  GST_OBJECT_UNLOCK (self);
  return name;
}

/* EOS: the last results, then the document, then EOS goes on. */
static gboolean
finish (GstTranscribeSink *self)
{
  g_autofree gchar *location = NULL;
  g_autofree gchar *language = NULL;
  g_autofree gchar *name = NULL;
  g_autoptr (GError) error = NULL;
  gboolean ok;

  if (self->failed || !self->have_caps)
    return !self->failed;
  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  language = g_strdup (self->language_code);
  GST_OBJECT_UNLOCK (self);

  if (self->active_backend == GST_TRANSCRIBE_SINK_BACKEND_AWS) {
    guint timeout_ms;

    GST_OBJECT_LOCK (self);
    timeout_ms = self->finish_timeout;
    GST_OBJECT_UNLOCK (self);
    if (!cp_transcribe_client_finish (self->client, (gint64) timeout_ms * 1000,
            &error)) {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return FALSE;
      post_client_error (self, error);
      return FALSE;
    }
  } else {
#ifdef CP_TRANSCRIBE_HAVE_SPEECH
    if (!local_finish (self))
      return FALSE;
#endif
  }

  if (location == NULL)
    return TRUE;
  name = job_name (self);
  g_mutex_lock (&self->transcript_lock);
  ok = cp_transcript_write_file (self->transcript, location, name, language,
      &error);
  g_mutex_unlock (&self->transcript_lock);
  if (!ok) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not write the transcript to \"%s\"", location),
        ("%s", error->message));
    return FALSE;
  }
  GST_INFO_OBJECT (self, "transcript written to %s", location);
  return TRUE;
}

static gboolean
gst_transcribe_sink_event (GstBaseSink *sink, GstEvent *event)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_GAP:
      if (feed_gap (self, event) != GST_FLOW_OK) {
        gst_event_unref (event);
        return FALSE;
      }
      break;
    case GST_EVENT_EOS:
      if (!finish (self)) {
        gst_event_unref (event);
        return FALSE;
      }
      break;
    default:
      break;
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (sink, event);
}

static gboolean
gst_transcribe_sink_unlock (GstBaseSink *sink)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);

  GST_OBJECT_LOCK (self);
  if (self->client != NULL)
    cp_transcribe_client_unlock (self->client);
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static gboolean
gst_transcribe_sink_unlock_stop (GstBaseSink *sink)
{
  GstTranscribeSink *self = GST_TRANSCRIBE_SINK (sink);

  GST_OBJECT_LOCK (self);
  if (self->client != NULL)
    cp_transcribe_client_unlock_stop (self->client);
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

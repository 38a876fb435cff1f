/**
 * SECTION:element-novasonic
 * @title: novasonic
 *
 * A voice bot in one element: caller audio in, bot audio out. With
 * #GstNovaSonic:backend=bedrock it speaks Amazon Nova Sonic's
 * InvokeModelWithBidirectionalStream over HTTP/2: the caller's audio
 * streams up continuously (silence while the caller is quiet or upstream
 * is idle), the model's speech comes back and is pushed in real time from
 * an internal queue, timestamped contiguously from the running time at
 * which each reply starts.
 *
 * Barge-in (the model's interrupted signal, or the caller speaking during
 * a reply) drops what is queued and posts `novasonic-barge-in`. Sessions
 * are renewed ahead of the service's 8-minute stream limit
 * (#GstNovaSonic:session-renewal), and replaced after a ModelTimeout,
 * throttling or a dropped stream, with the conversation history and the
 * last 3 s of caller audio, so calls of any length work.
 *
 * Element messages: `novasonic-transcript` (role USER|ASSISTANT, stage
 * FINAL|SPECULATIVE, text), `novasonic-tool-use` (tool-name, tool-use-id,
 * input), `novasonic-intent` (intent transfer|end, reason),
 * `novasonic-barge-in` (dropped, ns of reply audio discarded),
 * `novasonic-session` (event started|renewed|ended), `novasonic-usage`
 * (input-tokens, output-tokens, total-tokens).
 *
 * With #GstNovaSonic:backend=local the same pads, timing, messages and
 * tools are served offline: the caller's audio goes through a VAD and
 * pocketsphinx (in the grammar of the dialog state), the dialog engine of
 * #GstNovaSonic:workflow answers, flite speaks. It greets first, and
 * caller speech during a reply is a barge-in. #GstNovaSonic:voice-id
 * names a flite voice there (slt when it names none);
 * #GstNovaSonic:endpointing-sensitivity sets the pause that ends the
 * caller's turn (400 ms by default, high 300, medium 600, low 800).
 *
 * Tools come from #GstNovaSonic:tools-dir (one JSON file per tool);
 * answer a `novasonic-tool-use` with the `tool-result` action signal.
 * `transfer_to_agent` and `end_call` are answered by the element itself
 * and post `novasonic-intent`.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m filesrc location=question.wav ! wavparse ! \
 *     audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1 ! \
 *     novasonic region=us-east-1 output-rate=16000 ! wavenc ! \
 *     filesink location=answer.wav
 * ]| Asks Nova Sonic on Bedrock.
 * |[
 * gst-launch-1.0 ttssrc text="I want to talk to a person." ! \
 *     audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! \
 *     wavenc ! filesink location=question.wav
 * gst-launch-1.0 -m filesrc location=question.wav ! wavparse ! \
 *     audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! \
 *     novasonic backend=local output-rate=8000 ! wavenc ! \
 *     filesink location=answer.wav
 * ]| Offline: the answer holds the greeting (cut short by the question:
 * `novasonic-barge-in`) and the reply; `novasonic-intent` says transfer.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstnovasonic.h"
#include "gstnovasonicelements.h"

#include <gst/audio/audio.h>
#include <json-glib/json-glib.h>

#include "aws/endpoint.h"
#include "sonicbedrock.h"
#ifdef SONIC_HAVE_LOCAL
#include "soniclocal.h"
#include "speech/speechtts.h"
#endif

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_nova_sonic_debug);
#define GST_CAT_DEFAULT gst_nova_sonic_debug

#define NS_LOCK(s) g_mutex_lock (&(s)->lock)
#define NS_UNLOCK(s) g_mutex_unlock (&(s)->lock)
#define NS_SIGNAL(s) g_cond_broadcast (&(s)->cond)
#define NS_WAIT(s) g_cond_wait (&(s)->cond, &(s)->lock)

enum
{
  PROP_0,
  PROP_BACKEND,
  PROP_MODEL_ID,
  PROP_REGION,
  PROP_ENDPOINT,
  PROP_VOICE_ID,
  PROP_SYSTEM_PROMPT,
  PROP_PROMPT_FILE,
  PROP_TOOLS_DIR,
  PROP_ENDPOINTING_SENSITIVITY,
  PROP_MAX_TOKENS,
  PROP_TEMPERATURE,
  PROP_TOP_P,
  PROP_SESSION_RENEWAL,
  PROP_OUTPUT_RATE,
  PROP_ACCESS_KEY,
  PROP_SECRET_KEY,
  PROP_SESSION_TOKEN,
  PROP_WORKFLOW,
};

enum
{
  SIGNAL_TOOL_RESULT,
  LAST_SIGNAL,
};

#define DEFAULT_BACKEND GST_NOVA_SONIC_BACKEND_BEDROCK
#define DEFAULT_MODEL_ID "amazon.nova-2-sonic-v1:0"
#define DEFAULT_VOICE_ID "matthew"
#define DEFAULT_ENDPOINTING GST_NOVA_SONIC_ENDPOINTING_DEFAULT
#define DEFAULT_MAX_TOKENS 1024
#define DEFAULT_TEMPERATURE 0.7
#define DEFAULT_TOP_P 0.9
#define DEFAULT_SESSION_RENEWAL 360
#define MAX_SESSION_RENEWAL 450
#define DEFAULT_OUTPUT_RATE 24000
/* The region Nova Sonic launched in, when nothing else names one. */
#define FALLBACK_REGION "us-east-1"
#define DEFAULT_PROMPT_NAME "customer-service.txt"
#define DEFAULT_WORKFLOW "customer-service"
/* backend=local: the pause that ends the caller's turn by default. */
#define LOCAL_END_OF_TURN_MS 400

#define SINK_CAPS                                       \
  "audio/x-raw, format = (string) S16LE, "              \
  "layout = (string) interleaved, channels = (int) 1, " \
  "rate = (int) { 8000, 16000, 24000 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (SINK_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SINK_CAPS));

static guint signals[LAST_SIGNAL];

#define gst_nova_sonic_parent_class parent_class
G_DEFINE_TYPE (GstNovaSonic, gst_nova_sonic, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (novasonic, "novasonic", GST_RANK_NONE,
    GST_TYPE_NOVA_SONIC);

#define GST_TYPE_NOVA_SONIC_BACKEND (gst_nova_sonic_backend_get_type ())
static GType
gst_nova_sonic_backend_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_NOVA_SONIC_BACKEND_BEDROCK, "Amazon Nova Sonic on Bedrock",
          "bedrock"},
      {GST_NOVA_SONIC_BACKEND_LOCAL, "Offline engine (VAD, ASR, dialog, TTS)",
          "local"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstNovaSonicBackend", values));
  return type;
}

#define GST_TYPE_NOVA_SONIC_ENDPOINTING (gst_nova_sonic_endpointing_get_type ())
static GType
gst_nova_sonic_endpointing_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_NOVA_SONIC_ENDPOINTING_DEFAULT,
          "The model's default (not sent; Nova Sonic 1 needs this)", "default"},
      {GST_NOVA_SONIC_ENDPOINTING_LOW, "Low: ends a turn after a 2 s pause",
          "low"},
      {GST_NOVA_SONIC_ENDPOINTING_MEDIUM,
          "Medium: ends a turn after a 1.75 s pause", "medium"},
      {GST_NOVA_SONIC_ENDPOINTING_HIGH, "High: ends a turn after a 1.5 s pause",
          "high"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstNovaSonicEndpointing", values));
  return type;
}

static void gst_nova_sonic_finalize (GObject *object);
static void gst_nova_sonic_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_nova_sonic_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_nova_sonic_change_state (GstElement *element,
    GstStateChange transition);
static GstFlowReturn gst_nova_sonic_chain (GstPad *pad, GstObject *parent,
    GstBuffer *buffer);
static gboolean gst_nova_sonic_sink_event (GstPad *pad, GstObject *parent,
    GstEvent *event);
static gboolean gst_nova_sonic_src_query (GstPad *pad, GstObject *parent,
    GstQuery *query);
static gboolean gst_nova_sonic_src_activate_mode (GstPad *pad,
    GstObject *parent, GstPadMode mode, gboolean active);
static void gst_nova_sonic_loop (gpointer data);
static gboolean gst_nova_sonic_tool_result (GstNovaSonic *self,
    const gchar *tool_use_id, const gchar *json);

static void
gst_nova_sonic_class_init (GstNovaSonicClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GParamFlags flags =
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_nova_sonic_debug, "novasonic", 0,
      "Nova Sonic speech-to-speech");

  gobject_class->finalize = gst_nova_sonic_finalize;
  gobject_class->set_property = gst_nova_sonic_set_property;
  gobject_class->get_property = gst_nova_sonic_get_property;

  g_object_class_install_property (gobject_class, PROP_BACKEND,
      g_param_spec_enum ("backend", "Backend",
          "The conversation engine: bedrock (Amazon Nova Sonic) or local "
          "(offline: VAD, speech recognition, the dialog engine of "
          "workflow, flite speech)",
          GST_TYPE_NOVA_SONIC_BACKEND, DEFAULT_BACKEND, flags));
  g_object_class_install_property (gobject_class, PROP_MODEL_ID,
      g_param_spec_string ("model-id", "Model ID",
          "Bedrock model id, e.g. amazon.nova-2-sonic-v1:0 or "
          "amazon.nova-sonic-v1:0",
          DEFAULT_MODEL_ID, flags));
  g_object_class_install_property (gobject_class, PROP_REGION,
      g_param_spec_string ("region", "Region",
          "AWS region (NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile, "
          "else " FALLBACK_REGION ")",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_ENDPOINT,
      g_param_spec_string ("endpoint", "Endpoint",
          "Service URL (NULL: AWS_ENDPOINT_URL_BEDROCK_RUNTIME, "
          "AWS_ENDPOINT_URL, else the regional endpoint); http:// means "
          "h2c to a local peer",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_VOICE_ID,
      g_param_spec_string ("voice-id", "Voice ID",
          "The bot's voice: matthew, tiffany, amy, olivia, ...",
          DEFAULT_VOICE_ID, flags));
  g_object_class_install_property (gobject_class, PROP_SYSTEM_PROMPT,
      g_param_spec_string ("system-prompt", "System prompt",
          "Instructions for the bot (NULL: read prompt-file, else the "
          "shipped prompts/" DEFAULT_PROMPT_NAME ")",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_PROMPT_FILE,
      g_param_spec_string ("prompt-file", "Prompt file",
          "A text file holding the system prompt, used when system-prompt "
          "is NULL",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_TOOLS_DIR,
      g_param_spec_string ("tools-dir", "Tools directory",
          "Directory of tool JSON files {name, description, input_schema, "
          "instruction, category} (NULL: $CALLPIPE_PIPELINES_DIR/tools, "
          "else the installed share/callpipe/tools)",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_ENDPOINTING_SENSITIVITY,
      g_param_spec_enum ("endpointing-sensitivity", "Endpointing sensitivity",
          "How soon a pause ends the caller's turn (Nova 2 and later)",
          GST_TYPE_NOVA_SONIC_ENDPOINTING, DEFAULT_ENDPOINTING, flags));
  g_object_class_install_property (gobject_class, PROP_MAX_TOKENS,
      g_param_spec_int ("max-tokens", "Max tokens",
          "Upper bound of tokens per model response", 1, G_MAXINT,
          DEFAULT_MAX_TOKENS, flags));
  g_object_class_install_property (gobject_class, PROP_TEMPERATURE,
      g_param_spec_double ("temperature", "Temperature",
          "Sampling temperature: lower is more deterministic", 0.0, 1.0,
          DEFAULT_TEMPERATURE, flags));
  g_object_class_install_property (gobject_class, PROP_TOP_P,
      g_param_spec_double ("top-p", "Top P",
          "Nucleus sampling probability mass", 0.0, 1.0, DEFAULT_TOP_P, flags));
  g_object_class_install_property (gobject_class, PROP_SESSION_RENEWAL,
      g_param_spec_uint ("session-renewal", "Session renewal",
          "Seconds after which a stream is replaced by a fresh one at the "
          "next turn boundary, ahead of the 8-minute limit (0: only on "
          "errors)",
          0, MAX_SESSION_RENEWAL, DEFAULT_SESSION_RENEWAL, flags));
  g_object_class_install_property (gobject_class, PROP_OUTPUT_RATE,
      g_param_spec_int ("output-rate", "Output rate",
          "Sample rate of the bot's audio: 8000, 16000 or 24000 Hz", 8000,
          24000, DEFAULT_OUTPUT_RATE, flags));
  g_object_class_install_property (gobject_class, PROP_ACCESS_KEY,
      g_param_spec_string ("access-key", "Access key",
          "AWS access key id (NULL: the default credential chain)", NULL,
          flags));
  g_object_class_install_property (gobject_class, PROP_SECRET_KEY,
      g_param_spec_string ("secret-key", "Secret key",
          "AWS secret access key (NULL: the default credential chain)", NULL,
          flags));
  g_object_class_install_property (gobject_class, PROP_SESSION_TOKEN,
      g_param_spec_string ("session-token", "Session token",
          "AWS session token of temporary credentials", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_WORKFLOW,
      g_param_spec_string ("workflow", "Workflow",
          "backend=local: the dialog workflow, a JSON file or the name of "
          "one in $CALLPIPE_PIPELINES_DIR/workflows (else the installed "
          "share/callpipe/workflows)",
          DEFAULT_WORKFLOW, flags));

  /**
   * GstNovaSonic::tool-result:
   * @novasonic: the element
   * @tool_use_id: the tool-use-id of a novasonic-tool-use message
   * @json: the tool's result, a JSON document
   *
   * Answers a tool call. Returns %FALSE when no conversation is running.
   */
  signals[SIGNAL_TOOL_RESULT] = g_signal_new_class_handler ("tool-result",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_nova_sonic_tool_result), NULL, NULL, NULL, G_TYPE_BOOLEAN,
      2, G_TYPE_STRING, G_TYPE_STRING);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Nova Sonic speech-to-speech", "Filter/Audio",
      "Voice bot: caller audio in, Amazon Nova Sonic's spoken replies out",
      "callpipe");
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_nova_sonic_change_state);

  gst_type_mark_as_plugin_api (GST_TYPE_NOVA_SONIC_BACKEND, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_NOVA_SONIC_ENDPOINTING, 0);
}

static void
gst_nova_sonic_init (GstNovaSonic *self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_nova_sonic_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_nova_sonic_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_nova_sonic_src_query));
  gst_pad_set_activatemode_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_nova_sonic_src_activate_mode));
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->backend_type = DEFAULT_BACKEND;
  self->model_id = g_strdup (DEFAULT_MODEL_ID);
  self->voice_id = g_strdup (DEFAULT_VOICE_ID);
  self->endpointing = DEFAULT_ENDPOINTING;
  self->max_tokens = DEFAULT_MAX_TOKENS;
  self->temperature = DEFAULT_TEMPERATURE;
  self->top_p = DEFAULT_TOP_P;
  self->session_renewal = DEFAULT_SESSION_RENEWAL;
  self->output_rate = DEFAULT_OUTPUT_RATE;
  self->workflow = g_strdup (DEFAULT_WORKFLOW);

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->queue);
  self->flushing = TRUE;
  gst_segment_init (&self->in_segment, GST_FORMAT_TIME);
}

static void
gst_nova_sonic_finalize (GObject *object)
{
  GstNovaSonic *self = GST_NOVA_SONIC (object);

  g_free (self->model_id);
  g_free (self->region);
  g_free (self->endpoint);
  g_free (self->voice_id);
  g_free (self->system_prompt);
  g_free (self->prompt_file);
  g_free (self->tools_dir);
  g_free (self->access_key);
  g_free (self->secret_key);
  g_free (self->session_token);
  g_free (self->workflow);
  g_queue_clear_full (&self->queue, (GDestroyNotify) gst_buffer_unref);
  g_clear_error (&self->error);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
set_string (gchar **field, const GValue *value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
gst_nova_sonic_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  GstNovaSonic *self = GST_NOVA_SONIC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_BACKEND:
      self->backend_type = g_value_get_enum (value);
      break;
    case PROP_MODEL_ID:
      set_string (&self->model_id, value);
      break;
    case PROP_REGION:
      set_string (&self->region, value);
      break;
    case PROP_ENDPOINT:
      set_string (&self->endpoint, value);
      break;
    case PROP_VOICE_ID:
      set_string (&self->voice_id, value);
      break;
    case PROP_SYSTEM_PROMPT:
      set_string (&self->system_prompt, value);
      break;
    case PROP_PROMPT_FILE:
      set_string (&self->prompt_file, value);
      break;
    case PROP_TOOLS_DIR:
      set_string (&self->tools_dir, value);
      break;
    case PROP_ENDPOINTING_SENSITIVITY:
      self->endpointing = g_value_get_enum (value);
      break;
    case PROP_MAX_TOKENS:
      self->max_tokens = g_value_get_int (value);
      break;
    case PROP_TEMPERATURE:
      self->temperature = g_value_get_double (value);
      break;
    case PROP_TOP_P:
      self->top_p = g_value_get_double (value);
      break;
    case PROP_SESSION_RENEWAL:
      self->session_renewal = g_value_get_uint (value);
      break;
    case PROP_OUTPUT_RATE: {
      gint rate = g_value_get_int (value);

      if (rate == 8000 || rate == 16000 || rate == 24000)
        self->output_rate = rate;
      else
        GST_WARNING_OBJECT (self,
            "output-rate %d ignored: use 8000, 16000 "
            "or 24000",
            rate);
      break;
    }
    case PROP_ACCESS_KEY:
      set_string (&self->access_key, value);
      break;
    case PROP_SECRET_KEY:
      set_string (&self->secret_key, value);
      break;
    case PROP_SESSION_TOKEN:
      set_string (&self->session_token, value);
      break;
    case PROP_WORKFLOW:
      set_string (&self->workflow, value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_nova_sonic_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstNovaSonic *self = GST_NOVA_SONIC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_BACKEND:
      g_value_set_enum (value, self->backend_type);
      break;
    case PROP_MODEL_ID:
      g_value_set_string (value, self->model_id);
      break;
    case PROP_REGION:
      g_value_set_string (value, self->region);
      break;
    case PROP_ENDPOINT:
      g_value_set_string (value, self->endpoint);
      break;
    case PROP_VOICE_ID:
      g_value_set_string (value, self->voice_id);
      break;
    case PROP_SYSTEM_PROMPT:
      g_value_set_string (value, self->system_prompt);
      break;
    case PROP_PROMPT_FILE:
      g_value_set_string (value, self->prompt_file);
      break;
    case PROP_TOOLS_DIR:
      g_value_set_string (value, self->tools_dir);
      break;
    case PROP_ENDPOINTING_SENSITIVITY:
      g_value_set_enum (value, self->endpointing);
      break;
    case PROP_MAX_TOKENS:
      g_value_set_int (value, self->max_tokens);
      break;
    case PROP_TEMPERATURE:
      g_value_set_double (value, self->temperature);
      break;
    case PROP_TOP_P:
      g_value_set_double (value, self->top_p);
      break;
    case PROP_SESSION_RENEWAL:
      g_value_set_uint (value, self->session_renewal);
      break;
    case PROP_OUTPUT_RATE:
      g_value_set_int (value, self->output_rate);
      break;
    case PROP_ACCESS_KEY:
      g_value_set_string (value, self->access_key);
      break;
    case PROP_SECRET_KEY:
      g_value_set_string (value, self->secret_key);
      break;
    case PROP_SESSION_TOKEN:
      g_value_set_string (value, self->session_token);
      break;
    case PROP_WORKFLOW:
      g_value_set_string (value, self->workflow);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- bus messages ---- */

static void
post_element_message (GstNovaSonic *self, GstStructure *s)
{
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* ---- backend listener (backend threads; no lock held on entry) ---- */

/* The running time the caller is at: the clock when live, else the end
 * of the caller audio received so far. Lock held. */
static GstClockTime
current_position (GstNovaSonic *self)
{
  GstClockTime position = self->in_position;

  if (self->live) {
    GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));

    if (clock) {
      GstClockTime now = gst_clock_get_time (clock);
      GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));

      if (now > base)
        position = now - base;
      gst_object_unref (clock);
    }
  }
  return GST_CLOCK_TIME_IS_VALID (position) ? position : 0;
}

static void
on_audio (gpointer user_data, GBytes *pcm)
{
  GstNovaSonic *self = user_data;
  gsize len = g_bytes_get_size (pcm);
  GstBuffer *buf;
  GstClockTime duration;
  gboolean was_empty;

  if (len == 0)
    return;
  buf = gst_buffer_new_wrapped_bytes (pcm);
  NS_LOCK (self);
  if (self->flushing) {
    NS_UNLOCK (self);
    gst_buffer_unref (buf);
    return;
  }
  if (!self->reply_active) {
    self->reply_active = TRUE;
    self->next_pts = MAX (current_position (self), self->out_end);
    GST_DEBUG_OBJECT (self, "reply starts at %" GST_TIME_FORMAT,
        GST_TIME_ARGS (self->next_pts));
  }
  duration = gst_util_uint64_scale_int (len / 2, GST_SECOND, self->out_rate);
  GST_BUFFER_PTS (buf) = self->next_pts;
  GST_BUFFER_DURATION (buf) = duration;
  self->next_pts += duration;
  self->out_end = self->next_pts;
  /* The src task waits on the condition only while the queue is empty:
   * the other reply frames need no wakeup (each would be a syscall). It
   * is signalled after unlocking, so that it does not wake to wait for
   * the lock. */
  was_empty = g_queue_is_empty (&self->queue);
  g_queue_push_tail (&self->queue, buf);
  NS_UNLOCK (self);
  if (was_empty)
    NS_SIGNAL (self);
}

static void
on_reply_end (gpointer user_data)
{
  GstNovaSonic *self = user_data;

  NS_LOCK (self);
  self->reply_active = FALSE;
  NS_UNLOCK (self);
}

static void
on_transcript (gpointer user_data, SonicRole role, SonicStage stage,
    const gchar *text)
{
  GstNovaSonic *self = user_data;

  if (role != SONIC_ROLE_USER && role != SONIC_ROLE_ASSISTANT)
    return;
  if (stage == SONIC_STAGE_NONE)
    stage = SONIC_STAGE_FINAL;
  post_element_message (self,
      gst_structure_new ("novasonic-transcript", "role", G_TYPE_STRING,
          sonic_role_to_string (role), "stage", G_TYPE_STRING,
          sonic_stage_to_string (stage), "text", G_TYPE_STRING, text, NULL));
}

/* The "reason" member of a built-in tool's input, or "". */
static gchar *
tool_reason (const gchar *input)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root, *reason;

  if (!json_parser_load_from_data (parser, input, -1, NULL))
    return g_strdup ("");
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return g_strdup ("");
  reason = json_object_get_member (json_node_get_object (root), "reason");
  if (reason == NULL || !JSON_NODE_HOLDS_VALUE (reason)
      || json_node_get_value_type (reason) != G_TYPE_STRING)
    return g_strdup ("");
  return g_strdup (json_node_get_string (reason));
}

static void
on_tool_use (gpointer user_data, const gchar *name, const gchar *id,
    const gchar *input)
{
  GstNovaSonic *self = user_data;
  const gchar *intent = NULL;

  post_element_message (self,
      gst_structure_new ("novasonic-tool-use", "tool-name", G_TYPE_STRING, name,
          "tool-use-id", G_TYPE_STRING, id, "input", G_TYPE_STRING, input,
          NULL));
  if (g_strcmp0 (name, "transfer_to_agent") == 0)
    intent = "transfer";
  else if (g_strcmp0 (name, "end_call") == 0)
    intent = "end";
  if (intent) {
    g_autofree gchar *reason = tool_reason (input);

    gst_nova_sonic_tool_result (self, id, "{\"status\":\"ok\"}");
    post_element_message (self,
        gst_structure_new ("novasonic-intent", "intent", G_TYPE_STRING, intent,
            "reason", G_TYPE_STRING, reason, NULL));
  }
}

/* Drops the queued reply. Returns the duration dropped. Lock held. */
static GstClockTime
drop_queue (GstNovaSonic *self)
{
  GstClockTime dropped = 0;
  GstBuffer *buf;

  while ((buf = g_queue_pop_head (&self->queue)) != NULL) {
    dropped += GST_BUFFER_DURATION (buf);
    gst_buffer_unref (buf);
  }
  self->generation++;
  if (self->clock_id)
    gst_clock_id_unschedule (self->clock_id);
  self->reply_active = FALSE;
  /* The next reply starts from the caller's position, not after the
   * audio just discarded. */
  if (self->out_end >= dropped)
    self->out_end -= dropped;
  NS_SIGNAL (self);
  return dropped;
}

static void
barge_in (GstNovaSonic *self, gboolean only_if_playing)
{
  GstClockTime dropped;

  NS_LOCK (self);
  if (only_if_playing && g_queue_is_empty (&self->queue)) {
    NS_UNLOCK (self);
    return;
  }
  dropped = drop_queue (self);
  NS_UNLOCK (self);
  GST_INFO_OBJECT (self, "barge-in: dropped %" GST_TIME_FORMAT " of reply",
      GST_TIME_ARGS (dropped));
  post_element_message (self,
      gst_structure_new ("novasonic-barge-in", "dropped", G_TYPE_UINT64,
          (guint64) dropped, NULL));
}

static void
on_barge_in (gpointer user_data)
{
  barge_in (user_data, FALSE);
}

static void
on_user_speech (gpointer user_data)
{
  barge_in (user_data, TRUE);
}

static void
on_session (gpointer user_data, const gchar *event)
{
  post_element_message (user_data,
      gst_structure_new ("novasonic-session", "event", G_TYPE_STRING, event,
          NULL));
}

static void
on_usage (gpointer user_data, gint64 input, gint64 output, gint64 total)
{
  post_element_message (user_data,
      gst_structure_new ("novasonic-usage", "input-tokens", G_TYPE_INT64, input,
          "output-tokens", G_TYPE_INT64, output, "total-tokens", G_TYPE_INT64,
          total, NULL));
}

static void
on_error (gpointer user_data, const GError *error)
{
  GstNovaSonic *self = user_data;

  NS_LOCK (self);
  if (self->error == NULL)
    self->error = g_error_copy (error);
  if (self->clock_id)
    gst_clock_id_unschedule (self->clock_id);
  NS_SIGNAL (self);
  NS_UNLOCK (self);
}

static void
on_finished (gpointer user_data)
{
  GstNovaSonic *self = user_data;

  NS_LOCK (self);
  self->finished = TRUE;
  NS_SIGNAL (self);
  NS_UNLOCK (self);
}

static const SonicBackendListener listener = {
    on_audio,
    on_reply_end,
    on_transcript,
    on_tool_use,
    on_barge_in,
    on_user_speech,
    on_session,
    on_usage,
    on_error,
    on_finished,
};

/* ---- configuration ---- */

static const gchar *
pipelines_dir (void)
{
  const gchar *dir = g_getenv ("CALLPIPE_PIPELINES_DIR");

  return dir && dir[0] ? dir : CALLPIPE_DATADIR;
}

static gchar *
load_system_prompt (const gchar *prompt, const gchar *file, GError **error)
{
  g_autofree gchar *fallback = NULL;
  gchar *text = NULL;

  if (prompt)
    return g_strdup (prompt);
  if (file == NULL)
    file = fallback = g_build_filename (pipelines_dir (), "prompts",
        DEFAULT_PROMPT_NAME, NULL);
  if (!g_file_get_contents (file, &text, NULL, error)) {
    g_prefix_error (error, "cannot read the system prompt: ");
    return NULL;
  }
  return g_strstrip (text);
}

static const gchar *
endpointing_name (GstNovaSonicEndpointing e)
{
  switch (e) {
    case GST_NOVA_SONIC_ENDPOINTING_LOW:
      return "LOW";
    case GST_NOVA_SONIC_ENDPOINTING_MEDIUM:
      return "MEDIUM";
    case GST_NOVA_SONIC_ENDPOINTING_HIGH:
      return "HIGH";
    default:
      return NULL;
  }
}

/* Reads the properties into the backend's settings. */
static gboolean
make_settings (GstNovaSonic *self, gint input_rate,
    SonicBedrockSettings *settings, GError **error)
{
  g_autofree gchar *prompt = NULL, *prompt_file = NULL, *tools_dir = NULL;
  g_autofree gchar *region = NULL, *endpoint = NULL;
  g_autofree gchar *resolved_region = NULL;
  SonicConfig *config = sonic_config_new ();

  GST_OBJECT_LOCK (self);
  config->model_id = g_strdup (self->model_id);
  config->voice_id = g_strdup (self->voice_id);
  config->input_rate = input_rate;
  config->output_rate = self->output_rate;
  config->endpointing = g_strdup (endpointing_name (self->endpointing));
  config->max_tokens = self->max_tokens;
  config->temperature = self->temperature;
  config->top_p = self->top_p;
  prompt = g_strdup (self->system_prompt);
  prompt_file = g_strdup (self->prompt_file);
  tools_dir = g_strdup (self->tools_dir);
  region = g_strdup (self->region);
  endpoint = g_strdup (self->endpoint);
  settings->access_key = g_strdup (self->access_key);
  settings->secret_key = g_strdup (self->secret_key);
  settings->session_token = g_strdup (self->session_token);
  settings->renewal_s = self->session_renewal;
  self->out_rate = self->output_rate;
  GST_OBJECT_UNLOCK (self);

  settings->config = config;
  if (tools_dir == NULL)
    tools_dir = g_build_filename (pipelines_dir (), "tools", NULL);
  config->tools = sonic_tools_load_dir (tools_dir, error);
  if (config->tools == NULL)
    return FALSE;
  config->system_prompt = load_system_prompt (prompt, prompt_file, error);
  if (config->system_prompt == NULL)
    return FALSE;
  resolved_region = cp_aws_resolve_region (region, NULL);
  settings->region =
      g_strdup (resolved_region ? resolved_region : FALLBACK_REGION);
  settings->endpoint =
      cp_aws_resolve_endpoint_full (endpoint, SONIC_ENDPOINT_SERVICE_ID,
          SONIC_ENDPOINT_PREFIX, settings->region, error);
  if (settings->endpoint == NULL)
    return FALSE;
  GST_INFO_OBJECT (self,
      "Nova Sonic %s at %s, %u tools, input %d Hz, "
      "output %d Hz",
      config->model_id, settings->endpoint, config->tools->len, input_rate,
      config->output_rate);
  return TRUE;
}

#ifdef SONIC_HAVE_LOCAL
/* backend=local: the pause that ends the caller's turn. Shorter than
 * Nova Sonic's: the offline engine has no model of the caller's turn
 * beyond the pause, and every millisecond of it delays the answer. */
static guint
local_end_of_turn_ms (GstNovaSonicEndpointing e)
{
  switch (e) {
    case GST_NOVA_SONIC_ENDPOINTING_LOW:
      return 800;
    case GST_NOVA_SONIC_ENDPOINTING_MEDIUM:
      return 600;
    case GST_NOVA_SONIC_ENDPOINTING_HIGH:
      return 300;
    default:
      return LOCAL_END_OF_TURN_MS;
  }
}

/* A workflow's path from the property: a file, or a shipped name. */
static gchar *
resolve_workflow (const gchar *workflow)
{
  g_autofree gchar *file = NULL;

  if (strchr (workflow, G_DIR_SEPARATOR) != NULL
      || g_str_has_suffix (workflow, ".json"))
    return g_strdup (workflow);
  file = g_strconcat (workflow, ".json", NULL);
  return g_build_filename (pipelines_dir (), "workflows", file, NULL);
}

/* voice-id if it names a flite voice, else NULL: the default voice. */
static gchar *
local_voice (const gchar *voice_id)
{
  const gchar *const *voices = cp_speech_tts_list_voices ();

  for (; *voices != NULL; voices++) {
    if (g_strcmp0 (*voices, voice_id) == 0)
      return g_strdup (voice_id);
  }
  return NULL;
}

static SonicBackend *
new_local_backend (GstNovaSonic *self, gint input_rate)
{
  SonicLocalSettings settings = {
      0,
  };
  g_autofree gchar *workflow = NULL;

  GST_OBJECT_LOCK (self);
  workflow = g_strdup (self->workflow ? self->workflow : DEFAULT_WORKFLOW);
  settings.tools_dir = g_strdup (self->tools_dir);
  settings.voice = local_voice (self->voice_id);
  settings.output_rate = self->output_rate;
  settings.end_of_turn_ms = local_end_of_turn_ms (self->endpointing);
  self->out_rate = self->output_rate;
  GST_OBJECT_UNLOCK (self);

  if (settings.tools_dir == NULL)
    settings.tools_dir = g_build_filename (pipelines_dir (), "tools", NULL);
  settings.workflow = resolve_workflow (workflow);
  GST_INFO_OBJECT (self,
      "offline engine: workflow %s, voice %s, input %d Hz, "
      "output %d Hz",
      settings.workflow, settings.voice ? settings.voice : "default",
      input_rate, settings.output_rate);
  return sonic_local_new (&settings, &listener, self);
}
#endif

static SonicBackend *
new_bedrock_backend (GstNovaSonic *self, gint input_rate)
{
  SonicBedrockSettings settings = {
      0,
  };
  g_autoptr (GError) error = NULL;

  if (!make_settings (self, input_rate, &settings, &error)) {
    sonic_bedrock_settings_clear (&settings);
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
        ("Cannot configure Nova Sonic: %s", error->message), (NULL));
    return NULL;
  }
  return sonic_bedrock_new (&settings, &listener, self);
}

static gboolean
start_backend (GstNovaSonic *self, gint input_rate)
{
  g_autoptr (GError) error = NULL;
  GstNovaSonicBackend type;
  SonicBackend *backend;

  GST_OBJECT_LOCK (self);
  type = self->backend_type;
  GST_OBJECT_UNLOCK (self);
  if (type == GST_NOVA_SONIC_BACKEND_LOCAL) {
#ifdef SONIC_HAVE_LOCAL
    backend = new_local_backend (self, input_rate);
#else
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
        ("backend=local is not available: callpipe was built without the "
         "offline speech engines (pocketsphinx, flite)"),
        (NULL));
    return FALSE;
#endif
  } else {
    backend = new_bedrock_backend (self, input_rate);
    if (backend == NULL)
      return FALSE;
  }
  GST_OBJECT_LOCK (self);
  self->backend = backend;
  GST_OBJECT_UNLOCK (self);
  self->input_rate = input_rate;
  if (!backend->klass->start (backend, input_rate, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Cannot start the conversation (backend=%s): %s", backend->klass->name,
            error->message),
        (NULL));
    return FALSE;
  }
  return TRUE;
}

static void
stop_backend (GstNovaSonic *self)
{
  SonicBackend *backend;

  GST_OBJECT_LOCK (self);
  backend = g_steal_pointer (&self->backend);
  GST_OBJECT_UNLOCK (self);
  if (backend == NULL)
    return;
  backend->klass->stop (backend);
  backend->klass->free (backend);
}

/* ---- streaming ---- */

/* Posts an error stored by a backend thread. Returns TRUE if there was
 * one. */
static gboolean
post_stored_error (GstNovaSonic *self)
{
  GError *error;

  NS_LOCK (self);
  error = g_steal_pointer (&self->error);
  NS_UNLOCK (self);
  if (error == NULL)
    return FALSE;
  GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
      ("The conversation failed: %s", error->message), (NULL));
  g_error_free (error);
  return TRUE;
}

static void
check_live (GstNovaSonic *self)
{
  GstQuery *query = gst_query_new_latency ();
  gboolean live = FALSE;

  if (gst_pad_peer_query (self->sinkpad, query))
    gst_query_parse_latency (query, &live, NULL, NULL);
  gst_query_unref (query);
  GST_DEBUG_OBJECT (self, "upstream is %slive", live ? "" : "not ");
  NS_LOCK (self);
  self->live = live;
  NS_UNLOCK (self);
  self->live_checked = TRUE;
}

static GstFlowReturn
gst_nova_sonic_chain (GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
  GstNovaSonic *self = GST_NOVA_SONIC (parent);
  GstClockTime start, end;
  GstMapInfo map;

  if (post_stored_error (self)) {
    gst_buffer_unref (buffer);
    return GST_FLOW_ERROR;
  }
  if (self->backend == NULL) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("audio before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!self->live_checked)
    check_live (self);

  start = GST_BUFFER_PTS (buffer);
  if (GST_CLOCK_TIME_IS_VALID (start)) {
    end = start
        + gst_util_uint64_scale_int (gst_buffer_get_size (buffer) / 2,
            GST_SECOND, self->input_rate);
    end = gst_segment_to_running_time (&self->in_segment, GST_FORMAT_TIME, end);
  } else {
    end = GST_CLOCK_TIME_NONE;
  }
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref (buffer);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("cannot map buffer"));
    return GST_FLOW_ERROR;
  }
  self->backend->klass->push_audio (self->backend, map.data,
      map.size - map.size % 2);
  gst_buffer_unmap (buffer, &map);
  gst_buffer_unref (buffer);

  NS_LOCK (self);
  if (GST_CLOCK_TIME_IS_VALID (end))
    self->in_position = end;
  NS_UNLOCK (self);
  return GST_FLOW_OK;
}

static gboolean
handle_caps (GstNovaSonic *self, GstCaps *caps)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  gint rate = 0;

  if (!gst_structure_get_int (s, "rate", &rate))
    return FALSE;
  if (self->backend) {
    if (rate == self->input_rate)
      return TRUE;
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("the input rate changed from %d to %d Hz during a conversation",
            self->input_rate, rate));
    return FALSE;
  }
  return start_backend (self, rate);
}

static void
start_flushing (GstNovaSonic *self)
{
  NS_LOCK (self);
  self->flushing = TRUE;
  drop_queue (self);
  NS_UNLOCK (self);
}

static void
stop_flushing (GstNovaSonic *self)
{
  NS_LOCK (self);
  self->flushing = FALSE;
  self->need_start = TRUE;
  self->reply_active = FALSE;
  NS_UNLOCK (self);
}

static gboolean
gst_nova_sonic_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstNovaSonic *self = GST_NOVA_SONIC (parent);
  gboolean ret = TRUE;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      ret = handle_caps (self, caps);
      gst_event_unref (event);
      break;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &self->in_segment);
      if (self->in_segment.format != GST_FORMAT_TIME) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
            ("only TIME segments are supported"));
        ret = FALSE;
      }
      gst_event_unref (event);
      break;
    case GST_EVENT_STREAM_START:
      gst_event_unref (event);
      break;
    case GST_EVENT_GAP: {
      GstClockTime ts, duration;

      gst_event_parse_gap (event, &ts, &duration);
      if (GST_CLOCK_TIME_IS_VALID (duration))
        ts += duration;
      ts = gst_segment_to_running_time (&self->in_segment, GST_FORMAT_TIME, ts);
      NS_LOCK (self);
      if (GST_CLOCK_TIME_IS_VALID (ts))
        self->in_position = MAX (self->in_position, ts);
      NS_UNLOCK (self);
      gst_event_unref (event);
      break;
    }
    case GST_EVENT_EOS:
      /* Held back: the src task sends EOS once the reply in progress
       * has been spoken. */
      if (self->backend) {
        self->backend->klass->finish (self->backend);
      } else {
        NS_LOCK (self);
        self->finished = TRUE;
        NS_SIGNAL (self);
        NS_UNLOCK (self);
      }
      gst_event_unref (event);
      break;
    case GST_EVENT_FLUSH_START:
      ret = gst_pad_push_event (self->srcpad, event);
      start_flushing (self);
      gst_pad_pause_task (self->srcpad);
      break;
    case GST_EVENT_FLUSH_STOP:
      ret = gst_pad_push_event (self->srcpad, event);
      stop_flushing (self);
      gst_pad_start_task (self->srcpad, gst_nova_sonic_loop, self, NULL);
      break;
    default:
      if (GST_EVENT_IS_SERIALIZED (event)
          && GST_EVENT_TYPE (event) != GST_EVENT_TAG)
        gst_event_unref (event);
      else
        ret = gst_pad_event_default (pad, parent, event);
      break;
  }
  return ret;
}

static gboolean
gst_nova_sonic_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstNovaSonic *self = GST_NOVA_SONIC (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY: {
      gboolean live;
      GstClockTime min, max;

      if (!gst_pad_peer_query (self->sinkpad, query))
        return FALSE;
      /* Replies are stamped with the running time they arrive at and
       * pushed then: the element adds no delay of its own. */
      gst_query_parse_latency (query, &live, &min, &max);
      gst_query_set_latency (query, live, min, GST_CLOCK_TIME_NONE);
      return TRUE;
    }
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

static gboolean
gst_nova_sonic_src_activate_mode (GstPad *pad, GstObject *parent,
    GstPadMode mode, gboolean active)
{
  GstNovaSonic *self = GST_NOVA_SONIC (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    stop_flushing (self);
    return gst_pad_start_task (pad, gst_nova_sonic_loop, self, NULL);
  }
  start_flushing (self);
  return gst_pad_stop_task (pad);
}

static void
push_start_events (GstNovaSonic *self)
{
  g_autofree gchar *stream_id =
      gst_pad_create_stream_id (self->srcpad, GST_ELEMENT (self), NULL);
  GstCaps *caps;
  GstSegment segment;

  gst_pad_push_event (self->srcpad, gst_event_new_stream_start (stream_id));
  caps = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "layout", G_TYPE_STRING, "interleaved", "channels", G_TYPE_INT, 1, "rate",
      G_TYPE_INT, self->out_rate, NULL);
  gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_pad_push_event (self->srcpad, gst_event_new_segment (&segment));
}

/* Waits until the buffer's running time on the pipeline clock. Returns
 * FALSE when a barge-in or flush discarded it meanwhile. Lock held. */
static gboolean
wait_for_time (GstNovaSonic *self, GstClockTime pts, guint generation)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));

  if (clock == NULL)
    return TRUE;
  self->clock_id = gst_clock_new_single_shot_id (clock, base + pts);
  gst_object_unref (clock);
  NS_UNLOCK (self);
  gst_clock_id_wait (self->clock_id, NULL);
  NS_LOCK (self);
  gst_clock_id_unref (self->clock_id);
  self->clock_id = NULL;
  return generation == self->generation && !self->flushing;
}

static void
gst_nova_sonic_loop (gpointer data)
{
  GstNovaSonic *self = data;
  GstFlowReturn ret;
  GstBuffer *buf;
  gboolean start;

  NS_LOCK (self);
  while (!self->flushing && self->error == NULL
      && g_queue_is_empty (&self->queue) && !self->finished)
    NS_WAIT (self);
  if (self->flushing)
    goto pause;
  if (self->error) {
    g_queue_clear_full (&self->queue, (GDestroyNotify) gst_buffer_unref);
    NS_UNLOCK (self);
    post_stored_error (self);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
    NS_LOCK (self);
    goto pause;
  }
  start = self->need_start;
  self->need_start = FALSE;
  buf = g_queue_pop_head (&self->queue);
  if (buf && self->live
      && !wait_for_time (self, GST_BUFFER_PTS (buf), self->generation)) {
    gst_buffer_unref (buf);
    NS_UNLOCK (self);
    if (start)
      push_start_events (self);
    return;
  }
  NS_UNLOCK (self);

  if (start)
    push_start_events (self);
  if (buf == NULL) {
    GST_DEBUG_OBJECT (self, "conversation over: EOS");
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
    NS_LOCK (self);
    goto pause;
  }
  ret = gst_pad_push (self->srcpad, buf);
  if (ret == GST_FLOW_OK)
    return;
  GST_DEBUG_OBJECT (self, "pausing: %s", gst_flow_get_name (ret));
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
    GST_ELEMENT_FLOW_ERROR (self, ret);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  }
  gst_pad_pause_task (self->srcpad);
  return;

pause:
  NS_UNLOCK (self);
  gst_pad_pause_task (self->srcpad);
}

static gboolean
gst_nova_sonic_tool_result (GstNovaSonic *self, const gchar *tool_use_id,
    const gchar *json)
{
  gboolean ok = FALSE;

  g_return_val_if_fail (tool_use_id != NULL && json != NULL, FALSE);
  GST_OBJECT_LOCK (self);
  if (self->backend) {
    self->backend->klass->tool_result (self->backend, tool_use_id, json);
    ok = TRUE;
  }
  GST_OBJECT_UNLOCK (self);
  return ok;
}

static void
reset (GstNovaSonic *self)
{
  NS_LOCK (self);
  g_queue_clear_full (&self->queue, (GDestroyNotify) gst_buffer_unref);
  g_clear_error (&self->error);
  self->finished = FALSE;
  self->live = FALSE;
  self->reply_active = FALSE;
  self->next_pts = 0;
  self->out_end = 0;
  self->in_position = 0;
  NS_UNLOCK (self);
  self->live_checked = FALSE;
  gst_segment_init (&self->in_segment, GST_FORMAT_TIME);
}

static GstStateChangeReturn
gst_nova_sonic_change_state (GstElement *element, GstStateChange transition)
{
  GstNovaSonic *self = GST_NOVA_SONIC (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    reset (self);
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    stop_backend (self);
    reset (self);
  }
  return ret;
}

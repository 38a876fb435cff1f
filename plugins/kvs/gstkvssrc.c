/**
 * SECTION:element-kvssrc
 * @title: kvssrc
 *
 * Reads a Kinesis Video Streams stream live, as Amazon Connect live media
 * streaming fills it: GetDataEndpoint (APIName `GET_MEDIA`), then GetMedia
 * on the data endpoint, both signed with SigV4 (service `kinesisvideo`).
 * The GetMedia response (one MKV document per fragment, concatenated) is
 * pushed as `video/x-matroska` buffers as the bytes arrive, without
 * waiting for whole fragments; kvsdemux turns it into audio.
 *
 * Where to start is #GstKvsSrc:start-selector: `now`, `earliest`,
 * `fragment-number` (after #GstKvsSrc:start-fragment), `producer-timestamp`
 * or `server-timestamp` (#GstKvsSrc:start-timestamp, ms since the epoch;
 * for Connect, the `StartTimestamp` of the contact's media stream) or
 * `continuation-token`.
 *
 * GetMedia sessions end after about 45 minutes, and connections drop.
 * With #GstKvsSrc:reconnect (the default) the element opens a new session
 * that resumes after the last complete fragment it forwarded (by the
 * `AWS_KINESISVIDEO_CONTINUATION_TOKEN` in the bytes, else the fragment
 * number) and flags its first buffer DISCONT: kvsdemux then drops the
 * interrupted MKV document and skips the blocks of that fragment it
 * already pushed, so no sample is lost or duplicated. A `kvs-reconnect`
 * element message (`reason`, `start-selector`, `continuation-token` or
 * `fragment-number`) is posted for each new session.
 *
 * The stream ends (EOS) when no byte has arrived for
 * #GstKvsSrc:idle-timeout ms: Connect stopped streaming the call.
 *
 * Service errors (ResourceNotFoundException, NotAuthorizedException,
 * ClientLimitExceededException, ConnectionLimitExceededException,
 * InvalidArgumentException, ...) become element errors naming the
 * exception; throttling and transient failures are first retried with
 * the AWS SDK "standard" policy.
 *
 * Credentials come from #GstKvsSrc:access-key/#GstKvsSrc:secret-key, else
 * the AWS SDK chain (environment, profile, container, EC2). The region
 * from #GstKvsSrc:region, else `AWS_REGION`/the profile; the endpoint from
 * #GstKvsSrc:endpoint, else `AWS_ENDPOINT_URL_KINESIS_VIDEO`,
 * `AWS_ENDPOINT_URL`, else `https://kinesisvideo.<region>.amazonaws.com`.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 kvssrc stream-arn=arn:aws:kinesisvideo:us-east-1:1234:stream/c-contact-x/1 \
 *     start-selector=producer-timestamp start-timestamp=1726677688724 \
 *     ! kvsdemux name=d d.from_customer ! queue ! wavenc \
 *     ! filesink location=customer.wav
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkvssrc.h"
#include "gstkvselements.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_kvs_src_debug);
#define GST_CAT_DEFAULT gst_kvs_src_debug

enum
{
  PROP_0,
  PROP_STREAM_ARN,
  PROP_STREAM_NAME,
  PROP_REGION,
  PROP_ENDPOINT,
  PROP_START_SELECTOR,
  PROP_START_FRAGMENT,
  PROP_START_TIMESTAMP,
  PROP_CONTINUATION_TOKEN,
  PROP_ACCESS_KEY,
  PROP_SECRET_KEY,
  PROP_SESSION_TOKEN,
  PROP_RECONNECT,
  PROP_IDLE_TIMEOUT,
};

#define DEFAULT_START_SELECTOR KVS_START_NOW
#define DEFAULT_START_TIMESTAMP 0
#define DEFAULT_RECONNECT TRUE
#define DEFAULT_IDLE_TIMEOUT 10000

/* Bytes received ahead of the pipeline before the transfer waits. */
#define MAX_QUEUED (1024 * 1024)
/* The first bytes of an error answer, enough for its JSON. */
#define MAX_ERROR_BODY (64 * 1024)
/* Without idle-timeout, a connection silent this long is dead. */
#define DEAD_CONNECTION_MS 30000
/* Between sessions that bring no data (a stream that stopped producing
 * but whose sessions still open): GetMedia allows 5 calls per second per
 * stream, shared with the other readers. */
#define EMPTY_SESSION_DELAY_US (G_USEC_PER_SEC)
#define TRACK_CHUNK (64 * 1024)

struct _GstKvsSrcSession
{
  GstKvsSrc *src; /* stop() joins every session first */
  CpHttpRequest *request;
  guint status;
  GByteArray *error_body;
  guint64 bytes;
  gboolean done;
  gboolean interrupted; /* cancelled by unlock, not failed */
  GError *error;
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-matroska"));

#define gst_kvs_src_parent_class parent_class
G_DEFINE_TYPE (GstKvsSrc, gst_kvs_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE (kvssrc, "kvssrc", GST_RANK_NONE, GST_TYPE_KVS_SRC);

GType
gst_kvs_src_start_selector_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {KVS_START_NOW, "The newest data on the stream", "now"},
      {KVS_START_EARLIEST, "The oldest data the stream retains", "earliest"},
      {KVS_START_FRAGMENT_NUMBER, "After the fragment start-fragment",
          "fragment-number"},
      {KVS_START_PRODUCER_TIMESTAMP,
          "The fragment holding start-timestamp, by producer time",
          "producer-timestamp"},
      {KVS_START_SERVER_TIMESTAMP,
          "The fragment holding start-timestamp, by server time",
          "server-timestamp"},
      {KVS_START_CONTINUATION_TOKEN, "Where continuation-token points",
          "continuation-token"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstKvsSrcStartSelector", values);

    g_once_init_leave (&type, t);
  }
  return type;
}

static void gst_kvs_src_finalize (GObject *object);
static void gst_kvs_src_set_property (GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec);
static void gst_kvs_src_get_property (GObject *object, guint prop_id,
    GValue *value, GParamSpec *pspec);
static gboolean gst_kvs_src_start (GstBaseSrc *bsrc);
static gboolean gst_kvs_src_stop (GstBaseSrc *bsrc);
static gboolean gst_kvs_src_unlock (GstBaseSrc *bsrc);
static gboolean gst_kvs_src_unlock_stop (GstBaseSrc *bsrc);
static gboolean gst_kvs_src_is_seekable (GstBaseSrc *bsrc);
static gboolean gst_kvs_src_query (GstBaseSrc *bsrc, GstQuery *query);
static GstFlowReturn gst_kvs_src_create (GstPushSrc *psrc, GstBuffer **outbuf);

static void
install_string (GObjectClass *klass, guint id, const gchar *name,
    const gchar *nick, const gchar *blurb)
{
  g_object_class_install_property (klass, id,
      g_param_spec_string (name, nick, blurb, NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
}

static void
gst_kvs_src_class_init (GstKvsSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_kvs_src_debug, "kvssrc", 0,
      "KVS GetMedia source");

  gobject_class->finalize = gst_kvs_src_finalize;
  gobject_class->set_property = gst_kvs_src_set_property;
  gobject_class->get_property = gst_kvs_src_get_property;

  install_string (gobject_class, PROP_STREAM_ARN, "stream-arn", "Stream ARN",
      "ARN of the Kinesis video stream to read (Connect: the contact's "
      "MediaStreams.Customer.Audio.StreamARN); wins over stream-name");
  install_string (gobject_class, PROP_STREAM_NAME, "stream-name", "Stream name",
      "Name of the Kinesis video stream to read, when no "
      "stream-arn is set");
  install_string (gobject_class, PROP_REGION, "region", "Region",
      "AWS region; NULL: AWS_REGION, AWS_DEFAULT_REGION, then the profile");
  install_string (gobject_class, PROP_ENDPOINT, "endpoint", "Endpoint",
      "Kinesis Video Streams control endpoint URL (http:// for a local "
      "peer); NULL: AWS_ENDPOINT_URL_KINESIS_VIDEO, AWS_ENDPOINT_URL, then "
      "the region's endpoint");
  g_object_class_install_property (gobject_class, PROP_START_SELECTOR,
      g_param_spec_enum ("start-selector", "Start selector",
          "Where GetMedia starts: the newest data, the oldest, after "
          "start-fragment, at start-timestamp (producer or server time) or "
          "at continuation-token",
          GST_TYPE_KVS_SRC_START_SELECTOR, DEFAULT_START_SELECTOR,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
  install_string (gobject_class, PROP_START_FRAGMENT, "start-fragment",
      "Start fragment",
      "Fragment number for start-selector=fragment-number: "
      "the stream starts with the fragment after it");
  g_object_class_install_property (gobject_class, PROP_START_TIMESTAMP,
      g_param_spec_uint64 ("start-timestamp", "Start timestamp",
          "Milliseconds since the epoch for start-selector="
          "producer-timestamp or server-timestamp (Connect: the media "
          "stream's StartTimestamp)",
          0, G_MAXUINT64, DEFAULT_START_TIMESTAMP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
  install_string (gobject_class, PROP_CONTINUATION_TOKEN, "continuation-token",
      "Continuation token",
      "Token from an earlier GetMedia response, for "
      "start-selector=continuation-token");
  install_string (gobject_class, PROP_ACCESS_KEY, "access-key", "Access key",
      "AWS access key ID; NULL: the AWS SDK credential chain");
  install_string (gobject_class, PROP_SECRET_KEY, "secret-key", "Secret key",
      "AWS secret access key, with access-key");
  install_string (gobject_class, PROP_SESSION_TOKEN, "session-token",
      "Session token",
      "AWS session token of temporary credentials, with "
      "access-key");
  g_object_class_install_property (gobject_class, PROP_RECONNECT,
      g_param_spec_boolean ("reconnect", "Reconnect",
          "When a GetMedia session ends (after about 45 min) or its "
          "connection drops, open a new one resuming after the last "
          "complete fragment; FALSE: end the stream instead",
          DEFAULT_RECONNECT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_IDLE_TIMEOUT,
      g_param_spec_uint ("idle-timeout", "Idle timeout",
          "End the stream (EOS) when no data has arrived for this many "
          "milliseconds (Connect stopped streaming); 0: wait forever",
          0, G_MAXUINT, DEFAULT_IDLE_TIMEOUT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "KVS GetMedia source",
      "Source/Network",
      "Reads an Amazon Kinesis Video Streams stream live with GetMedia "
      "(Amazon Connect live media), resuming across sessions",
      "callpipe <https://github.com/callpipe/callpipe>");
  gst_type_mark_as_plugin_api (GST_TYPE_KVS_SRC_START_SELECTOR, 0);

  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_kvs_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_kvs_src_stop);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_kvs_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_kvs_src_unlock_stop);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_kvs_src_is_seekable);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_kvs_src_query);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_kvs_src_create);
}

static void
gst_kvs_src_init (GstKvsSrc *self)
{
  self->start_selector = DEFAULT_START_SELECTOR;
  self->start_timestamp = DEFAULT_START_TIMESTAMP;
  self->reconnect = DEFAULT_RECONNECT;
  self->idle_timeout = DEFAULT_IDLE_TIMEOUT;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->chunks);
  self->cancellable = g_cancellable_new ();
  self->tracker_adapter = gst_adapter_new ();
  self->tracker = kvs_parser_new ();
  gst_base_src_set_live (GST_BASE_SRC (self), TRUE);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_BYTES);
}

static void
gst_kvs_src_finalize (GObject *object)
{
  GstKvsSrc *self = GST_KVS_SRC (object);

  g_free (self->stream_arn);
  g_free (self->stream_name);
  g_free (self->region);
  g_free (self->endpoint);
  g_free (self->start_fragment);
  g_free (self->continuation_token);
  g_free (self->access_key);
  g_free (self->secret_key);
  g_free (self->session_token);
  g_object_unref (self->cancellable);
  g_object_unref (self->tracker_adapter);
  kvs_parser_free (self->tracker);
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
gst_kvs_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstKvsSrc *self = GST_KVS_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STREAM_ARN:
      set_string (&self->stream_arn, value);
      break;
    case PROP_STREAM_NAME:
      set_string (&self->stream_name, value);
      break;
    case PROP_REGION:
      set_string (&self->region, value);
      break;
    case PROP_ENDPOINT:
      set_string (&self->endpoint, value);
      break;
    case PROP_START_SELECTOR:
      self->start_selector = g_value_get_enum (value);
      break;
    case PROP_START_FRAGMENT:
      set_string (&self->start_fragment, value);
      break;
    case PROP_START_TIMESTAMP:
      self->start_timestamp = g_value_get_uint64 (value);
      break;
    case PROP_CONTINUATION_TOKEN:
      set_string (&self->continuation_token, value);
      break;
    case PROP_ACCESS_KEY:
      set_string (&self->access_key, value);
      break;
    case PROP_SECRET_KEY:
      set_string (&self->secret_key, value);
      break;
    case PROP_SESSION_TOKEN:
      set_string (&self->session_token, value);
      break;
    case PROP_RECONNECT:
      self->reconnect = g_value_get_boolean (value);
      break;
    case PROP_IDLE_TIMEOUT:
      self->idle_timeout = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_kvs_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstKvsSrc *self = GST_KVS_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STREAM_ARN:
      g_value_set_string (value, self->stream_arn);
      break;
    case PROP_STREAM_NAME:
      g_value_set_string (value, self->stream_name);
      break;
    case PROP_REGION:
      g_value_set_string (value, self->region);
      break;
    case PROP_ENDPOINT:
      g_value_set_string (value, self->endpoint);
      break;
    case PROP_START_SELECTOR:
      g_value_set_enum (value, self->start_selector);
      break;
    case PROP_START_FRAGMENT:
      g_value_set_string (value, self->start_fragment);
      break;
    case PROP_START_TIMESTAMP:
      g_value_set_uint64 (value, self->start_timestamp);
      break;
    case PROP_CONTINUATION_TOKEN:
      g_value_set_string (value, self->continuation_token);
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
    case PROP_RECONNECT:
      g_value_set_boolean (value, self->reconnect);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, self->idle_timeout);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- start and stop ---- */

static gboolean
check_selector (GstKvsSrc *self, GError **error)
{
  const gchar *missing = NULL;

  switch (self->first_type) {
    case KVS_START_FRAGMENT_NUMBER:
      if (self->first_fragment == NULL || *self->first_fragment == '\0')
        missing = "start-fragment";
      break;
    case KVS_START_PRODUCER_TIMESTAMP:
    case KVS_START_SERVER_TIMESTAMP:
      if (self->first_timestamp == 0)
        missing = "start-timestamp";
      break;
    case KVS_START_CONTINUATION_TOKEN:
      if (self->first_token == NULL || *self->first_token == '\0')
        missing = "continuation-token";
      break;
    default:
      break;
  }
  if (missing == NULL)
    return TRUE;
  g_set_error (error, KVS_CLIENT_ERROR, KVS_CLIENT_ERROR_CONFIG,
      "start-selector=%s needs %s to be set",
      kvs_start_selector_type_name (self->first_type), missing);
  return FALSE;
}

static gboolean
gst_kvs_src_start (GstBaseSrc *bsrc)
{
  GstKvsSrc *self = GST_KVS_SRC (bsrc);
  g_autoptr (GError) error = NULL;
  KvsClientConfig config = {0};

  GST_OBJECT_LOCK (self);
  config.stream_arn = self->stream_arn;
  config.stream_name = self->stream_name;
  config.region = self->region;
  config.endpoint = self->endpoint;
  config.access_key = self->access_key;
  config.secret_key = self->secret_key;
  config.session_token = self->session_token;
  config.idle_timeout_ms =
      self->idle_timeout ? self->idle_timeout : DEAD_CONNECTION_MS;
  self->first_type = self->start_selector;
  self->first_fragment = g_strdup (self->start_fragment);
  self->first_timestamp = self->start_timestamp;
  self->first_token = g_strdup (self->continuation_token);
  self->do_reconnect = self->reconnect;
  self->idle_timeout_ms = self->idle_timeout;
  self->client = kvs_client_new (&config, &error);
  GST_OBJECT_UNLOCK (self);

  if (self->client == NULL || !check_selector (self, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Cannot read Kinesis Video Streams: %s", error->message), (NULL));
    /* stop() is not called after a failed start(). */
    g_clear_pointer (&self->client, kvs_client_free);
    g_clear_pointer (&self->first_fragment, g_free);
    g_clear_pointer (&self->first_token, g_free);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "GetMedia at %s (region %s), start %s",
      kvs_client_get_endpoint (self->client),
      kvs_client_get_region (self->client),
      kvs_start_selector_type_name (self->first_type));

  cp_aws_retry_token_init (&self->retry);
  self->tracking = TRUE;
  self->tracker_needed = 1;
  self->forwarded = 0;
  self->discont = FALSE;
  self->first_fragment_logged = FALSE;
  g_mutex_lock (&self->lock);
  self->flushing = FALSE;
  self->last_data_us = g_get_monotonic_time ();
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
session_free (GstKvsSrcSession *session)
{
  cp_http_request_unref (session->request);
  g_byte_array_unref (session->error_body);
  g_clear_error (&session->error);
  g_free (session);
}

/* Waits for the transfer thread of a session that is done or cancelled. */
static void
session_join (GstKvsSrcSession *session)
{
  cp_http_request_wait (session->request, NULL);
  session_free (session);
}

static gboolean
gst_kvs_src_stop (GstBaseSrc *bsrc)
{
  GstKvsSrc *self = GST_KVS_SRC (bsrc);
  GstKvsSrcSession *session;

  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  g_cancellable_cancel (self->cancellable);
  session = g_steal_pointer (&self->session);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (session)
    session_join (session);

  g_mutex_lock (&self->lock);
  g_queue_clear_full (&self->chunks, (GDestroyNotify) g_bytes_unref);
  self->queued = 0;
  g_object_unref (self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&self->client, kvs_client_free);
  g_clear_pointer (&self->data_endpoint, g_free);
  g_clear_pointer (&self->first_fragment, g_free);
  g_clear_pointer (&self->first_token, g_free);
  g_clear_pointer (&self->resume_token, g_free);
  g_clear_pointer (&self->resume_fragment, g_free);
  gst_adapter_clear (self->tracker_adapter);
  kvs_parser_reset (self->tracker);
  return TRUE;
}

/* Stops the in-flight request: create() returns FLUSHING now, and opens a
 * new session resuming where the forwarded bytes end when it runs again. */
static gboolean
gst_kvs_src_unlock (GstBaseSrc *bsrc)
{
  GstKvsSrc *self = GST_KVS_SRC (bsrc);

  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  if (self->session)
    self->session->interrupted = TRUE;
  g_cancellable_cancel (self->cancellable);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_kvs_src_unlock_stop (GstBaseSrc *bsrc)
{
  GstKvsSrc *self = GST_KVS_SRC (bsrc);

  g_mutex_lock (&self->lock);
  self->flushing = FALSE;
  /* The cancelled one may still be in use by an ending transfer. */
  g_object_unref (self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_kvs_src_is_seekable (GstBaseSrc *bsrc)
{
  return FALSE;
}

static gboolean
gst_kvs_src_query (GstBaseSrc *bsrc, GstQuery *query)
{
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    /* Bytes go out as they arrive, untimestamped: the source adds no
     * latency of its own, and KVS keeps the stream, so it can fall behind
     * by any amount and catch up. */
    gst_query_set_latency (query, TRUE, 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
}

/* ---- the transfer thread ---- */

static gboolean
on_headers (CpHttpRequest *request, guint status, CpHttpHeaders *headers,
    gpointer user_data)
{
  GstKvsSrcSession *session = user_data;
  GstKvsSrc *self = session->src;

  g_mutex_lock (&self->lock);
  session->status = status;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
on_data (CpHttpRequest *request, const guint8 *data, gsize len,
    gpointer user_data)
{
  GstKvsSrcSession *session = user_data;
  GstKvsSrc *self = session->src;
  gboolean ok = TRUE;

  g_mutex_lock (&self->lock);
  if (session->status < 200 || session->status >= 300) {
    if (session->error_body->len < MAX_ERROR_BODY)
      g_byte_array_append (session->error_body, data,
          MIN (len, MAX_ERROR_BODY - session->error_body->len));
    goto out;
  }
  /* Back-pressure: the pipeline is behind; KVS keeps the data. */
  while (!self->flushing && self->queued >= MAX_QUEUED)
    g_cond_wait (&self->cond, &self->lock);
  if (self->flushing) {
    ok = FALSE;
    goto out;
  }
  g_queue_push_tail (&self->chunks, g_bytes_new (data, len));
  self->queued += len;
  session->bytes += len;
  self->last_data_us = g_get_monotonic_time ();
  g_cond_broadcast (&self->cond);

out:
  g_mutex_unlock (&self->lock);
  return ok;
}

static void
on_done (CpHttpRequest *request, const GError *error, gpointer user_data)
{
  GstKvsSrcSession *session = user_data;
  GstKvsSrc *self = session->src;

  g_mutex_lock (&self->lock);
  session->done = TRUE;
  session->error = error ? g_error_copy (error) : NULL;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static const CpHttpRequestCallbacks session_callbacks = {on_headers, on_data,
    on_done};

/* ---- sessions, on the streaming thread ---- */

static void
resume_selector (GstKvsSrc *self, KvsStartSelector *sel)
{
  memset (sel, 0, sizeof (*sel));
  if (self->resume_token) {
    sel->type = KVS_START_CONTINUATION_TOKEN;
    sel->continuation_token = self->resume_token;
  } else if (self->resume_fragment) {
    sel->type = KVS_START_FRAGMENT_NUMBER;
    sel->after_fragment_number = self->resume_fragment;
  } else {
    /* Nothing complete was forwarded yet: the first request again. */
    sel->type = self->first_type;
    sel->after_fragment_number = self->first_fragment;
    sel->timestamp_ms = self->first_timestamp;
    sel->continuation_token = self->first_token;
  }
}

static void
post_reconnect (GstKvsSrc *self, const gchar *reason,
    const KvsStartSelector *sel)
{
  GstStructure *s = gst_structure_new ("kvs-reconnect", "reason", G_TYPE_STRING,
      reason, "start-selector", G_TYPE_STRING,
      kvs_start_selector_type_name (sel->type), NULL);

  if (sel->type == KVS_START_CONTINUATION_TOKEN)
    gst_structure_set (s, "continuation-token", G_TYPE_STRING,
        sel->continuation_token, NULL);
  else if (sel->type == KVS_START_FRAGMENT_NUMBER)
    gst_structure_set (s, "fragment-number", G_TYPE_STRING,
        sel->after_fragment_number, NULL);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

static GCancellable *
get_cancellable (GstKvsSrc *self)
{
  GCancellable *c;

  g_mutex_lock (&self->lock);
  c = g_object_ref (self->cancellable);
  g_mutex_unlock (&self->lock);
  return c;
}

/* GetDataEndpoint when needed, then starts a GetMedia transfer. */
static gboolean
open_session (GstKvsSrc *self, const gchar *reason, GError **error)
{
  g_autoptr (GCancellable) cancellable = get_cancellable (self);
  GstKvsSrcSession *session;
  CpHttpRequest *request;
  KvsStartSelector sel;

  if (self->data_endpoint == NULL) {
    self->data_endpoint =
        kvs_client_get_data_endpoint (self->client, cancellable, error);
    if (self->data_endpoint == NULL)
      return FALSE;
    GST_DEBUG_OBJECT (self, "data endpoint %s", self->data_endpoint);
  }
  resume_selector (self, &sel);
  request =
      kvs_client_new_get_media (self->client, self->data_endpoint, &sel, error);
  if (request == NULL)
    return FALSE;
  GST_INFO_OBJECT (self, "GetMedia %s%s%s (%s)",
      kvs_start_selector_type_name (sel.type),
      sel.continuation_token || sel.after_fragment_number ? " " : "",
      sel.type == KVS_START_CONTINUATION_TOKEN    ? sel.continuation_token
          : sel.type == KVS_START_FRAGMENT_NUMBER ? sel.after_fragment_number
                                                  : "",
      reason);
  if (reason != NULL)
    post_reconnect (self, reason, &sel);
  if (self->forwarded > 0) {
    /* Whatever document the old session was in is cut short. */
    self->discont = TRUE;
    gst_adapter_clear (self->tracker_adapter);
    kvs_parser_discont (self->tracker);
    self->tracker_needed = 1;
  }

  session = g_new0 (GstKvsSrcSession, 1);
  session->src = self;
  session->request = request;
  session->error_body = g_byte_array_new ();
  cp_http_request_set_callbacks (request, &session_callbacks, session, NULL);
  g_mutex_lock (&self->lock);
  self->session = session;
  g_mutex_unlock (&self->lock);
  cp_http_request_start (request, cancellable);
  return TRUE;
}

/* Notes the resume point of each complete fragment in the bytes pushed. */
static void
track_fragment (GstKvsSrc *self, KvsFragment *frag)
{
  if (frag->truncated)
    return;
  if (!self->first_fragment_logged && frag->fragment_number) {
    /* A FRAGMENT_NUMBER start is documented both as "after" and as
     * "containing": say which fragment really came first. */
    GST_INFO_OBJECT (self, "first fragment %s", frag->fragment_number);
    self->first_fragment_logged = TRUE;
  }
  if (frag->continuation_token) {
    g_free (self->resume_token);
    self->resume_token = g_strdup (frag->continuation_token);
    g_clear_pointer (&self->resume_fragment, g_free);
  } else if (frag->fragment_number) {
    g_free (self->resume_fragment);
    self->resume_fragment = g_strdup (frag->fragment_number);
    g_clear_pointer (&self->resume_token, g_free);
  }
}

static void
track_bytes (GstKvsSrc *self, GstBuffer *buf)
{
  gst_adapter_push (self->tracker_adapter, gst_buffer_ref (buf));
  for (;;) {
    gsize avail = gst_adapter_available (self->tracker_adapter);
    gsize len, consumed = 0;
    g_autoptr (GError) err = NULL;
    const guint8 *data;
    KvsFragment *frag;
    gboolean ok;

    if (avail == 0 || avail < self->tracker_needed)
      return;
    len = MIN (avail, MAX (self->tracker_needed, TRACK_CHUNK));
    data = gst_adapter_map (self->tracker_adapter, len);
    ok = kvs_parser_parse (self->tracker, data, len, &consumed, &err);
    gst_adapter_unmap (self->tracker_adapter);
    gst_adapter_flush (self->tracker_adapter, consumed);
    self->tracker_needed = kvs_parser_get_needed (self->tracker);
    while ((frag = kvs_parser_pop_fragment (self->tracker)) != NULL) {
      track_fragment (self, frag);
      kvs_fragment_free (frag);
    }
    if (!ok) {
      /* Not GetMedia bytes: still forwarded, for downstream to judge,
       * but a reconnect can only repeat the first request. */
      GST_WARNING_OBJECT (self, "cannot follow the stream: %s", err->message);
      self->tracking = FALSE;
      gst_adapter_clear (self->tracker_adapter);
      return;
    }
    if (consumed == 0 && len == avail)
      return;
  }
}

static GstBuffer *
take_chunk (GstKvsSrc *self, GBytes *bytes)
{
  GstBuffer *buf = gst_buffer_new_wrapped_bytes (bytes);

  GST_BUFFER_OFFSET (buf) = self->forwarded;
  self->forwarded += g_bytes_get_size (bytes);
  GST_BUFFER_OFFSET_END (buf) = self->forwarded;
  if (self->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
  }
  if (self->tracking)
    track_bytes (self, buf);
  g_bytes_unref (bytes);
  return buf;
}

typedef enum
{
  NEXT_RECONNECT,
  NEXT_EOS,
  NEXT_ERROR,
} SessionNext;

static gboolean
idle_expired (GstKvsSrc *self)
{
  gint64 last;

  if (self->idle_timeout_ms == 0)
    return FALSE;
  g_mutex_lock (&self->lock);
  last = self->last_data_us;
  g_mutex_unlock (&self->lock);
  return g_get_monotonic_time () - last
      >= (gint64) self->idle_timeout_ms * 1000;
}

/* Waits @delay_us before a new attempt, at most until the idle deadline
 * when @idle_bound. FALSE when cancelled. */
static gboolean
wait_before_retry (GstKvsSrc *self, gint64 delay_us, gboolean idle_bound)
{
  g_autoptr (GCancellable) cancellable = get_cancellable (self);

  if (idle_bound && self->idle_timeout_ms > 0) {
    gint64 left;

    g_mutex_lock (&self->lock);
    left = self->last_data_us + (gint64) self->idle_timeout_ms * 1000
        - g_get_monotonic_time ();
    g_mutex_unlock (&self->lock);
    delay_us = MIN (delay_us, MAX (left, 0));
  }
  return kvs_client_sleep (cancellable, delay_us, NULL);
}

/* What follows a finished GetMedia session: another one, the end of the
 * stream, or an error in @error. *reason says why a new one opens. */
static SessionNext
session_next (GstKvsSrc *self, GstKvsSrcSession *s, const gchar **reason,
    GError **error)
{
  g_autoptr (GError) err = NULL;
  CpAwsRetryKind kind;
  gint64 delay_us = 0;

  if (s->interrupted) {
    *reason = "interrupted";
    return NEXT_RECONNECT;
  }
  if (s->bytes > 0)
    cp_aws_retry_strategy_record_success (kvs_client_get_retry (self->client),
        &self->retry);
  if (s->bytes > 0 || (s->error == NULL && s->status >= 200 && s->status < 300))
    cp_aws_retry_token_init (&self->retry);

  if (s->error == NULL && s->status >= 200 && s->status < 300) {
    /* A clean end: the session's time is up (~45 min), or the stream
     * stopped producing a while ago. */
    if (!self->do_reconnect || idle_expired (self))
      return NEXT_EOS;
    *reason = "session-ended";
    if (s->bytes == 0
        && !wait_before_retry (self, EMPTY_SESSION_DELAY_US, TRUE))
      return NEXT_RECONNECT;
    return idle_expired (self) ? NEXT_EOS : NEXT_RECONNECT;
  }

  if (s->error == NULL) {
    g_autoptr (GBytes) body =
        g_bytes_new (s->error_body->data, s->error_body->len);

    err = kvs_client_response_error ("GetMedia", s->status,
        cp_http_request_get_response_headers (s->request), body, &kind);
    *reason = "retry";
  } else {
    err = g_error_copy (s->error);
    kind = cp_aws_retry_classify_error (err);
    g_prefix_error (&err,
        "GetMedia connection to %s failed: ", self->data_endpoint);
    /* The data endpoint may have moved: ask again. */
    g_clear_pointer (&self->data_endpoint, g_free);
    if (s->bytes > 0) {
      if (!self->do_reconnect) {
        g_propagate_error (error, g_steal_pointer (&err));
        return NEXT_ERROR;
      }
      if (idle_expired (self))
        return NEXT_EOS;
      GST_INFO_OBJECT (self, "%s: reconnecting", err->message);
      *reason = "connection-lost";
      return NEXT_RECONNECT;
    }
    *reason = "retry";
  }
  if (!cp_aws_retry_strategy_should_retry (kvs_client_get_retry (self->client),
          &self->retry, kind, &delay_us)) {
    if (self->retry.attempts > 1)
      g_prefix_error (&err, "After %u attempts: ", self->retry.attempts);
    g_propagate_error (error, g_steal_pointer (&err));
    return NEXT_ERROR;
  }
  GST_INFO_OBJECT (self, "%s: retrying in %" G_GINT64_FORMAT " ms",
      err->message, delay_us / 1000);
  wait_before_retry (self, delay_us, FALSE);
  /* Time spent failing is not the stream being silent: the retry policy
   * ends it, not idle-timeout. */
  g_mutex_lock (&self->lock);
  self->last_data_us = g_get_monotonic_time ();
  g_mutex_unlock (&self->lock);
  return NEXT_RECONNECT;
}

static void
post_error (GstKvsSrc *self, const GError *error)
{
  if (g_error_matches (error, KVS_CLIENT_ERROR,
          KVS_CLIENT_ERROR_RESOURCE_NOT_FOUND))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", error->message),
        (NULL));
  else if (g_error_matches (error, KVS_CLIENT_ERROR,
               KVS_CLIENT_ERROR_NOT_AUTHORIZED))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("%s", error->message),
        (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("%s", error->message), (NULL));
}

static GstFlowReturn
fail (GstKvsSrc *self, GError *error)
{
  post_error (self, error);
  g_error_free (error);
  return GST_FLOW_ERROR;
}

/* Waits for bytes, the end of the session, or the idle deadline, which
 * counts once the session streams (an error answer is the retry
 * policy's). */
static gboolean
wait_for_data (GstKvsSrc *self)
{
  guint status = self->session->status;
  gint64 deadline;

  if (self->idle_timeout_ms == 0 || status < 200 || status >= 300) {
    g_cond_wait (&self->cond, &self->lock);
    return TRUE;
  }
  deadline = self->last_data_us + (gint64) self->idle_timeout_ms * 1000;
  if (g_get_monotonic_time () >= deadline)
    return FALSE;
  g_cond_wait_until (&self->cond, &self->lock, deadline);
  return TRUE;
}

static GstFlowReturn
gst_kvs_src_create (GstPushSrc *psrc, GstBuffer **outbuf)
{
  GstKvsSrc *self = GST_KVS_SRC (psrc);
  const gchar *reason = NULL;

  g_mutex_lock (&self->lock);
  for (;;) {
    GstKvsSrcSession *session;
    GError *error = NULL;
    GBytes *bytes;
    SessionNext next;

    if (self->flushing) {
      g_mutex_unlock (&self->lock);
      return GST_FLOW_FLUSHING;
    }
    if ((bytes = g_queue_pop_head (&self->chunks)) != NULL) {
      self->queued -= g_bytes_get_size (bytes);
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      *outbuf = take_chunk (self, bytes);
      return GST_FLOW_OK;
    }
    if (self->session == NULL) {
      g_mutex_unlock (&self->lock);
      if (!open_session (self, reason, &error)) {
        if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
          g_error_free (error);
          return GST_FLOW_FLUSHING;
        }
        return fail (self, error);
      }
      g_mutex_lock (&self->lock);
      continue;
    }
    if (self->session->done) {
      session = g_steal_pointer (&self->session);
      g_mutex_unlock (&self->lock);
      next = session_next (self, session, &reason, &error);
      session_join (session);
      if (next == NEXT_EOS) {
        GST_INFO_OBJECT (self, "the stream has ended");
        return GST_FLOW_EOS;
      }
      if (next == NEXT_ERROR)
        return fail (self, error);
      g_mutex_lock (&self->lock);
      continue;
    }
    if (!wait_for_data (self)) {
      GST_INFO_OBJECT (self, "no data for %u ms: end of the stream",
          self->idle_timeout_ms);
      self->session->interrupted = TRUE;
      g_cancellable_cancel (self->cancellable);
      g_mutex_unlock (&self->lock);
      return GST_FLOW_EOS;
    }
  }
}

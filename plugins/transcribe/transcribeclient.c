/* callpipe — Amazon Transcribe streaming client. See transcribeclient.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "transcribeclient.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "aws/eventsigner.h"
#include "aws/eventstream.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "http/cphttp2.h"

#define SIGNING_SERVICE "transcribe"
#define STREAM_PATH "/stream-transcription"
/* push() blocks while this much audio waits to be sent. */
#define MAX_QUEUED_MS 60000
/* How long a stream ended for rollover may take to deliver its last
 * results before it is treated as dropped. */
#define END_TIMEOUT_US (30 * G_USEC_PER_SEC)
/* A full stream waits this long for the results of what it carried
 * before rolling over. */
#define ROLL_WAIT_US (2 * G_USEC_PER_SEC)
/* An error response body is read up to this size. */
#define MAX_ERROR_BODY 65536

typedef struct
{
  guint64 at; /* service frame where it starts */
  guint64 frames;
} SilenceSpan;

/* One HTTP/2 stream. The I/O thread's callbacks get it as user data;
 * fields marked (lock) are under the client's lock. */
typedef struct
{
  gatomicrefcount ref;
  CpTranscribeClient *client; /* a reference */
  guint index;
  CpTranscribeStreamEvent event;
  guint64 base; /* caller frame of the stream's frame 0 */
  GArray *silence; /* (lock) SilenceSpan, keep-alive audio */
  guint64 service_frames; /* (lock) frames sent, silence included */
  guint64 sent_end; /* (lock) caller frame after the last sent */
  guint status; /* (lock) 0 until the response */
  gchar *request_id; /* (lock) */
  gchar *error_type; /* (lock) x-amzn-ErrorType */
  GByteArray *error_body; /* (lock) body of a non-200 response */
  gchar *exception; /* (lock) "Name: message" */
  gboolean exception_retryable; /* (lock) */
  gchar *protocol_error; /* (lock) */
  gboolean closed; /* (lock) */
  GError *close_error; /* (lock) */
  CpAwsEventDecoder *decoder; /* I/O thread only */
} StreamCtx;

struct _CpTranscribeClient
{
  gatomicrefcount ref;
  CpTranscribeClientConfig config; /* strings owned */
  guint bpf; /* bytes per frame */
  guint64 chunk_frames;
  guint64 max_stream_frames;
  guint64 max_tail_frames;
  CpAwsCredentialsProvider *credentials;
  CpAwsRetryStrategy *retry;
  CpTranscribeClientCallbacks callbacks;
  gpointer user_data;
  GCancellable *cancellable;
  GThread *thread;

  /* Lock order: only this lock; never held while calling out (callbacks,
   * HTTP/2 writes, credential lookups). */
  GMutex lock;
  GCond cond;
  GByteArray *audio; /* caller audio from frame audio_start */
  guint64 audio_start;
  guint64 send_pos; /* next caller frame to send */
  guint64 ack; /* caller frames up to here are final */
  guint64 final_end[CP_TRANSCRIPT_MAX_CHANNELS];
  gboolean partial_pending[CP_TRANSCRIPT_MAX_CHANNELS];
  guint64 partial_start[CP_TRANSCRIPT_MAX_CHANNELS];
  guint n_streams;
  gint64 last_send_us;
  gboolean finishing;
  gboolean finished;
  gboolean stopping;
  gboolean unlocked;
  GError *error;
  guint callback_depth;
};

/* The worker's view of the stream it sends on. */
typedef struct
{
  CpHttp2Connection *conn;
  CpHttp2Stream *stream;
  CpAwsEventSigner *signer;
  StreamCtx *ctx;
  gboolean ending; /* the end frame went out */
  gboolean rollover; /* ...because of max_stream_ms */
  gboolean broken; /* a write failed: wait for closed */
  gint64 end_deadline;
  gint64 roll_deadline; /* 0 until the stream is full */
} Sender;

GQuark
cp_transcribe_error_quark (void)
{
  return g_quark_from_static_string ("cp-transcribe-error-quark");
}

static const gchar *const stability_names[] = {
    NULL,
    "low",
    "medium",
    "high",
};

static CpTranscribeClient *
client_ref (CpTranscribeClient *c)
{
  g_atomic_ref_count_inc (&c->ref);
  return c;
}

static void
client_unref (CpTranscribeClient *c)
{
  if (!g_atomic_ref_count_dec (&c->ref))
    return;
  g_free ((gchar *) c->config.endpoint);
  g_free ((gchar *) c->config.region);
  g_free ((gchar *) c->config.language_code);
  g_free ((gchar *) c->config.vocabulary_name);
  g_free ((gchar *) c->config.session_id);
  g_free ((gchar *) c->config.ca_file);
  cp_aws_credentials_provider_free (c->credentials);
  cp_aws_retry_strategy_free (c->retry);
  g_object_unref (c->cancellable);
  g_byte_array_unref (c->audio);
  g_clear_error (&c->error);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c);
}

static StreamCtx *
ctx_ref (StreamCtx *ctx)
{
  g_atomic_ref_count_inc (&ctx->ref);
  return ctx;
}

static void
ctx_unref (gpointer data)
{
  StreamCtx *ctx = data;

  if (!g_atomic_ref_count_dec (&ctx->ref))
    return;
  g_array_unref (ctx->silence);
  g_free (ctx->request_id);
  g_free (ctx->error_type);
  g_byte_array_unref (ctx->error_body);
  g_free (ctx->exception);
  g_free (ctx->protocol_error);
  g_clear_error (&ctx->close_error);
  cp_aws_event_decoder_free (ctx->decoder);
  client_unref (ctx->client);
  g_free (ctx);
}

/* ---- time mapping and results (I/O thread) ---- */

static guint64
seconds_to_frames (CpTranscribeClient *c, gdouble t)
{
  return t <= 0 ? 0 : (guint64) llround (t * c->config.rate);
}

/* Service seconds on @ctx's stream to caller seconds, keep-alive silence
 * taken out. Called with the lock. */
static gdouble
map_time (CpTranscribeClient *c, StreamCtx *ctx, gdouble t)
{
  guint64 sf = seconds_to_frames (c, t);
  guint64 removed = 0;
  guint i;

  for (i = 0; i < ctx->silence->len; i++) {
    const SilenceSpan *span = &g_array_index (ctx->silence, SilenceSpan, i);

    if (span->at >= sf)
      break;
    removed += MIN (span->frames, sf - span->at);
  }
  return (gdouble) (ctx->base + sf - removed) / c->config.rate;
}

static void
map_result (CpTranscribeClient *c, StreamCtx *ctx, CpTranscriptResult *r)
{
  guint i;

  r->start = map_time (c, ctx, r->start);
  r->end = map_time (c, ctx, r->end);
  for (i = 0; i < r->items->len; i++) {
    CpTranscriptItem *item = &g_array_index (r->items, CpTranscriptItem, i);

    if (!item->is_punctuation) {
      item->start = map_time (c, ctx, item->start);
      item->end = map_time (c, ctx, item->end);
    }
  }
}

/* The audio before the earliest point a result may still change is
 * acknowledged. Called with the lock. */
static void
update_ack (CpTranscribeClient *c)
{
  guint64 ack = 0;
  guint ch;

  for (ch = 0; ch < c->config.channels; ch++)
    ack = MAX (ack, c->final_end[ch]);
  for (ch = 0; ch < c->config.channels; ch++)
    if (c->partial_pending[ch])
      ack = MIN (ack, c->partial_start[ch]);
  c->ack = MIN (ack, c->send_pos);
}

/* Takes the lock; returns FALSE (lock released) when the client is being
 * freed and callbacks must not run. */
static gboolean
callback_enter (CpTranscribeClient *c)
{
  if (c->stopping) {
    g_mutex_unlock (&c->lock);
    return FALSE;
  }
  c->callback_depth++;
  g_mutex_unlock (&c->lock);
  return TRUE;
}

static void
callback_leave (CpTranscribeClient *c)
{
  g_mutex_lock (&c->lock);
  if (--c->callback_depth == 0)
    g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static void
deliver_result (CpTranscribeClient *c, StreamCtx *ctx, CpTranscriptResult *r)
{
  guint ch = r->channel;
  gdouble floor;

  if (ch >= c->config.channels)
    return;
  g_mutex_lock (&c->lock);
  map_result (c, ctx, r);
  floor = (gdouble) c->final_end[ch] / c->config.rate;
  if (!cp_transcript_result_trim_before (r, floor)) {
    g_mutex_unlock (&c->lock);
    return;
  }
  if (r->is_partial) {
    c->partial_pending[ch] = TRUE;
    c->partial_start[ch] = seconds_to_frames (c, r->start);
  } else {
    c->final_end[ch] = MAX (c->final_end[ch], seconds_to_frames (c, r->end));
    c->partial_pending[ch] = FALSE;
  }
  update_ack (c);
  g_cond_broadcast (&c->cond);
  if (!callback_enter (c))
    return;
  if (c->callbacks.result)
    c->callbacks.result (c, r, c->user_data);
  callback_leave (c);
}

static gboolean
exception_is_retryable (const gchar *name)
{
  return g_strcmp0 (name, "InternalFailureException") == 0
      || g_strcmp0 (name, "ServiceUnavailableException") == 0;
}

/* {"Message": "..."} or {"message": "..."}, else "". */
static gchar *
json_message (GBytes *payload)
{
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *obj;
  const gchar *keys[] = {"Message", "message"};
  guint i;

  if (len == 0 || len > MAX_ERROR_BODY
      || !json_parser_load_from_data (parser, data, (gssize) len, NULL))
    return g_strdup ("");
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return g_strdup ("");
  obj = json_node_get_object (root);
  for (i = 0; i < G_N_ELEMENTS (keys); i++) {
    JsonNode *node = json_object_get_member (obj, keys[i]);

    if (node && JSON_NODE_HOLDS_VALUE (node)
        && json_node_get_value_type (node) == G_TYPE_STRING)
      return g_strdup (json_node_get_string (node));
  }
  return g_strdup ("");
}

static void
set_exception (CpTranscribeClient *c, StreamCtx *ctx, const gchar *name,
    const gchar *message)
{
  g_mutex_lock (&c->lock);
  if (ctx->exception == NULL) {
    ctx->exception = g_strdup_printf ("%s: %s", name, message);
    ctx->exception_retryable = exception_is_retryable (name);
    g_cond_broadcast (&c->cond);
  }
  g_mutex_unlock (&c->lock);
}

static void
set_protocol_error (CpTranscribeClient *c, StreamCtx *ctx, const gchar *message)
{
  g_mutex_lock (&c->lock);
  if (ctx->protocol_error == NULL)
    ctx->protocol_error = g_strdup (message);
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static void
handle_event (CpTranscribeClient *c, StreamCtx *ctx, CpAwsEventMessage *msg)
{
  const gchar *mt = cp_aws_event_message_get_message_type (msg);
  const gchar *et = cp_aws_event_message_get_event_type (msg);
  GBytes *payload = cp_aws_event_message_get_payload (msg);

  if (g_strcmp0 (mt, "event") == 0 && g_strcmp0 (et, "TranscriptEvent") == 0) {
    gsize len;
    const gchar *json = g_bytes_get_data (payload, &len);
    g_autoptr (GError) error = NULL;
    g_autoptr (GPtrArray) results =
        cp_transcript_event_parse (json, len, &error);
    guint i;

    if (results == NULL) {
      set_protocol_error (c, ctx, error->message);
      return;
    }
    for (i = 0; i < results->len; i++)
      deliver_result (c, ctx, g_ptr_array_index (results, i));
  } else if (g_strcmp0 (mt, "exception") == 0
      || (et != NULL && g_str_has_suffix (et, "Exception"))) {
    const gchar *name = cp_aws_event_message_get_exception_type (msg);
    g_autofree gchar *message = json_message (payload);

    set_exception (c, ctx, name ? name : (et ? et : "UnknownException"),
        message);
  } else if (g_strcmp0 (mt, "error") == 0) {
    const gchar *code = cp_aws_event_message_get_string (msg, ":error-code");
    const gchar *text = cp_aws_event_message_get_string (msg, ":error-message");

    set_exception (c, ctx, code ? code : "UnknownError", text ? text : "");
  }
}

static void
on_response (CpHttp2Stream *stream, guint status, CpHttpHeaders *headers,
    gpointer user_data)
{
  StreamCtx *ctx = user_data;
  CpTranscribeClient *c = ctx->client;
  const gchar *error_type = cp_http_headers_get (headers, "x-amzn-errortype");
  g_autofree gchar *request_id =
      g_strdup (cp_http_headers_get (headers, "x-amzn-request-id"));

  g_mutex_lock (&c->lock);
  ctx->status = status;
  ctx->request_id = g_strdup (request_id);
  if (error_type != NULL)
    ctx->error_type = g_strndup (error_type, strcspn (error_type, ":"));
  g_cond_broadcast (&c->cond);
  if (status != 200) {
    g_mutex_unlock (&c->lock);
    return;
  }
  if (!callback_enter (c))
    return;
  if (c->callbacks.stream)
    c->callbacks.stream (c, ctx->event, ctx->index, request_id, c->user_data);
  callback_leave (c);
}

static void
on_data (CpHttp2Stream *stream, const guint8 *data, gsize len,
    gpointer user_data)
{
  StreamCtx *ctx = user_data;
  CpTranscribeClient *c = ctx->client;
  g_autoptr (GError) error = NULL;
  CpAwsEventMessage *msg;
  gboolean failed;

  g_mutex_lock (&c->lock);
  if (ctx->status != 200) {
    guint room = MAX_ERROR_BODY - MIN (ctx->error_body->len, MAX_ERROR_BODY);

    g_byte_array_append (ctx->error_body, data, MIN (len, room));
    g_mutex_unlock (&c->lock);
    return;
  }
  failed = ctx->protocol_error != NULL;
  g_mutex_unlock (&c->lock);
  if (failed)
    return;

  if (!cp_aws_event_decoder_feed (ctx->decoder, data, len, &error)) {
    set_protocol_error (c, ctx, error->message);
    cp_http2_stream_cancel (stream);
    return;
  }
  while ((msg = cp_aws_event_decoder_pop (ctx->decoder)) != NULL) {
    handle_event (c, ctx, msg);
    cp_aws_event_message_unref (msg);
  }
}

static void
on_closed (CpHttp2Stream *stream, const GError *error, gpointer user_data)
{
  StreamCtx *ctx = user_data;
  CpTranscribeClient *c = ctx->client;

  g_mutex_lock (&c->lock);
  ctx->closed = TRUE;
  if (error != NULL)
    ctx->close_error = g_error_copy (error);
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static const CpHttp2StreamCallbacks stream_callbacks = {
    on_response,
    on_data,
    on_closed,
};

/* ---- the worker ---- */

static void
add_header (CpAwsHttpRequest *req, CpHttpHeaders *headers, const gchar *name,
    const gchar *value)
{
  cp_aws_http_request_add_header (req, name, value);
  cp_http_headers_add (headers, name, value);
}

/* Signs the request and opens the stream. On failure @kind says whether
 * another attempt may help. */
static gboolean
sender_open (CpTranscribeClient *c, Sender *s, StreamCtx *ctx,
    CpAwsRetryKind *kind, GError **error)
{
  const CpTranscribeClientConfig *cfg = &c->config;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsHttpRequest) req = NULL;
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (CpHttpHeaders) headers = cp_http_headers_new ();
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree gchar *host = NULL;
  g_autofree gchar *path = NULL;
  const gchar *base_path;
  gsize base_len;
  gchar num[32];
  CpHttpOptions options = {0};
  CpAwsSigningParams params = {0};
  guint i;

  *kind = CP_AWS_RETRY_NONE;
  creds =
      cp_aws_credentials_provider_get (c->credentials, c->cancellable, &local);
  if (creds == NULL) {
    if (g_error_matches (local, CP_AWS_CREDENTIALS_ERROR,
            CP_AWS_CREDENTIALS_ERROR_UNREACHABLE))
      *kind = CP_AWS_RETRY_TRANSIENT;
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CREDENTIALS,
        "No AWS credentials: %s", local->message);
    return FALSE;
  }

  uri = g_uri_parse (cfg->endpoint, G_URI_FLAGS_NONE, NULL);
  host = cp_http2_authority_for_url (cfg->endpoint, NULL);
  base_path = g_uri_get_path (uri);
  base_len = strlen (base_path);
  while (base_len > 0 && base_path[base_len - 1] == '/')
    base_len--;
  path = g_strdup_printf ("%.*s%s", (int) base_len, base_path, STREAM_PATH);

  req = cp_aws_http_request_new ("POST", path);
  cp_aws_http_request_add_header (req, "host", host);
  add_header (req, headers, "content-type",
      "application/vnd.amazon.eventstream");
  add_header (req, headers, "x-amzn-transcribe-language-code",
      cfg->language_code);
  g_snprintf (num, sizeof (num), "%u", cfg->rate);
  add_header (req, headers, "x-amzn-transcribe-sample-rate", num);
  add_header (req, headers, "x-amzn-transcribe-media-encoding", "pcm");
  if (cfg->vocabulary_name != NULL)
    add_header (req, headers, "x-amzn-transcribe-vocabulary-name",
        cfg->vocabulary_name);
  if (cfg->session_id != NULL)
    add_header (req, headers, "x-amzn-transcribe-session-id", cfg->session_id);
  if (cfg->stability != CP_TRANSCRIBE_STABILITY_NONE) {
    add_header (req, headers,
        "x-amzn-transcribe-enable-partial-results-stabilization", "true");
    add_header (req, headers, "x-amzn-transcribe-partial-results-stability",
        stability_names[cfg->stability]);
  }
  if (cfg->channels > 1) {
    add_header (req, headers, "x-amzn-transcribe-enable-channel-identification",
        "true");
    g_snprintf (num, sizeof (num), "%u", cfg->channels);
    add_header (req, headers, "x-amzn-transcribe-number-of-channels", num);
  }
  cp_aws_http_request_set_payload_hash (req, CP_AWS_STREAMING_EVENTS);

  params.access_key_id = creds->access_key_id;
  params.secret_access_key = creds->secret_access_key;
  params.session_token = creds->session_token;
  params.region = cfg->region;
  params.service = SIGNING_SERVICE;
  params.time = g_get_real_time () / G_USEC_PER_SEC;
  res = cp_aws_sigv4_sign_headers (req, &params, &local);
  if (res == NULL) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CREDENTIALS,
        "Could not sign the request: %s", local->message);
    return FALSE;
  }
  for (i = 0; i < res->headers->len; i++) {
    const CpAwsHttpHeader *h = g_ptr_array_index (res->headers, i);

    cp_http_headers_add (headers, h->name, h->value);
  }

  s->signer = cp_aws_event_signer_new (creds->secret_access_key, cfg->region,
      SIGNING_SERVICE, res->signature, &local);
  if (s->signer == NULL) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CREDENTIALS,
        "Could not start the event signature chain: %s", local->message);
    return FALSE;
  }

  options.ca_file = cfg->ca_file;
  s->conn = cp_http2_connection_new (cfg->endpoint, &options, &local);
  if (s->conn == NULL) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONFIG,
        "Bad endpoint: %s", local->message);
    return FALSE;
  }
  s->ctx = ctx_ref (ctx);
  s->stream = cp_http2_connection_open_stream (s->conn, "POST", res->path,
      headers, &stream_callbacks, ctx_ref (ctx), ctx_unref);
  return TRUE;
}

/* Cancels and forgets the stream. Called without the lock. */
static void
sender_drop (CpTranscribeClient *c, Sender *s)
{
  if (s->stream != NULL) {
    cp_http2_stream_cancel (s->stream);
    cp_http2_stream_unref (s->stream);
  }
  if (s->conn != NULL) {
    cp_http2_connection_close (s->conn);
    cp_http2_connection_unref (s->conn);
  }
  cp_aws_event_signer_free (s->signer);
  if (s->ctx != NULL)
    ctx_unref (s->ctx);
  memset (s, 0, sizeof (*s));
}

static guint64
audio_end (CpTranscribeClient *c)
{
  return c->audio_start + c->audio->len / c->bpf;
}

/* Drops the audio that can no longer be resent, in large steps so that
 * the store is not moved for every chunk. Called with the lock. */
static void
trim_audio (CpTranscribeClient *c)
{
  guint64 keep = MAX (c->ack,
      c->send_pos > c->max_tail_frames ? c->send_pos - c->max_tail_frames : 0);
  guint64 drop;

  keep = MIN (keep, c->send_pos);
  if (keep <= c->audio_start)
    return;
  drop = keep - c->audio_start;
  if (drop * c->bpf < c->audio->len / 2 || drop < c->config.rate)
    return;
  g_byte_array_remove_range (c->audio, 0, drop * c->bpf);
  c->audio_start = keep;
}

/* Signs and queues one frame. Called without the lock. */
static gboolean
sender_write (CpTranscribeClient *c, Sender *s, GBytes *inner)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) frame = NULL;

  frame = cp_aws_event_signer_sign_message (s->signer, inner,
      g_get_real_time () / 1000, &error);
  if (frame == NULL)
    return FALSE;
  while (!cp_http2_stream_write_bytes (s->stream, frame, &error)) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      return FALSE;
    g_clear_error (&error);
    if (!cp_http2_stream_wait_writable (s->stream, -1, c->cancellable, NULL))
      return FALSE;
  }
  return TRUE;
}

/* Sends @frames of caller audio, or of silence. Called with the lock,
 * which it releases around the write. */
static void
send_audio (CpTranscribeClient *c, Sender *s, guint64 frames, gboolean silence)
{
  g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();
  g_autoptr (GBytes) audio = NULL;
  g_autoptr (GBytes) inner = NULL;
  gsize len = frames * c->bpf;

  if (silence) {
    SilenceSpan span = {s->ctx->service_frames, frames};

    g_array_append_val (s->ctx->silence, span);
    audio = g_bytes_new_take (g_malloc0 (len), len);
  } else {
    audio =
        g_bytes_new (c->audio->data + (c->send_pos - c->audio_start) * c->bpf,
            len);
    c->send_pos += frames;
    s->ctx->sent_end = c->send_pos;
  }
  s->ctx->service_frames += frames;
  c->last_send_us = g_get_monotonic_time ();
  g_cond_broadcast (&c->cond);
  trim_audio (c);
  g_mutex_unlock (&c->lock);

  cp_aws_event_message_set_string (msg, ":message-type", "event");
  cp_aws_event_message_set_string (msg, ":event-type", "AudioEvent");
  cp_aws_event_message_set_string (msg, ":content-type",
      "application/octet-stream");
  cp_aws_event_message_set_payload (msg, audio);
  inner = cp_aws_event_message_encode (msg, NULL);
  if (inner == NULL || !sender_write (c, s, inner))
    s->broken = TRUE;
  g_mutex_lock (&c->lock);
}

/* The signed empty frame, then END_STREAM. Called with the lock. */
static void
send_end (CpTranscribeClient *c, Sender *s, gboolean rollover)
{
  s->ending = TRUE;
  s->rollover = rollover;
  s->end_deadline = g_get_monotonic_time () + END_TIMEOUT_US;
  g_mutex_unlock (&c->lock);
  if (sender_write (c, s, NULL))
    cp_http2_stream_end (s->stream);
  else
    s->broken = TRUE;
  g_mutex_lock (&c->lock);
}

typedef enum
{
  OUTCOME_CLEAN, /* ended as asked */
  OUTCOME_RETRY, /* dropped: a new stream may go on */
  OUTCOME_FATAL,
} Outcome;

/* Why a stream is over. Called with the lock. */
static Outcome
stream_outcome (CpTranscribeClient *c, Sender *s, CpAwsRetryKind *kind,
    GError **error)
{
  StreamCtx *ctx = s->ctx;

  *kind = CP_AWS_RETRY_TRANSIENT;
  if (ctx->protocol_error != NULL) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_PROTOCOL,
        "Malformed response stream: %s", ctx->protocol_error);
    return OUTCOME_FATAL;
  }
  if (ctx->exception != NULL) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_SERVICE, "%s",
        ctx->exception);
    return ctx->exception_retryable ? OUTCOME_RETRY : OUTCOME_FATAL;
  }
  if (ctx->status != 0 && ctx->status != 200) {
    g_autoptr (GBytes) body =
        g_bytes_new (ctx->error_body->data, ctx->error_body->len);
    g_autofree gchar *message = json_message (body);

    *kind = cp_aws_retry_classify_response (ctx->status, ctx->error_type);
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_SERVICE,
        "%s (HTTP %u): %s", ctx->error_type ? ctx->error_type : "HttpError",
        ctx->status, message);
    return *kind == CP_AWS_RETRY_NONE ? OUTCOME_FATAL : OUTCOME_RETRY;
  }
  if (ctx->close_error != NULL) {
    if (g_error_matches (ctx->close_error, CP_HTTP_ERROR, CP_HTTP_ERROR_TLS)
        || g_error_matches (ctx->close_error, CP_HTTP_ERROR,
            CP_HTTP_ERROR_INVALID_URL)) {
      g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONFIG, "%s",
          ctx->close_error->message);
      return OUTCOME_FATAL;
    }
    if (g_error_matches (ctx->close_error, CP_HTTP_ERROR,
            CP_HTTP_ERROR_TIMEOUT))
      *kind = CP_AWS_RETRY_TIMEOUT;
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONNECTION,
        "%s", ctx->close_error->message);
    return OUTCOME_RETRY;
  }
  if (s->ending)
    return OUTCOME_CLEAN;
  g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONNECTION,
      "The service ended the stream early");
  return OUTCOME_RETRY;
}

static void
fail (CpTranscribeClient *c, GError *error)
{
  if (c->error == NULL)
    c->error = error;
  else
    g_error_free (error);
  g_cond_broadcast (&c->cond);
}

/* Waits with the lock until @deadline (monotonic µs, -1 none) or a
 * signal. */
static void
wait_until (CpTranscribeClient *c, gint64 deadline)
{
  if (deadline < 0)
    g_cond_wait (&c->cond, &c->lock);
  else
    g_cond_wait_until (&c->cond, &c->lock, deadline);
}

static gpointer
worker (gpointer data)
{
  CpTranscribeClient *c = data;
  Sender s = {0};
  CpAwsRetryToken token;
  CpTranscribeStreamEvent next_event = CP_TRANSCRIBE_STREAM_STARTED;
  gint64 retry_at = 0;

  cp_aws_retry_token_init (&token);
  g_mutex_lock (&c->lock);
  while (!c->stopping && c->error == NULL) {
    guint64 avail;
    gint64 now = g_get_monotonic_time ();

    if (s.ctx == NULL) {
      StreamCtx *ctx;
      CpAwsRetryKind kind;
      GError *error = NULL;
      gboolean ok;

      if (now < retry_at) {
        wait_until (c, retry_at);
        continue;
      }
      if (c->finishing && c->send_pos == audio_end (c) && c->ack >= c->send_pos
          && c->n_streams > 0) {
        c->finished = TRUE;
        g_cond_broadcast (&c->cond);
        break;
      }
      ctx = g_new0 (StreamCtx, 1);
      g_atomic_ref_count_init (&ctx->ref);
      ctx->client = client_ref (c);
      ctx->index = c->n_streams++;
      ctx->event = next_event;
      ctx->base = c->send_pos;
      ctx->silence = g_array_new (FALSE, FALSE, sizeof (SilenceSpan));
      ctx->error_body = g_byte_array_new ();
      ctx->decoder = cp_aws_event_decoder_new ();
      c->last_send_us = now;
      g_mutex_unlock (&c->lock);
      ok = sender_open (c, &s, ctx, &kind, &error);
      ctx_unref (ctx);
      if (!ok)
        sender_drop (c, &s);
      g_mutex_lock (&c->lock);
      if (!ok) {
        gint64 delay;

        if (!cp_aws_retry_strategy_should_retry (c->retry, &token, kind,
                &delay)) {
          fail (c, error);
          break;
        }
        g_error_free (error);
        retry_at = g_get_monotonic_time () + delay;
      }
      continue;
    }

    if (s.ctx->closed || s.ctx->exception != NULL
        || s.ctx->protocol_error != NULL
        || (s.ending && now >= s.end_deadline)) {
      CpAwsRetryKind kind;
      GError *error = NULL;
      gboolean timed_out = !s.ctx->closed && s.ctx->exception == NULL
          && s.ctx->protocol_error == NULL;
      Outcome outcome =
          timed_out ? OUTCOME_RETRY : stream_outcome (c, &s, &kind, &error);
      gboolean responded = s.ctx->status == 200;
      gboolean rollover = s.rollover;
      gint64 delay = 0;

      if (timed_out) {
        kind = CP_AWS_RETRY_TIMEOUT;
        error = g_error_new (CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_TIMEOUT,
            "The stream did not end in time after its last audio");
      }
      if (outcome == OUTCOME_CLEAN) {
        /* Every result of the ended stream is in: all it carried is
         * final. */
        c->ack = MAX (c->ack, s.ctx->sent_end);
        trim_audio (c);
        next_event = rollover ? CP_TRANSCRIBE_STREAM_ROLLED_OVER
                              : CP_TRANSCRIBE_STREAM_RECONNECTED;
      } else if (outcome == OUTCOME_RETRY && responded) {
        /* A stream that worked dropped: go on at once, from the audio
         * that has no final result yet. */
        cp_aws_retry_strategy_record_success (c->retry, &token);
        cp_aws_retry_token_init (&token);
        next_event = CP_TRANSCRIBE_STREAM_RECONNECTED;
      } else if (outcome == OUTCOME_RETRY
          && cp_aws_retry_strategy_should_retry (c->retry, &token, kind,
              &delay)) {
        next_event = CP_TRANSCRIBE_STREAM_RECONNECTED;
      } else {
        if (outcome == OUTCOME_RETRY) {
          GError *gave_up = g_error_new (CP_TRANSCRIBE_ERROR,
              error->domain == CP_TRANSCRIBE_ERROR
                  ? error->code
                  : CP_TRANSCRIBE_ERROR_CONNECTION,
              "Gave up after %u attempts: %s", token.attempts, error->message);

          g_error_free (error);
          error = gave_up;
        }
        fail (c, error);
        error = NULL;
        break;
      }
      g_clear_error (&error);
      if (outcome != OUTCOME_CLEAN)
        c->send_pos = MAX (c->ack, c->audio_start);
      retry_at = g_get_monotonic_time () + delay;
      g_mutex_unlock (&c->lock);
      sender_drop (c, &s);
      g_mutex_lock (&c->lock);
      continue;
    }

    if (s.ending || s.broken) {
      wait_until (c, s.ending ? s.end_deadline : -1);
      continue;
    }

    avail = audio_end (c) - c->send_pos;
    if (s.ctx->service_frames + MIN (MAX (avail, 1), c->chunk_frames)
        > c->max_stream_frames) {
      guint64 resend_from = MAX (c->ack, c->audio_start);
      gboolean short_tail =
          (c->send_pos - resend_from) * 4 <= c->max_stream_frames * 3;

      if (s.roll_deadline == 0)
        s.roll_deadline = now + ROLL_WAIT_US;
      if (!short_tail && now < s.roll_deadline) {
        /* The results of what was sent may still be on their way. */
        wait_until (c, s.roll_deadline);
      } else if (short_tail) {
        /* Roll as after a drop: the next stream starts with the audio
         * that has no final result yet, so no word is cut in two. */
        c->send_pos = resend_from;
        next_event = CP_TRANSCRIBE_STREAM_ROLLED_OVER;
        retry_at = 0;
        g_mutex_unlock (&c->lock);
        sender_drop (c, &s);
        g_mutex_lock (&c->lock);
      } else {
        /* A long stretch without a final result: end the stream so the
         * service finalizes it, then go on after it. */
        send_end (c, &s, TRUE);
      }
    } else if (avail >= c->chunk_frames || (c->finishing && avail > 0)) {
      send_audio (c, &s, MIN (avail, c->chunk_frames), FALSE);
    } else if (c->finishing) {
      send_end (c, &s, FALSE);
    } else if (c->config.keepalive_ms > 0
        && now >= c->last_send_us + (gint64) c->config.keepalive_ms * 1000) {
      /* Audio that waits for a whole chunk goes first: silence never
       * lands inside the caller's audio. */
      if (avail > 0)
        send_audio (c, &s, avail, FALSE);
      else
        send_audio (c, &s, c->chunk_frames, TRUE);
    } else {
      wait_until (c,
          c->config.keepalive_ms > 0
              ? c->last_send_us + (gint64) c->config.keepalive_ms * 1000
              : -1);
    }
  }
  g_mutex_unlock (&c->lock);
  sender_drop (c, &s);
  return NULL;
}

/* ---- public ---- */

static gboolean
config_ok (const CpTranscribeClientConfig *cfg, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  const gchar *scheme;

  if (cfg->rate < 8000 || cfg->rate > 48000 || cfg->channels < 1
      || cfg->channels > CP_TRANSCRIPT_MAX_CHANNELS) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONFIG,
        "Transcribe takes 8000-48000 Hz, 1 or 2 channels, not %u Hz, %u "
        "channels",
        cfg->rate, cfg->channels);
    return FALSE;
  }
  if (cfg->chunk_ms < 50 || cfg->chunk_ms > 200
      || cfg->max_stream_ms < 2 * (guint64) cfg->chunk_ms) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONFIG,
        "Chunks must be 50-200 ms and a stream at least two chunks long");
    return FALSE;
  }
  if (cfg->language_code == NULL || cfg->region == NULL
      || cfg->endpoint == NULL) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONFIG,
        "A language code, a region and an endpoint are required");
    return FALSE;
  }
  uri = g_uri_parse (cfg->endpoint, G_URI_FLAGS_NONE, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || g_uri_get_host (uri) == NULL
      || (g_ascii_strcasecmp (scheme, "https") != 0
          && g_ascii_strcasecmp (scheme, "http") != 0)) {
    g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_CONFIG,
        "Endpoint \"%s\" is not an http:// or https:// URL", cfg->endpoint);
    return FALSE;
  }
  return TRUE;
}

CpTranscribeClient *
cp_transcribe_client_new (const CpTranscribeClientConfig *config,
    CpAwsCredentialsProvider *credentials,
    const CpTranscribeClientCallbacks *callbacks, gpointer user_data,
    GError **error)
{
  CpTranscribeClient *c;

  if (!config_ok (config, error)) {
    cp_aws_credentials_provider_free (credentials);
    return NULL;
  }
  c = g_new0 (CpTranscribeClient, 1);
  g_atomic_ref_count_init (&c->ref);
  c->config = *config;
  c->config.endpoint = g_strdup (config->endpoint);
  c->config.region = g_strdup (config->region);
  c->config.language_code = g_strdup (config->language_code);
  c->config.vocabulary_name = g_strdup (config->vocabulary_name);
  c->config.session_id = g_strdup (config->session_id);
  c->config.ca_file = g_strdup (config->ca_file);
  c->bpf = 2 * config->channels;
  c->chunk_frames = (guint64) config->rate * config->chunk_ms / 1000;
  c->max_stream_frames = config->max_stream_ms * config->rate / 1000;
  c->max_tail_frames = (guint64) config->max_tail_ms * config->rate / 1000;
  c->credentials = credentials;
  c->retry = cp_aws_retry_strategy_new (config->max_attempts);
  if (callbacks != NULL)
    c->callbacks = *callbacks;
  c->user_data = user_data;
  c->cancellable = g_cancellable_new ();
  c->audio = g_byte_array_new ();
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  return c;
}

void
cp_transcribe_client_start (CpTranscribeClient *client)
{
  g_return_if_fail (client->thread == NULL);
  client->thread = g_thread_new ("transcribe", worker, client);
}

gboolean
cp_transcribe_client_push (CpTranscribeClient *client, const guint8 *data,
    gsize len)
{
  CpTranscribeClient *c = client;
  guint64 max_queued = (guint64) MAX_QUEUED_MS * c->config.rate / 1000;
  gboolean ok;

  g_mutex_lock (&c->lock);
  while (!c->unlocked && c->error == NULL && !c->finishing && !c->stopping
      && audio_end (c) - c->send_pos > max_queued)
    g_cond_wait (&c->cond, &c->lock);
  ok = !c->unlocked && c->error == NULL && !c->finishing;
  if (ok) {
    g_byte_array_append (c->audio, data, len);
    g_cond_broadcast (&c->cond);
  }
  g_mutex_unlock (&c->lock);
  return ok;
}

gboolean
cp_transcribe_client_finish (CpTranscribeClient *client, gint64 timeout_us,
    GError **error)
{
  CpTranscribeClient *c = client;
  gint64 deadline = g_get_monotonic_time () + timeout_us;
  gboolean ok = TRUE;

  g_mutex_lock (&c->lock);
  c->finishing = TRUE;
  g_cond_broadcast (&c->cond);
  while (!c->finished && c->error == NULL && !c->unlocked) {
    if (!g_cond_wait_until (&c->cond, &c->lock, deadline)) {
      g_set_error (error, CP_TRANSCRIBE_ERROR, CP_TRANSCRIBE_ERROR_TIMEOUT,
          "The last results did not arrive within %" G_GINT64_FORMAT " s",
          timeout_us / G_USEC_PER_SEC);
      ok = FALSE;
      break;
    }
  }
  if (ok && c->error != NULL) {
    g_propagate_error (error, g_error_copy (c->error));
    ok = FALSE;
  } else if (ok && !c->finished) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Flushing");
    ok = FALSE;
  }
  g_mutex_unlock (&c->lock);
  return ok;
}

void
cp_transcribe_client_unlock (CpTranscribeClient *client)
{
  g_mutex_lock (&client->lock);
  client->unlocked = TRUE;
  g_cond_broadcast (&client->cond);
  g_mutex_unlock (&client->lock);
}

void
cp_transcribe_client_unlock_stop (CpTranscribeClient *client)
{
  g_mutex_lock (&client->lock);
  client->unlocked = FALSE;
  g_mutex_unlock (&client->lock);
}

GError *
cp_transcribe_client_dup_error (CpTranscribeClient *client)
{
  GError *error;

  g_mutex_lock (&client->lock);
  error = client->error ? g_error_copy (client->error) : NULL;
  g_mutex_unlock (&client->lock);
  return error;
}

void
cp_transcribe_client_free (CpTranscribeClient *client)
{
  if (client == NULL)
    return;
  g_mutex_lock (&client->lock);
  client->stopping = TRUE;
  g_cond_broadcast (&client->cond);
  g_mutex_unlock (&client->lock);
  g_cancellable_cancel (client->cancellable);
  if (client->thread != NULL)
    g_thread_join (client->thread);
  g_mutex_lock (&client->lock);
  while (client->callback_depth > 0)
    g_cond_wait (&client->cond, &client->lock);
  g_mutex_unlock (&client->lock);
  client_unref (client);
}

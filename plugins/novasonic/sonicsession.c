/* callpipe — one Nova Sonic bidirectional stream */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "sonicsession.h"

#include "aws/eventsigner.h"

#include <string.h>

/* An error answer is a small JSON document; keep no more of it. */
#define MAX_ERROR_BODY 4096
/* How long a send waits for the HTTP/2 queue to drain. */
#define WRITE_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* A new batch starts with room for what the last one took, up to this:
 * the replay of a renewal is a one-off. */
#define MAX_BATCH_HINT (16 * 1024)

struct _SonicSession
{
  gint refcount;

  CpHttp2Connection *connection;

  /* sending side: one thread at a time */
  CpHttp2Stream *stream;
  CpAwsEventSigner *signer;
  gchar *prompt_name;
  gchar *audio_content; /* NULL until the audio contentStart */
  /* Events signed and not yet written: each send writes its events in
   * one piece, so that one wakeup of the I/O thread carries them all. */
  GByteArray *batch;
  gsize batch_hint;
  GString *json; /* the audio events' JSON, reused */

  GMutex callback_lock; /* held while a callback runs */
  SonicSessionCallbacks callbacks;
  gpointer user_data; /* NULL once detached */

  /* receiving side: I/O thread only */
  CpAwsEventDecoder *decoder;
  GString *error_body;

  GMutex lock; /* protects what follows */
  guint status;
  gchar *error_type;
  GError *error; /* a decode failure, reported on close */
};

SonicSession *
sonic_session_ref (SonicSession *session)
{
  g_atomic_int_inc (&session->refcount);
  return session;
}

void
sonic_session_unref (SonicSession *session)
{
  if (session == NULL || !g_atomic_int_dec_and_test (&session->refcount))
    return;
  g_clear_pointer (&session->stream, cp_http2_stream_unref);
  if (session->connection) {
    cp_http2_connection_close (session->connection);
    cp_http2_connection_unref (session->connection);
  }
  g_clear_pointer (&session->signer, cp_aws_event_signer_free);
  g_free (session->prompt_name);
  g_free (session->audio_content);
  g_byte_array_unref (session->batch);
  g_string_free (session->json, TRUE);
  g_clear_pointer (&session->decoder, cp_aws_event_decoder_free);
  g_string_free (session->error_body, TRUE);
  g_free (session->error_type);
  g_clear_error (&session->error);
  g_mutex_clear (&session->lock);
  g_mutex_clear (&session->callback_lock);
  g_free (session);
}

static void
fail_stream (SonicSession *session, CpHttp2Stream *stream, GError *error)
{
  g_mutex_lock (&session->lock);
  if (session->error == NULL)
    session->error = error;
  else
    g_error_free (error);
  g_mutex_unlock (&session->lock);
  cp_http2_stream_cancel (stream);
}

static void
on_response (CpHttp2Stream *stream, guint status, CpHttpHeaders *headers,
    gpointer user_data)
{
  SonicSession *session = user_data;

  g_mutex_lock (&session->lock);
  session->status = status;
  session->error_type =
      g_strdup (cp_http_headers_get (headers, "x-amzn-errortype"));
  g_mutex_unlock (&session->lock);
}

static void
on_data (CpHttp2Stream *stream, const guint8 *data, gsize len,
    gpointer user_data)
{
  SonicSession *session = user_data;
  GError *error = NULL;
  CpAwsEventMessage *msg;

  if (sonic_session_get_status (session) != 200) {
    gsize room =
        MAX_ERROR_BODY - MIN (session->error_body->len, MAX_ERROR_BODY);

    g_string_append_len (session->error_body, (const gchar *) data,
        MIN (len, room));
    return;
  }
  if (!cp_aws_event_decoder_feed (session->decoder, data, len, &error)) {
    g_prefix_error (&error, "undecodable response stream: ");
    fail_stream (session, stream, error);
    return;
  }
  while ((msg = cp_aws_event_decoder_pop (session->decoder)) != NULL) {
    SonicOutputEvent *ev = sonic_output_event_parse (msg, &error);

    cp_aws_event_message_unref (msg);
    if (ev == NULL) {
      fail_stream (session, stream, error);
      return;
    }
    g_mutex_lock (&session->callback_lock);
    if (session->user_data)
      session->callbacks.event (session, ev, session->user_data);
    g_mutex_unlock (&session->callback_lock);
    sonic_output_event_free (ev);
  }
}

static GError *
http_error (SonicSession *session)
{
  g_autofree gchar *body =
      g_strndup (session->error_body->str, session->error_body->len);

  g_strstrip (body);
  return g_error_new (SONIC_ERROR, SONIC_ERROR_HTTP,
      "InvokeModelWithBidirectionalStream answered HTTP %u%s%s%s%s",
      session->status, session->error_type ? " " : "",
      session->error_type ? session->error_type : "", body[0] ? ": " : "",
      body);
}

static void
on_closed (CpHttp2Stream *stream, const GError *error, gpointer user_data)
{
  SonicSession *session = user_data;
  g_autoptr (GError) reported = NULL;

  g_mutex_lock (&session->lock);
  if (session->error)
    reported = g_error_copy (session->error);
  else if (session->status != 0 && session->status != 200)
    reported = http_error (session);
  else if (error)
    reported = g_error_copy (error);
  g_mutex_unlock (&session->lock);
  if (reported == NULL && session->decoder
      && !cp_aws_event_decoder_finish (session->decoder, &reported))
    g_prefix_error (&reported, "response stream cut: ");
  g_mutex_lock (&session->callback_lock);
  if (session->user_data)
    session->callbacks.closed (session, reported, session->user_data);
  g_mutex_unlock (&session->callback_lock);
}

static const CpHttp2StreamCallbacks stream_callbacks = {on_response, on_data,
    on_closed};

static gboolean
write_frame (SonicSession *session, GBytes *frame, GError **error)
{
  GError *local = NULL;

  while (!cp_http2_stream_write_bytes (session->stream, frame, &local)) {
    if (!g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
      g_propagate_error (error, local);
      return FALSE;
    }
    g_clear_error (&local);
    if (!cp_http2_stream_wait_writable (session->stream, WRITE_TIMEOUT_US, NULL,
            error))
      return FALSE;
  }
  return TRUE;
}

static gint64
now_ms (void)
{
  return g_get_real_time () / 1000;
}

/* Signs the chunk message of @json (taken) onto the batch. */
static gboolean
add_event (SonicSession *session, gchar *json, GError **error)
{
  g_autofree gchar *owned = json;
  g_autoptr (CpAwsEventMessage) inner = sonic_wrap_event (owned);
  gsize start = cp_aws_event_signer_begin_frame (session->batch);

  if (!cp_aws_event_message_append_encoded (inner, session->batch, error)) {
    g_byte_array_set_size (session->batch, start);
    return FALSE;
  }
  return cp_aws_event_signer_end_frame (session->signer, session->batch, start,
      now_ms (), error);
}

/* Signs the audioInput event of @pcm onto the batch. */
static gboolean
add_audio (SonicSession *session, const guint8 *pcm, gsize len, GError **error)
{
  gsize start = cp_aws_event_signer_begin_frame (session->batch);

  if (!sonic_append_audio_chunk (session->batch, session->json,
          session->prompt_name, session->audio_content, pcm, len, error)) {
    g_byte_array_set_size (session->batch, start);
    return FALSE;
  }
  return cp_aws_event_signer_end_frame (session->signer, session->batch, start,
      now_ms (), error);
}

/* Writes the batch in one piece. What was signed is written even when a
 * later event failed: the chain has moved past it. */
static gboolean
flush_batch (SonicSession *session, GError **error)
{
  g_autoptr (GBytes) bytes = NULL;

  if (session->batch->len == 0)
    return TRUE;
  session->batch_hint = MIN (session->batch->len, MAX_BATCH_HINT);
  bytes = g_byte_array_free_to_bytes (session->batch);
  session->batch = g_byte_array_sized_new (session->batch_hint);
  return write_frame (session, bytes, error);
}

static gboolean
send_events (SonicSession *session, gboolean ok, GError **error)
{
  if (!ok) {
    flush_batch (session, NULL);
    return FALSE;
  }
  return flush_batch (session, error);
}

static gboolean
send_event (SonicSession *session, gchar *json, GError **error)
{
  return send_events (session, add_event (session, json, error), error);
}

static gboolean
add_text_block (SonicSession *session, SonicRole role, const gchar *text,
    GError **error)
{
  g_autofree gchar *content = g_uuid_string_random ();

  return add_event (session,
             sonic_event_text_content_start (session->prompt_name, content,
                 role, FALSE),
             error)
      && add_event (session,
          sonic_event_text_input (session->prompt_name, content, text), error)
      && add_event (session,
          sonic_event_content_end (session->prompt_name, content), error);
}

SonicSession *
sonic_session_open (const gchar *url, const CpHttpOptions *options,
    const gchar *region, const CpAwsCredentials *credentials,
    const SonicConfig *config, gint64 time,
    const SonicSessionCallbacks *callbacks, gpointer user_data, GError **error)
{
  g_autoptr (CpAwsSigV4Result) signed_req = NULL;
  g_autoptr (CpHttpHeaders) headers = NULL;
  g_autoptr (SonicSession) session = NULL;
  g_autofree gchar *system_text = NULL;
  g_autofree gchar *authority = NULL;
  CpHttp2Connection *connection;
  guint i;

  authority = cp_http2_authority_for_url (url, error);
  if (authority == NULL)
    return NULL;
  signed_req = sonic_sign_request (authority, config->model_id, region,
      credentials->access_key_id, credentials->secret_access_key,
      credentials->session_token, time, error);
  if (signed_req == NULL)
    return NULL;

  session = g_new0 (SonicSession, 1);
  session->refcount = 1;
  g_mutex_init (&session->lock);
  g_mutex_init (&session->callback_lock);
  session->callbacks = *callbacks;
  session->user_data = user_data;
  session->decoder = cp_aws_event_decoder_new ();
  session->error_body = g_string_new (NULL);
  session->prompt_name = g_uuid_string_random ();
  session->batch = g_byte_array_new ();
  session->json = g_string_new (NULL);
  session->signer = cp_aws_event_signer_new (credentials->secret_access_key,
      region, SONIC_SIGNING_SERVICE, signed_req->signature, error);
  if (session->signer == NULL)
    return NULL;
  connection = cp_http2_connection_new (url, options, error);
  if (connection == NULL)
    return NULL;
  session->connection = connection;

  headers = cp_http_headers_new ();
  cp_http_headers_add (headers, "content-type", SONIC_CONTENT_TYPE);
  for (i = 0; i < signed_req->headers->len; i++) {
    CpAwsHttpHeader *h = g_ptr_array_index (signed_req->headers, i);

    cp_http_headers_add (headers, h->name, h->value);
  }
  session->stream = cp_http2_connection_open_stream (connection, "POST",
      signed_req->path, headers, &stream_callbacks, sonic_session_ref (session),
      (GDestroyNotify) sonic_session_unref);

  system_text = sonic_config_system_text (config);
  if (!send_events (session,
          add_event (session, sonic_event_session_start (config), error)
              && add_event (session,
                  sonic_event_prompt_start (config, session->prompt_name),
                  error)
              && add_text_block (session, SONIC_ROLE_SYSTEM, system_text,
                  error),
          error)) {
    sonic_session_detach (session);
    cp_http2_stream_cancel (session->stream);
    return NULL;
  }
  return g_steal_pointer (&session);
}

gboolean
sonic_session_send_history (SonicSession *session, GPtrArray *entries,
    GError **error)
{
  gboolean ok = TRUE;
  guint i;

  for (i = 0; ok && i < entries->len; i++) {
    SonicHistoryEntry *e = g_ptr_array_index (entries, i);

    ok = add_text_block (session, e->role, e->text, error);
  }
  return send_events (session, ok, error);
}

gboolean
sonic_session_start_audio (SonicSession *session, gint rate, GError **error)
{
  g_return_val_if_fail (session->audio_content == NULL, FALSE);
  session->audio_content = g_uuid_string_random ();
  return send_event (session,
      sonic_event_audio_content_start (session->prompt_name,
          session->audio_content, rate),
      error);
}

gboolean
sonic_session_send_audio (SonicSession *session, const guint8 *pcm, gsize len,
    GError **error)
{
  return sonic_session_send_audio_frames (session, pcm, len, len, error);
}

gboolean
sonic_session_send_audio_frames (SonicSession *session, const guint8 *pcm,
    gsize len, gsize frame_bytes, GError **error)
{
  gboolean ok = TRUE;
  gsize off;

  g_return_val_if_fail (session->audio_content != NULL, FALSE);
  g_return_val_if_fail (frame_bytes > 0 || len == 0, FALSE);
  for (off = 0; ok && off < len; off += frame_bytes)
    ok = add_audio (session, pcm + off, MIN (frame_bytes, len - off), error);
  return send_events (session, ok, error);
}

gboolean
sonic_session_send_tool_result (SonicSession *session, const gchar *tool_use_id,
    const gchar *json, GError **error)
{
  g_autofree gchar *content = g_uuid_string_random ();

  return send_events (session,
      add_event (session,
          sonic_event_tool_content_start (session->prompt_name, content,
              tool_use_id),
          error)
          && add_event (session,
              sonic_event_tool_result (session->prompt_name, content, json),
              error)
          && add_event (session,
              sonic_event_content_end (session->prompt_name, content), error),
      error);
}

/* The audio contentEnd, promptEnd, sessionEnd and the empty frame go in
 * one write. */
gboolean
sonic_session_finish (SonicSession *session, GError **error)
{
  gboolean ok = TRUE;
  gsize start;

  if (session->audio_content)
    ok = add_event (session,
        sonic_event_content_end (session->prompt_name, session->audio_content),
        error);
  ok = ok
      && add_event (session, sonic_event_prompt_end (session->prompt_name),
          error)
      && add_event (session, sonic_event_session_end (), error);
  if (ok) {
    start = cp_aws_event_signer_begin_frame (session->batch);
    ok = cp_aws_event_signer_end_frame (session->signer, session->batch, start,
        now_ms (), error);
  }
  if (!send_events (session, ok, error))
    return FALSE;
  cp_http2_stream_end (session->stream);
  return TRUE;
}

void
sonic_session_detach (SonicSession *session)
{
  g_mutex_lock (&session->callback_lock);
  session->user_data = NULL;
  g_mutex_unlock (&session->callback_lock);
}

void
sonic_session_cancel (SonicSession *session)
{
  cp_http2_stream_cancel (session->stream);
}

gboolean
sonic_session_audio_started (SonicSession *session)
{
  return session->audio_content != NULL;
}

guint
sonic_session_get_status (SonicSession *session)
{
  guint status;

  g_mutex_lock (&session->lock);
  status = session->status;
  g_mutex_unlock (&session->lock);
  return status;
}

const gchar *
sonic_session_get_error_type (SonicSession *session)
{
  const gchar *type;

  g_mutex_lock (&session->lock);
  type = session->error_type;
  g_mutex_unlock (&session->lock);
  return type;
}

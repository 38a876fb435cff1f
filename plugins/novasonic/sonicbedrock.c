/* callpipe — the Amazon Bedrock (Nova Sonic) backend
 *
 * Threads: one sender thread owns the outgoing side of every session
 * (connect, sign, write, renew, reconnect, pace silence); the sessions'
 * I/O threads deliver output events to on_event()/on_closed(), which
 * update the shared state under `lock` and call the listener after
 * unlocking. Lock order: only `lock`; never held while calling a
 * session send function or the listener.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "sonicbedrock.h"

#include "aws/credentials.h"
#include "aws/retry.h"
#include "http/cphttp2.h"
#include "sonicsession.h"

#include <string.h>

/* ~32 ms frames, as the service documents. */
#define FRAME_MS 32
/* Silence starts once the caller's audio has stopped for this long. */
#define SILENCE_AFTER_US (100 * G_TIME_SPAN_MILLISECOND)
/* After the input ends, the conversation is over once the model has been
 * quiet this long with nothing in progress (longer than the 2 s pause of
 * the LOW endpointing sensitivity). */
#define QUIET_US (2500 * G_TIME_SPAN_MILLISECOND)
/* A next session waits at most this long for a turn boundary. */
#define SWITCH_WAIT_US (20 * G_USEC_PER_SEC)
/* How long the end of the conversation waits for the service to close. */
#define CLOSE_WAIT_US (5 * G_USEC_PER_SEC)
#define CONNECT_TIMEOUT_MS 10000

typedef struct
{
  gchar *id;
  gchar *json;
} ToolResult;

typedef struct
{
  SonicBackend parent;

  /* immutable after new() */
  SonicBedrockSettings settings;
  CpAwsCredentialsProvider *credentials;
  CpAwsRetryStrategy *retry;
  gint input_rate;
  gsize frame_bytes;

  GMutex lock;
  GCond cond;
  /* protected by lock */
  GByteArray *input; /* caller audio not sent yet */
  GQueue tool_results; /* of ToolResult */
  gboolean input_ended;
  gboolean stopping;
  gint64 last_input_us;
  gint64 last_output_us;
  SonicSession *current;
  SonicSession *next;
  gboolean current_failed;
  GError *failure; /* why current failed */
  gboolean next_failed;
  GPtrArray *closing; /* finished sessions the service may still
                                 * answer on */
  GHashTable *contents; /* current's contentId -> ContentInfo */
  gboolean reply_audio_open; /* an ASSISTANT AUDIO content is open */
  gboolean awaiting_reply; /* the caller spoke, the turn is not over */
  guint tools_pending;
  gboolean drop_audio; /* after a barge-in, until new audio */
  SonicHistory *history;

  GThread *thread;

  /* sender thread only */
  GByteArray *ring; /* the last SONIC_REPLAY_SECONDS sent */
  gint64 session_start_us;
  gint64 next_open_us;
  gint64 next_retry_us;
  gint64 next_frame_us;
  gboolean announced;
  CpAwsRetryToken retry_token;
} SonicBedrock;

typedef struct
{
  SonicContentType type;
  SonicRole role;
  SonicStage stage;
} ContentInfo;

static void
tool_result_free (ToolResult *r)
{
  g_free (r->id);
  g_free (r->json);
  g_free (r);
}

void
sonic_bedrock_settings_clear (SonicBedrockSettings *settings)
{
  g_clear_pointer (&settings->config, sonic_config_free);
  g_clear_pointer (&settings->endpoint, g_free);
  g_clear_pointer (&settings->region, g_free);
  g_clear_pointer (&settings->access_key, g_free);
  g_clear_pointer (&settings->secret_key, g_free);
  g_clear_pointer (&settings->session_token, g_free);
}

/* ---- output events (I/O threads) ---- */

typedef struct
{
  gboolean barge_in;
  gboolean reply_end;
  gboolean user_speech;
  GError *fatal;
} Actions;

static void
handle_content_end (SonicBedrock *self, const SonicOutputEvent *ev,
    Actions *act)
{
  ContentInfo *info = ev->content_id
      ? g_hash_table_lookup (self->contents, ev->content_id)
      : NULL;
  SonicContentType type = info ? info->type : ev->type;
  gboolean interrupted = g_strcmp0 (ev->stop_reason, "INTERRUPTED") == 0;

  if (interrupted && !self->drop_audio) {
    act->barge_in = TRUE;
    self->drop_audio = TRUE;
    self->awaiting_reply = FALSE;
  }
  if (type == SONIC_CONTENT_AUDIO) {
    self->reply_audio_open = FALSE;
    if (interrupted || g_strcmp0 (ev->stop_reason, "END_TURN") == 0) {
      self->awaiting_reply = FALSE;
      act->reply_end = TRUE;
    }
  }
  if (ev->content_id)
    g_hash_table_remove (self->contents, ev->content_id);
}

static void
handle_text (SonicBedrock *self, const SonicOutputEvent *ev, Actions *act,
    SonicStage *stage)
{
  ContentInfo *info = ev->content_id
      ? g_hash_table_lookup (self->contents, ev->content_id)
      : NULL;
  SonicRole role = ev->role != SONIC_ROLE_UNKNOWN ? ev->role
      : info                                      ? info->role
                                                  : SONIC_ROLE_UNKNOWN;

  *stage = info ? info->stage : SONIC_STAGE_NONE;
  if (ev->interrupted) {
    if (!self->drop_audio)
      act->barge_in = TRUE;
    self->drop_audio = TRUE;
    self->awaiting_reply = FALSE;
    return;
  }
  if (role == SONIC_ROLE_USER)
    self->awaiting_reply = TRUE;
  if (*stage == SONIC_STAGE_FINAL
      || (role == SONIC_ROLE_USER && *stage == SONIC_STAGE_NONE))
    sonic_history_add (self->history, role, ev->text);
}

static void
on_event (SonicSession *session, const SonicOutputEvent *ev, gpointer user_data)
{
  SonicBedrock *self = user_data;
  const SonicBackendListener *l = &self->parent.listener;
  gpointer ud = self->parent.user_data;
  Actions act = {
      0,
  };
  SonicStage stage = SONIC_STAGE_NONE;
  gboolean deliver = FALSE;
  gboolean retryable;

  g_mutex_lock (&self->lock);
  if (session != self->current || self->stopping) {
    if (session == self->next && ev->kind == SONIC_OUT_EXCEPTION)
      self->next_failed = TRUE;
    g_mutex_unlock (&self->lock);
    return;
  }
  self->last_output_us = g_get_monotonic_time ();
  switch (ev->kind) {
    case SONIC_OUT_CONTENT_START: {
      ContentInfo *info = g_new0 (ContentInfo, 1);

      info->type = ev->type;
      info->role = ev->role;
      info->stage = ev->stage;
      g_hash_table_replace (self->contents, g_strdup (ev->content_id), info);
      if (ev->type == SONIC_CONTENT_AUDIO && ev->role == SONIC_ROLE_ASSISTANT) {
        self->reply_audio_open = TRUE;
        self->drop_audio = FALSE;
      }
      break;
    }
    case SONIC_OUT_TEXT:
      handle_text (self, ev, &act, &stage);
      deliver = !ev->interrupted;
      break;
    case SONIC_OUT_AUDIO:
      deliver = !self->drop_audio;
      break;
    case SONIC_OUT_TOOL_USE:
      self->tools_pending++;
      deliver = TRUE;
      break;
    case SONIC_OUT_CONTENT_END:
      handle_content_end (self, ev, &act);
      break;
    case SONIC_OUT_USAGE:
      deliver = TRUE;
      break;
    case SONIC_OUT_USER_SPEECH_START:
      act.user_speech = TRUE;
      break;
    case SONIC_OUT_EXCEPTION:
      retryable = sonic_exception_is_retryable (ev->exception_type);
      if (retryable && !self->current_failed) {
        self->current_failed = TRUE;
        g_clear_error (&self->failure);
        self->failure = g_error_new (SONIC_ERROR, SONIC_ERROR_EXCEPTION,
            "%s: %s", ev->exception_type, ev->exception_message);
        g_cond_broadcast (&self->cond);
      } else if (!retryable) {
        act.fatal = g_error_new (SONIC_ERROR, SONIC_ERROR_EXCEPTION,
            "Nova Sonic sent %s: %s", ev->exception_type,
            ev->exception_message);
        self->stopping = TRUE;
        g_cond_broadcast (&self->cond);
      }
      break;
    default:
      break;
  }
  g_mutex_unlock (&self->lock);

  if (act.barge_in)
    l->barge_in (ud);
  if (act.user_speech)
    l->user_speech (ud);
  if (deliver) {
    switch (ev->kind) {
      case SONIC_OUT_TEXT:
        l->transcript (ud, ev->role, stage, ev->text);
        break;
      case SONIC_OUT_AUDIO:
        l->audio (ud, ev->audio);
        break;
      case SONIC_OUT_TOOL_USE:
        l->tool_use (ud, ev->tool_name, ev->tool_use_id, ev->text);
        break;
      case SONIC_OUT_USAGE:
        l->usage (ud, ev->input_tokens, ev->output_tokens, ev->total_tokens);
        break;
      default:
        break;
    }
  }
  if (act.reply_end)
    l->reply_end (ud);
  if (act.fatal) {
    l->error (ud, act.fatal);
    g_error_free (act.fatal);
  }
}

static void
on_closed (SonicSession *session, const GError *error, gpointer user_data)
{
  SonicBedrock *self = user_data;

  g_mutex_lock (&self->lock);
  if (session == self->current && !self->current_failed) {
    self->current_failed = TRUE;
    g_clear_error (&self->failure);
    self->failure = error ? g_error_copy (error)
                          : g_error_new (SONIC_ERROR, SONIC_ERROR_EXCEPTION,
                              "the service ended the stream");
  } else if (session == self->next) {
    self->next_failed = TRUE;
  }
  g_ptr_array_remove (self->closing, session);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static const SonicSessionCallbacks session_callbacks = {on_event, on_closed};

/* ---- sender thread ---- */

static CpAwsRetryKind
classify_failure (SonicBedrock *self, SonicSession *session,
    const GError *error)
{
  if (error == NULL)
    return CP_AWS_RETRY_TRANSIENT;
  if (error->domain == SONIC_ERROR) {
    if (error->code == SONIC_ERROR_EXCEPTION)
      return CP_AWS_RETRY_TRANSIENT;
    if (error->code == SONIC_ERROR_HTTP && session)
      return cp_aws_retry_classify_response (sonic_session_get_status (session),
          sonic_session_get_error_type (session));
    return CP_AWS_RETRY_NONE;
  }
  /* Transport errors (CP_HTTP_ERROR) are classified once, in gst/aws. */
  return cp_aws_retry_classify_error (error);
}

/* Waits until @deadline (monotonic) or stopping; returns FALSE when
 * stopping. Called with the lock held. */
static gboolean
wait_until (SonicBedrock *self, gint64 deadline)
{
  while (!self->stopping && g_get_monotonic_time () < deadline)
    g_cond_wait_until (&self->cond, &self->lock, deadline);
  return !self->stopping;
}

static SonicSession *
open_session (SonicBedrock *self, GError **error)
{
  g_autoptr (CpAwsCredentials) creds = NULL;
  CpHttpOptions options = {.connect_timeout_ms = CONNECT_TIMEOUT_MS};

  creds = cp_aws_credentials_provider_get (self->credentials, NULL, error);
  if (creds == NULL)
    return NULL;
  return sonic_session_open (self->settings.endpoint, &options,
      self->settings.region, creds, self->settings.config,
      g_get_real_time () / G_USEC_PER_SEC, &session_callbacks, self, error);
}

/* History, the audio contentStart and the replay of the last seconds of
 * caller audio: what makes @session the conversation's continuation. */
static gboolean
continue_on (SonicBedrock *self, SonicSession *session, GError **error)
{
  g_autoptr (GPtrArray) history = NULL;
  gsize off;

  g_mutex_lock (&self->lock);
  history = sonic_history_export (self->history);
  g_mutex_unlock (&self->lock);
  if (!sonic_session_send_history (session, history, error)
      || !sonic_session_start_audio (session, self->input_rate, error))
    return FALSE;
  for (off = 0; off < self->ring->len; off += self->frame_bytes) {
    if (!sonic_session_send_audio (session, self->ring->data + off,
            MIN (self->frame_bytes, self->ring->len - off), error))
      return FALSE;
  }
  return TRUE;
}

static void
reset_turn_state (SonicBedrock *self)
{
  g_hash_table_remove_all (self->contents);
  self->reply_audio_open = FALSE;
  self->awaiting_reply = FALSE;
  self->tools_pending = 0;
}

/* Replaces a failed (or missing) current session. Lock held; returns
 * FALSE when the backend must stop. */
static gboolean
reconnect (SonicBedrock *self)
{
  const SonicBackendListener *l = &self->parent.listener;
  g_autoptr (SonicSession) old = g_steal_pointer (&self->current);
  g_autoptr (GError) failure = g_steal_pointer (&self->failure);
  g_autoptr (GError) error = NULL;
  SonicSession *session;
  gint64 delay;

  if (old) {
    CpAwsRetryKind kind = classify_failure (self, old, failure);

    /* A session that ran a while is a success: count failures afresh. */
    if (g_get_monotonic_time () - self->session_start_us
        > 30 * G_USEC_PER_SEC) {
      cp_aws_retry_strategy_record_success (self->retry, &self->retry_token);
      cp_aws_retry_token_init (&self->retry_token);
    }

    if (!cp_aws_retry_strategy_should_retry (self->retry, &self->retry_token,
            kind, &delay)) {
      g_mutex_unlock (&self->lock);
      l->error (self->parent.user_data, failure);
      g_mutex_lock (&self->lock);
      return FALSE;
    }
    g_mutex_unlock (&self->lock);
    sonic_session_detach (old);
    sonic_session_cancel (old);
    g_mutex_lock (&self->lock);
    if (!wait_until (self, g_get_monotonic_time () + delay))
      return FALSE;
  }
  self->current_failed = FALSE;
  reset_turn_state (self);
  g_mutex_unlock (&self->lock);

  session = open_session (self, &error);
  if (session && !continue_on (self, session, &error)) {
    sonic_session_detach (session);
    sonic_session_cancel (session);
    g_clear_pointer (&session, sonic_session_unref);
  }
  g_mutex_lock (&self->lock);
  if (session == NULL) {
    /* Counts as a failed attempt of a session that never started. */
    self->current = NULL;
    self->failure = g_steal_pointer (&error);
    if (!cp_aws_retry_strategy_should_retry (self->retry, &self->retry_token,
            classify_failure (self, NULL, self->failure), &delay)) {
      g_autoptr (GError) e = g_steal_pointer (&self->failure);

      g_mutex_unlock (&self->lock);
      l->error (self->parent.user_data, e);
      g_mutex_lock (&self->lock);
      return FALSE;
    }
    return wait_until (self, g_get_monotonic_time () + delay);
  }
  self->current = session;
  self->session_start_us = g_get_monotonic_time ();
  self->last_output_us = self->session_start_us;
  g_mutex_unlock (&self->lock);
  l->session (self->parent.user_data, self->announced ? "renewed" : "started");
  self->announced = TRUE;
  g_mutex_lock (&self->lock);
  return TRUE;
}

static gboolean
at_turn_boundary (SonicBedrock *self)
{
  return !self->reply_audio_open && !self->awaiting_reply
      && self->tools_pending == 0;
}

/* Opens the next session ahead of the limit, and promotes it at a turn
 * boundary. Lock held. */
static void
renew (SonicBedrock *self)
{
  const SonicBackendListener *l = &self->parent.listener;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  SonicSession *old, *next;

  if (self->next && self->next_failed) {
    g_autoptr (SonicSession) failed = g_steal_pointer (&self->next);

    g_mutex_unlock (&self->lock);
    sonic_session_detach (failed);
    sonic_session_cancel (failed);
    g_mutex_lock (&self->lock);
    self->next_retry_us = now + G_USEC_PER_SEC;
    return;
  }
  if (self->next == NULL) {
    if (self->settings.renewal_s == 0 || now < self->next_retry_us
        || now - self->session_start_us
            < (gint64) self->settings.renewal_s * G_USEC_PER_SEC)
      return;
    self->next_failed = FALSE;
    g_mutex_unlock (&self->lock);
    next = open_session (self, &error);
    g_mutex_lock (&self->lock);
    if (next == NULL) {
      self->next_retry_us = now + G_USEC_PER_SEC;
      return;
    }
    self->next = next;
    self->next_open_us = g_get_monotonic_time ();
    return;
  }
  if (!at_turn_boundary (self) && now - self->next_open_us < SWITCH_WAIT_US)
    return;

  next = self->next;
  g_mutex_unlock (&self->lock);
  if (!continue_on (self, next, &error)) {
    g_mutex_lock (&self->lock);
    self->next_failed = TRUE;
    return;
  }
  g_mutex_lock (&self->lock);
  old = self->current;
  self->current = g_steal_pointer (&self->next);
  self->session_start_us = g_get_monotonic_time ();
  reset_turn_state (self);
  if (self->current_failed) {
    /* The old session failed meanwhile: the new one has taken over. */
    self->current_failed = FALSE;
    g_clear_error (&self->failure);
  }
  g_ptr_array_add (self->closing, sonic_session_ref (old));
  g_mutex_unlock (&self->lock);
  if (!sonic_session_finish (old, NULL))
    sonic_session_cancel (old);
  sonic_session_unref (old);
  l->session (self->parent.user_data, "renewed");
  g_mutex_lock (&self->lock);
}

static gsize
ring_capacity (SonicBedrock *self)
{
  return (gsize) SONIC_REPLAY_SECONDS * self->input_rate * 2;
}

/* Sends the audio due now: whole frames of caller audio, else silence at
 * the real-time pace once the caller has been idle. Lock held. */
static gboolean
send_audio (SonicBedrock *self)
{
  gint64 now = g_get_monotonic_time ();
  gint64 frame_us = FRAME_MS * G_TIME_SPAN_MILLISECOND;
  SonicSession *session = self->current;
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  gsize off;

  if (self->input->len >= self->frame_bytes) {
    gsize n = self->input->len - self->input->len % self->frame_bytes;

    g_byte_array_append (out, self->input->data, n);
    g_byte_array_remove_range (self->input, 0, n);
    self->next_frame_us = now + frame_us;
  } else if (now >= self->next_frame_us
      && (self->input_ended || now - self->last_input_us >= SILENCE_AFTER_US)) {
    /* A partial frame left by the caller is completed with silence. */
    g_byte_array_append (out, self->input->data, self->input->len);
    g_byte_array_set_size (self->input, 0);
    off = out->len;
    g_byte_array_set_size (out, self->frame_bytes);
    memset (out->data + off, 0, self->frame_bytes - off);
    self->next_frame_us += frame_us;
    if (self->next_frame_us < now - G_USEC_PER_SEC)
      self->next_frame_us = now + frame_us;
  }
  if (out->len == 0)
    return TRUE;

  sonic_session_ref (session);
  g_mutex_unlock (&self->lock);
  for (off = 0; off < out->len && error == NULL; off += self->frame_bytes)
    sonic_session_send_audio (session, out->data + off, self->frame_bytes,
        &error);
  g_byte_array_append (self->ring, out->data, out->len);
  if (self->ring->len > ring_capacity (self)) {
    gsize excess = self->ring->len - ring_capacity (self);

    excess -= excess % self->frame_bytes;
    g_byte_array_remove_range (self->ring, 0, excess);
  }
  sonic_session_unref (session);
  g_mutex_lock (&self->lock);
  /* A write error means the stream is gone: its closed callback reports
   * why, and the next loop reconnects. */
  return TRUE;
}

static gboolean
send_tool_results (SonicBedrock *self)
{
  ToolResult *r;

  while ((r = g_queue_pop_head (&self->tool_results)) != NULL) {
    SonicSession *session = sonic_session_ref (self->current);

    if (self->tools_pending > 0)
      self->tools_pending--;
    g_mutex_unlock (&self->lock);
    sonic_session_send_tool_result (session, r->id, r->json, NULL);
    sonic_session_unref (session);
    tool_result_free (r);
    g_mutex_lock (&self->lock);
  }
  return TRUE;
}

static gboolean
conversation_over (SonicBedrock *self)
{
  return self->input_ended && self->input->len == 0
      && g_queue_is_empty (&self->tool_results) && at_turn_boundary (self)
      && g_get_monotonic_time () - self->last_output_us >= QUIET_US;
}

/* Tears the conversation down politely and waits for the service. Lock
 * held. */
static void
end_conversation (SonicBedrock *self)
{
  const SonicBackendListener *l = &self->parent.listener;
  SonicSession *session = g_steal_pointer (&self->current);
  g_autoptr (SonicSession) next = g_steal_pointer (&self->next);
  gint64 deadline = g_get_monotonic_time () + CLOSE_WAIT_US;

  g_ptr_array_add (self->closing, sonic_session_ref (session));
  g_mutex_unlock (&self->lock);
  if (next) {
    sonic_session_detach (next);
    sonic_session_cancel (next);
  }
  if (!sonic_session_finish (session, NULL))
    sonic_session_cancel (session);
  sonic_session_unref (session);
  g_mutex_lock (&self->lock);
  while (self->closing->len > 0 && !self->stopping
      && g_cond_wait_until (&self->cond, &self->lock, deadline))
    ;
  g_mutex_unlock (&self->lock);
  l->session (self->parent.user_data, "ended");
  l->finished (self->parent.user_data);
  g_mutex_lock (&self->lock);
}

static gpointer
sender_thread (gpointer data)
{
  SonicBedrock *self = data;
  gint64 tick = FRAME_MS * G_TIME_SPAN_MILLISECOND / 2;

  g_mutex_lock (&self->lock);
  while (!self->stopping) {
    if (self->current == NULL || self->current_failed) {
      if (!reconnect (self))
        break;
      continue;
    }
    renew (self);
    if (!send_tool_results (self) || !send_audio (self))
      break;
    if (self->current_failed)
      continue;
    if (conversation_over (self)) {
      end_conversation (self);
      break;
    }
    if (self->input->len < self->frame_bytes
        && g_queue_is_empty (&self->tool_results))
      g_cond_wait_until (&self->cond, &self->lock,
          g_get_monotonic_time () + tick);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* ---- vtable ---- */

static gboolean
bedrock_start (SonicBackend *backend, gint input_rate, GError **error)
{
  SonicBedrock *self = (SonicBedrock *) backend;

  self->input_rate = input_rate;
  self->frame_bytes = (gsize) input_rate * FRAME_MS / 1000 * 2;
  self->next_frame_us = g_get_monotonic_time ();
  self->last_input_us = self->next_frame_us;
  cp_aws_retry_token_init (&self->retry_token);
  self->thread =
      g_thread_try_new ("novasonic-send", sender_thread, self, error);
  return self->thread != NULL;
}

static void
bedrock_push_audio (SonicBackend *backend, const guint8 *pcm, gsize len)
{
  SonicBedrock *self = (SonicBedrock *) backend;

  g_mutex_lock (&self->lock);
  g_byte_array_append (self->input, pcm, len);
  self->last_input_us = g_get_monotonic_time ();
  if (self->input->len >= self->frame_bytes)
    g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
bedrock_tool_result (SonicBackend *backend, const gchar *id, const gchar *json)
{
  SonicBedrock *self = (SonicBedrock *) backend;
  ToolResult *r = g_new0 (ToolResult, 1);

  r->id = g_strdup (id);
  r->json = g_strdup (json);
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->tool_results, r);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
bedrock_finish (SonicBackend *backend)
{
  SonicBedrock *self = (SonicBedrock *) backend;

  g_mutex_lock (&self->lock);
  self->input_ended = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
drop_session (SonicSession *session)
{
  sonic_session_detach (session);
  sonic_session_cancel (session);
}

static void
cancel_all (SonicBedrock *self)
{
  g_autoptr (SonicSession) current = NULL;
  g_autoptr (SonicSession) next = NULL;
  g_autoptr (GPtrArray) closing = NULL;
  guint i;

  g_mutex_lock (&self->lock);
  current = g_steal_pointer (&self->current);
  next = g_steal_pointer (&self->next);
  closing = g_steal_pointer (&self->closing);
  self->closing =
      g_ptr_array_new_with_free_func ((GDestroyNotify) sonic_session_unref);
  g_mutex_unlock (&self->lock);
  if (current)
    drop_session (current);
  if (next)
    drop_session (next);
  for (i = 0; i < closing->len; i++)
    drop_session (g_ptr_array_index (closing, i));
}

static void
bedrock_stop (SonicBackend *backend)
{
  SonicBedrock *self = (SonicBedrock *) backend;

  g_mutex_lock (&self->lock);
  self->stopping = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (self->thread)
    g_thread_join (g_steal_pointer (&self->thread));
  cancel_all (self);
}

static void
bedrock_free (SonicBackend *backend)
{
  SonicBedrock *self = (SonicBedrock *) backend;

  bedrock_stop (backend);
  g_clear_pointer (&self->closing, g_ptr_array_unref);
  g_clear_pointer (&self->credentials, cp_aws_credentials_provider_free);
  g_clear_pointer (&self->retry, cp_aws_retry_strategy_free);
  g_byte_array_unref (self->input);
  g_byte_array_unref (self->ring);
  g_queue_clear_full (&self->tool_results, (GDestroyNotify) tool_result_free);
  g_clear_error (&self->failure);
  g_hash_table_unref (self->contents);
  sonic_history_free (self->history);
  sonic_bedrock_settings_clear (&self->settings);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

static const SonicBackendClass bedrock_class = {
    "bedrock",
    bedrock_start,
    bedrock_push_audio,
    bedrock_tool_result,
    bedrock_finish,
    bedrock_stop,
    bedrock_free,
};

SonicBackend *
sonic_bedrock_new (SonicBedrockSettings *settings,
    const SonicBackendListener *listener, gpointer user_data)
{
  SonicBedrock *self = g_new0 (SonicBedrock, 1);

  self->parent.klass = &bedrock_class;
  self->parent.listener = *listener;
  self->parent.user_data = user_data;
  self->settings = *settings;
  memset (settings, 0, sizeof (*settings));
  self->credentials =
      cp_aws_credentials_provider_new_default (self->settings.access_key,
          self->settings.secret_key, self->settings.session_token, NULL);
  self->retry = cp_aws_retry_strategy_new (0);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->input = g_byte_array_new ();
  self->ring = g_byte_array_new ();
  g_queue_init (&self->tool_results);
  self->closing =
      g_ptr_array_new_with_free_func ((GDestroyNotify) sonic_session_unref);
  self->contents =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->history = sonic_history_new ();
  return &self->parent;
}

/* callpipe — the Amazon Bedrock (Nova Sonic) backend
 *
 * Threads: one sender thread owns the outgoing side of every session
 * (connect, sign, write, renew, reconnect, pace silence); the sessions'
 * I/O threads deliver output events to on_event()/on_closed(), which
 * update the shared state under `lock` and call the listener after
 * unlocking. Lock order: only `lock`; never held while calling a
 * session send function or the listener.
 *
 * The sender sleeps until its next deadline (the next silence frame once
 * the caller is idle, the renewal, the end of the conversation) or until
 * it is woken: by push_audio once a whole frame is buffered, by a tool
 * result, the end of the input, a failure, or a turn boundary while a
 * renewal waits for one. Whole frames that are ready go out in one write
 * (each still its own signed event).
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
#define FRAME_US (FRAME_MS * G_TIME_SPAN_MILLISECOND)
/* Silence starts once the caller's audio has stopped for this long: past
 * the time when the audio received so far, played in real time, runs out.
 * A live source delivers audio once it has been spoken, in buffers of 100
 * ms or more, or in bursts: kvsdemux releases a Connect fragment (~1 s of
 * 64 ms blocks) at once when its ContactId tag trails the audio. Counting
 * from the last buffer's arrival would fill the wait for the next burst
 * with silence and put the model's timeline seconds behind the caller. */
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
  gboolean sender_idle; /* waiting for work: push_audio must wake it */
  gint64 input_until_us; /* when the audio received so far, played in
                          * real time from its arrival, runs out */
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
  GByteArray *sending; /* the frames being sent */
  /* The last SONIC_REPLAY_SECONDS sent: ring_frames frames from
   * ring_head (the oldest), ring_count of them filled. */
  guint8 *ring;
  guint ring_frames;
  guint ring_head;
  guint ring_count;
  gint64 session_start_us;
  gint64 next_open_us;
  gint64 next_retry_us;
  gint64 next_frame_us;
  gboolean silent; /* the last frame sent was silence */
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

static gboolean
at_turn_boundary (SonicBedrock *self)
{
  return !self->reply_audio_open && !self->awaiting_reply
      && self->tools_pending == 0;
}

/* Whether the sender waits for work: it is then no longer taken for
 * idle, and the caller signals the condition, best after unlocking (the
 * sender would otherwise wake only to wait for the lock). Lock held. */
static gboolean
claim_sender (SonicBedrock *self)
{
  gboolean idle = self->sender_idle;

  self->sender_idle = FALSE;
  return idle;
}

/* Wakes the sender if it waits for work. Lock held. */
static void
wake_sender (SonicBedrock *self)
{
  if (claim_sender (self))
    g_cond_signal (&self->cond);
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
    if (session == self->next && ev->kind == SONIC_OUT_EXCEPTION) {
      self->next_failed = TRUE;
      g_cond_broadcast (&self->cond);
    }
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
  /* A renewal waits for a turn boundary. */
  if (self->next && at_turn_boundary (self))
    wake_sender (self);
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
  guint first = MIN (self->ring_count, self->ring_frames - self->ring_head);

  g_mutex_lock (&self->lock);
  history = sonic_history_export (self->history);
  g_mutex_unlock (&self->lock);
  /* The ring's oldest frames run to its end, the newest wrap round. */
  return sonic_session_send_history (session, history, error)
      && sonic_session_start_audio (session, self->input_rate, error)
      && sonic_session_send_audio_frames (session,
          self->ring + (gsize) self->ring_head * self->frame_bytes,
          (gsize) first * self->frame_bytes, self->frame_bytes, error)
      && sonic_session_send_audio_frames (session, self->ring,
          (gsize) (self->ring_count - first) * self->frame_bytes,
          self->frame_bytes, error);
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

/* Keeps @len bytes of whole frames just sent as the newest of the ring,
 * over its oldest once it is full. */
static void
ring_push (SonicBedrock *self, const guint8 *frames, gsize len)
{
  gsize fb = self->frame_bytes, off;

  for (off = 0; off + fb <= len; off += fb) {
    guint slot = (self->ring_head + self->ring_count) % self->ring_frames;

    memcpy (self->ring + (gsize) slot * fb, frames + off, fb);
    if (self->ring_count < self->ring_frames)
      self->ring_count++;
    else
      self->ring_head = (self->ring_head + 1) % self->ring_frames;
  }
}

static gboolean
caller_idle (SonicBedrock *self, gint64 now)
{
  return self->input_ended || now >= self->input_until_us + SILENCE_AFTER_US;
}

/* Sends the audio due now: whole frames of caller audio, else silence at
 * the real-time pace once the caller has been idle. Lock held. */
static gboolean
send_audio (SonicBedrock *self)
{
  gint64 now = g_get_monotonic_time ();
  SonicSession *session = self->current;
  GByteArray *out = self->sending;
  g_autoptr (GError) error = NULL;
  gsize off;

  g_byte_array_set_size (out, 0);
  if (self->input->len >= self->frame_bytes) {
    gsize n = self->input->len - self->input->len % self->frame_bytes;

    g_byte_array_append (out, self->input->data, n);
    g_byte_array_remove_range (self->input, 0, n);
    self->next_frame_us = now + FRAME_US;
    self->silent = FALSE;
  } else if (now >= self->next_frame_us && caller_idle (self, now)) {
    /* Silence keeps time from when the caller went quiet. */
    if (!self->silent)
      self->next_frame_us = now;
    self->silent = TRUE;
    /* A partial frame left by the caller is completed with silence. */
    g_byte_array_append (out, self->input->data, self->input->len);
    g_byte_array_set_size (self->input, 0);
    off = out->len;
    g_byte_array_set_size (out, self->frame_bytes);
    memset (out->data + off, 0, self->frame_bytes - off);
    self->next_frame_us += FRAME_US;
    if (self->next_frame_us < now - G_USEC_PER_SEC)
      self->next_frame_us = now + FRAME_US;
  }
  if (out->len == 0)
    return TRUE;

  sonic_session_ref (session);
  g_mutex_unlock (&self->lock);
  sonic_session_send_audio_frames (session, out->data, out->len,
      self->frame_bytes, &error);
  ring_push (self, out->data, out->len);
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

/* When the renewal has something to do. Lock held. */
static gint64
renewal_deadline (SonicBedrock *self, gint64 now)
{
  if (self->next)
    return self->next_failed || at_turn_boundary (self)
        ? now
        : self->next_open_us + SWITCH_WAIT_US;
  if (self->settings.renewal_s == 0)
    return G_MAXINT64;
  return MAX (self->next_retry_us,
      self->session_start_us
          + (gint64) self->settings.renewal_s * G_USEC_PER_SEC);
}

/* When the sender has something to do next unless it is woken: now when
 * work is waiting; else the next silence frame (due once the caller is
 * idle), the renewal, the end of the conversation. Lock held. */
static gint64
next_deadline (SonicBedrock *self, gint64 now)
{
  gint64 deadline = self->next_frame_us;

  if (self->stopping || self->current_failed
      || self->input->len >= self->frame_bytes
      || !g_queue_is_empty (&self->tool_results))
    return now;
  if (!self->input_ended)
    deadline = MAX (deadline, self->input_until_us + SILENCE_AFTER_US);
  deadline = MIN (deadline, renewal_deadline (self, now));
  /* The end of the conversation, unless that time has passed already:
   * what still keeps it going changes only with new output, which
   * moves the time on. */
  if (self->input_ended && self->last_output_us + QUIET_US > now)
    deadline = MIN (deadline, self->last_output_us + QUIET_US);
  return deadline;
}

static gpointer
sender_thread (gpointer data)
{
  SonicBedrock *self = data;

  g_mutex_lock (&self->lock);
  while (!self->stopping) {
    gint64 now, deadline;

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
    now = g_get_monotonic_time ();
    deadline = next_deadline (self, now);
    if (deadline > now) {
      self->sender_idle = TRUE;
      g_cond_wait_until (&self->cond, &self->lock, deadline);
      self->sender_idle = FALSE;
    }
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
  self->ring_frames = (guint) ((SONIC_REPLAY_SECONDS * (gsize) input_rate * 2
                                   + self->frame_bytes - 1)
      / self->frame_bytes);
  g_free (self->ring);
  self->ring = g_malloc ((gsize) self->ring_frames * self->frame_bytes);
  self->ring_head = self->ring_count = 0;
  self->next_frame_us = g_get_monotonic_time ();
  self->input_until_us = self->next_frame_us;
  cp_aws_retry_token_init (&self->retry_token);
  self->thread =
      g_thread_try_new ("novasonic-send", sender_thread, self, error);
  return self->thread != NULL;
}

static void
bedrock_push_audio (SonicBackend *backend, const guint8 *pcm, gsize len)
{
  SonicBedrock *self = (SonicBedrock *) backend;
  gboolean wake;

  g_mutex_lock (&self->lock);
  g_byte_array_append (self->input, pcm, len);
  self->input_until_us = MAX (self->input_until_us, g_get_monotonic_time ())
      + (gint64) (len / 2) * G_USEC_PER_SEC / self->input_rate;
  wake = self->input->len >= self->frame_bytes && claim_sender (self);
  g_mutex_unlock (&self->lock);
  if (wake)
    g_cond_signal (&self->cond);
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
  g_byte_array_unref (self->sending);
  g_free (self->ring);
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
  self->sending = g_byte_array_new ();
  g_queue_init (&self->tool_results);
  self->closing =
      g_ptr_array_new_with_free_func ((GDestroyNotify) sonic_session_unref);
  self->contents =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->history = sonic_history_new ();
  return &self->parent;
}

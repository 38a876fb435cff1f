/* callpipe — the offline backend: VAD, ASR, dialog engine, TTS
 *
 * Threads: push_audio and tool_result queue their input under `lock`;
 * one worker thread owns the recognizer, the dialog and the voice, and
 * calls the listener with no lock held. Replies are synthesized sentence
 * by sentence, so that the first is heard while the rest is spoken.
 *
 * Whether the caller talks over a reply is decided on the caller's own
 * time line (samples decoded): a reply plays from the position at which
 * it was queued (or the end of the previous one) for its duration. This
 * holds whether the input comes live or from a file as fast as it can be
 * read.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "soniclocal.h"

#include <gst/audio/audio.h>
#include <string.h>

#include "speech/speechdialog.h"
#include "speech/speechtts.h"

GST_DEBUG_CATEGORY_STATIC (sonic_local_debug);
#define GST_CAT_DEFAULT sonic_local_debug

/* The VAD decides in 10 ms frames: decoding one frame at a time sees a
 * speech start as soon as it is detected. */
#define FRAMES_PER_SECOND 100
/* Reply audio is handed over in pieces this long, so that a barge-in
 * drops all but the piece playing. */
#define CHUNK_MS 40
/* At the end of the input, how long a tool call may wait for its
 * result before the conversation ends without it. */
#define TOOL_WAIT_US (10 * G_USEC_PER_SEC)
#define BAD_TOOL_RESULT "{\"error\":\"the tool result is not JSON\"}"

typedef struct
{
  gchar *id;
  gchar *json;
} ToolResult;

typedef struct
{
  SonicBackend parent;

  /* immutable after start() */
  SonicLocalSettings settings;
  CpSpeechDialogWorkflow *workflow;
  CpSpeechModel *model; /* grammar-only, of the workflow's vocabulary */
  guint asr_rate;

  GMutex lock;
  GCond cond;
  /* protected by lock */
  GByteArray *input; /* caller audio, S16LE, not decoded yet */
  GQueue tool_results; /* of ToolResult */
  gboolean input_ended;
  gboolean stopping;

  GThread *thread;

  /* worker thread only */
  CpSpeechDialog *dialog;
  CpSpeechRecognizer *rec;
  GstAudioResampler *in_resampler; /* 24 to 16 kHz, else NULL */
  GArray *asr_in; /* gint16 at asr_rate, less than a frame */
  guint64 position; /* samples at asr_rate decoded */
  guint64 reply_end; /* position at which the queued replies end */
  gboolean grammar_stale; /* the dialog state changed */
  gchar *pending_tool; /* the tool call awaiting its result */
  gboolean over; /* the dialog ended the conversation */
} SonicLocal;

static void
tool_result_free (ToolResult *r)
{
  g_free (r->id);
  g_free (r->json);
  g_free (r);
}

void
sonic_local_settings_clear (SonicLocalSettings *settings)
{
  g_clear_pointer (&settings->workflow, g_free);
  g_clear_pointer (&settings->tools_dir, g_free);
  g_clear_pointer (&settings->voice, g_free);
}

/* ---- audio ---- */

static void
s16_swap_le (gint16 *samples, gsize n)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  gsize i;

  for (i = 0; i < n; i++)
    samples[i] = GINT16_SWAP_LE_BE (samples[i]);
#endif
}

static GstAudioResampler *
resampler_new (gint in_rate, gint out_rate)
{
  GstStructure *options = gst_structure_new_empty ("options");
  GstAudioResampler *resampler;

  gst_audio_resampler_options_set_quality (GST_AUDIO_RESAMPLER_METHOD_KAISER,
      GST_AUDIO_RESAMPLER_QUALITY_DEFAULT, in_rate, out_rate, options);
  resampler = gst_audio_resampler_new (GST_AUDIO_RESAMPLER_METHOD_KAISER,
      GST_AUDIO_RESAMPLER_FLAG_NONE, GST_AUDIO_FORMAT_S16, 1, in_rate, out_rate,
      options);
  gst_structure_free (options);
  return resampler;
}

/* Appends @n samples of @in (NULL: silence), resampled, to @out. */
static void
resample_append (GstAudioResampler *resampler, const gint16 *in, gsize n,
    GArray *out)
{
  gsize out_frames = gst_audio_resampler_get_out_frames (resampler, n);
  guint len = out->len;
  gpointer in_planes[1] = {(gpointer) in};
  gpointer out_planes[1];

  g_array_set_size (out, len + out_frames);
  out_planes[0] = out->data + len * sizeof (gint16);
  gst_audio_resampler_resample (resampler, in ? in_planes : NULL, n, out_planes,
      out_frames);
}

/* @text spoken by the voice at the output rate, host byte order. */
static GArray *
synthesize (SonicLocal *self, const gchar *text, GError **error)
{
  g_autoptr (GBytes) audio = NULL;
  GstAudioResampler *resampler;
  GArray *voice, *out;
  const guint8 *data;
  guint rate;
  gsize size;

  audio = cp_speech_tts_synthesize (self->settings.voice, text, &rate, error);
  if (audio == NULL)
    return NULL;
  data = g_bytes_get_data (audio, &size);
  voice = g_array_sized_new (FALSE, FALSE, sizeof (gint16), size / 2);
  g_array_append_vals (voice, data, size / 2);
  s16_swap_le ((gint16 *) voice->data, voice->len);
  if ((gint) rate == self->settings.output_rate)
    return voice;

  resampler = resampler_new (rate, self->settings.output_rate);
  out = g_array_new (FALSE, FALSE, sizeof (gint16));
  resample_append (resampler, (const gint16 *) voice->data, voice->len, out);
  resample_append (resampler, NULL,
      gst_audio_resampler_get_max_latency (resampler), out);
  gst_audio_resampler_free (resampler);
  g_array_unref (voice);
  return out;
}

/* Hands @pcm to the element in CHUNK_MS pieces. */
static void
emit_audio (SonicLocal *self, GArray *pcm)
{
  const SonicBackendListener *l = &self->parent.listener;
  gsize chunk = (gsize) self->settings.output_rate * CHUNK_MS / 1000;
  gsize off;

  s16_swap_le ((gint16 *) pcm->data, pcm->len);
  for (off = 0; off < pcm->len; off += chunk) {
    gsize n = MIN (chunk, pcm->len - off);
    GBytes *bytes =
        g_bytes_new (pcm->data + off * sizeof (gint16), n * sizeof (gint16));

    l->audio (self->parent.user_data, bytes);
    g_bytes_unref (bytes);
  }
}

/* Splits after each sentence, so that the first is heard while the next
 * is synthesized. */
static GStrv
split_sentences (const gchar *text)
{
  GPtrArray *out = g_ptr_array_new ();
  const gchar *start = text, *p;

  for (p = text;; p++) {
    gboolean end_of_sentence =
        (*p == '.' || *p == '?' || *p == '!') && (p[1] == ' ' || p[1] == '\0');

    if (end_of_sentence || *p == '\0') {
      gchar *sentence =
          g_strstrip (g_strndup (start, p - start + (end_of_sentence ? 1 : 0)));

      if (sentence[0] != '\0')
        g_ptr_array_add (out, sentence);
      else
        g_free (sentence);
      if (*p == '\0')
        break;
      start = p + 1;
    }
  }
  g_ptr_array_add (out, NULL);
  return (GStrv) g_ptr_array_free (out, FALSE);
}

/* Says @text: its transcript, then its audio. */
static gboolean
speak (SonicLocal *self, const gchar *text, GError **error)
{
  const SonicBackendListener *l = &self->parent.listener;
  g_auto (GStrv) sentences = split_sentences (text);
  guint64 samples = 0;
  guint i;

  l->transcript (self->parent.user_data, SONIC_ROLE_ASSISTANT,
      SONIC_STAGE_FINAL, text);
  for (i = 0; sentences[i] != NULL; i++) {
    g_autoptr (GArray) pcm = synthesize (self, sentences[i], error);

    if (pcm == NULL)
      return FALSE;
    samples += pcm->len;
    emit_audio (self, pcm);
  }
  l->reply_end (self->parent.user_data);
  self->reply_end = MAX (self->reply_end, self->position)
      + gst_util_uint64_scale_int (samples, self->asr_rate,
          self->settings.output_rate);
  GST_DEBUG ("reply of %" G_GUINT64_FORMAT " samples plays until input "
             "sample %" G_GUINT64_FORMAT,
      samples, self->reply_end);
  return TRUE;
}

/* ---- conversation (worker thread) ---- */

static gboolean
is_stopping (SonicLocal *self)
{
  gboolean stopping;

  g_mutex_lock (&self->lock);
  stopping = self->stopping;
  g_mutex_unlock (&self->lock);
  return stopping;
}

/* Listens for what the dialog state expects, unless the caller is
 * speaking: the grammar changes between utterances only. */
static gboolean
refresh_grammar (SonicLocal *self, GError **error)
{
  g_autofree gchar *jsgf = NULL;
  g_auto (GStrv) phrases = NULL;

  if (!self->grammar_stale || self->rec == NULL
      || cp_speech_vad_in_speech (cp_speech_recognizer_get_vad (self->rec)))
    return TRUE;
  self->grammar_stale = FALSE;
  if (self->over)
    return TRUE;
  jsgf = cp_speech_dialog_get_jsgf (self->dialog);
  if (jsgf != NULL)
    return cp_speech_recognizer_set_grammar (self->rec, jsgf, error);
  phrases = cp_speech_dialog_get_phrases (self->dialog);
  if (phrases != NULL)
    return cp_speech_recognizer_set_phrases (self->rec,
        (const gchar *const *) phrases, error);
  return TRUE;
}

static gboolean
act_on_reply (SonicLocal *self, CpSpeechDialogReply *reply, GError **error)
{
  const SonicBackendListener *l = &self->parent.listener;

  if (reply->text != NULL && !speak (self, reply->text, error))
    return FALSE;
  if (reply->tool_name != NULL) {
    if (reply->awaits_result) {
      g_free (self->pending_tool);
      self->pending_tool = g_strdup (reply->tool_use_id);
    }
    l->tool_use (self->parent.user_data, reply->tool_name, reply->tool_use_id,
        reply->tool_input);
  }
  if (reply->intent != CP_SPEECH_DIALOG_INTENT_CONTINUE)
    self->over = TRUE;
  self->grammar_stale = TRUE;
  return refresh_grammar (self, error);
}

static gboolean
answer_tool (SonicLocal *self, ToolResult *r, GError **error)
{
  g_autoptr (CpSpeechDialogReply) reply = NULL;
  g_autoptr (GError) bad = NULL;

  if (g_strcmp0 (self->pending_tool, r->id) != 0) {
    /* The element acknowledges the built-in tools itself. */
    GST_DEBUG ("no tool call %s awaits a result", r->id);
    return TRUE;
  }
  reply = cp_speech_dialog_tool_result (self->dialog, r->id, r->json, &bad);
  if (reply == NULL) {
    GST_WARNING ("%s", bad->message);
    reply = cp_speech_dialog_tool_result (self->dialog, r->id, BAD_TOOL_RESULT,
        NULL);
  }
  g_clear_pointer (&self->pending_tool, g_free);
  return reply == NULL || act_on_reply (self, reply, error);
}

static gboolean
answer_tools (SonicLocal *self, GQueue *results, GError **error)
{
  ToolResult *r;
  gboolean ok = TRUE;

  while (ok && (r = g_queue_pop_head (results)) != NULL) {
    ok = answer_tool (self, r, error);
    tool_result_free (r);
  }
  g_queue_clear_full (results, (GDestroyNotify) tool_result_free);
  return ok;
}

static gboolean
handle_result (SonicLocal *self, CpSpeechResult *r, GError **error)
{
  g_autoptr (CpSpeechDialogReply) reply = NULL;

  if (r->is_partial || r->text[0] == '\0')
    return TRUE;
  GST_DEBUG ("caller said \"%s\" (confidence %.2f)", r->text, r->confidence);
  self->parent.listener.transcript (self->parent.user_data, SONIC_ROLE_USER,
      SONIC_STAGE_FINAL, r->text);
  if (self->over)
    return TRUE;
  reply =
      cp_speech_dialog_handle_utterance (self->dialog, r->text, r->confidence);
  return act_on_reply (self, reply, error);
}

static gboolean
handle_results (SonicLocal *self, GError **error)
{
  CpSpeechResult *r;

  while ((r = cp_speech_recognizer_pop_result (self->rec)) != NULL) {
    gboolean ok = handle_result (self, r, error);

    cp_speech_result_free (r);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

/* The caller started speaking: over a reply still playing, a barge-in. */
static void
caller_started (SonicLocal *self)
{
  const SonicBackendListener *l = &self->parent.listener;

  if (self->position < self->reply_end) {
    GST_DEBUG ("barge-in at input sample %" G_GUINT64_FORMAT, self->position);
    self->reply_end = self->position;
    l->barge_in (self->parent.user_data);
  } else {
    l->user_speech (self->parent.user_data);
  }
}

static gboolean
decode_frame (SonicLocal *self, const gint16 *samples, gsize n, GError **error)
{
  CpSpeechVad *vad = cp_speech_recognizer_get_vad (self->rec);
  gboolean was_speech = cp_speech_vad_in_speech (vad);

  if (!cp_speech_recognizer_process (self->rec, samples, n, error))
    return FALSE;
  self->position += n;
  if (!was_speech && cp_speech_vad_in_speech (vad))
    caller_started (self);
  return handle_results (self, error) && refresh_grammar (self, error);
}

/* Decodes whole frames of the caller's audio; with @all, the rest too. */
static gboolean
decode (SonicLocal *self, GByteArray *input, gboolean all, GError **error)
{
  gsize frame = self->asr_rate / FRAMES_PER_SECOND;
  gsize n = input->len / 2, off;

  s16_swap_le ((gint16 *) input->data, n);
  if (self->in_resampler)
    resample_append (self->in_resampler, (const gint16 *) input->data, n,
        self->asr_in);
  else
    g_array_append_vals (self->asr_in, input->data, n);
  for (off = 0; off < self->asr_in->len; off += frame) {
    gsize len = MIN (frame, self->asr_in->len - off);

    if (len < frame && !all)
      break;
    if (!decode_frame (self, &g_array_index (self->asr_in, gint16, off), len,
            error))
      return FALSE;
  }
  g_array_remove_range (self->asr_in, 0, MIN (off, self->asr_in->len));
  return TRUE;
}

static gboolean
open_recognizer (SonicLocal *self, GError **error)
{
  self->rec = cp_speech_recognizer_new (self->model, self->asr_rate, error);
  if (self->rec == NULL)
    return FALSE;
  cp_speech_recognizer_set_partial_interval (self->rec, 0);
  cp_speech_vad_set_hangover_ms (cp_speech_recognizer_get_vad (self->rec),
      self->settings.end_of_turn_ms);
  return refresh_grammar (self, error);
}

static gboolean
greet (SonicLocal *self, GError **error)
{
  g_autoptr (CpSpeechDialogReply) reply = NULL;

  self->dialog = cp_speech_dialog_new (self->workflow);
  reply = cp_speech_dialog_start (self->dialog);
  return act_on_reply (self, reply, error);
}

/* After the last of the caller's audio: the last utterance's reply, and
 * the result of a tool call still pending. */
static gboolean
conclude (SonicLocal *self, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + TOOL_WAIT_US;

  if (!cp_speech_recognizer_flush (self->rec, error)
      || !handle_results (self, error))
    return FALSE;
  while (self->pending_tool != NULL) {
    GQueue results = G_QUEUE_INIT;

    g_mutex_lock (&self->lock);
    while (!self->stopping && g_queue_is_empty (&self->tool_results)
        && g_cond_wait_until (&self->cond, &self->lock, deadline))
      ;
    results = self->tool_results;
    g_queue_init (&self->tool_results);
    g_mutex_unlock (&self->lock);
    if (g_queue_is_empty (&results)) {
      GST_WARNING ("tool call %s not answered: ending without its result",
          self->pending_tool);
      return TRUE;
    }
    if (!answer_tools (self, &results, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
converse (SonicLocal *self, GError **error)
{
  for (;;) {
    g_autoptr (GByteArray) input = NULL;
    GQueue results = G_QUEUE_INIT;
    gboolean ended;

    g_mutex_lock (&self->lock);
    while (!self->stopping && self->input->len == 0
        && g_queue_is_empty (&self->tool_results) && !self->input_ended)
      g_cond_wait (&self->cond, &self->lock);
    if (self->stopping) {
      g_mutex_unlock (&self->lock);
      return TRUE;
    }
    input = g_steal_pointer (&self->input);
    self->input = g_byte_array_new ();
    results = self->tool_results;
    g_queue_init (&self->tool_results);
    ended = self->input_ended;
    g_mutex_unlock (&self->lock);

    if (!answer_tools (self, &results, error)
        || !decode (self, input, ended, error))
      return FALSE;
    if (ended)
      return conclude (self, error);
  }
}

static gpointer
worker_thread (gpointer data)
{
  SonicLocal *self = data;
  const SonicBackendListener *l = &self->parent.listener;
  g_autoptr (GError) error = NULL;

  l->session (self->parent.user_data, "started");
  if (!greet (self, &error) || !open_recognizer (self, &error)
      || !converse (self, &error)) {
    if (!is_stopping (self))
      l->error (self->parent.user_data, error);
    return NULL;
  }
  if (!is_stopping (self)) {
    l->session (self->parent.user_data, "ended");
    l->finished (self->parent.user_data);
  }
  return NULL;
}

/* ---- vtable ---- */

static gboolean
local_start (SonicBackend *backend, gint input_rate, GError **error)
{
  SonicLocal *self = (SonicLocal *) backend;

  self->workflow = cp_speech_dialog_workflow_load (self->settings.workflow,
      self->settings.tools_dir, NULL, error);
  if (self->workflow == NULL)
    return FALSE;
  /* The bot only ever listens for the workflow's phrases: a grammar-only
   * model of them costs ~3 MB per call where the full model costs ~90 MB,
   * and checks the workflow's words against the dictionary. */
  self->model = cp_speech_dialog_workflow_get_model (self->workflow, error);
  if (self->model == NULL)
    return FALSE;
  self->asr_rate = input_rate == 8000 ? 8000 : 16000;
  if ((guint) input_rate != self->asr_rate)
    self->in_resampler = resampler_new (input_rate, self->asr_rate);
  GST_INFO ("workflow %s, caller audio at %d Hz decoded at %u Hz, "
            "replies at %d Hz",
      cp_speech_dialog_workflow_get_name (self->workflow), input_rate,
      self->asr_rate, self->settings.output_rate);
  self->thread =
      g_thread_try_new ("novasonic-local", worker_thread, self, error);
  return self->thread != NULL;
}

static void
local_push_audio (SonicBackend *backend, const guint8 *pcm, gsize len)
{
  SonicLocal *self = (SonicLocal *) backend;

  g_mutex_lock (&self->lock);
  g_byte_array_append (self->input, pcm, len);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
local_tool_result (SonicBackend *backend, const gchar *id, const gchar *json)
{
  SonicLocal *self = (SonicLocal *) backend;
  ToolResult *r = g_new0 (ToolResult, 1);

  r->id = g_strdup (id);
  r->json = g_strdup (json);
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->tool_results, r);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
local_finish (SonicBackend *backend)
{
  SonicLocal *self = (SonicLocal *) backend;

  g_mutex_lock (&self->lock);
  self->input_ended = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
local_stop (SonicBackend *backend)
{
  SonicLocal *self = (SonicLocal *) backend;

  g_mutex_lock (&self->lock);
  self->stopping = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (self->thread)
    g_thread_join (g_steal_pointer (&self->thread));
}

static void
local_free (SonicBackend *backend)
{
  SonicLocal *self = (SonicLocal *) backend;

  local_stop (backend);
  g_clear_pointer (&self->rec, cp_speech_recognizer_free);
  g_clear_pointer (&self->dialog, cp_speech_dialog_free);
  g_clear_pointer (&self->workflow, cp_speech_dialog_workflow_unref);
  g_clear_pointer (&self->model, cp_speech_model_unref);
  g_clear_pointer (&self->in_resampler, gst_audio_resampler_free);
  g_array_unref (self->asr_in);
  g_byte_array_unref (self->input);
  g_queue_clear_full (&self->tool_results, (GDestroyNotify) tool_result_free);
  g_free (self->pending_tool);
  sonic_local_settings_clear (&self->settings);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

static const SonicBackendClass local_class = {
    "local",
    local_start,
    local_push_audio,
    local_tool_result,
    local_finish,
    local_stop,
    local_free,
};

SonicBackend *
sonic_local_new (SonicLocalSettings *settings,
    const SonicBackendListener *listener, gpointer user_data)
{
  static gsize debug_once = 0;
  SonicLocal *self = g_new0 (SonicLocal, 1);

  if (g_once_init_enter (&debug_once)) {
    GST_DEBUG_CATEGORY_INIT (sonic_local_debug, "novasonic-local", 0,
        "novasonic offline backend");
    g_once_init_leave (&debug_once, 1);
  }
  self->parent.klass = &local_class;
  self->parent.listener = *listener;
  self->parent.user_data = user_data;
  self->settings = *settings;
  memset (settings, 0, sizeof (*settings));
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->input = g_byte_array_new ();
  g_queue_init (&self->tool_results);
  self->asr_in = g_array_new (FALSE, FALSE, sizeof (gint16));
  return &self->parent;
}

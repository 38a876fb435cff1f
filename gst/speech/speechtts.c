/* Offline text to speech with flite.
 *
 * flite keeps the voices in process-wide state and counts references on
 * the voice's shared feature values without atomics (cst_val.c), so the
 * voices are registered once and every synthesis runs under one lock.
 * Synthesis is far faster than real time, so the lock costs little.
 * flite draws excitation noise from rand(), so two syntheses of one text
 * differ slightly; we leave the process's rand() seed alone. */
#include "speech/speechtts.h"

#include <string.h>

#include <flite/flite.h>

/* The voice libraries ship no headers. */
cst_voice *register_cmu_us_slt (const char *voxdir);
#ifdef CP_SPEECH_HAVE_VOICE_KAL
cst_voice *register_cmu_us_kal (const char *voxdir);
#endif
#ifdef CP_SPEECH_HAVE_VOICE_AWB
cst_voice *register_cmu_us_awb (const char *voxdir);
#endif
#ifdef CP_SPEECH_HAVE_VOICE_RMS
cst_voice *register_cmu_us_rms (const char *voxdir);
#endif

typedef struct
{
  const gchar *name;
  cst_voice *(*reg) (const char *voxdir);
  cst_voice *voice;
} CpSpeechVoice;

static CpSpeechVoice voices[] = {
    {"slt", register_cmu_us_slt, NULL},
#ifdef CP_SPEECH_HAVE_VOICE_KAL
    {"kal", register_cmu_us_kal, NULL},
#endif
#ifdef CP_SPEECH_HAVE_VOICE_AWB
    {"awb", register_cmu_us_awb, NULL},
#endif
#ifdef CP_SPEECH_HAVE_VOICE_RMS
    {"rms", register_cmu_us_rms, NULL},
#endif
};

static const gchar *voice_names[G_N_ELEMENTS (voices) + 1];

static GMutex synth_lock;

static gpointer
init_flite (gpointer data)
{
  guint i;

  flite_init ();
  for (i = 0; i < G_N_ELEMENTS (voices); i++) {
    voices[i].voice = voices[i].reg (NULL);
    voice_names[i] = voices[i].name;
  }
  voice_names[i] = NULL;
  return NULL;
}

static void
ensure_flite (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, init_flite, NULL);
}

/**
 * cp_speech_tts_list_voices:
 *
 * Returns: (transfer none): the NULL-terminated names of the linked voices,
 * the default voice first.
 */
const gchar *const *
cp_speech_tts_list_voices (void)
{
  ensure_flite ();
  return voice_names;
}

static cst_voice *
lookup_voice (const gchar *name, GError **error)
{
  guint i;

  ensure_flite ();
  if (name == NULL)
    name = CP_SPEECH_TTS_DEFAULT_VOICE;
  for (i = 0; i < G_N_ELEMENTS (voices); i++) {
    if (g_strcmp0 (voices[i].name, name) == 0 && voices[i].voice != NULL)
      return voices[i].voice;
  }
  {
    g_autofree gchar *known = g_strjoinv (", ", (gchar **) voice_names);

    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_UNKNOWN_VOICE,
        "Unknown flite voice \"%s\" (available: %s)", name, known);
  }
  return NULL;
}

/**
 * cp_speech_tts_voice_rate:
 * @voice: (nullable): voice name, NULL for the default
 * @error: return location for an error
 *
 * Returns: the sample rate the voice speaks at, or 0 with @error set.
 */
guint
cp_speech_tts_voice_rate (const gchar *voice, GError **error)
{
  cst_voice *v = lookup_voice (voice, error);
  int rate;

  if (v == NULL)
    return 0;
  g_mutex_lock (&synth_lock);
  rate = flite_get_param_int (v->features, "sample_rate", 0);
  g_mutex_unlock (&synth_lock);
  if (rate <= 0) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_SYNTHESIS,
        "flite voice \"%s\" declares no sample rate",
        voice ? voice : CP_SPEECH_TTS_DEFAULT_VOICE);
    return 0;
  }
  return rate;
}

static gboolean
text_is_blank (const gchar *text)
{
  const gchar *p;

  if (text == NULL)
    return TRUE;
  for (p = text; *p != '\0'; p++) {
    if (!g_ascii_isspace (*p))
      return FALSE;
  }
  return TRUE;
}

/**
 * cp_speech_tts_synthesize:
 * @voice: (nullable): voice name, NULL for the default
 * @text: UTF-8 text to speak
 * @out_rate: (out) (optional): the sample rate of the result
 * @error: return location for an error
 *
 * Speaks @text. Thread-safe.
 *
 * Returns: (transfer full): S16LE mono samples at the voice's rate, or NULL
 * with @error set.
 */
GBytes *
cp_speech_tts_synthesize (const gchar *voice, const gchar *text,
    guint *out_rate, GError **error)
{
  cst_voice *v;
  cst_wave *wave;
  gint16 *samples;
  gsize i, n;
  guint rate;

  if (text_is_blank (text)) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_EMPTY_TEXT,
        "No text to speak: the text is empty");
    return NULL;
  }
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_SYNTHESIS,
        "The text to speak is not valid UTF-8");
    return NULL;
  }
  v = lookup_voice (voice, error);
  if (v == NULL)
    return NULL;

  g_mutex_lock (&synth_lock);
  wave = flite_text_to_wave (text, v);
  if (wave == NULL || wave->num_samples <= 0 || wave->num_channels != 1) {
    g_mutex_unlock (&synth_lock);
    if (wave != NULL)
      delete_wave (wave);
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_SYNTHESIS,
        "flite produced no mono audio for the text \"%.40s\"", text);
    return NULL;
  }
  g_mutex_unlock (&synth_lock);

  n = wave->num_samples;
  rate = wave->sample_rate;
  samples = g_new (gint16, n);
  for (i = 0; i < n; i++)
    samples[i] = GINT16_TO_LE (wave->samples[i]);
  delete_wave (wave);

  if (out_rate != NULL)
    *out_rate = rate;
  return g_bytes_new_take (samples, n * sizeof (gint16));
}

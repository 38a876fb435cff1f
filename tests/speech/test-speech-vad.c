/* Unit tests of the voice activity detector. */
#include "speech/speechvad.h"

#include <math.h>
#include <string.h>

#include "speechtestutil.h"

#define SENTENCE "Can I speak to a customer service agent please"

/* Where the spoken part of @s starts and ends, by a plain level gate. */
static void
speech_extent (const gint16 *s, gsize n, gsize *first, gsize *last)
{
  gsize i;

  *first = *last = 0;
  for (i = 0; i < n; i++) {
    if (ABS (s[i]) > 300) {
      if (*first == 0)
        *first = i;
      *last = i + 1;
    }
  }
}

static GArray *
run_vad (CpSpeechVad *vad, const gint16 *s, gsize n, guint rate)
{
  GArray *events = g_array_new (FALSE, FALSE, sizeof (CpSpeechVadEvent));
  gsize off, chunk = rate / 50;

  /* Uneven chunks: frames must not depend on how the audio is cut. */
  for (off = 0; off < n;
       off += chunk, chunk = chunk == rate / 50 ? 37 : rate / 50)
    cp_speech_vad_process (vad, s + off, MIN (chunk, n - off), events);
  return events;
}

static void
check_sentence_at_rate (guint rate)
{
  g_autofree gint16 *speech = NULL, *audio = NULL;
  g_autoptr (CpSpeechVad) vad = cp_speech_vad_new (rate);
  g_autoptr (GArray) events = NULL;
  CpSpeechVadEvent *start, *end;
  gsize n_speech, n, first, last, lead = rate, tail = 2 * rate;
  gdouble tol = 0.15 * rate;

  speech = cp_test_speak (SENTENCE, rate, &n_speech);
  audio = cp_test_pad (speech, n_speech, lead, tail, -50.0, &n);
  speech_extent (speech, n_speech, &first, &last);
  first += lead;
  last += lead;

  events = run_vad (vad, audio, n, rate);
  g_assert_cmpuint (events->len, ==, 2);
  start = &g_array_index (events, CpSpeechVadEvent, 0);
  end = &g_array_index (events, CpSpeechVadEvent, 1);
  g_test_message ("%u Hz: speech %.2f-%.2f s, VAD %.2f-%.2f s (ended at "
                  "%.2f s)",
      rate, (gdouble) first / rate, (gdouble) last / rate,
      (gdouble) start->sample / rate, (gdouble) end->sample / rate,
      (gdouble) end->detected_at / rate);
  g_assert_cmpint (start->type, ==, CP_SPEECH_VAD_SPEECH_START);
  g_assert_cmpint (end->type, ==, CP_SPEECH_VAD_SPEECH_END);
  g_assert_cmpfloat (fabs ((gdouble) start->sample - first), <, tol);
  g_assert_cmpfloat (fabs ((gdouble) end->sample - last), <, tol);
  g_assert_cmpuint (start->detected_at, >=, start->sample);
  g_assert_cmpuint (end->detected_at, ==,
      end->sample + rate * CP_SPEECH_VAD_DEFAULT_HANGOVER_MS / 1000);
  g_assert_false (cp_speech_vad_in_speech (vad));
}

static void
test_sentence_16k (void)
{
  check_sentence_at_rate (16000);
}

static void
test_sentence_8k (void)
{
  check_sentence_at_rate (8000);
}

static void
test_white_noise_alone (void)
{
  g_autoptr (CpSpeechVad) vad = cp_speech_vad_new (8000);
  g_autofree gint16 *audio = g_new0 (gint16, 8000 * 6);
  g_autoptr (GArray) events = NULL;

  /* Quiet line, then hiss 25 dB louder that stays. */
  cp_test_add_noise (audio, 8000 * 2, -60.0, 1);
  cp_test_add_noise (audio + 8000 * 2, 8000 * 4, -35.0, 2);
  events = run_vad (vad, audio, 8000 * 6, 8000);
  g_assert_cmpuint (events->len, ==, 0);
}

static void
test_hum_alone (void)
{
  g_autoptr (CpSpeechVad) vad = cp_speech_vad_new (16000);
  g_autofree gint16 *audio = g_new0 (gint16, 16000 * 6);
  g_autoptr (GArray) events = NULL;
  gsize i;

  /* A mains hum with its harmonics: voice-like crossings, constant. */
  for (i = 0; i < 16000 * 6; i++) {
    gdouble t = (gdouble) i / 16000;

    audio[i] = 2000 * sin (2 * G_PI * 50 * t) + 800 * sin (2 * G_PI * 150 * t)
        + 300 * sin (2 * G_PI * 250 * t);
  }
  cp_test_add_noise (audio, 16000 * 6, -55.0, 3);
  events = run_vad (vad, audio, 16000 * 6, 16000);
  g_assert_cmpuint (events->len, ==, 0);
}

static gint16 *
spoken_part (const gchar *text, gsize *n)
{
  g_autofree gint16 *speech = NULL;
  gsize n_speech, first, last;

  speech = cp_test_speak (text, 16000, &n_speech);
  speech_extent (speech, n_speech, &first, &last);
  *n = last - first;
  return g_memdup2 (speech + first, *n * sizeof (gint16));
}

/* Two phrases with 400 ms of silence between them: one utterance with the
 * default hangover, two with a short one. */
static void
test_hangover (void)
{
  g_autofree gint16 *a = NULL, *b = NULL, *audio = NULL;
  gsize na, nb, n, gap = 16000 * 4 / 10, lead = 16000;
  guint hangovers[] = {CP_SPEECH_VAD_DEFAULT_HANGOVER_MS, 150};
  guint expected[] = {2, 4};
  guint i;

  a = spoken_part ("Where is my order", &na);
  b = spoken_part ("It was due on Monday", &nb);
  n = lead + na + gap + nb + 16000;
  audio = g_new0 (gint16, n);
  memcpy (audio + lead, a, na * sizeof (gint16));
  memcpy (audio + lead + na + gap, b, nb * sizeof (gint16));
  cp_test_add_noise (audio, n, -55.0, 4);

  for (i = 0; i < G_N_ELEMENTS (hangovers); i++) {
    g_autoptr (CpSpeechVad) vad = cp_speech_vad_new (16000);
    g_autoptr (GArray) events = NULL;

    cp_speech_vad_set_hangover_ms (vad, hangovers[i]);
    events = run_vad (vad, audio, n, 16000);
    g_assert_cmpuint (events->len, ==, expected[i]);
  }
}

/* Low sensitivity ignores a quiet voice the default detects. */
static void
test_sensitivity (void)
{
  g_autofree gint16 *speech = NULL, *audio = NULL;
  g_autoptr (CpSpeechVad) low = cp_speech_vad_new (16000);
  g_autoptr (CpSpeechVad) normal = cp_speech_vad_new (16000);
  g_autoptr (GArray) ev_low = NULL, ev_normal = NULL;
  gsize n_speech, n, i;

  speech = cp_test_speak ("Thank you very much", 16000, &n_speech);
  for (i = 0; i < n_speech; i++)
    speech[i] /= 20;
  audio = cp_test_pad (speech, n_speech, 16000, 16000, -55.0, &n);
  cp_speech_vad_set_sensitivity (low, 0.0);
  ev_low = run_vad (low, audio, n, 16000);
  ev_normal = run_vad (normal, audio, n, 16000);
  g_assert_cmpuint (ev_normal->len, ==, 2);
  g_assert_cmpuint (ev_low->len, <, ev_normal->len);
}

static void
test_reset (void)
{
  g_autofree gint16 *speech = NULL, *audio = NULL;
  g_autoptr (CpSpeechVad) vad = cp_speech_vad_new (16000);
  gsize n_speech, n;
  guint64 first_start;
  GArray *events;

  speech = cp_test_speak ("Where is my order", 16000, &n_speech);
  audio = cp_test_pad (speech, n_speech, 16000, 16000, -55.0, &n);
  events = run_vad (vad, audio, n / 2, 16000);
  g_assert_cmpuint (events->len, >=, 1);
  first_start = g_array_index (events, CpSpeechVadEvent, 0).sample;
  g_array_unref (events);
  cp_speech_vad_reset (vad);
  g_assert_false (cp_speech_vad_in_speech (vad));
  events = run_vad (vad, audio, n, 16000);
  g_assert_cmpuint (events->len, ==, 2);
  g_assert_cmpuint (g_array_index (events, CpSpeechVadEvent, 0).sample, ==,
      first_start);
  g_array_unref (events);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/speech/vad/sentence-16k", test_sentence_16k);
  g_test_add_func ("/speech/vad/sentence-8k", test_sentence_8k);
  g_test_add_func ("/speech/vad/white-noise-alone", test_white_noise_alone);
  g_test_add_func ("/speech/vad/hum-alone", test_hum_alone);
  g_test_add_func ("/speech/vad/hangover", test_hangover);
  g_test_add_func ("/speech/vad/sensitivity", test_sensitivity);
  g_test_add_func ("/speech/vad/reset", test_reset);
  return g_test_run ();
}

/* Unit tests of the flite text to speech engine. */
#include "speech/speechtts.h"

#include <math.h>
#include <string.h>

static gdouble
rms_dbfs (const gint16 *s, gsize n)
{
  gdouble sum = 0.0;
  gsize i;

  for (i = 0; i < n; i++)
    sum += (gdouble) GINT16_FROM_LE (s[i]) * GINT16_FROM_LE (s[i]);
  return 10.0 * log10 (sum / MAX (n, 1) + 1e-9) - 20.0 * log10 (32768.0);
}

static void
test_voices_speak (void)
{
  const gchar *const *voices = cp_speech_tts_list_voices ();
  guint i;

  g_assert_cmpstr (voices[0], ==, CP_SPEECH_TTS_DEFAULT_VOICE);
  for (i = 0; voices[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) audio = NULL;
    const gint16 *samples;
    guint rate = 0;
    gsize size;
    gdouble seconds;

    audio = cp_speech_tts_synthesize (voices[i],
        "Please leave a message after the tone.", &rate, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (rate, ==, cp_speech_tts_voice_rate (voices[i], NULL));
    g_assert_true (rate == 8000 || rate == 16000);
    samples = g_bytes_get_data (audio, &size);
    seconds = (gdouble) size / sizeof (gint16) / rate;
    g_test_message ("%s: %u Hz, %.2f s, %.1f dBFS", voices[i], rate, seconds,
        rms_dbfs (samples, size / 2));
    /* Seven words: about 2 s at a normal speaking rate. */
    g_assert_cmpfloat (seconds, >, 1.2);
    g_assert_cmpfloat (seconds, <, 5.0);
    g_assert_cmpfloat (rms_dbfs (samples, size / 2), >, -35.0);
  }
}

static void
test_default_voice (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) audio = NULL;
  guint rate = 0;

  audio = cp_speech_tts_synthesize (NULL, "Hello.", &rate, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rate, ==, 16000);
  g_assert_cmpuint (cp_speech_tts_voice_rate (NULL, NULL), ==, 16000);
}

static void
test_longer_text_is_longer (void)
{
  g_autoptr (GBytes) a = NULL, b = NULL;

  a = cp_speech_tts_synthesize (NULL, "Hello.", NULL, NULL);
  b = cp_speech_tts_synthesize (NULL,
      "Hello, thank you for calling, how can I help you today?", NULL, NULL);
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpuint (g_bytes_get_size (b), >, 3 * g_bytes_get_size (a));
}

static void
test_unknown_voice (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) audio = NULL;

  audio = cp_speech_tts_synthesize ("hal9000", "Hello.", NULL, &error);
  g_assert_null (audio);
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_UNKNOWN_VOICE);
  g_assert_nonnull (strstr (error->message, "hal9000"));
  g_assert_nonnull (strstr (error->message, "slt"));
  g_clear_error (&error);
  g_assert_cmpuint (cp_speech_tts_voice_rate ("hal9000", &error), ==, 0);
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_UNKNOWN_VOICE);
}

static void
test_empty_text (void)
{
  const gchar *texts[] = {"", "   \n\t", NULL};
  guint i;

  for (i = 0; i < G_N_ELEMENTS (texts); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) audio = NULL;

    audio = cp_speech_tts_synthesize (NULL, texts[i], NULL, &error);
    g_assert_null (audio);
    g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_EMPTY_TEXT);
  }
}

static void
test_invalid_utf8 (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) audio = NULL;

  audio = cp_speech_tts_synthesize (NULL, "caf\xc3", NULL, &error);
  g_assert_null (audio);
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_SYNTHESIS);
}

#define N_THREADS 4
#define TEXT "Your call is important to us. Please stay on the line."

static gpointer
synthesize_thread (gpointer data)
{
  return cp_speech_tts_synthesize (NULL, TEXT, NULL, NULL);
}

/* Concurrent callers get the same audio as a lone caller, up to the noise
 * flite draws from rand(). */
static void
test_threads (void)
{
  g_autoptr (GBytes) expected = NULL;
  GThread *threads[N_THREADS];
  guint i;

  expected = cp_speech_tts_synthesize (NULL, TEXT, NULL, NULL);
  g_assert_nonnull (expected);
  for (i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("tts", synthesize_thread, NULL);
  for (i = 0; i < N_THREADS; i++) {
    g_autoptr (GBytes) got = g_thread_join (threads[i]);

    g_assert_nonnull (got);
    g_assert_cmpuint (g_bytes_get_size (got), ==, g_bytes_get_size (expected));
    g_assert_cmpfloat (fabs (rms_dbfs (g_bytes_get_data (got, NULL),
                                 g_bytes_get_size (got) / 2)
                           - rms_dbfs (g_bytes_get_data (expected, NULL),
                               g_bytes_get_size (expected) / 2)),
        <, 1.0);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/speech/tts/voices-speak", test_voices_speak);
  g_test_add_func ("/speech/tts/default-voice", test_default_voice);
  g_test_add_func ("/speech/tts/longer-text", test_longer_text_is_longer);
  g_test_add_func ("/speech/tts/unknown-voice", test_unknown_voice);
  g_test_add_func ("/speech/tts/empty-text", test_empty_text);
  g_test_add_func ("/speech/tts/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/speech/tts/threads", test_threads);
  return g_test_run ();
}

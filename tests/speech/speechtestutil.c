#include "speechtestutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "speech/speechtts.h"

const gchar *const cp_test_sentences[] = {
    "I would like to check my account balance",
    "My credit card was stolen yesterday",
    "Can I speak to a customer service agent please",
    "Where is my order",
    "I want to cancel my subscription",
    "The payment did not go through",
    "Please send me a new card",
    "I need to change my address",
    "What time do you open tomorrow",
    "Thank you very much goodbye",
    NULL,
};

/* The model-rate speech of @text by the default voice, resampled to
 * @rate (16000 or 8000). */
gint16 *
cp_test_speak (const gchar *text, guint rate, gsize *n_samples)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) audio = NULL;
  const gint16 *data;
  gsize size, i, n;
  guint voice_rate;
  gint16 *out;

  /* flite draws its excitation noise from rand(): seed it so that every
   * run tests the same audio. */
  srand (1);
  audio = cp_speech_tts_synthesize (NULL, text, &voice_rate, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (voice_rate, ==, 16000);
  data = g_bytes_get_data (audio, &size);
  n = size / sizeof (gint16);
  out = g_new (gint16, n);
  for (i = 0; i < n; i++)
    out[i] = GINT16_FROM_LE (data[i]);
  if (rate == 8000) {
    gint16 *half = cp_test_decimate_by_two (out, n, n_samples);

    g_free (out);
    return half;
  }
  g_assert_cmpuint (rate, ==, 16000);
  *n_samples = n;
  return out;
}

#define DECIMATE_TAPS 63

/* A telephone-like 16 -> 8 kHz: windowed-sinc low-pass at 3.7 kHz. */
gint16 *
cp_test_decimate_by_two (const gint16 *in, gsize n_in, gsize *n_out)
{
  gdouble taps[DECIMATE_TAPS], sum = 0.0;
  const gint half = DECIMATE_TAPS / 2;
  gint16 *out;
  gsize i;
  gint k;

  for (k = 0; k < DECIMATE_TAPS; k++) {
    gdouble t = k - half;
    gdouble fc = 3700.0 / 16000.0;
    gdouble w = 0.42 - 0.5 * cos (2 * G_PI * k / (DECIMATE_TAPS - 1))
        + 0.08 * cos (4 * G_PI * k / (DECIMATE_TAPS - 1));

    taps[k] = (t == 0 ? 2 * fc : sin (2 * G_PI * fc * t) / (G_PI * t)) * w;
    sum += taps[k];
  }
  *n_out = n_in / 2;
  out = g_new (gint16, *n_out);
  for (i = 0; i < *n_out; i++) {
    gdouble acc = 0.0;

    for (k = 0; k < DECIMATE_TAPS; k++) {
      gint64 j = (gint64) (2 * i) + k - half;

      if (j >= 0 && j < (gint64) n_in)
        acc += taps[k] / sum * in[j];
    }
    out[i] = CLAMP (lrint (acc), G_MININT16, G_MAXINT16);
  }
  return out;
}

/* Adds white noise at @noise_dbfs (RMS), deterministic for @seed. */
void
cp_test_add_noise (gint16 *samples, gsize n, gdouble noise_dbfs, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  gdouble amp = 32768.0 * pow (10.0, noise_dbfs / 20.0) * sqrt (3.0);
  gsize i;

  for (i = 0; i < n; i++) {
    gdouble v = samples[i] + amp * g_rand_double_range (rand, -1.0, 1.0);

    samples[i] = CLAMP (lrint (v), G_MININT16, G_MAXINT16);
  }
}

gint16 *
cp_test_pad (const gint16 *in, gsize n_in, gsize lead, gsize tail,
    gdouble noise_dbfs, gsize *n_out)
{
  gint16 *out;

  *n_out = lead + n_in + tail;
  out = g_new0 (gint16, *n_out);
  memcpy (out + lead, in, n_in * sizeof (gint16));
  cp_test_add_noise (out, *n_out, noise_dbfs, 42);
  return out;
}

static GStrv
normalized_words (const gchar *text)
{
  g_autofree gchar *lower = g_ascii_strdown (text, -1);
  g_auto (GStrv) tokens = NULL;
  GPtrArray *words = g_ptr_array_new ();
  gchar *p;
  guint i;

  for (p = lower; *p != '\0'; p++) {
    if (!g_ascii_isalnum (*p) && *p != '\'')
      *p = ' ';
  }
  tokens = g_strsplit (lower, " ", -1);
  for (i = 0; tokens[i] != NULL; i++) {
    if (tokens[i][0] != '\0')
      g_ptr_array_add (words, g_strdup (tokens[i]));
  }
  g_ptr_array_add (words, NULL);
  return (GStrv) g_ptr_array_free (words, FALSE);
}

/* Returns the word-level edit distance between @reference and
 * @hypothesis; divide by @n_ref_words for the WER. */
gdouble
cp_test_word_errors (const gchar *reference, const gchar *hypothesis,
    guint *n_ref_words)
{
  g_auto (GStrv) ref = normalized_words (reference);
  g_auto (GStrv) hyp = normalized_words (hypothesis ? hypothesis : "");
  guint nr = g_strv_length (ref), nh = g_strv_length (hyp);
  g_autofree guint *d = g_new (guint, (nr + 1) * (nh + 1));
  guint i, j;

  for (i = 0; i <= nr; i++)
    d[i * (nh + 1)] = i;
  for (j = 0; j <= nh; j++)
    d[j] = j;
  for (i = 1; i <= nr; i++) {
    for (j = 1; j <= nh; j++) {
      guint sub = d[(i - 1) * (nh + 1) + j - 1]
          + (g_strcmp0 (ref[i - 1], hyp[j - 1]) != 0);
      guint del = d[(i - 1) * (nh + 1) + j] + 1;
      guint ins = d[i * (nh + 1) + j - 1] + 1;

      d[i * (nh + 1) + j] = MIN (sub, MIN (del, ins));
    }
  }
  *n_ref_words = nr;
  return d[nr * (nh + 1) + nh];
}

#ifdef __SANITIZE_ADDRESS__
/* pocketsphinx and sphinxbase are built without frame pointers: without
 * the slow unwinder leak stacks stop inside them and tests/lsan.supp
 * cannot name the sphinxbase function that leaks. Eight frames reach it
 * and keep the slow unwinder affordable. */
const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0:malloc_context_size=8";
}
#endif

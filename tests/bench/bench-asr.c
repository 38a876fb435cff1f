/* Offline ASR benchmark: word error rate, real-time factor and the
 * end-of-utterance to final-result latency on the flite-spoken sentence
 * set, at 16 kHz and at 8 kHz through each front-end. Prints one table. */
#include <stdio.h>
#include <string.h>

#include "speech/speechasr.h"
#include "speechtestutil.h"

#define CHUNK_MS 20
#define LEAD_MS 500
#define TAIL_MS 1000
#define NOISE_DBFS (-60.0)

typedef struct
{
  const gchar *name;
  guint rate;
  CpSpeechFrontend frontend;
  gboolean grammar;
} Config;

typedef struct
{
  gdouble errors;
  guint words;
  gdouble audio_s;
  gdouble cpu_s;
  gdouble eou_sum_ms;
  gdouble eou_max_ms;
  guint n_eou;
} Row;

static gint16 *
sentence_audio (guint index, guint rate, gsize *n)
{
  g_autofree gint16 *speech = NULL;
  gsize n_speech;

  speech = cp_test_speak (cp_test_sentences[index], rate, &n_speech);
  return cp_test_pad (speech, n_speech, rate * LEAD_MS / 1000,
      rate * TAIL_MS / 1000, NOISE_DBFS, n);
}

static void
run_sentence (CpSpeechModel *model, const Config *c, guint index, Row *row)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GString) text = g_string_new (NULL);
  g_autofree gint16 *audio = NULL;
  gsize n, off, chunk = c->rate * CHUNK_MS / 1000;
  guint n_ref;

  audio = sentence_audio (index, c->rate, &n);
  rec = cp_speech_recognizer_new (model, c->rate, &error);
  g_assert_no_error (error);
  cp_speech_recognizer_set_frontend (rec, c->frontend);
  if (c->grammar) {
    cp_speech_recognizer_set_phrases (rec, cp_test_sentences, &error);
    g_assert_no_error (error);
  }

  for (off = 0; off <= n; off += chunk) {
    gint64 t0 = g_get_monotonic_time (), dt;
    gboolean final = FALSE;
    CpSpeechResult *r;

    if (off < n)
      cp_speech_recognizer_process (rec, audio + off, MIN (chunk, n - off),
          &error);
    else
      cp_speech_recognizer_flush (rec, &error);
    g_assert_no_error (error);
    dt = g_get_monotonic_time () - t0;
    row->cpu_s += dt / 1e6;
    while ((r = cp_speech_recognizer_pop_result (rec)) != NULL) {
      if (!r->is_partial) {
        final = TRUE;
        g_string_append_printf (text, "%s%s", text->len ? " " : "", r->text);
      }
      cp_speech_result_free (r);
    }
    if (final && off < n) {
      row->eou_sum_ms += dt / 1e3;
      row->eou_max_ms = MAX (row->eou_max_ms, dt / 1e3);
      row->n_eou++;
    }
  }
  row->errors +=
      cp_test_word_errors (cp_test_sentences[index], text->str, &n_ref);
  row->words += n_ref;
  row->audio_s += (gdouble) n / c->rate;
  if (g_getenv ("BENCH_VERBOSE"))
    g_printerr ("%-28s | %s\n", c->name, text->str);
}

int
main (int argc, char **argv)
{
  static const Config configs[] = {
      {"16 kHz (reference)", 16000, CP_SPEECH_FRONTEND_CLEAN, FALSE},
      {"8 kHz clean upsampling", 8000, CP_SPEECH_FRONTEND_CLEAN, FALSE},
      {"8 kHz folded image g=0.4", 8000, CP_SPEECH_FRONTEND_FOLD, FALSE},
      {"8 kHz sample repetition", 8000, CP_SPEECH_FRONTEND_REPEAT, FALSE},
      {"16 kHz grammar (10 phrases)", 16000, CP_SPEECH_FRONTEND_CLEAN, TRUE},
      {"8 kHz clean + grammar", 8000, CP_SPEECH_FRONTEND_CLEAN, TRUE},
      {"8 kHz repetition + grammar", 8000, CP_SPEECH_FRONTEND_REPEAT, TRUE},
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechModel) model = NULL;
  const gchar *only = argc > 1 ? argv[1] : NULL;
  gint64 t0, load_us, reuse_us;
  guint i, s;

  model = cp_speech_model_new (NULL, &error);
  g_assert_no_error (error);
  t0 = g_get_monotonic_time ();
  cp_speech_model_preload (model, 1, &error);
  g_assert_no_error (error);
  load_us = g_get_monotonic_time () - t0;
  t0 = g_get_monotonic_time ();
  cp_speech_recognizer_free (cp_speech_recognizer_new (model, 16000, NULL));
  reuse_us = g_get_monotonic_time () - t0;

  printf ("Offline ASR (pocketsphinx 5prealpha, Debian en-us model), "
          "%u flite slt sentences\n",
      g_strv_length ((gchar **) cp_test_sentences));
  printf ("model load (first decoder): %.0f ms; recognizer from the pool: "
          "%.2f ms\n",
      load_us / 1e3, reuse_us / 1e3);
  printf ("audio fed in %d ms chunks; EOU latency = CPU time of the chunk "
          "that ends the utterance (after the VAD hangover of %d ms)\n\n",
      CHUNK_MS, CP_SPEECH_VAD_DEFAULT_HANGOVER_MS);
  printf ("| %-28s | %5s | %6s | %5s | %13s |\n", "input / front-end", "WER",
      "errors", "RTF", "EOU ms avg/max");
  printf ("|------------------------------|-------|--------|-------|"
          "----------------|\n");
  for (i = 0; i < G_N_ELEMENTS (configs); i++) {
    Row row = {0};

    if (only != NULL && strstr (configs[i].name, only) == NULL)
      continue;
    for (s = 0; cp_test_sentences[s] != NULL; s++)
      run_sentence (model, &configs[i], s, &row);
    printf ("| %-28s | %5.2f | %2.0f/%-3u | %5.3f | %6.1f/%-6.1f |\n",
        configs[i].name, row.errors / row.words, row.errors, row.words,
        row.cpu_s / row.audio_s, row.n_eou ? row.eou_sum_ms / row.n_eou : 0.0,
        row.eou_max_ms);
    fflush (stdout);
  }
  return 0;
}

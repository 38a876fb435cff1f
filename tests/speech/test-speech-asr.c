/* Unit tests of the pocketsphinx recognizer on flite-spoken sentences. */
#include "speech/speechasr.h"

#include <string.h>

#include "speechtestutil.h"

#define LEAD_S 1
#define TAIL_S 1

static CpSpeechModel *model;

/* Feeds @audio in 20 ms chunks, flushes, returns all results in order. */
static GPtrArray *
recognize (CpSpeechRecognizer *rec, const gint16 *audio, gsize n, guint rate)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *results =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_speech_result_free);
  gsize off, chunk = rate / 50;
  CpSpeechResult *r;

  for (off = 0; off < n; off += chunk) {
    g_assert_true (cp_speech_recognizer_process (rec, audio + off,
        MIN (chunk, n - off), &error));
    g_assert_no_error (error);
    while ((r = cp_speech_recognizer_pop_result (rec)) != NULL)
      g_ptr_array_add (results, r);
  }
  g_assert_true (cp_speech_recognizer_flush (rec, &error));
  g_assert_no_error (error);
  while ((r = cp_speech_recognizer_pop_result (rec)) != NULL)
    g_ptr_array_add (results, r);
  return results;
}

static gchar *
final_text (GPtrArray *results)
{
  g_autoptr (GString) text = g_string_new (NULL);
  guint i;

  for (i = 0; i < results->len; i++) {
    CpSpeechResult *r = g_ptr_array_index (results, i);

    if (!r->is_partial && r->text[0] != '\0')
      g_string_append_printf (text, "%s%s", text->len ? " " : "", r->text);
  }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static gint16 *
padded_sentence (const gchar *text, guint rate, gsize *n)
{
  g_autofree gint16 *speech = NULL;
  gsize n_speech;

  speech = cp_test_speak (text, rate, &n_speech);
  return cp_test_pad (speech, n_speech, LEAD_S * rate, TAIL_S * rate, -60.0, n);
}

static gdouble
sentence_set_wer (guint rate, guint n_sentences)
{
  gdouble errors = 0.0;
  guint words = 0, i;

  for (i = 0; cp_test_sentences[i] != NULL && i < n_sentences; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (CpSpeechRecognizer) rec = NULL;
    g_autoptr (GPtrArray) results = NULL;
    g_autofree gint16 *audio = NULL;
    g_autofree gchar *text = NULL;
    gsize n;
    guint n_ref;

    audio = padded_sentence (cp_test_sentences[i], rate, &n);
    rec = cp_speech_recognizer_new (model, rate, &error);
    g_assert_no_error (error);
    results = recognize (rec, audio, n, rate);
    text = final_text (results);
    errors += cp_test_word_errors (cp_test_sentences[i], text, &n_ref);
    words += n_ref;
    g_test_message ("%u Hz: \"%s\" -> \"%s\"", rate, cp_test_sentences[i],
        text);
  }
  g_test_message ("%u Hz: WER %.2f (%.0f/%u)", rate, errors / words, errors,
      words);
  return errors / words;
}

static void
test_sentences_16k (void)
{
  g_assert_cmpfloat (sentence_set_wer (16000, G_MAXUINT), <=, 0.25);
}

/* Telephone audio through the default front-end, on half the set to keep
 * the suite short; tests/bench/bench-asr measures the whole set. */
static void
test_sentences_8k (void)
{
  g_assert_cmpfloat (sentence_set_wer (8000, 5), <=, 0.75);
}

static void
test_words_and_timings (void)
{
  const gchar *sentence = cp_test_sentences[2];
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autofree gint16 *audio = NULL;
  CpSpeechResult *final = NULL;
  gboolean saw_partial = FALSE;
  gdouble duration, prev_end = 0.0;
  gsize n;
  guint i, n_ref;

  audio = padded_sentence (sentence, 16000, &n);
  duration = (gdouble) n / 16000;
  rec = cp_speech_recognizer_new (model, 16000, &error);
  g_assert_no_error (error);
  results = recognize (rec, audio, n, 16000);

  for (i = 0; i < results->len; i++) {
    CpSpeechResult *r = g_ptr_array_index (results, i);

    g_assert_cmpuint (r->utterance, ==, 0);
    if (r->is_partial) {
      g_assert_null (final);
      g_assert_cmpuint (r->words->len, ==, 0);
      g_assert_cmpstr (r->text, !=, "");
      saw_partial = TRUE;
    } else {
      g_assert_null (final);
      final = r;
    }
  }
  g_assert_true (saw_partial);
  g_assert_nonnull (final);
  g_assert_cmpfloat (cp_test_word_errors (sentence, final->text, &n_ref)
          / n_ref,
      <=, 0.25);
  g_assert_cmpuint (final->words->len, >=, n_ref - 2);
  g_assert_cmpfloat (final->confidence, >, 0.0);
  g_assert_cmpfloat (final->confidence, <=, 1.0);

  for (i = 0; i < final->words->len; i++) {
    CpSpeechWord *w = &g_array_index (final->words, CpSpeechWord, i);

    g_test_message ("%-10s %.2f-%.2f conf %.2f", w->text, w->start, w->end,
        w->confidence);
    g_assert_true (w->text[0] != '<' && w->text[0] != '[');
    g_assert_null (strchr (w->text, '('));
    g_assert_cmpfloat (w->start, <, w->end);
    g_assert_cmpfloat (w->start, >=, prev_end - 0.011);
    g_assert_cmpfloat (w->confidence, >=, 0.0);
    g_assert_cmpfloat (w->confidence, <=, 1.0);
    prev_end = w->end;
  }
  /* The words lie within the spoken part, after the lead-in silence. */
  g_assert_cmpfloat (g_array_index (final->words, CpSpeechWord, 0).start, >,
      LEAD_S - 0.3);
  g_assert_cmpfloat (prev_end, <, duration - TAIL_S + 0.3);
  g_assert_cmpfloat (final->start, <=,
      g_array_index (final->words, CpSpeechWord, 0).start);
  g_assert_cmpfloat (final->end, >=, prev_end);
}

/* Two sentences in one stream: two final results in order. */
static void
test_two_utterances (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autofree gint16 *a = NULL, *b = NULL, *audio = NULL;
  gsize na, nb, n;
  CpSpeechResult *finals[2] = {NULL, NULL};
  guint i, n_finals = 0;

  a = padded_sentence ("Where is my order", 16000, &na);
  b = padded_sentence ("Please send me a new card", 16000, &nb);
  n = na + nb;
  audio = g_new (gint16, n);
  memcpy (audio, a, na * sizeof (gint16));
  memcpy (audio + na, b, nb * sizeof (gint16));

  rec = cp_speech_recognizer_new (model, 16000, &error);
  g_assert_no_error (error);
  results = recognize (rec, audio, n, 16000);
  for (i = 0; i < results->len; i++) {
    CpSpeechResult *r = g_ptr_array_index (results, i);

    if (!r->is_partial) {
      g_assert_cmpuint (n_finals, <, 2);
      finals[n_finals++] = r;
    }
  }
  g_assert_cmpuint (n_finals, ==, 2);
  g_assert_cmpuint (finals[0]->utterance, <, finals[1]->utterance);
  g_assert_cmpfloat (finals[0]->end, <=, finals[1]->start);
  g_assert_cmpfloat (finals[1]->start, >, (gdouble) na / 16000);
  g_assert_nonnull (strstr (finals[0]->text, "order"));
  g_assert_nonnull (strstr (finals[1]->text, "card"));
}

static const gchar *const ivr_phrases[] = {
    "check my balance",
    "report a lost card",
    "talk to an agent",
    "goodbye",
    NULL,
};

/* An IVR menu at telephone rate: each answer maps to its phrase. */
static void
test_phrases_8k (void)
{
  guint i;

  for (i = 0; ivr_phrases[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (CpSpeechRecognizer) rec = NULL;
    g_autoptr (GPtrArray) results = NULL;
    g_autofree gint16 *audio = NULL;
    g_autofree gchar *text = NULL;
    gsize n;

    rec = cp_speech_recognizer_new (model, 8000, &error);
    g_assert_no_error (error);
    g_assert_true (cp_speech_recognizer_set_phrases (rec, ivr_phrases, &error));
    g_assert_no_error (error);
    audio = padded_sentence (ivr_phrases[i], 8000, &n);
    results = recognize (rec, audio, n, 8000);
    text = final_text (results);
    g_assert_cmpstr (text, ==, ivr_phrases[i]);
  }
}

static void
test_jsgf_grammar (void)
{
  const gchar *jsgf = "#JSGF V1.0;\ngrammar menu;\n"
                      "public <answer> = (yes | no) [please];\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autofree gint16 *audio = NULL;
  g_autofree gchar *text = NULL;
  gsize n;

  rec = cp_speech_recognizer_new (model, 16000, &error);
  g_assert_no_error (error);
  g_assert_true (cp_speech_recognizer_set_grammar (rec, jsgf, &error));
  g_assert_no_error (error);
  audio = padded_sentence ("No please", 16000, &n);
  results = recognize (rec, audio, n, 16000);
  text = final_text (results);
  g_assert_cmpstr (text, ==, "no please");
}

/* A pooled decoder comes back without the previous user's grammar. */
static void
test_pool_forgets_grammar (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autofree gint16 *audio = NULL;
  g_autofree gchar *text = NULL;
  CpSpeechRecognizer *rec;
  gsize n;
  guint n_ref;

  rec = cp_speech_recognizer_new (model, 16000, &error);
  g_assert_no_error (error);
  g_assert_true (cp_speech_recognizer_set_phrases (rec, ivr_phrases, &error));
  cp_speech_recognizer_free (rec);

  rec = cp_speech_recognizer_new (model, 16000, &error);
  g_assert_no_error (error);
  audio = padded_sentence (cp_test_sentences[6], 16000, &n);
  results = recognize (rec, audio, n, 16000);
  text = final_text (results);
  g_assert_cmpfloat (cp_test_word_errors (cp_test_sentences[6], text, &n_ref),
      <=, 1);
  cp_speech_recognizer_free (rec);
}

static void
test_bad_inputs (void)
{
  static const gchar *const unknown_word[] = {"talk to an xqzzyv", NULL};
  static const gchar *const bad_char[] = {"press 1", NULL};
  static const gchar *const none[] = {NULL};
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (CpSpeechModel) missing = NULL;

  g_assert_null (cp_speech_recognizer_new (model, 44100, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_RATE);
  g_assert_nonnull (strstr (error->message, "44100"));
  g_clear_error (&error);

  missing = cp_speech_model_new ("/nonexistent/model", &error);
  g_assert_null (missing);
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL);
  g_assert_nonnull (strstr (error->message, "/nonexistent/model"));
  g_clear_error (&error);

  rec = cp_speech_recognizer_new (model, 16000, &error);
  g_assert_no_error (error);
  g_assert_false (cp_speech_recognizer_set_phrases (rec, unknown_word, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_assert_nonnull (strstr (error->message, "xqzzyv"));
  g_clear_error (&error);
  g_assert_false (cp_speech_recognizer_set_phrases (rec, bad_char, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_clear_error (&error);
  g_assert_false (cp_speech_recognizer_set_phrases (rec, none, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_clear_error (&error);
  g_assert_false (cp_speech_recognizer_set_grammar (rec,
      "#JSGF V1.0;\ngrammar broken;\npublic <a> = (yes | ;\n", &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
}

/* Every phrase a grammar-only model is made for: the IVR menu and the
 * words of the digit grammar. */
static const gchar *const menu_vocabulary[] = {
    "check my balance",
    "report a lost card",
    "talk to an agent",
    "goodbye",
    "oh zero one two three four five six seven eight nine",
    "yes no please",
    NULL,
};

static const gchar *const digits_jsgf =
    "#JSGF V1.0;\ngrammar digits;\n"
    "public <number> = <digit> <digit> <digit> [<digit>] [<digit>];\n"
    "<digit> = oh | zero | one | two | three | four | five | six | seven | "
    "eight | nine;\n";

static const gchar *const numbers[] = {
    "one two three four five",
    "two zero one nine",
    "four four four",
    "five four three two one",
    NULL,
};

/* Digit strings, then the menu phrases, at @rate through one recognizer
 * of @m: the final results in order. */
static GPtrArray *
recognize_digits_and_menu (CpSpeechModel *m, guint rate)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  GPtrArray *finals =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_speech_result_free);
  guint i, k;

  rec = cp_speech_recognizer_new (m, rate, &error);
  g_assert_no_error (error);
  for (k = 0; k < 2; k++) {
    const gchar *const *said = k == 0 ? numbers : ivr_phrases;

    if (k == 0)
      cp_speech_recognizer_set_grammar (rec, digits_jsgf, &error);
    else
      cp_speech_recognizer_set_phrases (rec, ivr_phrases, &error);
    g_assert_no_error (error);
    for (i = 0; said[i] != NULL; i++) {
      g_autoptr (GPtrArray) results = NULL;
      g_autofree gint16 *audio = NULL;
      gsize n;

      audio = padded_sentence (said[i], rate, &n);
      results = recognize (rec, audio, n, rate);
      while (results->len > 0) {
        CpSpeechResult *r = g_ptr_array_steal_index (results, 0);

        if (r->is_partial)
          cp_speech_result_free (r);
        else
          g_ptr_array_add (finals, r);
      }
    }
  }
  return finals;
}

/* A grammar-only model recognizes its phrases and JSGF grammars exactly
 * as the full model does: same words, times and confidences, utterance
 * after utterance (fresh models on both sides: a decoder's cepstral mean
 * follows what it heard). */
static void
test_grammar_only_same_results (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechModel) full = NULL, grammar = NULL;
  g_autoptr (GPtrArray) expected = NULL, got = NULL;
  guint i, j, n_numbers = g_strv_length ((gchar **) numbers);

  full = cp_speech_model_new (NULL, &error);
  g_assert_no_error (error);
  grammar = cp_speech_model_new_grammar (NULL, menu_vocabulary, &error);
  g_assert_no_error (error);
  g_assert_nonnull (grammar);

  expected = recognize_digits_and_menu (full, 8000);
  got = recognize_digits_and_menu (grammar, 8000);
  g_assert_cmpuint (got->len, ==,
      n_numbers + g_strv_length ((gchar **) ivr_phrases));
  g_assert_cmpuint (got->len, ==, expected->len);
  for (i = 0; i < got->len; i++) {
    CpSpeechResult *a = g_ptr_array_index (expected, i);
    CpSpeechResult *b = g_ptr_array_index (got, i);

    g_test_message ("full \"%s\" %.3f, grammar-only \"%s\" %.3f", a->text,
        a->confidence, b->text, b->confidence);
    g_assert_cmpstr (b->text, ==, a->text);
    g_assert_cmpfloat (b->confidence, ==, a->confidence);
    g_assert_cmpfloat (b->start, ==, a->start);
    g_assert_cmpfloat (b->end, ==, a->end);
    g_assert_cmpuint (b->words->len, ==, a->words->len);
    for (j = 0; j < b->words->len; j++) {
      CpSpeechWord *wa = &g_array_index (a->words, CpSpeechWord, j);
      CpSpeechWord *wb = &g_array_index (b->words, CpSpeechWord, j);

      g_assert_cmpfloat (wb->start, ==, wa->start);
      g_assert_cmpfloat (wb->end, ==, wa->end);
      g_assert_cmpfloat (wb->confidence, ==, wa->confidence);
    }
  }
  /* And right where the full model is: the menu at telephone rate. */
  g_assert_cmpstr (((CpSpeechResult *) g_ptr_array_index (got, 1))->text, ==,
      numbers[1]);
  for (i = 0; ivr_phrases[i] != NULL; i++) {
    CpSpeechResult *r = g_ptr_array_index (got, n_numbers + i);

    g_assert_cmpstr (r->text, ==, ivr_phrases[i]);
  }
}

/* A word outside the dictionary is refused when the model is made; a
 * dictionary word outside the vocabulary, when a grammar is set. */
static void
test_grammar_only_vocabulary (void)
{
  static const gchar *const unknown_word[] = {"goodbye", "talk to an xqzzyv",
      NULL};
  static const gchar *const bad_char[] = {"press 1", NULL};
  static const gchar *const none[] = {NULL};
  static const gchar *const outside[] = {"check my account", NULL};
  const gchar *outside_jsgf =
      "#JSGF V1.0;\ngrammar g;\npublic <a> = yes | maybe;\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechModel) grammar = NULL, broken = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autofree gint16 *audio = NULL;
  g_autofree gchar *text = NULL;
  gsize n;

  broken = cp_speech_model_new_grammar (NULL, unknown_word, &error);
  g_assert_null (broken);
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message,
      "The word \"xqzzyv\" of the phrase \"talk to an xqzzyv\" is not in the "
      "pronunciation dictionary"));
  g_clear_error (&error);
  g_assert_null (cp_speech_model_new_grammar (NULL, bad_char, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_assert_nonnull (strstr (error->message, "\"1\""));
  g_clear_error (&error);
  g_assert_null (cp_speech_model_new_grammar (NULL, none, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_clear_error (&error);
  g_assert_null (cp_speech_model_get_grammar (unknown_word, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_assert_nonnull (strstr (error->message, "xqzzyv"));
  g_clear_error (&error);
  g_assert_null (cp_speech_model_new_grammar ("/nonexistent/model",
      menu_vocabulary, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL);
  g_clear_error (&error);

  grammar = cp_speech_model_new_grammar (NULL, menu_vocabulary, &error);
  g_assert_no_error (error);
  rec = cp_speech_recognizer_new (grammar, 16000, &error);
  g_assert_no_error (error);
  /* "account" is an English word, but not one of the model's. */
  g_assert_false (cp_speech_recognizer_set_phrases (rec, outside, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message,
      "The word \"account\" of the phrase \"check my account\" is not in the "
      "vocabulary"));
  g_clear_error (&error);
  g_assert_false (cp_speech_recognizer_set_grammar (rec, outside_jsgf, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "maybe"));
  g_clear_error (&error);

  /* No grammar yet: speech is an error, not a guess. */
  audio = padded_sentence ("yes please", 16000, &n);
  g_assert_false (cp_speech_recognizer_process (rec, audio, n, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_clear_error (&error);
  g_clear_pointer (&rec, cp_speech_recognizer_free);

  /* A refused grammar keeps the previous one. */
  rec = cp_speech_recognizer_new (grammar, 16000, &error);
  g_assert_no_error (error);
  g_assert_true (cp_speech_recognizer_set_grammar (rec,
      "#JSGF V1.0;\ngrammar g;\npublic <a> = (yes | no) [please];\n", &error));
  g_assert_false (cp_speech_recognizer_set_phrases (rec, outside, &error));
  g_clear_error (&error);
  results = recognize (rec, audio, n, 16000);
  text = final_text (results);
  g_assert_cmpstr (text, ==, "yes please");
}

/* The shared grammar-only models: one per set of words, whatever the
 * phrases; the last few kept. */
static void
test_grammar_only_shared (void)
{
  static const gchar *const a1[] = {"check my balance", "goodbye", NULL};
  static const gchar *const a2[] = {"goodbye", "my balance", "check", NULL};
  static const gchar *const others[][2] = {{"yes", NULL}, {"no", NULL},
      {"agent", NULL}, {"card", NULL}, {"please", NULL}};
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechModel) m1 = NULL, m2 = NULL, m3 = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  guint i;

  m1 = cp_speech_model_get_grammar (a1, &error);
  g_assert_no_error (error);
  m2 = cp_speech_model_get_grammar (a2, &error);
  g_assert_no_error (error);
  g_assert_true (m1 == m2);
  /* Recognizers of it take any phrase of those words. */
  rec = cp_speech_recognizer_new (m2, 8000, &error);
  g_assert_no_error (error);
  g_assert_true (cp_speech_recognizer_set_phrases (rec, a2, &error));
  g_assert_no_error (error);

  for (i = 0; i < G_N_ELEMENTS (others); i++) {
    g_autoptr (CpSpeechModel) other =
        cp_speech_model_get_grammar (others[i], &error);

    g_assert_no_error (error);
    g_assert_true (other != m1);
  }
  /* Five other vocabularies since: no longer kept; m1 is still ours. */
  m3 = cp_speech_model_get_grammar (a1, &error);
  g_assert_no_error (error);
  g_assert_true (m3 != m1);
}

/* Silence and noise alone give no result at all. */
static void
test_no_speech (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autofree gint16 *audio = g_new0 (gint16, 8000 * 3);

  cp_test_add_noise (audio, 8000 * 3, -45.0, 7);
  rec = cp_speech_recognizer_new (model, 8000, &error);
  g_assert_no_error (error);
  results = recognize (rec, audio, 8000 * 3, 8000);
  g_assert_cmpuint (results->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  model = cp_speech_model_new (NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/speech/asr/sentences-16k", test_sentences_16k);
  g_test_add_func ("/speech/asr/sentences-8k", test_sentences_8k);
  g_test_add_func ("/speech/asr/words-and-timings", test_words_and_timings);
  g_test_add_func ("/speech/asr/two-utterances", test_two_utterances);
  g_test_add_func ("/speech/asr/phrases-8k", test_phrases_8k);
  g_test_add_func ("/speech/asr/jsgf-grammar", test_jsgf_grammar);
  g_test_add_func ("/speech/asr/pool-forgets-grammar",
      test_pool_forgets_grammar);
  g_test_add_func ("/speech/asr/bad-inputs", test_bad_inputs);
  g_test_add_func ("/speech/asr/no-speech", test_no_speech);
  g_test_add_func ("/speech/asr/grammar-only/same-results",
      test_grammar_only_same_results);
  g_test_add_func ("/speech/asr/grammar-only/vocabulary",
      test_grammar_only_vocabulary);
  g_test_add_func ("/speech/asr/grammar-only/shared", test_grammar_only_shared);
  ret = g_test_run ();
  cp_speech_model_unref (model);
  return ret;
}

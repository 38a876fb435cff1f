/* Offline streaming speech recognition with pocketsphinx 5prealpha.
 *
 * The 5prealpha API cannot share an acoustic model between decoders, and a
 * decoder serves one stream at a time, so a model keeps a pool of loaded
 * decoders: the load cost (seconds, mostly the dictionary and language
 * model) is paid once per concurrent stream, not once per call.
 *
 * Utterances are cut by our own VAD rather than by pocketsphinx's, so that
 * word times map exactly onto the input: the decoder only ever sees the
 * audio of one utterance, starting a little before the detected onset. */
#include "speech/speechasr.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <pocketsphinx.h>
#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/err.h>
#include <sphinxbase/fsg_model.h>
#pragma GCC diagnostic pop

#define G_LOG_DOMAIN_SPHINX "cp-speech-sphinx"

#define MODEL_RATE 16000
#define FRAMES_PER_SECOND 100
#define MAX_IDLE_DECODERS 8
#define GRAMMAR_SEARCH "cp-grammar"
/* Grammar-only models cp_speech_model_get_grammar() keeps alive, each with
 * its decoder pool, for the vocabularies asked for most recently. */
#define GRAMMAR_MODELS_KEPT 4
/* pocketsphinx 5prealpha makes the feature buffer growable only when it
 * builds a language-model search, and the buffer's layout decides where
 * the live cepstral mean is updated: a grammar-only decoder loads this
 * empty language model (then drops its search) so that it scores exactly
 * as a full model's decoder does. */
#define PLACEHOLDER_SEARCH "cp-placeholder"
#define PLACEHOLDER_LM \
  "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3010 </s>\n-99 <s>\n\n\\end\\\n"
/* Audio kept before the VAD's onset: weak initial consonants precede the
 * frames the VAD scores as speech. */
#define ONSET_PAD_MS 250
#define PREROLL_MS 1500
#define DEFAULT_PARTIAL_INTERVAL_MS 500
/* Half the length of the interpolation filter of the clean front-end. */
#define CLEAN_HALF_TAPS 16
#define FOLD_GAIN 0.4

struct _CpSpeechModel
{
  gatomicrefcount ref;
  gchar *hmm;
  gchar *lm; /* NULL: grammar-only */
  gchar *dict; /* the full dictionary */
  /* grammar-only: the full dictionary's lines for the vocabulary, and the
   * vocabulary's words, sorted and joined by spaces */
  gchar *vocabulary_dict;
  gchar *vocabulary_key;
  GMutex lock;
  GQueue idle;
};

struct _CpSpeechRecognizer
{
  CpSpeechModel *model;
  ps_decoder_t *ps;
  gchar *default_search;
  gboolean has_grammar;

  guint rate;
  guint factor;
  CpSpeechFrontend frontend;
  gint16 history[2 * CLEAN_HALF_TAPS];
  guint delay16;

  CpSpeechVad *vad;
  GArray *vad_events;
  GArray *out16;
  GArray *preroll;
  GArray *pending;
  guint64 pos16;

  gboolean in_utt;
  guint64 utt_start16;
  guint utt_id;
  gboolean utt_had_partial;
  guint partial_interval16;
  guint64 last_partial16;
  gchar *last_partial;

  GQueue results;
};

static gdouble clean_taps[2 * CLEAN_HALF_TAPS];
static GPrivate sphinx_error_capture;
static GMutex decoder_load_lock;

static void
sphinx_log (void *user_data, err_lvl_t level, const char *fmt, ...)
{
  g_autofree gchar *msg = NULL;
  GString *capture;
  va_list args;

  /* Progress reports and the configuration dump are noise to us. */
  if (level < ERR_WARN)
    return;
  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);

  capture = g_private_get (&sphinx_error_capture);
  if (capture != NULL && level >= ERR_ERROR)
    g_string_append (capture, msg);
  g_log (G_LOG_DOMAIN_SPHINX, G_LOG_LEVEL_DEBUG, "%s", g_strchomp (msg));
}

static gpointer
init_sphinx (gpointer data)
{
  guint k;
  gdouble sum = 0.0;

  /* pocketsphinx logs to stderr by default and prints its configuration
   * straight to the log file; keep all of it in our debug log. */
  err_set_logfp (NULL);
  err_set_callback (sphinx_log, NULL);

  /* Windowed-sinc taps for the sample halfway between two inputs. */
  for (k = 0; k < 2 * CLEAN_HALF_TAPS; k++) {
    gdouble t = (gdouble) k - (CLEAN_HALF_TAPS - 0.5);
    gdouble w = 0.42 + 0.5 * cos (G_PI * t / CLEAN_HALF_TAPS)
        + 0.08 * cos (2.0 * G_PI * t / CLEAN_HALF_TAPS);

    clean_taps[k] = sin (G_PI * t) / (G_PI * t) * w;
    sum += clean_taps[k];
  }
  for (k = 0; k < 2 * CLEAN_HALF_TAPS; k++)
    clean_taps[k] /= sum;
  return NULL;
}

static void
ensure_sphinx (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, init_sphinx, NULL);
}

static void
capture_begin (GString *capture)
{
  g_private_set (&sphinx_error_capture, capture);
}

/* Returns the errors pocketsphinx logged since capture_begin(). */
static const gchar *
capture_end (GString *capture)
{
  g_private_set (&sphinx_error_capture, NULL);
  g_strstrip (capture->str);
  return capture->len > 0 ? capture->str : "no details logged";
}

/**
 * cp_speech_model_default_dir:
 *
 * Returns: the directory of the en-us model found at build time (the
 * pocketsphinx-en-us package's).
 */
const gchar *
cp_speech_model_default_dir (void)
{
  return CP_SPEECH_MODEL_DIR;
}

static gboolean
check_model_path (const gchar *path, GFileTest test, GError **error)
{
  if (g_file_test (path, test))
    return TRUE;
  g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL,
      "pocketsphinx model %s \"%s\" not found",
      test == G_FILE_TEST_IS_DIR ? "directory" : "file", path);
  return FALSE;
}

/* The model files of @model_dir, checked; *lm only when @lm is given. */
static CpSpeechModel *
model_alloc (const gchar *model_dir, gboolean with_lm, GError **error)
{
  g_autofree gchar *hmm = NULL, *lm = NULL, *dict = NULL;
  CpSpeechModel *model;

  ensure_sphinx ();
  if (model_dir == NULL)
    model_dir = cp_speech_model_default_dir ();
  hmm = g_build_filename (model_dir, "en-us", NULL);
  dict = g_build_filename (model_dir, "cmudict-en-us.dict", NULL);
  if (with_lm)
    lm = g_build_filename (model_dir, "en-us.lm.bin", NULL);
  if (!check_model_path (hmm, G_FILE_TEST_IS_DIR, error)
      || (lm != NULL && !check_model_path (lm, G_FILE_TEST_IS_REGULAR, error))
      || !check_model_path (dict, G_FILE_TEST_IS_REGULAR, error))
    return NULL;

  model = g_new0 (CpSpeechModel, 1);
  g_atomic_ref_count_init (&model->ref);
  model->hmm = g_steal_pointer (&hmm);
  model->lm = g_steal_pointer (&lm);
  model->dict = g_steal_pointer (&dict);
  g_mutex_init (&model->lock);
  g_queue_init (&model->idle);
  return model;
}

/**
 * cp_speech_model_new:
 * @model_dir: (nullable): a directory holding the acoustic model `en-us/`,
 * `en-us.lm.bin` and `cmudict-en-us.dict`; NULL for the default
 * @error: return location for an error
 *
 * Checks the model files; decoders are loaded on first use or by
 * cp_speech_model_preload(). Recognizers of this model take any English
 * (the open vocabulary) or, once given one, a grammar.
 *
 * Returns: (transfer full): the model, or NULL with @error set.
 */
CpSpeechModel *
cp_speech_model_new (const gchar *model_dir, GError **error)
{
  return model_alloc (model_dir, TRUE, error);
}

static GStrv
split_words (const gchar *phrase)
{
  g_autofree gchar *lower = g_ascii_strdown (phrase, -1);
  g_auto (GStrv) tokens = g_strsplit_set (lower, " \t\n", -1);
  GPtrArray *words = g_ptr_array_new ();
  guint i;

  for (i = 0; tokens[i] != NULL; i++) {
    if (tokens[i][0] != '\0')
      g_ptr_array_add (words, g_strdup (tokens[i]));
  }
  g_ptr_array_add (words, NULL);
  return (GStrv) g_ptr_array_free (words, FALSE);
}

/* A phrase's words must be dictionary words: letters and apostrophes. */
static gboolean
check_phrase_spelling (const gchar *phrase, gchar **words, GError **error)
{
  guint i;

  if (words[0] == NULL) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "The phrase \"%s\" has no words", phrase);
    return FALSE;
  }
  for (i = 0; words[i] != NULL; i++) {
    const gchar *p;

    for (p = words[i]; *p != '\0'; p++) {
      if (!g_ascii_isalpha (*p) && *p != '\'') {
        g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
            "The phrase \"%s\" has a word with a character other than a "
            "letter or an apostrophe: \"%s\"",
            phrase, words[i]);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static void
set_missing_word_error (GError **error, const gchar *word, const gchar *phrase,
    gboolean grammar_only)
{
  g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
      "The word \"%s\" of the phrase \"%s\" is not in the %s", word, phrase,
      grammar_only ? "vocabulary the grammar-only model was made for"
                   : "pronunciation dictionary");
}

static gint
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

/* Sorted, space-separated: the same set of words gives the same key. */
static gchar *
vocabulary_key (GHashTable *words)
{
  g_autofree gpointer *keys = NULL;
  guint n;

  keys = g_hash_table_get_keys_as_array (words, &n);
  qsort (keys, n, sizeof (gpointer), compare_strings);
  return g_strjoinv (" ", (gchar **) keys);
}

/* Every word of @phrases, checked for spelling. Returns the words as a
 * set, or NULL with @error set. */
static GHashTable *
vocabulary_words (const gchar *const *phrases, GError **error)
{
  g_autoptr (GHashTable) words =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint i, j;

  if (phrases[0] == NULL) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "No phrases given");
    return NULL;
  }
  for (i = 0; phrases[i] != NULL; i++) {
    g_auto (GStrv) split = split_words (phrases[i]);

    if (!check_phrase_spelling (phrases[i], split, error))
      return NULL;
    for (j = 0; split[j] != NULL; j++)
      g_hash_table_add (words, g_steal_pointer (&split[j]));
  }
  return g_steal_pointer (&words);
}

/* Lines of the form "word phones" or "word(2) phones": @line_len bytes
 * from @line. Returns the length of the word without its variant. */
static gsize
dictionary_base_word (const gchar *line, gsize line_len)
{
  gsize len = 0;

  while (len < line_len && !g_ascii_isspace (line[len]))
    len++;
  if (len > 2 && line[len - 1] == ')') {
    gsize open = len - 1;

    while (open > 0 && line[open] != '(')
      open--;
    if (open > 0)
      len = open;
  }
  return len;
}

/* The lines of the dictionary at @path whose word is in @words, with its
 * alternate pronunciations, in the file's order (a variant must follow
 * its base word); the words found are added to @found. */
static gchar *
extract_dictionary (const gchar *path, GHashTable *words, GHashTable *found,
    GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, &local);
  g_autoptr (GString) out = g_string_new (NULL);
  const gchar *p, *end;

  if (file == NULL) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL,
        "Cannot read the pronunciation dictionary: %s", local->message);
    return NULL;
  }
  p = g_mapped_file_get_contents (file);
  end = p + g_mapped_file_get_length (file);
  while (p != NULL && p < end) {
    const gchar *eol = memchr (p, '\n', end - p);
    gchar word[128];
    gsize len;

    if (eol == NULL)
      eol = end;
    len = dictionary_base_word (p, eol - p);
    if (len > 0 && len < sizeof (word)) {
      gsize i;

      for (i = 0; i < len; i++)
        word[i] = g_ascii_tolower (p[i]);
      word[len] = '\0';
      if (g_hash_table_contains (words, word)) {
        g_hash_table_add (found, g_strdup (word));
        g_string_append_len (out, p, eol - p);
        g_string_append_c (out, '\n');
      }
    }
    p = eol + 1;
  }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The first word of @phrases (in order) that @found lacks, as an error. */
static void
set_first_missing_error (const gchar *const *phrases, GHashTable *found,
    GError **error)
{
  guint i, j;

  for (i = 0; phrases[i] != NULL; i++) {
    g_auto (GStrv) split = split_words (phrases[i]);

    for (j = 0; split[j] != NULL; j++) {
      if (!g_hash_table_contains (found, split[j])) {
        set_missing_word_error (error, split[j], phrases[i], FALSE);
        return;
      }
    }
  }
  g_assert_not_reached ();
}

/**
 * cp_speech_model_new_grammar:
 * @model_dir: (nullable): as for cp_speech_model_new(); the language model
 * is not needed
 * @phrases: NULL-terminated: every phrase that recognizers of the model
 * will be given, e.g. all the phrases of an IVR's states
 * @error: return location for an error
 *
 * A model for grammar-mode recognition only, much smaller and faster to
 * load than a full one: no language model, and a dictionary of just the
 * words of @phrases (with their alternate pronunciations) taken from the
 * full dictionary. Its recognizers hear nothing until given phrases or a
 * JSGF grammar, whose words must all come from @phrases. Recognition of a
 * grammar is the same as with the full model.
 *
 * Returns: (transfer full): the model, or NULL with @error set: a
 * #CP_SPEECH_ERROR_GRAMMAR naming the phrase and the word when a word is
 * not in the pronunciation dictionary or is not spelt with letters and
 * apostrophes only.
 */
CpSpeechModel *
cp_speech_model_new_grammar (const gchar *model_dir,
    const gchar *const *phrases, GError **error)
{
  g_autoptr (GHashTable) words = NULL, found = NULL;
  g_autoptr (CpSpeechModel) model = NULL;
  g_autofree gchar *dict = NULL;

  g_return_val_if_fail (phrases != NULL, NULL);

  words = vocabulary_words (phrases, error);
  if (words == NULL)
    return NULL;
  model = model_alloc (model_dir, FALSE, error);
  if (model == NULL)
    return NULL;
  found = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  dict = extract_dictionary (model->dict, words, found, error);
  if (dict == NULL)
    return NULL;
  if (g_hash_table_size (found) < g_hash_table_size (words)) {
    set_first_missing_error (phrases, found, error);
    return NULL;
  }
  model->vocabulary_dict = g_steal_pointer (&dict);
  model->vocabulary_key = vocabulary_key (words);
  return g_steal_pointer (&model);
}

/**
 * cp_speech_model_get_default:
 *
 * Returns: (transfer full): the process-wide model in the default
 * directory, so that all streams share one decoder pool.
 */
CpSpeechModel *
cp_speech_model_get_default (GError **error)
{
  static GMutex lock;
  static CpSpeechModel *model;
  CpSpeechModel *ret = NULL;

  g_mutex_lock (&lock);
  if (model == NULL)
    model = cp_speech_model_new (NULL, error);
  if (model != NULL)
    ret = cp_speech_model_ref (model);
  g_mutex_unlock (&lock);
  return ret;
}

/**
 * cp_speech_model_get_grammar:
 * @phrases: as for cp_speech_model_new_grammar()
 *
 * As cp_speech_model_new_grammar() in the default directory, shared: the
 * streams of one vocabulary (the same set of words) share a decoder pool.
 * The process keeps the models of the last few vocabularies asked for,
 * so that calls that follow one another reuse loaded decoders.
 *
 * Returns: (transfer full): the model, or NULL with @error set.
 */
CpSpeechModel *
cp_speech_model_get_grammar (const gchar *const *phrases, GError **error)
{
  static GMutex lock;
  static GQueue kept = G_QUEUE_INIT; /* most recently asked first */
  g_autoptr (GHashTable) words = NULL;
  g_autofree gchar *key = NULL;
  CpSpeechModel *model = NULL;
  GList *l;

  g_return_val_if_fail (phrases != NULL, NULL);

  words = vocabulary_words (phrases, error);
  if (words == NULL)
    return NULL;
  key = vocabulary_key (words);
  g_mutex_lock (&lock);
  for (l = kept.head; l != NULL; l = l->next) {
    CpSpeechModel *m = l->data;

    if (strcmp (m->vocabulary_key, key) == 0) {
      g_queue_unlink (&kept, l);
      g_queue_push_head_link (&kept, l);
      model = cp_speech_model_ref (m);
      break;
    }
  }
  if (model == NULL) {
    model = cp_speech_model_new_grammar (NULL, phrases, error);
    if (model != NULL) {
      g_queue_push_head (&kept, cp_speech_model_ref (model));
      if (g_queue_get_length (&kept) > GRAMMAR_MODELS_KEPT)
        cp_speech_model_unref (g_queue_pop_tail (&kept));
    }
  }
  g_mutex_unlock (&lock);
  return model;
}

CpSpeechModel *
cp_speech_model_ref (CpSpeechModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);

  g_atomic_ref_count_inc (&model->ref);
  return model;
}

static void
free_decoder (gpointer ps)
{
  ps_free (ps);
}

void
cp_speech_model_unref (CpSpeechModel *model)
{
  g_return_if_fail (model != NULL);

  if (!g_atomic_ref_count_dec (&model->ref))
    return;
  g_queue_clear_full (&model->idle, free_decoder);
  g_mutex_clear (&model->lock);
  g_free (model->hmm);
  g_free (model->lm);
  g_free (model->dict);
  g_free (model->vocabulary_dict);
  g_free (model->vocabulary_key);
  g_free (model);
}

static gboolean
model_is_grammar_only (const CpSpeechModel *model)
{
  return model->lm == NULL;
}

/* A private copy of @text in the temporary directory, named from
 * @template; the caller removes it. */
static gchar *
write_private_file (const gchar *template, const gchar *text, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *path = NULL;
  gsize len = strlen (text), done = 0;
  gint fd, err = 0;

  fd = g_file_open_tmp (template, &path, &local);
  if (fd < 0) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL,
        "Cannot write the grammar-only model's files: %s", local->message);
    return NULL;
  }
  while (done < len && err == 0) {
    gssize n = write (fd, text + done, len - done);

    if (n >= 0)
      done += n;
    else if (errno != EINTR)
      err = errno;
  }
  if (close (fd) < 0 && err == 0)
    err = errno;
  if (err != 0) {
    g_unlink (path);
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL,
        "Cannot write the grammar-only model's file \"%s\": %s", path,
        g_strerror (err));
    return NULL;
  }
  return g_steal_pointer (&path);
}

/* @lm NULL: a decoder without a search until it is given a grammar;
 * @placeholder_lm: see PLACEHOLDER_LM. */
static ps_decoder_t *
init_decoder (const gchar *hmm, const gchar *lm, const gchar *dict,
    const gchar *placeholder_lm, GError **error)
{
  g_autoptr (GString) capture = g_string_new (NULL);
  cmd_ln_t *config;
  ps_decoder_t *ps = NULL;

  g_mutex_lock (&decoder_load_lock);
  capture_begin (capture);
  /* Our VAD cuts utterances; pocketsphinx's silence removal would shift
   * its frame numbers away from the input's time line. */
  config = cmd_ln_init (NULL, ps_args (), TRUE, "-hmm", hmm, "-dict", dict,
      "-remove_silence", "no", "-samprate", "16000", NULL);
  if (config != NULL && lm != NULL)
    cmd_ln_set_str_r (config, "-lm", lm);
  if (config != NULL) {
    ps = ps_init (config);
    cmd_ln_free_r (config);
  }
  if (ps != NULL && placeholder_lm != NULL
      && (ps_set_lm_file (ps, PLACEHOLDER_SEARCH, placeholder_lm) < 0
          || ps_unset_search (ps, PLACEHOLDER_SEARCH) < 0))
    g_clear_pointer (&ps, ps_free);
  if (ps == NULL)
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_MODEL,
        "pocketsphinx could not load the model in \"%s\": %s", hmm,
        capture_end (capture));
  else
    capture_end (capture);
  g_mutex_unlock (&decoder_load_lock);
  return ps;
}

/* The model's dictionary and the placeholder language model are written
 * for the load and removed after it: pocketsphinx reads them at once. */
static ps_decoder_t *
load_grammar_decoder (CpSpeechModel *model, GError **error)
{
  g_autofree gchar *dict = NULL, *lm = NULL;
  ps_decoder_t *ps = NULL;

  dict = write_private_file ("callpipe-asr-XXXXXX.dict", model->vocabulary_dict,
      error);
  if (dict != NULL)
    lm = write_private_file ("callpipe-asr-XXXXXX.lm", PLACEHOLDER_LM, error);
  if (lm != NULL)
    ps = init_decoder (model->hmm, NULL, dict, lm, error);
  if (dict != NULL)
    g_unlink (dict);
  if (lm != NULL)
    g_unlink (lm);
  return ps;
}

static ps_decoder_t *
load_decoder (CpSpeechModel *model, GError **error)
{
  if (model_is_grammar_only (model))
    return load_grammar_decoder (model, error);
  return init_decoder (model->hmm, model->lm, model->dict, NULL, error);
}

static ps_decoder_t *
acquire_decoder (CpSpeechModel *model, GError **error)
{
  ps_decoder_t *ps;

  g_mutex_lock (&model->lock);
  ps = g_queue_pop_head (&model->idle);
  g_mutex_unlock (&model->lock);
  if (ps != NULL)
    return ps;
  return load_decoder (model, error);
}

static void
release_decoder (CpSpeechModel *model, ps_decoder_t *ps)
{
  g_mutex_lock (&model->lock);
  if (g_queue_get_length (&model->idle) < MAX_IDLE_DECODERS) {
    g_queue_push_tail (&model->idle, ps);
    ps = NULL;
  }
  g_mutex_unlock (&model->lock);
  if (ps != NULL)
    ps_free (ps);
}

/**
 * cp_speech_model_preload:
 * @n_decoders: how many decoders to have ready
 *
 * Loads decoders ahead of time, so that the first @n_decoders concurrent
 * recognizers start without the load delay.
 */
gboolean
cp_speech_model_preload (CpSpeechModel *model, guint n_decoders, GError **error)
{
  g_return_val_if_fail (model != NULL, FALSE);

  for (;;) {
    ps_decoder_t *ps;
    guint have;

    g_mutex_lock (&model->lock);
    have = g_queue_get_length (&model->idle);
    g_mutex_unlock (&model->lock);
    if (have >= MIN (n_decoders, MAX_IDLE_DECODERS))
      return TRUE;
    ps = load_decoder (model, error);
    if (ps == NULL)
      return FALSE;
    release_decoder (model, ps);
  }
}

/* A pooled decoder has only its language-model search. ps_get_search()
 * would leak an iterator in 5prealpha. */
static gchar *
only_search_name (ps_decoder_t *ps)
{
  ps_search_iter_t *it = ps_search_iter (ps);
  gchar *name = g_strdup (it != NULL ? ps_search_iter_val (it) : NULL);

  if (it != NULL)
    ps_search_iter_free (it);
  return name;
}

/**
 * cp_speech_recognizer_new:
 * @model: the model to decode with
 * @rate: the sample rate of the input, 8000 or 16000
 * @error: return location for an error
 *
 * Returns: (transfer full): a recognizer for one stream, or NULL with
 * @error set.
 */
CpSpeechRecognizer *
cp_speech_recognizer_new (CpSpeechModel *model, guint rate, GError **error)
{
  CpSpeechRecognizer *rec;
  ps_decoder_t *ps;

  g_return_val_if_fail (model != NULL, NULL);

  if (rate != 8000 && rate != MODEL_RATE) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_RATE,
        "The recognizer takes 8000 or 16000 Hz audio, not %u Hz", rate);
    return NULL;
  }
  ps = acquire_decoder (model, error);
  if (ps == NULL)
    return NULL;

  rec = g_new0 (CpSpeechRecognizer, 1);
  rec->model = cp_speech_model_ref (model);
  rec->ps = ps;
  if (!model_is_grammar_only (model))
    rec->default_search = only_search_name (ps);
  rec->rate = rate;
  rec->factor = MODEL_RATE / rate;
  rec->vad = cp_speech_vad_new (rate);
  rec->vad_events = g_array_new (FALSE, FALSE, sizeof (CpSpeechVadEvent));
  rec->out16 = g_array_new (FALSE, FALSE, sizeof (gint16));
  rec->preroll = g_array_new (FALSE, FALSE, sizeof (gint16));
  rec->pending = g_array_new (FALSE, FALSE, sizeof (gint16));
  rec->partial_interval16 = DEFAULT_PARTIAL_INTERVAL_MS * (MODEL_RATE / 1000);
  g_queue_init (&rec->results);
  cp_speech_recognizer_set_frontend (rec, CP_SPEECH_FRONTEND_DEFAULT);
  return rec;
}

void
cp_speech_recognizer_free (CpSpeechRecognizer *rec)
{
  if (rec == NULL)
    return;

  if (rec->in_utt)
    ps_end_utt (rec->ps);
  if (rec->has_grammar) {
    if (rec->default_search != NULL)
      ps_set_search (rec->ps, rec->default_search);
    ps_unset_search (rec->ps, GRAMMAR_SEARCH);
  }
  release_decoder (rec->model, rec->ps);
  cp_speech_model_unref (rec->model);
  g_free (rec->default_search);
  cp_speech_vad_free (rec->vad);
  g_array_unref (rec->vad_events);
  g_array_unref (rec->out16);
  g_array_unref (rec->preroll);
  g_array_unref (rec->pending);
  g_free (rec->last_partial);
  g_queue_clear_full (&rec->results, (GDestroyNotify) cp_speech_result_free);
  g_free (rec);
}

/**
 * cp_speech_recognizer_set_frontend:
 *
 * Chooses how 8 kHz input is widened for the model; call before the first
 * samples. No effect on 16 kHz input.
 */
void
cp_speech_recognizer_set_frontend (CpSpeechRecognizer *rec,
    CpSpeechFrontend frontend)
{
  g_return_if_fail (rec != NULL);

  rec->frontend = frontend;
  memset (rec->history, 0, sizeof (rec->history));
  rec->delay16 = (rec->factor == 2 && frontend != CP_SPEECH_FRONTEND_REPEAT)
      ? 2 * CLEAN_HALF_TAPS
      : 0;
}

/**
 * cp_speech_recognizer_get_vad:
 *
 * Returns: (transfer none): the detector that cuts utterances, to tune its
 * sensitivity, start trigger and hangover.
 */
CpSpeechVad *
cp_speech_recognizer_get_vad (CpSpeechRecognizer *rec)
{
  g_return_val_if_fail (rec != NULL, NULL);

  return rec->vad;
}

/**
 * cp_speech_recognizer_set_partial_interval:
 * @ms: audio time between partial results; 0 disables them
 */
void
cp_speech_recognizer_set_partial_interval (CpSpeechRecognizer *rec, guint ms)
{
  g_return_if_fail (rec != NULL);

  rec->partial_interval16 = ms * (MODEL_RATE / 1000);
}

/* After a grammar was refused: the open vocabulary, or with a grammar-only
 * model the previous grammar. */
static void
restore_search (CpSpeechRecognizer *rec)
{
  if (rec->default_search != NULL)
    ps_set_search (rec->ps, rec->default_search);
  else if (rec->has_grammar)
    ps_set_search (rec->ps, GRAMMAR_SEARCH);
}

/**
 * cp_speech_recognizer_set_grammar:
 * @jsgf: a JSGF grammar whose first public rule is what callers may say
 *
 * Restricts recognition to the grammar from the next utterance on; for
 * IVR prompts with a closed set of answers. sphinxbase 5prealpha's JSGF
 * parser leaks a few kilobytes per call: prefer
 * cp_speech_recognizer_set_phrases() for grammars set per call.
 */
gboolean
cp_speech_recognizer_set_grammar (CpSpeechRecognizer *rec, const gchar *jsgf,
    GError **error)
{
  g_autoptr (GString) capture = g_string_new (NULL);
  gint ret;

  g_return_val_if_fail (rec != NULL, FALSE);
  g_return_val_if_fail (jsgf != NULL, FALSE);

  if (rec->in_utt) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "Cannot change the grammar in the middle of an utterance");
    return FALSE;
  }
  capture_begin (capture);
  ret = ps_set_jsgf_string (rec->ps, GRAMMAR_SEARCH, jsgf);
  if (ret >= 0)
    ret = ps_set_search (rec->ps, GRAMMAR_SEARCH);
  if (ret < 0) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "pocketsphinx rejected the JSGF grammar: %s", capture_end (capture));
    restore_search (rec);
    return FALSE;
  }
  capture_end (capture);
  rec->has_grammar = TRUE;
  return TRUE;
}

static gboolean
check_phrase_words (CpSpeechRecognizer *rec, const gchar *phrase, gchar **words,
    GError **error)
{
  guint i;

  if (!check_phrase_spelling (phrase, words, error))
    return FALSE;
  for (i = 0; words[i] != NULL; i++) {
    char *pron = ps_lookup_word (rec->ps, words[i]);

    if (pron == NULL) {
      set_missing_word_error (error, words[i], phrase,
          model_is_grammar_only (rec->model));
      return FALSE;
    }
    ckd_free (pron);
  }
  return TRUE;
}

/* One path of words per phrase from the start state to the final state,
 * all phrases equally likely. Built directly rather than through JSGF,
 * whose 5prealpha parser leaks every parse tree. */
static fsg_model_t *
build_phrase_fsg (CpSpeechRecognizer *rec, GPtrArray *phrase_words)
{
  logmath_t *lmath = ps_get_logmath (rec->ps);
  gfloat lw = cmd_ln_float32_r (ps_get_config (rec->ps), "-lw");
  gint32 n_states = 2, next, logp;
  fsg_model_t *fsg;
  guint i, j;

  for (i = 0; i < phrase_words->len; i++)
    n_states += g_strv_length (g_ptr_array_index (phrase_words, i)) - 1;
  fsg = fsg_model_init (GRAMMAR_SEARCH, lmath, lw, n_states);
  fsg->start_state = 0;
  fsg->final_state = 1;
  next = 2;
  logp = logmath_log (lmath, 1.0 / phrase_words->len);
  for (i = 0; i < phrase_words->len; i++) {
    GStrv words = g_ptr_array_index (phrase_words, i);
    gint32 from = fsg->start_state;

    for (j = 0; words[j] != NULL; j++) {
      gint32 to = words[j + 1] == NULL ? fsg->final_state : next++;

      fsg_model_trans_add (fsg, from, to, j == 0 ? logp : 0,
          fsg_model_word_add (fsg, words[j]));
      from = to;
    }
  }
  return fsg;
}

/**
 * cp_speech_recognizer_set_phrases:
 * @phrases: NULL-terminated phrases, e.g. "check my balance", "agent"
 *
 * Restricts recognition to exactly one of @phrases per utterance, from the
 * next utterance on; the result's confidence tells how well it fits.
 */
gboolean
cp_speech_recognizer_set_phrases (CpSpeechRecognizer *rec,
    const gchar *const *phrases, GError **error)
{
  g_autoptr (GPtrArray) phrase_words = NULL;
  g_autoptr (GString) capture = g_string_new (NULL);
  fsg_model_t *fsg;
  gint ret;
  guint i;

  g_return_val_if_fail (rec != NULL, FALSE);
  g_return_val_if_fail (phrases != NULL, FALSE);

  if (phrases[0] == NULL) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "No phrases given");
    return FALSE;
  }
  if (rec->in_utt) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "Cannot change the grammar in the middle of an utterance");
    return FALSE;
  }
  phrase_words = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  for (i = 0; phrases[i] != NULL; i++) {
    GStrv words = split_words (phrases[i]);

    g_ptr_array_add (phrase_words, words);
    if (!check_phrase_words (rec, phrases[i], words, error))
      return FALSE;
  }

  fsg = build_phrase_fsg (rec, phrase_words);
  capture_begin (capture);
  /* The search keeps its own reference. */
  ret = ps_set_fsg (rec->ps, GRAMMAR_SEARCH, fsg);
  fsg_model_free (fsg);
  if (ret >= 0)
    ret = ps_set_search (rec->ps, GRAMMAR_SEARCH);
  if (ret < 0) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "pocketsphinx rejected the phrases: %s", capture_end (capture));
    restore_search (rec);
    return FALSE;
  }
  capture_end (capture);
  rec->has_grammar = TRUE;
  return TRUE;
}

static gboolean
is_filler (const gchar *word)
{
  /* "(NULL)" is what sphinxbase prints for a JSGF null transition. */
  return word[0] == '<' || word[0] == '[' || word[0] == '+' || word[0] == '(';
}

/* "read(2)" is the dictionary's second pronunciation of "read". */
static gchar *
strip_variant (const gchar *word)
{
  const gchar *paren = strchr (word, '(');

  return paren != NULL && paren != word ? g_strndup (word, paren - word)
                                        : g_strdup (word);
}

static gchar *
clean_hypothesis (const gchar *hyp)
{
  g_auto (GStrv) tokens = g_strsplit (hyp != NULL ? hyp : "", " ", -1);
  g_autoptr (GString) text = g_string_new (NULL);
  guint i;

  for (i = 0; tokens[i] != NULL; i++) {
    g_autofree gchar *word = NULL;

    if (tokens[i][0] == '\0' || is_filler (tokens[i]))
      continue;
    word = strip_variant (tokens[i]);
    if (text->len > 0)
      g_string_append_c (text, ' ');
    g_string_append (text, word);
  }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static gdouble
time_of16 (const CpSpeechRecognizer *rec, guint64 pos16)
{
  gint64 t = (gint64) pos16 - rec->delay16;

  return MAX (t, 0) / (gdouble) MODEL_RATE;
}

static void
word_clear (gpointer data)
{
  CpSpeechWord *w = data;

  g_free (w->text);
}

static CpSpeechResult *
result_new (CpSpeechRecognizer *rec, gboolean is_partial)
{
  CpSpeechResult *r = g_new0 (CpSpeechResult, 1);

  r->utterance = rec->utt_id;
  r->is_partial = is_partial;
  r->start = time_of16 (rec, rec->utt_start16);
  r->end = time_of16 (rec, rec->pos16);
  r->words = g_array_new (FALSE, FALSE, sizeof (CpSpeechWord));
  g_array_set_clear_func (r->words, word_clear);
  return r;
}

void
cp_speech_result_free (CpSpeechResult *result)
{
  if (result == NULL)
    return;
  g_free (result->text);
  g_array_unref (result->words);
  g_free (result);
}

static void
collect_words (CpSpeechRecognizer *rec, CpSpeechResult *r)
{
  logmath_t *lmath = ps_get_logmath (rec->ps);
  g_autoptr (GString) text = g_string_new (NULL);
  gdouble conf_sum = 0.0;
  ps_seg_t *seg;

  for (seg = ps_seg_iter (rec->ps); seg != NULL; seg = ps_seg_next (seg)) {
    const gchar *word = ps_seg_word (seg);
    CpSpeechWord w;
    int sf, ef;
    int32 ascr, lscr, lback, post;

    if (is_filler (word))
      continue;
    ps_seg_frames (seg, &sf, &ef);
    post = ps_seg_prob (seg, &ascr, &lscr, &lback);
    w.text = strip_variant (word);
    w.start = time_of16 (rec,
        rec->utt_start16 + (guint64) sf * (MODEL_RATE / FRAMES_PER_SECOND));
    w.end = time_of16 (rec,
        rec->utt_start16
            + (guint64) (ef + 1) * (MODEL_RATE / FRAMES_PER_SECOND));
    w.confidence = CLAMP (logmath_exp (lmath, post), 0.0, 1.0);
    conf_sum += w.confidence;
    if (text->len > 0)
      g_string_append_c (text, ' ');
    g_string_append (text, w.text);
    g_array_append_val (r->words, w);
  }
  r->text = g_string_free (g_steal_pointer (&text), FALSE);
  r->confidence = r->words->len > 0 ? conf_sum / r->words->len : 0.0;
}

static gboolean
decode_pending (CpSpeechRecognizer *rec, GError **error)
{
  if (rec->pending->len == 0)
    return TRUE;
  if (ps_process_raw (rec->ps, (const int16 *) rec->pending->data,
          rec->pending->len, FALSE, FALSE)
      < 0) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_DECODE,
        "pocketsphinx failed to decode the audio");
    g_array_set_size (rec->pending, 0);
    return FALSE;
  }
  g_array_set_size (rec->pending, 0);
  return TRUE;
}

static gboolean
start_utterance (CpSpeechRecognizer *rec, guint64 onset16, GError **error)
{
  guint64 preroll_start = rec->pos16 - rec->preroll->len;
  guint64 pad16 = ONSET_PAD_MS * (MODEL_RATE / 1000);
  guint64 start16 = onset16 > pad16 ? onset16 - pad16 : 0;

  start16 = CLAMP (start16, preroll_start, rec->pos16);
  if (model_is_grammar_only (rec->model) && !rec->has_grammar) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR,
        "A recognizer of a grammar-only model heard speech before it was "
        "given phrases or a grammar");
    return FALSE;
  }
  /* A new stream per utterance: frame numbers count from its start. */
  if (ps_start_stream (rec->ps) < 0 || ps_start_utt (rec->ps) < 0) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_DECODE,
        "pocketsphinx could not start an utterance");
    return FALSE;
  }
  rec->in_utt = TRUE;
  rec->utt_start16 = start16;
  rec->utt_had_partial = FALSE;
  rec->last_partial16 = rec->pos16;
  g_clear_pointer (&rec->last_partial, g_free);
  g_array_append_vals (rec->pending,
      &g_array_index (rec->preroll, gint16, start16 - preroll_start),
      rec->pos16 - start16);
  g_array_set_size (rec->preroll, 0);
  return TRUE;
}

static gboolean
end_utterance (CpSpeechRecognizer *rec, GError **error)
{
  CpSpeechResult *r;

  if (!decode_pending (rec, error))
    return FALSE;
  rec->in_utt = FALSE;
  if (ps_end_utt (rec->ps) < 0) {
    g_set_error_literal (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_DECODE,
        "pocketsphinx could not finish the utterance");
    return FALSE;
  }
  r = result_new (rec, FALSE);
  collect_words (rec, r);
  if (r->words->len > 0 || rec->utt_had_partial)
    g_queue_push_tail (&rec->results, r);
  else
    cp_speech_result_free (r);
  rec->utt_id++;
  return TRUE;
}

static void
maybe_partial (CpSpeechRecognizer *rec)
{
  g_autofree gchar *text = NULL;
  CpSpeechResult *r;
  int32 score;

  if (rec->partial_interval16 == 0
      || rec->pos16 - rec->last_partial16 < rec->partial_interval16)
    return;
  rec->last_partial16 = rec->pos16;
  text = clean_hypothesis (ps_get_hyp (rec->ps, &score));
  if (text[0] == '\0' || g_strcmp0 (text, rec->last_partial) == 0)
    return;
  g_free (rec->last_partial);
  rec->last_partial = g_strdup (text);
  r = result_new (rec, TRUE);
  r->text = g_steal_pointer (&text);
  rec->utt_had_partial = TRUE;
  g_queue_push_tail (&rec->results, r);
}

/* Brings @n input samples to 16 kHz in rec->out16. */
static void
widen (CpSpeechRecognizer *rec, const gint16 *in, gsize n)
{
  const guint h = 2 * CLEAN_HALF_TAPS;
  gsize i;

  g_array_set_size (rec->out16, n * rec->factor);
  if (rec->factor == 1) {
    memcpy (rec->out16->data, in, n * sizeof (gint16));
    return;
  }
  for (i = 0; i < n; i++) {
    gint16 *out = &g_array_index (rec->out16, gint16, 2 * i);
    gdouble mid = 0.0;
    guint k;

    if (rec->frontend == CP_SPEECH_FRONTEND_REPEAT) {
      out[0] = out[1] = in[i];
      continue;
    }
    memmove (rec->history, rec->history + 1, (h - 1) * sizeof (gint16));
    rec->history[h - 1] = in[i];
    for (k = 0; k < h; k++)
      mid += clean_taps[k] * rec->history[k];
    out[0] = rec->history[CLEAN_HALF_TAPS - 1];
    out[1] = CLAMP (lrint (mid), G_MININT16, G_MAXINT16);
    if (rec->frontend == CP_SPEECH_FRONTEND_FOLD) {
      /* x[n]·(1 + g·(−1)ⁿ) mirrors the band into 4-8 kHz at gain g. */
      out[0] =
          CLAMP (lrint (out[0] * (1.0 + FOLD_GAIN)), G_MININT16, G_MAXINT16);
      out[1] =
          CLAMP (lrint (out[1] * (1.0 - FOLD_GAIN)), G_MININT16, G_MAXINT16);
    }
  }
}

static void
keep_preroll (CpSpeechRecognizer *rec)
{
  guint cap = PREROLL_MS * (MODEL_RATE / 1000);

  g_array_append_vals (rec->preroll, rec->out16->data, rec->out16->len);
  /* Trim in large steps so the copy cost stays amortized. */
  if (rec->preroll->len > 2 * cap)
    g_array_remove_range (rec->preroll, 0, rec->preroll->len - cap);
}

static gboolean
handle_slice (CpSpeechRecognizer *rec, const gint16 *in, gsize n,
    GError **error)
{
  guint i;

  widen (rec, in, n);
  g_array_set_size (rec->vad_events, 0);
  cp_speech_vad_process (rec->vad, in, n, rec->vad_events);
  rec->pos16 += rec->out16->len;
  if (rec->in_utt)
    g_array_append_vals (rec->pending, rec->out16->data, rec->out16->len);
  else
    keep_preroll (rec);

  for (i = 0; i < rec->vad_events->len; i++) {
    CpSpeechVadEvent *ev =
        &g_array_index (rec->vad_events, CpSpeechVadEvent, i);

    if (ev->type == CP_SPEECH_VAD_SPEECH_START && !rec->in_utt) {
      if (!start_utterance (rec, ev->sample * rec->factor + rec->delay16,
              error))
        return FALSE;
    } else if (ev->type == CP_SPEECH_VAD_SPEECH_END && rec->in_utt) {
      if (!end_utterance (rec, error))
        return FALSE;
    }
  }
  return TRUE;
}

/**
 * cp_speech_recognizer_process:
 * @samples: S16 mono samples in host byte order at the recognizer's rate
 * @error: return location for an error
 *
 * Decodes the samples; results they complete are queued for
 * cp_speech_recognizer_pop_result().
 */
gboolean
cp_speech_recognizer_process (CpSpeechRecognizer *rec, const gint16 *samples,
    gsize n_samples, GError **error)
{
  /* Slices of one VAD frame, so each slice ends at most one event. */
  gsize slice = rec->rate / FRAMES_PER_SECOND;
  gsize done;

  g_return_val_if_fail (rec != NULL, FALSE);
  g_return_val_if_fail (samples != NULL || n_samples == 0, FALSE);

  for (done = 0; done < n_samples; done += slice) {
    if (!handle_slice (rec, samples + done, MIN (slice, n_samples - done),
            error))
      return FALSE;
  }
  if (rec->in_utt) {
    if (!decode_pending (rec, error))
      return FALSE;
    maybe_partial (rec);
  }
  return TRUE;
}

/**
 * cp_speech_recognizer_flush:
 *
 * Ends the utterance in progress, if any (at the end of a stream), and
 * queues its final result.
 */
gboolean
cp_speech_recognizer_flush (CpSpeechRecognizer *rec, GError **error)
{
  g_return_val_if_fail (rec != NULL, FALSE);

  if (!rec->in_utt)
    return TRUE;
  return end_utterance (rec, error);
}

/**
 * cp_speech_recognizer_pop_result:
 *
 * Returns: (transfer full) (nullable): the oldest queued result, partial or
 * final, or NULL.
 */
CpSpeechResult *
cp_speech_recognizer_pop_result (CpSpeechRecognizer *rec)
{
  g_return_val_if_fail (rec != NULL, NULL);

  return g_queue_pop_head (&rec->results);
}

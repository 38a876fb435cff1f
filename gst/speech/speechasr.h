/* Offline streaming speech recognition with pocketsphinx. */
#ifndef CP_SPEECH_ASR_H
#define CP_SPEECH_ASR_H

#include "speech/speecherror.h"
#include "speech/speechvad.h"

G_BEGIN_DECLS

/* How 8 kHz audio is brought to the 16 kHz the wideband model expects.
 * Only the recognizer hears this; it is not an audio resampler. */
typedef enum {
  CP_SPEECH_FRONTEND_CLEAN,   /* band-limited interpolation, empty 4-8 kHz */
  CP_SPEECH_FRONTEND_REPEAT,  /* each sample twice: sloped image above 4 kHz */
  CP_SPEECH_FRONTEND_FOLD,    /* clean plus a flat folded image */
} CpSpeechFrontend;

#define CP_SPEECH_FRONTEND_DEFAULT CP_SPEECH_FRONTEND_REPEAT

typedef struct {
  gchar   *text;
  gdouble  start;       /* seconds since the first sample given */
  gdouble  end;
  gdouble  confidence;  /* 0.0 to 1.0 */
} CpSpeechWord;

typedef struct {
  guint     utterance;  /* counts from 0 per recognizer */
  gboolean  is_partial;
  gchar    *text;       /* words joined by spaces, fillers dropped */
  gdouble   start;
  gdouble   end;
  gdouble   confidence;
  GArray   *words;      /* CpSpeechWord, empty in partial results */
} CpSpeechResult;

typedef struct _CpSpeechModel CpSpeechModel;
typedef struct _CpSpeechRecognizer CpSpeechRecognizer;

const gchar        *cp_speech_model_default_dir  (void);
CpSpeechModel      *cp_speech_model_new          (const gchar    *model_dir,
                                                  GError        **error);
CpSpeechModel      *cp_speech_model_new_grammar  (const gchar    *model_dir,
                                                  const gchar * const *phrases,
                                                  GError        **error);
CpSpeechModel      *cp_speech_model_get_default  (GError        **error);
CpSpeechModel      *cp_speech_model_get_grammar  (const gchar * const *phrases,
                                                  GError        **error);
CpSpeechModel      *cp_speech_model_ref          (CpSpeechModel  *model);
void                cp_speech_model_unref        (CpSpeechModel  *model);
gboolean            cp_speech_model_preload      (CpSpeechModel  *model,
                                                  guint           n_decoders,
                                                  GError        **error);

CpSpeechRecognizer *cp_speech_recognizer_new     (CpSpeechModel  *model,
                                                  guint           rate,
                                                  GError        **error);
void                cp_speech_recognizer_free    (CpSpeechRecognizer *rec);
void      cp_speech_recognizer_set_frontend      (CpSpeechRecognizer *rec,
                                                  CpSpeechFrontend frontend);
CpSpeechVad        *cp_speech_recognizer_get_vad (CpSpeechRecognizer *rec);
void      cp_speech_recognizer_set_partial_interval
                                                 (CpSpeechRecognizer *rec,
                                                  guint           ms);
gboolean  cp_speech_recognizer_set_grammar       (CpSpeechRecognizer *rec,
                                                  const gchar    *jsgf,
                                                  GError        **error);
gboolean  cp_speech_recognizer_set_phrases       (CpSpeechRecognizer *rec,
                                                  const gchar * const *phrases,
                                                  GError        **error);
gboolean  cp_speech_recognizer_process           (CpSpeechRecognizer *rec,
                                                  const gint16   *samples,
                                                  gsize           n_samples,
                                                  GError        **error);
gboolean  cp_speech_recognizer_flush             (CpSpeechRecognizer *rec,
                                                  GError        **error);
CpSpeechResult *cp_speech_recognizer_pop_result  (CpSpeechRecognizer *rec);

void      cp_speech_result_free                  (CpSpeechResult *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechModel, cp_speech_model_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechRecognizer, cp_speech_recognizer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechResult, cp_speech_result_free)

G_END_DECLS

#endif /* CP_SPEECH_ASR_H */

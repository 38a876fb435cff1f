/* Voice activity detection on S16 mono audio at 8 to 48 kHz. */
#ifndef CP_SPEECH_VAD_H
#define CP_SPEECH_VAD_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_SPEECH_VAD_DEFAULT_SENSITIVITY 0.5
#define CP_SPEECH_VAD_DEFAULT_START_MS    80
#define CP_SPEECH_VAD_DEFAULT_HANGOVER_MS 600

typedef enum {
  CP_SPEECH_VAD_SPEECH_START,
  CP_SPEECH_VAD_SPEECH_END,
} CpSpeechVadEventType;

/* @sample: first sample of speech (START) or the sample after its last
 * frame (END), counted from the first sample given to the detector.
 * @detected_at: the sample count at which the detector decided. */
typedef struct {
  CpSpeechVadEventType type;
  guint64              sample;
  guint64              detected_at;
} CpSpeechVadEvent;

typedef struct _CpSpeechVad CpSpeechVad;

CpSpeechVad *cp_speech_vad_new             (guint               rate);
void         cp_speech_vad_free            (CpSpeechVad        *vad);

void         cp_speech_vad_set_sensitivity (CpSpeechVad        *vad,
                                            gdouble             sensitivity);
void         cp_speech_vad_set_start_ms    (CpSpeechVad        *vad,
                                            guint               ms);
void         cp_speech_vad_set_hangover_ms (CpSpeechVad        *vad,
                                            guint               ms);

guint        cp_speech_vad_process         (CpSpeechVad        *vad,
                                            const gint16       *samples,
                                            gsize               n_samples,
                                            GArray             *events);
gboolean     cp_speech_vad_in_speech       (const CpSpeechVad  *vad);
void         cp_speech_vad_reset           (CpSpeechVad        *vad);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechVad, cp_speech_vad_free)

G_END_DECLS

#endif /* CP_SPEECH_VAD_H */

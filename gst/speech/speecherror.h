/* Errors of the offline speech engines. */
#ifndef CP_SPEECH_ERROR_H
#define CP_SPEECH_ERROR_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_SPEECH_ERROR (cp_speech_error_quark ())

typedef enum {
  CP_SPEECH_ERROR_UNKNOWN_VOICE,
  CP_SPEECH_ERROR_EMPTY_TEXT,
  CP_SPEECH_ERROR_SYNTHESIS,
  CP_SPEECH_ERROR_MODEL,
  CP_SPEECH_ERROR_GRAMMAR,
  CP_SPEECH_ERROR_RATE,
  CP_SPEECH_ERROR_DECODE,
  CP_SPEECH_ERROR_WORKFLOW,  /* a workflow, tool file or tool result */
} CpSpeechError;

GQuark cp_speech_error_quark (void);

G_END_DECLS

#endif /* CP_SPEECH_ERROR_H */

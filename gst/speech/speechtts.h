/* Offline text to speech with flite. */
#ifndef CP_SPEECH_TTS_H
#define CP_SPEECH_TTS_H

#include "speech/speecherror.h"

G_BEGIN_DECLS

#define CP_SPEECH_TTS_DEFAULT_VOICE "slt"

const gchar * const *cp_speech_tts_list_voices      (void);

guint                cp_speech_tts_voice_rate       (const gchar  *voice,
                                                     GError      **error);

GBytes              *cp_speech_tts_synthesize       (const gchar  *voice,
                                                     const gchar  *text,
                                                     guint        *out_rate,
                                                     GError      **error);

G_END_DECLS

#endif /* CP_SPEECH_TTS_H */

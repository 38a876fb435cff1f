#include "speech/speecherror.h"

GQuark
cp_speech_error_quark (void)
{
  return g_quark_from_static_string ("cp-speech-error-quark");
}

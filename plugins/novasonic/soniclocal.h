/* callpipe — the offline backend: VAD, ASR, dialog engine, TTS
 *
 * The caller's audio goes to the recognizer (8 or 16 kHz; 24 kHz input is
 * resampled to 16 kHz), whose VAD cuts utterances and detects barge-in;
 * each final result drives the dialog engine of a workflow
 * (a JSON file of pipelines/workflows), whose replies are spoken by flite and
 * resampled to the output rate. The recognizer listens with the dialog
 * state's grammar. All of it runs on one worker thread per conversation.
 */
#ifndef SONIC_LOCAL_H
#define SONIC_LOCAL_H

#include "sonicbackend.h"

G_BEGIN_DECLS

typedef struct {
  gchar *workflow;              /* path of the workflow JSON file */
  gchar *tools_dir;             /* its tool files */
  gchar *voice;                 /* a flite voice, NULL: the default */
  gint output_rate;
  guint end_of_turn_ms;         /* silence that ends the caller's turn */
} SonicLocalSettings;

void sonic_local_settings_clear (SonicLocalSettings *settings);

/* Takes the settings' members. */
SonicBackend *sonic_local_new (SonicLocalSettings *settings,
                               const SonicBackendListener *listener,
                               gpointer user_data);

G_END_DECLS

#endif /* SONIC_LOCAL_H */

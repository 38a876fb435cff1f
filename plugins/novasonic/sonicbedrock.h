/* callpipe — the Amazon Bedrock (Nova Sonic) backend
 *
 * One session at a time streams caller audio (~32 ms frames, silence
 * while the caller is quiet) and receives the model's events. A session
 * is renewed ahead of the service's 8-minute limit (the next one is
 * opened early, then takes over at a turn boundary with the history and
 * the last 3 s of caller audio), and replaced the same way after a
 * ModelTimeout, throttling or a dropped stream.
 */
#ifndef SONIC_BEDROCK_H
#define SONIC_BEDROCK_H

#include "sonicbackend.h"

G_BEGIN_DECLS

/* Caller audio replayed to a new session. */
#define SONIC_REPLAY_SECONDS 3

typedef struct {
  SonicConfig *config;          /* taken */
  gchar *endpoint;              /* resolved URL */
  gchar *region;
  gchar *access_key;            /* explicit credentials, may be NULL */
  gchar *secret_key;
  gchar *session_token;
  guint renewal_s;              /* 0: never renew ahead */
} SonicBedrockSettings;

void sonic_bedrock_settings_clear (SonicBedrockSettings *settings);

/* Takes the settings' members. */
SonicBackend *sonic_bedrock_new (SonicBedrockSettings *settings,
                                 const SonicBackendListener *listener,
                                 gpointer user_data);

G_END_DECLS

#endif /* SONIC_BEDROCK_H */

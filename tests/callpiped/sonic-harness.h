/* What the GET /sonic tests share: callpiped with the bot on sonicpeer.py
 * (the local Nova Sonic peer), spoken test audio, bounded waits. */
#ifndef CP_SONIC_HARNESS_H
#define CP_SONIC_HARNESS_H

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define SONIC_TEST_TOKEN "sonic-token-42"
#define SONIC_TEST_QUESTION "Hello, I would like to check the status of my order."

typedef struct
{
  /* Set before sonic_daemon_start(), or left zero: */
  const gchar *server_extra; /* more [server] lines */
  guint reply_ms;            /* sonicpeer's answer length (1000) */

  gchar *dir;
  gchar *config;
  gchar *data_dir;
  GSubprocess *peer;
  GSubprocess *daemon;
  guint peer_port;
  guint port;
  SoupSession *http;
} SonicDaemon;

gboolean sonic_daemon_start  (SonicDaemon *d);
void     sonic_daemon_stop   (SonicDaemon *d);
gint     sonic_daemon_wait_exit (SonicDaemon *d);
gchar   *sonic_daemon_get    (SonicDaemon *d, const gchar *path, guint *status);
gdouble  sonic_daemon_metric (SonicDaemon *d, const gchar *series);
GBytes  *sonic_speech_pcm    (const gchar *text, guint silence_ms);
void     sonic_write_wav     (const gchar *path, GBytes *pcm);
gboolean sonic_wait          (gboolean (*done) (gpointer), gpointer data,
                              guint seconds);

G_END_DECLS

#endif /* CP_SONIC_HARNESS_H */

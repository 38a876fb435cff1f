/* callpipe — the conversation engine behind the novasonic element
 *
 * The element owns the pads, timing, bus messages and tool semantics; a
 * backend turns caller audio into reply audio and events. Each backend
 * implements this small vtable, so bedrock (Nova Sonic) and the offline
 * engine plug in behind the same element.
 *
 * Threading: push_audio, tool_result, finish come from the element's
 * streaming/application threads and never block for long; stop joins the
 * backend's threads. Listener callbacks come from backend threads, never
 * while the backend holds a lock, and must not block.
 */
#ifndef SONIC_BACKEND_H
#define SONIC_BACKEND_H

#include "sonicprotocol.h"

G_BEGIN_DECLS

typedef struct _SonicBackend SonicBackend;

typedef struct {
  /* Reply audio, S16LE mono at the configured output rate. */
  void (*audio)       (gpointer user_data, GBytes *pcm);
  /* The reply's audio is complete (its end of turn). */
  void (*reply_end)   (gpointer user_data);
  void (*transcript)  (gpointer user_data, SonicRole role, SonicStage stage,
                       const gchar *text);
  void (*tool_use)    (gpointer user_data, const gchar *tool_name,
                       const gchar *tool_use_id, const gchar *input);
  /* The engine stopped its reply because the caller spoke. */
  void (*barge_in)    (gpointer user_data);
  /* The caller started speaking (a barge-in if a reply is playing). */
  void (*user_speech) (gpointer user_data);
  /* "started", "renewed" or "ended". */
  void (*session)     (gpointer user_data, const gchar *event);
  void (*usage)       (gpointer user_data, gint64 input_tokens,
                       gint64 output_tokens, gint64 total_tokens);
  /* Fatal: the backend gave up; no more callbacks but finished. */
  void (*error)       (gpointer user_data, const GError *error);
  /* After finish(): the conversation is over. */
  void (*finished)    (gpointer user_data);
} SonicBackendListener;

typedef struct {
  const gchar *name;
  /* Starts the conversation with caller audio at @input_rate. */
  gboolean (*start)       (SonicBackend *backend, gint input_rate,
                           GError **error);
  void     (*push_audio)  (SonicBackend *backend, const guint8 *pcm,
                           gsize len);
  void     (*tool_result) (SonicBackend *backend, const gchar *tool_use_id,
                           const gchar *json);
  /* No more caller audio: end once the reply in progress is over. */
  void     (*finish)      (SonicBackend *backend);
  /* Ends everything now; no callback after it returns. */
  void     (*stop)        (SonicBackend *backend);
  void     (*free)        (SonicBackend *backend);
} SonicBackendClass;

struct _SonicBackend {
  const SonicBackendClass *klass;
  SonicBackendListener listener;
  gpointer user_data;
};

G_END_DECLS

#endif /* SONIC_BACKEND_H */

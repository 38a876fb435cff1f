/* callpipe — one Nova Sonic bidirectional stream
 *
 * A SonicSession is one InvokeModelWithBidirectionalStream request on an
 * HTTP/2 connection: it signs the request, opens the stream, sends the
 * prologue (sessionStart, promptStart, the SYSTEM text), then whatever
 * its owner sends, each event wrapped and signed in the chain; it decodes
 * the response into SonicOutputEvents. The events of one call (the
 * prologue, a text block, a batch of audio frames...) go to the stream
 * in one write.
 *
 * Threading: the send functions must be called from one thread at a time
 * (the signing chain is sequential) and may block in flow control; the
 * callbacks run on the connection's I/O thread and must not block; an
 * owner that goes away first detaches the session.
 */
#ifndef SONIC_SESSION_H
#define SONIC_SESSION_H

#include "aws/credentials.h"
#include "http/cphttp2.h"
#include "sonicprotocol.h"

G_BEGIN_DECLS

typedef struct _SonicSession SonicSession;

typedef struct {
  /* Every decoded output event, exceptions included (transfer none). */
  void (*event)  (SonicSession *session, const SonicOutputEvent *event,
                  gpointer user_data);
  /* Once; @error NULL when the stream ended cleanly. */
  void (*closed) (SonicSession *session, const GError *error,
                  gpointer user_data);
} SonicSessionCallbacks;

/* Connects to @url (https://, or http:// for h2c), opens the stream and
 * sends the prologue; @time is the signing time (unix seconds). Each
 * session has a connection of its own, closed with the session. */
SonicSession *sonic_session_open    (const gchar *url,
                                     const CpHttpOptions *options,
                                     const gchar *region,
                                     const CpAwsCredentials *credentials,
                                     const SonicConfig *config,
                                     gint64 time,
                                     const SonicSessionCallbacks *callbacks,
                                     gpointer user_data,
                                     GError **error);
SonicSession *sonic_session_ref     (SonicSession *session);
void          sonic_session_unref   (SonicSession *session);

/* History blocks (SonicHistoryEntry), non-interactive text. */
gboolean sonic_session_send_history     (SonicSession *session,
                                         GPtrArray *entries,
                                         GError **error);
/* The interactive USER audio contentStart at @rate. */
gboolean sonic_session_start_audio      (SonicSession *session,
                                         gint rate,
                                         GError **error);
gboolean sonic_session_send_audio       (SonicSession *session,
                                         const guint8 *pcm, gsize len,
                                         GError **error);
/* Each @frame_bytes of @pcm (the last piece may be shorter) as an
 * audioInput event of its own, each signed in turn, all handed to the
 * stream in one write. */
gboolean sonic_session_send_audio_frames (SonicSession *session,
                                          const guint8 *pcm, gsize len,
                                          gsize frame_bytes,
                                          GError **error);
gboolean sonic_session_send_tool_result (SonicSession *session,
                                         const gchar *tool_use_id,
                                         const gchar *json,
                                         GError **error);
/* Audio contentEnd (when started), promptEnd, sessionEnd, the empty
 * signed frame and END_STREAM. The response keeps flowing until the
 * service ends it. */
gboolean sonic_session_finish           (SonicSession *session,
                                         GError **error);
/* Resets the stream at once; closed follows with G_IO_ERROR_CANCELLED. */
void     sonic_session_cancel           (SonicSession *session);
/* No callback runs once this returns. Not from a callback. */
void     sonic_session_detach           (SonicSession *session);

gboolean     sonic_session_audio_started (SonicSession *session);
/* The HTTP status (0 before the response) and x-amzn-errortype. */
guint        sonic_session_get_status    (SonicSession *session);
const gchar *sonic_session_get_error_type (SonicSession *session);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SonicSession, sonic_session_unref)

G_END_DECLS

#endif /* SONIC_SESSION_H */

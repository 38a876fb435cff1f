/* callpipe — Amazon Transcribe streaming client (HTTP/2, event stream)
 *
 * POST /stream-transcription with the x-amzn-transcribe-* headers, signed
 * with SigV4 (service "transcribe", payload STREAMING-AWS4-HMAC-SHA256-
 * EVENTS); the audio goes up as AudioEvent messages in signed envelopes,
 * TranscriptEvents and exceptions come down. One HTTP/2 connection per
 * stream, as the service wants.
 *
 * Reliability, all inside the client:
 * - keep-alive: when no audio has been sent for keepalive_ms, a chunk of
 *   silence goes up, so the service's 15 s no-audio timeout never fires
 *   (a paused pipeline, a quiet source). That silence is not part of the
 *   caller's audio: result times are mapped back around it.
 * - reconnect: the audio after the last final result's end is kept (at
 *   most max_tail_ms); when a stream drops (connection closed or reset,
 *   InternalFailureException, ServiceUnavailableException, HTTP 5xx/429)
 *   a new stream starts with that tail, and results that repeat what was
 *   already final are trimmed by time. Consecutive failed attempts back
 *   off as the SDK standard retry mode and give up after max_attempts.
 * - rollover: before a stream carries max_stream_ms of audio the next
 *   one takes over as after a drop, starting with the audio that has no
 *   final result yet (no word is cut in two). If that tail is longer than
 *   three quarters of the limit even after waiting a little for results,
 *   the stream is ended cleanly instead and the next one goes on after
 *   it. So the 4-hour stream limit is never reached.
 * Result times are seconds of the caller's audio since the first sample,
 * continuous across streams.
 *
 * Threading: one worker thread sends and reconnects; results arrive on
 * the HTTP/2 I/O thread. Callbacks run on either, never under the
 * client's lock; the client never posts errors itself: the caller asks
 * for the stored one (cp_transcribe_client_dup_error). Credentials are
 * never logged.
 */
#ifndef CP_TRANSCRIBE_CLIENT_H
#define CP_TRANSCRIBE_CLIENT_H

#include <gio/gio.h>

#include "aws/credentials.h"
#include "transcript.h"

G_BEGIN_DECLS

#define CP_TRANSCRIBE_ERROR (cp_transcribe_error_quark ())
GQuark cp_transcribe_error_quark (void);

typedef enum
{
  CP_TRANSCRIBE_ERROR_SERVICE,     /* an exception or HTTP error from the
                                    * service; the message starts with its
                                    * name (BadRequestException, ...) */
  CP_TRANSCRIBE_ERROR_CONNECTION,  /* reconnecting failed max_attempts times */
  CP_TRANSCRIBE_ERROR_CREDENTIALS, /* no credentials, or unusable ones */
  CP_TRANSCRIBE_ERROR_PROTOCOL,    /* a malformed event stream from the peer */
  CP_TRANSCRIBE_ERROR_TIMEOUT,     /* the last results did not arrive */
  CP_TRANSCRIBE_ERROR_CONFIG,      /* a setting the service cannot take */
} CpTranscribeError;

typedef enum
{
  CP_TRANSCRIBE_STABILITY_NONE,    /* no partial-results stabilization */
  CP_TRANSCRIBE_STABILITY_LOW,
  CP_TRANSCRIBE_STABILITY_MEDIUM,
  CP_TRANSCRIBE_STABILITY_HIGH,
} CpTranscribeStability;

typedef enum
{
  CP_TRANSCRIBE_STREAM_STARTED,      /* the first stream answered */
  CP_TRANSCRIBE_STREAM_RECONNECTED,  /* a new stream after a dropped one */
  CP_TRANSCRIBE_STREAM_ROLLED_OVER,  /* a new stream after max_stream_ms */
} CpTranscribeStreamEvent;

typedef struct
{
  const gchar *endpoint;        /* http(s)://host[:port][/path] */
  const gchar *region;
  const gchar *language_code;
  const gchar *vocabulary_name; /* NULL: none */
  const gchar *session_id;      /* NULL: the service makes one */
  CpTranscribeStability stability;
  guint rate;                   /* 8000..48000 */
  guint channels;               /* 1, or 2 with channel identification */
  guint chunk_ms;               /* 50..200 */
  guint keepalive_ms;           /* 0: never send silence */
  guint64 max_stream_ms;        /* audio per stream before rolling over */
  guint max_tail_ms;            /* audio kept for resending */
  guint max_attempts;           /* per failure; 0: the SDK default (3) */
  const gchar *ca_file;         /* NULL: the system store */
} CpTranscribeClientConfig;

typedef struct _CpTranscribeClient CpTranscribeClient;

typedef struct
{
  /* A result, times already on the caller's timeline, repeats trimmed. */
  void (*result) (CpTranscribeClient *client,
                  const CpTranscriptResult *result,
                  gpointer user_data);
  /* A stream answered with 200; @index counts streams from 0. */
  void (*stream) (CpTranscribeClient *client,
                  CpTranscribeStreamEvent event,
                  guint index,
                  const gchar *request_id,
                  gpointer user_data);
} CpTranscribeClientCallbacks;

/* Takes @credentials. Fails on a config the service would refuse. */
CpTranscribeClient *cp_transcribe_client_new  (const CpTranscribeClientConfig *config,
                                               CpAwsCredentialsProvider *credentials,
                                               const CpTranscribeClientCallbacks *callbacks,
                                               gpointer user_data,
                                               GError **error);
/* Starts the worker, which opens the first stream. */
void                cp_transcribe_client_start (CpTranscribeClient *client);

/* Queues interleaved S16LE audio. Blocks while a minute of audio waits to
 * be sent (back-pressure) unless unlocked. Returns FALSE once the client
 * has failed (take the error) or is unlocked. */
gboolean            cp_transcribe_client_push (CpTranscribeClient *client,
                                               const guint8 *data,
                                               gsize len);
/* Sends what is queued, ends the stream and waits up to @timeout_us for
 * its last results. */
gboolean            cp_transcribe_client_finish (CpTranscribeClient *client,
                                                 gint64 timeout_us,
                                                 GError **error);
/* Makes push and finish return at once (flushing); unlock_stop undoes. */
void                cp_transcribe_client_unlock (CpTranscribeClient *client);
void                cp_transcribe_client_unlock_stop (CpTranscribeClient *client);
/* A copy of the stored failure, if any. */
GError             *cp_transcribe_client_dup_error (CpTranscribeClient *client);
/* Stops the worker and drops the stream without waiting for results. */
void                cp_transcribe_client_free (CpTranscribeClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpTranscribeClient, cp_transcribe_client_free)

G_END_DECLS

#endif /* CP_TRANSCRIBE_CLIENT_H */

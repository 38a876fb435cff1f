/* callpipe — full-duplex HTTP/2 streams on nghttp2 + OpenSSL
 *
 * For event-stream APIs (Transcribe streaming, Nova Sonic) where request and
 * response bodies flow at the same time on one stream. https:// URLs use TLS
 * with ALPN "h2", SNI and certificate verification (system CA store, or
 * CpHttpOptions.ca_file); http:// URLs use h2c with prior knowledge (local
 * peers).
 *
 * Threading: each connection runs one I/O thread that owns the socket and
 * the nghttp2 session; it connects in the background, so no call here
 * blocks except cp_http2_stream_wait_writable. Every stream callback runs on
 * that I/O thread and must not block; it may call any function here but
 * cp_http2_stream_wait_writable (and may drop references). All other
 * functions may be called from any thread.
 *
 * Lifetime: a stream holds a reference to its connection, and the
 * connection holds each open stream until it closes. Dropping references
 * does not end an open stream: end, cancel it or close the connection.
 *
 * Per stream, callbacks come in this order: response (once), data (zero or
 * more), closed (exactly once; error NULL when both directions ended
 * cleanly). Errors: CP_HTTP_ERROR_STREAM_RESET for RST_STREAM (the message
 * names the HTTP/2 error code), CP_HTTP_ERROR_CONNECTION_CLOSED when the
 * connection drops, CP_HTTP_ERROR_TIMEOUT, CP_HTTP_ERROR_TLS,
 * CP_HTTP_ERROR_CONNECT, and G_IO_ERROR_CANCELLED after cancel or close.
 */
#ifndef CP_HTTP2_H
#define CP_HTTP2_H

#include <gio/gio.h>

#include "http/cphttp.h"

G_BEGIN_DECLS

typedef struct _CpHttp2Connection CpHttp2Connection;
typedef struct _CpHttp2Stream CpHttp2Stream;

typedef struct {
  void (*response) (CpHttp2Stream *stream, guint status,
                    CpHttpHeaders *headers, gpointer user_data);
  void (*data)     (CpHttp2Stream *stream, const guint8 *data, gsize len,
                    gpointer user_data);
  void (*closed)   (CpHttp2Stream *stream, const GError *error,
                    gpointer user_data);
} CpHttp2StreamCallbacks;

/* Bytes a stream accepts into its send queue before write returns
 * G_IO_ERROR_WOULD_BLOCK. */
#define CP_HTTP2_DEFAULT_MAX_QUEUED (1024 * 1024)

/* url: scheme://host[:port][/...]; only scheme and authority are used.
 * Fails only on a malformed URL; connection errors reach the streams. */
CpHttp2Connection *cp_http2_connection_new   (const gchar *url,
                                              const CpHttpOptions *options,
                                              GError **error);
CpHttp2Connection *cp_http2_connection_ref   (CpHttp2Connection *connection);
void               cp_http2_connection_unref (CpHttp2Connection *connection);
/* Ends every open stream with G_IO_ERROR_CANCELLED, sends GOAWAY and stops
 * the I/O thread. Asynchronous: returns at once. */
void               cp_http2_connection_close (CpHttp2Connection *connection);

/* host[:port] of @url as sent in :authority and signed: the port only
 * when it is not the scheme's default, an IPv6 host in brackets. */
gchar *cp_http2_authority_for_url (const gchar *url, GError **error);

/* path is the :path (with query); headers are sent after the pseudo
 * headers, names lowercased; pseudo-headers and connection-specific ones
 * (host, connection, transfer-encoding, ...) are dropped since the
 * connection sends :authority itself.
 * Returns a new reference; the stream keeps the connection alive. */
CpHttp2Stream *
cp_http2_connection_open_stream (CpHttp2Connection *connection,
                                 const gchar *method,
                                 const gchar *path,
                                 CpHttpHeaders *headers,
                                 const CpHttp2StreamCallbacks *callbacks,
                                 gpointer user_data,
                                 GDestroyNotify notify);

CpHttp2Stream *cp_http2_stream_ref   (CpHttp2Stream *stream);
void           cp_http2_stream_unref (CpHttp2Stream *stream);

/* Queues a chunk of request body; never blocks. Fails with
 * G_IO_ERROR_WOULD_BLOCK while more than max_queued bytes wait (retry after
 * cp_http2_stream_wait_writable), with G_IO_ERROR_CLOSED after end, and with
 * the stream's error once it is closed. */
gboolean       cp_http2_stream_write (CpHttp2Stream *stream,
                                      const guint8 *data, gsize len,
                                      GError **error);
gboolean       cp_http2_stream_write_bytes (CpHttp2Stream *stream,
                                            GBytes *bytes,
                                            GError **error);
/* Blocks until the queue is below its bound, the stream closes, the timeout
 * (microseconds, -1 for none) expires or the cancellable fires. Must not be
 * called from a stream callback. */
gboolean       cp_http2_stream_wait_writable (CpHttp2Stream *stream,
                                              gint64 timeout_us,
                                              GCancellable *cancellable,
                                              GError **error);
void           cp_http2_stream_set_max_queued (CpHttp2Stream *stream,
                                               gsize max_queued);
/* Ends the request body (END_STREAM after the queued data). */
void           cp_http2_stream_end   (CpHttp2Stream *stream);
/* Resets the stream (RST_STREAM CANCEL); closed gets G_IO_ERROR_CANCELLED. */
void           cp_http2_stream_cancel (CpHttp2Stream *stream);
gsize          cp_http2_stream_get_queued (CpHttp2Stream *stream);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpHttp2Connection, cp_http2_connection_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpHttp2Stream, cp_http2_stream_unref)

G_END_DECLS

#endif /* CP_HTTP2_H */

/* callpipe — HTTP client library: shared types
 *
 * Header lists, transfer options and the error domain used by both the
 * libcurl request API (cphttprequest.h) and the full-duplex HTTP/2 stream
 * API (cphttp2.h). Callers pass ready headers (already signed): this
 * library never adds or logs credentials.
 */
#ifndef CP_HTTP_H
#define CP_HTTP_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_HTTP_ERROR (cp_http_error_quark ())

/* Cancellation is reported as G_IO_ERROR_CANCELLED, not in this domain. */
typedef enum {
  CP_HTTP_ERROR_FAILED,             /* anything not listed below */
  CP_HTTP_ERROR_INVALID_URL,
  CP_HTTP_ERROR_CONNECT,            /* DNS, refused, unreachable */
  CP_HTTP_ERROR_TLS,                /* handshake, certificate, ALPN */
  CP_HTTP_ERROR_TIMEOUT,            /* connect, idle or total timeout */
  CP_HTTP_ERROR_CONNECTION_CLOSED,  /* peer closed or reset the connection */
  CP_HTTP_ERROR_PROTOCOL,           /* malformed HTTP, GOAWAY with error */
  CP_HTTP_ERROR_STREAM_RESET,       /* HTTP/2 RST_STREAM from the peer */
  CP_HTTP_ERROR_TOO_LARGE,          /* body over the caller's limit */
} CpHttpError;

GQuark cp_http_error_quark (void);

/* An ordered list of header name/value pairs; names compare
 * case-insensitively. Reference counted; not locked: share it between
 * threads only once it is no longer modified. */
typedef struct _CpHttpHeaders CpHttpHeaders;

CpHttpHeaders *cp_http_headers_new    (void);
CpHttpHeaders *cp_http_headers_ref    (CpHttpHeaders *headers);
void           cp_http_headers_unref  (CpHttpHeaders *headers);
void           cp_http_headers_add    (CpHttpHeaders *headers,
                                       const gchar *name,
                                       const gchar *value);
void           cp_http_headers_add_len (CpHttpHeaders *headers,
                                        const gchar *name, gsize name_len,
                                        const gchar *value, gsize value_len);
const gchar   *cp_http_headers_get    (const CpHttpHeaders *headers,
                                       const gchar *name);
guint          cp_http_headers_size   (const CpHttpHeaders *headers);
void           cp_http_headers_nth    (const CpHttpHeaders *headers,
                                       guint index,
                                       const gchar **name,
                                       const gchar **value);
void           cp_http_headers_clear  (CpHttpHeaders *headers);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpHttpHeaders, cp_http_headers_unref)

/* Timeouts in milliseconds; 0 means "none" except for connect_timeout_ms,
 * where 0 means CP_HTTP_DEFAULT_CONNECT_TIMEOUT_MS. idle_timeout_ms ends a
 * transfer when no byte has moved in either direction for that long (a peer
 * that hangs mid-body). ca_file replaces the system CA store (tests with a
 * self-signed peer). The struct is copied: the caller keeps ownership. */
typedef struct {
  guint        connect_timeout_ms;
  guint        timeout_ms;
  guint        idle_timeout_ms;
  const gchar *ca_file;
} CpHttpOptions;

#define CP_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000

G_END_DECLS

#endif /* CP_HTTP_H */

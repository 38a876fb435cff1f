/* callpipe — HTTP/1.1 (and HTTP/2 where negotiated) requests on libcurl
 *
 * One request, one transfer, run on one thread: either the caller's own
 * thread (cp_http_request_run, for GstTask threads and other workers; never
 * the GLib main loop) or a thread the request starts for itself
 * (cp_http_request_start + cp_http_request_wait). A thread per request keeps
 * long responses (GetMedia runs for 40+ minutes) from sharing a loop with
 * short ones, lets a callback block for back-pressure without stalling other
 * transfers, and needs no locking around curl handles. Connections are kept
 * alive: a transfer that ends cleanly leaves its connection in a pool, and
 * a later request to the same host reuses it (one thread at a time per
 * connection), so requests made one after the other pay for one TCP and TLS
 * handshake. DNS results and TLS sessions are shared between requests too,
 * so new connections to the same host skip full handshakes. Redirects are
 * not followed: a 3xx is a response like any other.
 *
 * Callbacks run on the thread that performs the transfer, in this order:
 * headers (once, final response only, 1xx skipped), data (zero or more
 * times, as bytes arrive), done (exactly once, also on failure). A callback
 * may block (that is the back-pressure), but cancellation only takes effect
 * when it returns.
 */
#ifndef CP_HTTP_REQUEST_H
#define CP_HTTP_REQUEST_H

#include <gio/gio.h>

#include "http/cphttp.h"

G_BEGIN_DECLS

typedef struct _CpHttpRequest CpHttpRequest;

/* Return FALSE from headers or data to stop the transfer; it then ends with
 * G_IO_ERROR_CANCELLED. error in done is NULL on success (any HTTP status). */
typedef struct {
  gboolean (*headers) (CpHttpRequest *request, guint status,
                       CpHttpHeaders *headers, gpointer user_data);
  gboolean (*data)    (CpHttpRequest *request, const guint8 *data, gsize len,
                       gpointer user_data);
  void     (*done)    (CpHttpRequest *request, const GError *error,
                       gpointer user_data);
} CpHttpRequestCallbacks;

CpHttpRequest *cp_http_request_new           (const gchar *method,
                                              const gchar *url);
CpHttpRequest *cp_http_request_ref           (CpHttpRequest *request);
void           cp_http_request_unref         (CpHttpRequest *request);

/* Setup, before run/start. An empty value removes a header curl would add
 * by itself (e.g. "Expect"). */
void           cp_http_request_add_header    (CpHttpRequest *request,
                                              const gchar *name,
                                              const gchar *value);
void           cp_http_request_add_headers   (CpHttpRequest *request,
                                              CpHttpHeaders *headers);
void           cp_http_request_set_body      (CpHttpRequest *request,
                                              GBytes *body);
/* Read on the transfer thread, with the request's cancellable; length -1
 * sends chunked (HTTP/1.1). */
void           cp_http_request_set_body_stream (CpHttpRequest *request,
                                                GInputStream *stream,
                                                gint64 length);
void           cp_http_request_set_options   (CpHttpRequest *request,
                                              const CpHttpOptions *options);
void           cp_http_request_set_callbacks
                              (CpHttpRequest *request,
                               const CpHttpRequestCallbacks *callbacks,
                               gpointer user_data,
                               GDestroyNotify notify);

/* Blocking, on the calling thread. */
gboolean       cp_http_request_run           (CpHttpRequest *request,
                                              GCancellable *cancellable,
                                              GError **error);
/* On a new thread; cancel through the cancellable from any thread. */
void           cp_http_request_start         (CpHttpRequest *request,
                                              GCancellable *cancellable);
gboolean       cp_http_request_wait          (CpHttpRequest *request,
                                              GError **error);

/* Blocking helper for small calls: runs the request and collects the body
 * (at most max_body bytes, 0 for no limit). Any HTTP status is a success;
 * read it with cp_http_request_get_status. */
GBytes        *cp_http_request_fetch         (CpHttpRequest *request,
                                              gsize max_body,
                                              GCancellable *cancellable,
                                              GError **error);

/* Valid once the headers callback ran (or after run/wait/fetch). */
guint          cp_http_request_get_status    (CpHttpRequest *request);
CpHttpHeaders *cp_http_request_get_response_headers (CpHttpRequest *request);
const gchar   *cp_http_request_get_url       (CpHttpRequest *request);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpHttpRequest, cp_http_request_unref)

G_END_DECLS

#endif /* CP_HTTP_REQUEST_H */

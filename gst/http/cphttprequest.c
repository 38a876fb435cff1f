/* callpipe — HTTP requests on libcurl, one transfer per thread */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cphttprequest.h"

#include <curl/curl.h>
#include <string.h>

/* The poll interval bounds how late an idle timeout can fire; cancellation
 * does not depend on it (it wakes the poll). */
#define POLL_INTERVAL_MS 1000
#define EXPECT_100_TIMEOUT_MS 1000

struct _CpHttpRequest
{
  gatomicrefcount ref;

  gchar *method;
  gchar *url;
  CpHttpHeaders *headers;
  GBytes *body;
  GInputStream *body_stream;
  gint64 body_length;
  CpHttpOptions options;
  gchar *ca_file;
  CpHttpRequestCallbacks callbacks;
  gpointer user_data;
  GDestroyNotify notify;

  /* Transfer state, owned by the transfer thread. */
  GCancellable *cancellable;
  gsize body_offset;
  gint64 last_activity_us;
  gboolean headers_delivered;
  guint status;
  CpHttpHeaders *response_headers;
  GError *callback_error;
  GByteArray *collected;
  gsize collect_max;
  gchar errbuf[CURL_ERROR_SIZE];

  /* cp_http_request_start */
  GThread *thread;
  gboolean thread_result;
  GError *thread_error;
};

/* Shared between all requests: the DNS cache and TLS sessions, which
 * libcurl allows to share across threads. Its connection cache
 * (CURL_LOCK_DATA_CONNECT) is not among them: CURLSHOPT_SHARE(3) says
 * sharing connections between concurrent threads is unsupported, and
 * requests here run on several threads at once. */
static CURLSH *shared_handle;
static GMutex share_locks[CURL_LOCK_DATA_LAST];

/* Keep-alive instead: idle multi handles, each holding the connections its
 * last transfers left open. A transfer takes one for itself and gives it
 * back when done, so a handle (and its connections) is only ever used by
 * one thread at a time, as libcurl requires. The most recently returned
 * handle is taken first, so requests made one after the other reuse one
 * warm connection; N concurrent transfers leave N handles behind. */
#define MAX_IDLE_HANDLES 32
#define MAX_CONNECTIONS_PER_HANDLE 2
static GMutex pool_lock;
static GQueue idle_multis = G_QUEUE_INIT;

static void
share_lock (CURL *handle, curl_lock_data data, curl_lock_access access,
    void *user_data)
{
  g_mutex_lock (&share_locks[data]);
}

static void
share_unlock (CURL *handle, curl_lock_data data, void *user_data)
{
  g_mutex_unlock (&share_locks[data]);
}

static gpointer
curl_init_once (gpointer data)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
  shared_handle = curl_share_init ();
  curl_share_setopt (shared_handle, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt (shared_handle, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt (shared_handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt (shared_handle, CURLSHOPT_SHARE,
      CURL_LOCK_DATA_SSL_SESSION);
  return NULL;
}

static void
ensure_curl (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, curl_init_once, NULL);
}

static CURLM *
take_multi (void)
{
  CURLM *multi;

  g_mutex_lock (&pool_lock);
  multi = g_queue_pop_head (&idle_multis);
  g_mutex_unlock (&pool_lock);
  if (multi == NULL) {
    multi = curl_multi_init ();
    curl_multi_setopt (multi, CURLMOPT_MAXCONNECTS,
        (long) MAX_CONNECTIONS_PER_HANDLE);
  }
  return multi;
}

static void
return_multi (CURLM *multi)
{
  g_mutex_lock (&pool_lock);
  if (g_queue_get_length (&idle_multis) < MAX_IDLE_HANDLES) {
    g_queue_push_head (&idle_multis, multi);
    multi = NULL;
  }
  g_mutex_unlock (&pool_lock);
  if (multi)
    curl_multi_cleanup (multi);
}

CpHttpRequest *
cp_http_request_new (const gchar *method, const gchar *url)
{
  CpHttpRequest *request;

  g_return_val_if_fail (method != NULL && *method != '\0', NULL);
  g_return_val_if_fail (url != NULL, NULL);

  request = g_new0 (CpHttpRequest, 1);
  g_atomic_ref_count_init (&request->ref);
  request->method = g_strdup (method);
  request->url = g_strdup (url);
  request->headers = cp_http_headers_new ();
  request->response_headers = cp_http_headers_new ();
  request->body_length = -1;
  return request;
}

CpHttpRequest *
cp_http_request_ref (CpHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  g_atomic_ref_count_inc (&request->ref);
  return request;
}

void
cp_http_request_unref (CpHttpRequest *request)
{
  g_return_if_fail (request != NULL);
  if (!g_atomic_ref_count_dec (&request->ref))
    return;

  /* Only reached once the transfer thread (which holds a reference) is done;
   * unreffing a thread nobody joined detaches it. */
  if (request->thread)
    g_thread_unref (request->thread);
  g_clear_error (&request->thread_error);
  if (request->notify)
    request->notify (request->user_data);
  g_free (request->method);
  g_free (request->url);
  g_free (request->ca_file);
  cp_http_headers_unref (request->headers);
  cp_http_headers_unref (request->response_headers);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_clear_object (&request->body_stream);
  g_free (request);
}

void
cp_http_request_add_header (CpHttpRequest *request, const gchar *name,
    const gchar *value)
{
  g_return_if_fail (request != NULL);
  cp_http_headers_add (request->headers, name, value);
}

void
cp_http_request_add_headers (CpHttpRequest *request, CpHttpHeaders *headers)
{
  guint i;

  g_return_if_fail (request != NULL && headers != NULL);
  for (i = 0; i < cp_http_headers_size (headers); i++) {
    const gchar *name, *value;

    cp_http_headers_nth (headers, i, &name, &value);
    cp_http_headers_add (request->headers, name, value);
  }
}

void
cp_http_request_set_body (CpHttpRequest *request, GBytes *body)
{
  g_return_if_fail (request != NULL);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_clear_object (&request->body_stream);
  request->body = body ? g_bytes_ref (body) : NULL;
  request->body_length = body ? (gint64) g_bytes_get_size (body) : -1;
}

void
cp_http_request_set_body_stream (CpHttpRequest *request, GInputStream *stream,
    gint64 length)
{
  g_return_if_fail (request != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (stream));
  g_clear_pointer (&request->body, g_bytes_unref);
  g_clear_object (&request->body_stream);
  request->body_stream = g_object_ref (stream);
  request->body_length = length;
}

void
cp_http_request_set_options (CpHttpRequest *request,
    const CpHttpOptions *options)
{
  g_return_if_fail (request != NULL && options != NULL);
  request->options = *options;
  g_free (request->ca_file);
  request->ca_file = g_strdup (options->ca_file);
  request->options.ca_file = request->ca_file;
}

void
cp_http_request_set_callbacks (CpHttpRequest *request,
    const CpHttpRequestCallbacks *callbacks, gpointer user_data,
    GDestroyNotify notify)
{
  g_return_if_fail (request != NULL && callbacks != NULL);
  if (request->notify)
    request->notify (request->user_data);
  request->callbacks = *callbacks;
  request->user_data = user_data;
  request->notify = notify;
}

guint
cp_http_request_get_status (CpHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, 0);
  return request->status;
}

CpHttpHeaders *
cp_http_request_get_response_headers (CpHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  return request->response_headers;
}

const gchar *
cp_http_request_get_url (CpHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  return request->url;
}

/* Error messages name the URL without its query: presigned URLs carry
 * credentials there. */
static gchar *
url_for_messages (const gchar *url)
{
  return g_strndup (url, strcspn (url, "?#"));
}

static void
touch (CpHttpRequest *request)
{
  request->last_activity_us = g_get_monotonic_time ();
}

static void
set_callback_error (CpHttpRequest *request, GError *error)
{
  if (request->callback_error)
    g_error_free (error);
  else
    request->callback_error = error;
}

static gboolean
deliver_headers (CpHttpRequest *request, CURL *easy)
{
  long code = 0;

  request->headers_delivered = TRUE;
  curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &code);
  request->status = (guint) code;
  if (request->callbacks.headers
      && !request->callbacks.headers (request, request->status,
          request->response_headers, request->user_data)) {
    set_callback_error (request,
        g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
            "Transfer stopped by the headers callback"));
    return FALSE;
  }
  return TRUE;
}

typedef struct
{
  CpHttpRequest *request;
  CURL *easy;
} TransferCtx;

static size_t
header_cb (char *buffer, size_t size, size_t nitems, void *user_data)
{
  TransferCtx *ctx = user_data;
  CpHttpRequest *request = ctx->request;
  gsize len = size * nitems;
  gsize line_len = len;
  const gchar *colon;

  touch (request);
  if (request->headers_delivered)
    return len; /* trailers */

  while (line_len > 0
      && (buffer[line_len - 1] == '\n' || buffer[line_len - 1] == '\r'))
    line_len--;

  if (len >= 5 && memcmp (buffer, "HTTP/", 5) == 0) {
    /* A new response (after 1xx): its headers replace the previous. */
    cp_http_headers_clear (request->response_headers);
    return len;
  }

  if (line_len == 0) {
    long code = 0;

    curl_easy_getinfo (ctx->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && !deliver_headers (request, ctx->easy))
      return 0;
    touch (request);
    return len;
  }

  colon = memchr (buffer, ':', line_len);
  if (colon && colon > buffer) {
    const gchar *value = colon + 1;
    const gchar *end = buffer + line_len;

    while (value < end && (*value == ' ' || *value == '\t'))
      value++;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    cp_http_headers_add_len (request->response_headers, buffer, colon - buffer,
        value, end - value);
  }
  return len;
}

static size_t
write_cb (char *data, size_t size, size_t nmemb, void *user_data)
{
  TransferCtx *ctx = user_data;
  CpHttpRequest *request = ctx->request;
  gsize len = size * nmemb;

  touch (request);
  if (!request->headers_delivered && !deliver_headers (request, ctx->easy))
    return 0;

  if (request->collected) {
    if (request->collect_max > 0
        && request->collected->len + len > request->collect_max) {
      set_callback_error (request,
          g_error_new (CP_HTTP_ERROR, CP_HTTP_ERROR_TOO_LARGE,
              "Response body larger than %" G_GSIZE_FORMAT " bytes",
              request->collect_max));
      return 0;
    }
    g_byte_array_append (request->collected, (const guint8 *) data, len);
  }

  if (request->callbacks.data
      && !request->callbacks.data (request, (const guint8 *) data, len,
          request->user_data)) {
    set_callback_error (request,
        g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
            "Transfer stopped by the data callback"));
    return 0;
  }
  touch (request);
  return len;
}

static size_t
read_cb (char *buffer, size_t size, size_t nitems, void *user_data)
{
  CpHttpRequest *request = user_data;
  gsize want = size * nitems;
  gsize avail;

  touch (request);
  if (request->body_stream) {
    GError *error = NULL;
    gssize n = g_input_stream_read (request->body_stream, buffer, want,
        request->cancellable, &error);

    if (n < 0) {
      g_prefix_error (&error, "Reading the request body: ");
      set_callback_error (request, error);
      return CURL_READFUNC_ABORT;
    }
    touch (request);
    return n;
  }

  if (!request->body)
    return 0;
  avail = g_bytes_get_size (request->body) - request->body_offset;
  want = MIN (want, avail);
  memcpy (buffer,
      (const guint8 *) g_bytes_get_data (request->body, NULL)
          + request->body_offset,
      want);
  request->body_offset += want;
  return want;
}

/* Lets curl rewind a bytes body (HTTP/2 refused stream, 100-continue
 * rejected); a streamed body cannot be rewound. */
static int
seek_cb (void *user_data, curl_off_t offset, int origin)
{
  CpHttpRequest *request = user_data;

  if (!request->body || origin != SEEK_SET || offset < 0
      || (guint64) offset > g_bytes_get_size (request->body))
    return CURL_SEEKFUNC_CANTSEEK;
  request->body_offset = offset;
  return CURL_SEEKFUNC_OK;
}

static struct curl_slist *
build_header_list (CpHttpRequest *request)
{
  struct curl_slist *list = NULL;
  guint i;

  for (i = 0; i < cp_http_headers_size (request->headers); i++) {
    const gchar *name, *value;
    g_autofree gchar *line = NULL;

    cp_http_headers_nth (request->headers, i, &name, &value);
    /* "Name:" with nothing after the colon is how curl drops a header it
     * would add itself. */
    line = *value ? g_strdup_printf ("%s: %s", name, value)
                  : g_strdup_printf ("%s:", name);
    list = curl_slist_append (list, line);
  }
  return list;
}

static void
configure_easy (CpHttpRequest *request, TransferCtx *ctx, CURL *easy,
    struct curl_slist *header_list)
{
  guint connect_ms = request->options.connect_timeout_ms
      ? request->options.connect_timeout_ms
      : CP_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;

  curl_easy_setopt (easy, CURLOPT_URL, request->url);
  curl_easy_setopt (easy, CURLOPT_SHARE, shared_handle);
  curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, request->errbuf);
  curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) connect_ms);
  curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS,
      (long) request->options.timeout_ms);
  curl_easy_setopt (easy, CURLOPT_EXPECT_100_TIMEOUT_MS,
      (long) EXPECT_100_TIMEOUT_MS);
  curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
  if (request->ca_file)
    curl_easy_setopt (easy, CURLOPT_CAINFO, request->ca_file);
  curl_easy_setopt (easy, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (easy, CURLOPT_HEADERDATA, ctx);
  curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (easy, CURLOPT_WRITEDATA, ctx);

  if (g_ascii_strcasecmp (request->method, "GET") == 0) {
    curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L);
  } else if (g_ascii_strcasecmp (request->method, "HEAD") == 0) {
    curl_easy_setopt (easy, CURLOPT_NOBODY, 1L);
  } else {
    /* Every other method goes out as an upload so that a body-less POST
     * still carries Content-Length: 0. */
    curl_easy_setopt (easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, request->method);
    curl_easy_setopt (easy, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt (easy, CURLOPT_READDATA, request);
    curl_easy_setopt (easy, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt (easy, CURLOPT_SEEKDATA, request);
    curl_easy_setopt (easy, CURLOPT_INFILESIZE_LARGE,
        (curl_off_t) (request->body || request->body_stream
                ? request->body_length
                : 0));
  }
}

static CpHttpError
error_code_for_curl (CURLcode code)
{
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return CP_HTTP_ERROR_INVALID_URL;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
      return CP_HTTP_ERROR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
      return CP_HTTP_ERROR_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return CP_HTTP_ERROR_TLS;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
      return CP_HTTP_ERROR_CONNECTION_CLOSED;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return CP_HTTP_ERROR_PROTOCOL;
    default:
      return CP_HTTP_ERROR_FAILED;
  }
}

static GError *
error_for_curl (CpHttpRequest *request, CURLcode code)
{
  g_autofree gchar *where = url_for_messages (request->url);
  const gchar *detail =
      request->errbuf[0] ? request->errbuf : curl_easy_strerror (code);

  return g_error_new (CP_HTTP_ERROR, error_code_for_curl (code),
      "%s %s failed: %s", request->method, where, detail);
}

static void
wake_multi (GCancellable *cancellable, gpointer user_data)
{
  curl_multi_wakeup (user_data);
}

/* Runs the multi loop until the transfer ends; returns the curl result, or
 * sets *error for the conditions this loop detects itself. */
static CURLcode
drive_transfer (CpHttpRequest *request, CURLM *multi, CURL *easy,
    GError **error)
{
  guint idle_ms = request->options.idle_timeout_ms;
  CURLMsg *msg;
  int running = 1;
  int queued;

  touch (request);
  while (running) {
    gint64 idle_us;
    int wait_ms = POLL_INTERVAL_MS;
    CURLMcode mc = curl_multi_perform (multi, &running);

    if (mc != CURLM_OK) {
      g_autofree gchar *where = url_for_messages (request->url);

      g_set_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_FAILED,
          "%s %s failed: %s", request->method, where, curl_multi_strerror (mc));
      return CURLE_OK;
    }
    if (!running)
      break;
    if (g_cancellable_set_error_if_cancelled (request->cancellable, error))
      return CURLE_OK;
    if (idle_ms > 0) {
      idle_us = g_get_monotonic_time () - request->last_activity_us;
      if (idle_us >= (gint64) idle_ms * 1000) {
        g_autofree gchar *where = url_for_messages (request->url);

        g_set_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT,
            "%s %s failed: no data for %u ms (idle timeout)", request->method,
            where, idle_ms);
        return CURLE_OK;
      }
      wait_ms = MIN (wait_ms, (int) (idle_ms - idle_us / 1000) + 1);
    }
    curl_multi_poll (multi, NULL, 0, wait_ms, NULL);
  }

  while ((msg = curl_multi_info_read (multi, &queued))) {
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
      return msg->data.result;
  }
  return CURLE_OK;
}

static gboolean
perform (CpHttpRequest *request, GCancellable *cancellable, GError **error)
{
  TransferCtx ctx;
  CURL *easy;
  CURLM *multi;
  struct curl_slist *header_list;
  GError *local_error = NULL;
  CURLcode code;
  gulong handler = 0;

  ensure_curl ();
  g_return_val_if_fail (request->cancellable == NULL, FALSE);

  request->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  request->body_offset = 0;
  request->headers_delivered = FALSE;
  request->status = 0;
  request->errbuf[0] = '\0';
  cp_http_headers_clear (request->response_headers);

  easy = curl_easy_init ();
  multi = take_multi ();
  header_list = build_header_list (request);
  ctx.request = request;
  ctx.easy = easy;
  configure_easy (request, &ctx, easy, header_list);
  curl_multi_add_handle (multi, easy);
  if (cancellable)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (wake_multi),
        multi, NULL);

  code = drive_transfer (request, multi, easy, &local_error);

  /* Disconnecting waits for a running wake_multi, so the multi handle
   * outlives it. */
  if (cancellable)
    g_cancellable_disconnect (cancellable, handler);
  /* Removing the easy handle leaves its connection, when it can be used
   * again, in the multi handle's cache. */
  curl_multi_remove_handle (multi, easy);
  return_multi (multi);
  curl_easy_cleanup (easy);
  curl_slist_free_all (header_list);

  if (request->callback_error) {
    g_clear_error (&local_error);
    local_error = g_steal_pointer (&request->callback_error);
  } else if (!local_error && code != CURLE_OK) {
    if (g_cancellable_is_cancelled (cancellable))
      g_cancellable_set_error_if_cancelled (cancellable, &local_error);
    else
      local_error = error_for_curl (request, code);
  }
  g_clear_object (&request->cancellable);

  if (request->callbacks.done)
    request->callbacks.done (request, local_error, request->user_data);
  if (local_error) {
    g_propagate_error (error, local_error);
    return FALSE;
  }
  return TRUE;
}

gboolean
cp_http_request_run (CpHttpRequest *request, GCancellable *cancellable,
    GError **error)
{
  g_return_val_if_fail (request != NULL, FALSE);
  g_return_val_if_fail (request->thread == NULL, FALSE);
  return perform (request, cancellable, error);
}

typedef struct
{
  CpHttpRequest *request;
  GCancellable *cancellable;
} StartCtx;

static gpointer
transfer_thread (gpointer data)
{
  StartCtx *start = data;
  CpHttpRequest *request = start->request;

  request->thread_result =
      perform (request, start->cancellable, &request->thread_error);
  g_clear_object (&start->cancellable);
  g_free (start);
  cp_http_request_unref (request);
  return NULL;
}

void
cp_http_request_start (CpHttpRequest *request, GCancellable *cancellable)
{
  StartCtx *start;

  g_return_if_fail (request != NULL);
  g_return_if_fail (request->thread == NULL);

  start = g_new0 (StartCtx, 1);
  start->request = cp_http_request_ref (request);
  start->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  request->thread = g_thread_new ("cp-http", transfer_thread, start);
}

gboolean
cp_http_request_wait (CpHttpRequest *request, GError **error)
{
  g_return_val_if_fail (request != NULL, FALSE);
  g_return_val_if_fail (request->thread != NULL, FALSE);

  g_thread_join (g_steal_pointer (&request->thread));
  if (request->thread_error) {
    g_propagate_error (error, g_steal_pointer (&request->thread_error));
    return FALSE;
  }
  return request->thread_result;
}

GBytes *
cp_http_request_fetch (CpHttpRequest *request, gsize max_body,
    GCancellable *cancellable, GError **error)
{
  gboolean ok;

  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (request->thread == NULL, NULL);

  request->collected = g_byte_array_new ();
  request->collect_max = max_body;
  ok = perform (request, cancellable, error);
  if (!ok) {
    g_clear_pointer (&request->collected, g_byte_array_unref);
    return NULL;
  }
  return g_byte_array_free_to_bytes (g_steal_pointer (&request->collected));
}

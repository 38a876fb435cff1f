/* Unit tests for the libcurl request API against an in-process HTTP/1.1
 * server on 127.0.0.1 (a port picked at run time). Each connection is served
 * by its own thread, so a stalled response never blocks the next test. */
#include "http/cphttprequest.h"

#include <string.h>
#include <unistd.h>

#define WAIT_TIMEOUT_US (10 * G_USEC_PER_SEC)

typedef struct
{
  GSocket *listener;
  guint16 port;
  GCancellable *stop;
  GThread *accept_thread;
  GMutex lock;
  GPtrArray *threads;
  gint connections; /* accepted so far (atomic) */
  /* The client's data callback pushes here once it has a piece; the
   * /pieces handler waits for it before sending the rest. */
  GAsyncQueue *acks;
} Server;

typedef struct
{
  Server *server;
  GSocket *socket;
} Conn;

static gboolean
send_all (GSocket *socket, const gchar *data, gsize len)
{
  while (len > 0) {
    gssize n = g_socket_send (socket, data, len, NULL, NULL);

    if (n <= 0)
      return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}

static gboolean
send_str (GSocket *socket, const gchar *str)
{
  return send_all (socket, str, strlen (str));
}

static const gchar *
find_str (GByteArray *buf, const gchar *needle)
{
  if (buf->len == 0)
    return NULL;
  return g_strstr_len ((const gchar *) buf->data, buf->len, needle);
}

/* Reads until the end of the request head; the rest stays in *extra, which
 * may already hold the start of the head (bytes that followed the previous
 * request on a kept-alive connection). */
static gchar *
read_head (GSocket *socket, GByteArray *extra, GCancellable *cancellable)
{
  GByteArray *buf = g_byte_array_new ();

  g_byte_array_append (buf, extra->data, extra->len);
  g_byte_array_set_size (extra, 0);

  for (;;) {
    gchar chunk[4096];
    gssize n;
    const gchar *end;

    if ((end = find_str (buf, "\r\n\r\n"))) {
      gsize head_len = end - (const gchar *) buf->data + 4;
      gchar *head = g_strndup ((const gchar *) buf->data, head_len);

      g_byte_array_append (extra, buf->data + head_len, buf->len - head_len);
      g_byte_array_unref (buf);
      return head;
    }
    n = g_socket_receive (socket, chunk, sizeof (chunk), cancellable, NULL);
    if (n <= 0) {
      g_byte_array_unref (buf);
      return NULL;
    }
    g_byte_array_append (buf, (const guint8 *) chunk, n);
  }
}

static gchar *
head_field (const gchar *head, const gchar *name)
{
  g_auto (GStrv) lines = g_strsplit (head, "\r\n", -1);
  guint i;

  for (i = 1; lines[i]; i++) {
    gchar *colon = strchr (lines[i], ':');

    if (colon && (gsize) (colon - lines[i]) == strlen (name)
        && g_ascii_strncasecmp (lines[i], name, strlen (name)) == 0)
      return g_strstrip (g_strdup (colon + 1));
  }
  return NULL;
}

static gboolean
fill (GSocket *socket, GByteArray *buf, gsize want)
{
  while (buf->len < want) {
    gchar chunk[16384];
    gssize n = g_socket_receive (socket, chunk, sizeof (chunk), NULL, NULL);

    if (n <= 0)
      return FALSE;
    g_byte_array_append (buf, (const guint8 *) chunk, n);
  }
  return TRUE;
}

/* Reads a Content-Length or chunked body (buf starts with what followed the
 * head). */
static GByteArray *
read_body (GSocket *socket, const gchar *head, GByteArray *buf)
{
  g_autofree gchar *length = head_field (head, "Content-Length");
  g_autofree gchar *te = head_field (head, "Transfer-Encoding");
  GByteArray *body = g_byte_array_new ();

  if (length) {
    gsize n = g_ascii_strtoull (length, NULL, 10);

    if (fill (socket, buf, n))
      g_byte_array_append (body, buf->data, n);
  } else if (te && g_ascii_strcasecmp (te, "chunked") == 0) {
    for (;;) {
      const gchar *crlf;
      gsize size, line;

      while (!(crlf = find_str (buf, "\r\n"))) {
        if (!fill (socket, buf, buf->len + 1))
          return body;
      }
      line = crlf - (const gchar *) buf->data + 2;
      size = g_ascii_strtoull ((const gchar *) buf->data, NULL, 16);
      if (!fill (socket, buf, line + size + 2))
        return body;
      g_byte_array_append (body, buf->data + line, size);
      g_byte_array_remove_range (buf, 0, line + size + 2);
      if (size == 0)
        break;
    }
  }
  return body;
}

static void
serve_status (GSocket *socket, const gchar *head, GByteArray *rest)
{
  g_autoptr (GByteArray) body = read_body (socket, head, rest);
  g_autofree gchar *foo = head_field (head, "X-Foo");
  g_autofree gchar *accept = head_field (head, "Accept");
  g_autofree gchar *method = g_strndup (head, strcspn (head, " "));
  g_autofree gchar *text =
      g_strdup_printf ("method=%s foo=%s accept=%s body=%.*s", method,
          foo ? foo : "", accept ? accept : "none", (int) body->len,
          (const gchar *) body->data);
  g_autofree gchar *response =
      g_strdup_printf ("HTTP/1.1 201 Created\r\n"
                       "Content-Type: text/plain\r\nX-Test:  hello \r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
          strlen (text), text);

  send_str (socket, response);
}

static void
serve_upload (GSocket *socket, const gchar *head, GByteArray *rest)
{
  g_autoptr (GByteArray) body = read_body (socket, head, rest);
  g_autofree gchar *sum =
      g_compute_checksum_for_data (G_CHECKSUM_SHA256, body->data, body->len);
  g_autofree gchar *text = g_strdup_printf ("%u %s", body->len, sum);
  g_autofree gchar *response =
      g_strdup_printf ("HTTP/1.1 200 OK\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
          strlen (text), text);

  send_str (socket, response);
}

static void
serve_pieces (Server *server, GSocket *socket)
{
  gpointer ack;

  send_str (socket,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
      "Content-Type: application/octet-stream\r\n\r\n5\r\nfirst\r\n");
  ack = g_async_queue_timeout_pop (server->acks, WAIT_TIMEOUT_US);
  if (ack)
    send_str (socket, "6\r\nsecond\r\n0\r\n\r\n");
  else
    send_str (socket, "7\r\ntimeout\r\n0\r\n\r\n");
}

/* Sends part of a body, then nothing until the client goes away. */
static void
serve_stall (GSocket *socket)
{
  send_str (socket,
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
      "0123456789");
  g_socket_condition_timed_wait (socket, G_IO_IN | G_IO_HUP,
      30 * G_USEC_PER_SEC, NULL, NULL);
}

/* Answers without closing, so the client may send more requests on this
 * connection: the body is how many requests it has carried. */
static void
serve_keep (GSocket *socket, const gchar *head, GByteArray *rest, guint nth)
{
  g_autofree gchar *length = head_field (head, "Content-Length");
  gsize n = length ? g_ascii_strtoull (length, NULL, 10) : 0;
  g_autofree gchar *text = g_strdup_printf ("%u", nth);
  g_autofree gchar *response =
      g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
          strlen (text), text);

  if (fill (socket, rest, n))
    g_byte_array_remove_range (rest, 0, n);
  send_str (socket, response);
}

static gpointer
conn_thread (gpointer data)
{
  Conn *conn = data;
  g_autoptr (GByteArray) rest = g_byte_array_new ();
  g_autofree gchar *head = read_head (conn->socket, rest, conn->server->stop);
  guint nth = 1;

  /* /keep answers leave the connection open for the next request; /drop
   * answers like /keep, then closes (as servers drop idle connections). */
  while (head && g_str_has_prefix (strchr (head, ' ') + 1, "/keep")) {
    serve_keep (conn->socket, head, rest, nth++);
    g_free (head);
    head = read_head (conn->socket, rest, conn->server->stop);
  }
  if (head) {
    const gchar *path = strchr (head, ' ') + 1;

    if (g_str_has_prefix (path, "/drop"))
      serve_keep (conn->socket, head, rest, nth);
    else if (g_str_has_prefix (path, "/status"))
      serve_status (conn->socket, head, rest);
    else if (g_str_has_prefix (path, "/upload"))
      serve_upload (conn->socket, head, rest);
    else if (g_str_has_prefix (path, "/pieces"))
      serve_pieces (conn->server, conn->socket);
    else if (g_str_has_prefix (path, "/stall"))
      serve_stall (conn->socket);
    else
      send_str (conn->socket,
          "HTTP/1.1 404 Not Found\r\n"
          "Content-Length: 0\r\n\r\n");
  }
  g_socket_close (conn->socket, NULL);
  g_object_unref (conn->socket);
  g_free (conn);
  return NULL;
}

static gpointer
accept_thread (gpointer data)
{
  Server *server = data;

  for (;;) {
    GSocket *socket = g_socket_accept (server->listener, server->stop, NULL);
    Conn *conn;

    if (!socket)
      return NULL;
    g_atomic_int_inc (&server->connections);
    g_socket_set_blocking (socket, TRUE);
    g_socket_set_timeout (socket, 30);
    conn = g_new0 (Conn, 1);
    conn->server = server;
    conn->socket = socket;
    g_mutex_lock (&server->lock);
    g_ptr_array_add (server->threads,
        g_thread_new ("test-http1", conn_thread, conn));
    g_mutex_unlock (&server->lock);
  }
}

static GSocket *
bind_loopback (void)
{
  g_autoptr (GInetAddress) lo =
      g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);

  g_assert_nonnull (socket);
  g_assert_true (g_socket_bind (socket, addr, TRUE, NULL));
  return socket;
}

static guint16
socket_port (GSocket *socket)
{
  g_autoptr (GSocketAddress) addr = g_socket_get_local_address (socket, NULL);

  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr));
}

static void
server_setup (Server *server, gconstpointer data)
{
  server->listener = bind_loopback ();
  g_assert_true (g_socket_listen (server->listener, NULL));
  server->port = socket_port (server->listener);
  server->stop = g_cancellable_new ();
  server->acks = g_async_queue_new ();
  server->threads = g_ptr_array_new ();
  g_mutex_init (&server->lock);
  server->accept_thread = g_thread_new ("test-accept", accept_thread, server);
}

static void
server_teardown (Server *server, gconstpointer data)
{
  guint i;

  g_cancellable_cancel (server->stop);
  g_thread_join (server->accept_thread);
  for (i = 0; i < server->threads->len; i++)
    g_thread_join (g_ptr_array_index (server->threads, i));
  g_ptr_array_unref (server->threads);
  g_socket_close (server->listener, NULL);
  g_object_unref (server->listener);
  g_object_unref (server->stop);
  g_async_queue_unref (server->acks);
  g_mutex_clear (&server->lock);
}

static gchar *
server_url (Server *server, const gchar *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", server->port, path);
}

/* Status, response headers (trimmed), request method, header and body. */
static void
test_fetch_status_headers (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/status");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("POST", url);
  g_autoptr (GBytes) body = g_bytes_new_static ("ping", 4);
  g_autoptr (GBytes) resp = NULL;
  g_autoptr (GError) error = NULL;
  CpHttpHeaders *headers;

  cp_http_request_add_header (req, "X-Foo", "bar");
  /* An empty value removes the Accept header curl adds by itself. */
  cp_http_request_add_header (req, "Accept", "");
  cp_http_request_set_body (req, body);
  resp = cp_http_request_fetch (req, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_request_get_status (req), ==, 201);
  headers = cp_http_request_get_response_headers (req);
  g_assert_cmpstr (cp_http_headers_get (headers, "content-type"), ==,
      "text/plain");
  g_assert_cmpstr (cp_http_headers_get (headers, "x-test"), ==, "hello");
  g_assert_cmpmem (g_bytes_get_data (resp, NULL), g_bytes_get_size (resp),
      "method=POST foo=bar accept=none body=ping", 41);
}

static void
test_fetch_too_large (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/status");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
  g_autoptr (GError) error = NULL;
  GBytes *resp = cp_http_request_fetch (req, 8, NULL, &error);

  g_assert_null (resp);
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_TOO_LARGE);
}

typedef struct
{
  Server *server;
  GMutex lock;
  GCond cond;
  guint status;
  gchar *content_type;
  GByteArray *body;
  guint pieces;
  gboolean acked;
  gboolean got_headers;
  gboolean done;
  gboolean done_ok;
} Recorder;

static void
recorder_init (Recorder *rec, Server *server)
{
  memset (rec, 0, sizeof (*rec));
  rec->server = server;
  g_mutex_init (&rec->lock);
  g_cond_init (&rec->cond);
  rec->body = g_byte_array_new ();
}

static void
recorder_clear (Recorder *rec)
{
  g_byte_array_unref (rec->body);
  g_free (rec->content_type);
  g_mutex_clear (&rec->lock);
  g_cond_clear (&rec->cond);
}

static gboolean
rec_headers (CpHttpRequest *req, guint status, CpHttpHeaders *headers,
    gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  rec->status = status;
  rec->content_type = g_strdup (cp_http_headers_get (headers, "Content-Type"));
  rec->got_headers = TRUE;
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
  return TRUE;
}

static gboolean
rec_data (CpHttpRequest *req, const guint8 *data, gsize len, gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  g_byte_array_append (rec->body, data, len);
  rec->pieces++;
  if (!rec->acked && rec->body->len >= 5
      && memcmp (rec->body->data, "first", 5) == 0) {
    rec->acked = TRUE;
    g_async_queue_push (rec->server->acks, GINT_TO_POINTER (1));
  }
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
  return TRUE;
}

static void
rec_done (CpHttpRequest *req, const GError *error, gpointer user_data)
{
  Recorder *rec = user_data;

  g_mutex_lock (&rec->lock);
  rec->done = TRUE;
  rec->done_ok = error == NULL;
  g_mutex_unlock (&rec->lock);
}

static const CpHttpRequestCallbacks rec_callbacks = {rec_headers, rec_data,
    rec_done};

/* The server sends "first" and holds the rest of the body until the client
 * has delivered "first" to its data callback: a client that buffered the
 * body until the end would make the server send "timeout" instead. */
static void
test_streamed_body (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/pieces");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
  g_autoptr (GError) error = NULL;
  CpHttpOptions options = {0, 30000, 0, NULL};
  Recorder rec;

  recorder_init (&rec, server);
  cp_http_request_set_options (req, &options);
  cp_http_request_set_callbacks (req, &rec_callbacks, &rec, NULL);
  g_assert_true (cp_http_request_run (req, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (rec.status, ==, 200);
  g_assert_cmpstr (rec.content_type, ==, "application/octet-stream");
  g_assert_true (rec.acked);
  g_assert_cmpuint (rec.pieces, >=, 2);
  g_assert_cmpmem (rec.body->data, rec.body->len, "firstsecond", 11);
  g_assert_true (rec.done);
  g_assert_true (rec.done_ok);
  recorder_clear (&rec);
}

/* A 1 MiB body of unknown length from a GInputStream goes out chunked. */
static void
test_streamed_upload (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/upload");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("PUT", url);
  gsize len = 1024 * 1024 + 7;
  guint8 *payload = g_malloc (len);
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GBytes) resp = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *sum = NULL;
  g_autofree gchar *expected = NULL;
  gsize i;

  for (i = 0; i < len; i++)
    payload[i] = i % 253;
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, payload, len);
  expected = g_strdup_printf ("%zu %s", len, sum);
  stream = g_memory_input_stream_new_from_data (payload, len, g_free);
  cp_http_request_set_body_stream (req, stream, -1);
  resp = cp_http_request_fetch (req, 1024, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_request_get_status (req), ==, 200);
  g_assert_cmpmem (g_bytes_get_data (resp, NULL), g_bytes_get_size (resp),
      expected, strlen (expected));
}

static void
test_idle_timeout (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/stall");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
  g_autoptr (GError) error = NULL;
  CpHttpOptions options = {0, 20000, 300, NULL};
  gint64 start = g_get_monotonic_time ();
  Recorder rec;

  recorder_init (&rec, server);
  cp_http_request_set_options (req, &options);
  cp_http_request_set_callbacks (req, &rec_callbacks, &rec, NULL);
  g_assert_false (cp_http_request_run (req, NULL, &error));
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "idle"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpmem (rec.body->data, rec.body->len, "0123456789", 10);
  g_assert_true (rec.done);
  g_assert_false (rec.done_ok);
  recorder_clear (&rec);
}

/* Cancelled from this thread while the transfer thread waits for a body
 * that never comes; no idle timeout is set, so only cancellation ends it. */
static void
test_cancel_in_flight (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/stall");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  CpHttpOptions options = {0, 20000, 0, NULL};
  gint64 end_time = g_get_monotonic_time () + WAIT_TIMEOUT_US;
  gint64 start;
  Recorder rec;

  recorder_init (&rec, server);
  cp_http_request_set_options (req, &options);
  cp_http_request_set_callbacks (req, &rec_callbacks, &rec, NULL);
  cp_http_request_start (req, cancellable);

  g_mutex_lock (&rec.lock);
  while (
      rec.body->len < 10 && g_cond_wait_until (&rec.cond, &rec.lock, end_time))
    ;
  g_assert_cmpuint (rec.body->len, ==, 10);
  g_mutex_unlock (&rec.lock);

  start = g_get_monotonic_time ();
  g_cancellable_cancel (cancellable);
  g_assert_false (cp_http_request_wait (req, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC / 2);
  g_assert_true (rec.got_headers);
  recorder_clear (&rec);
}

static gboolean
stop_data (CpHttpRequest *req, const guint8 *data, gsize len,
    gpointer user_data)
{
  return FALSE;
}

static void
test_callback_stops (Server *server, gconstpointer data)
{
  static const CpHttpRequestCallbacks callbacks = {NULL, stop_data, NULL};
  g_autofree gchar *url = server_url (server, "/status");
  g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
  g_autoptr (GError) error = NULL;

  cp_http_request_set_callbacks (req, &callbacks, NULL, NULL);
  g_assert_false (cp_http_request_run (req, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static guint16
closed_port (void)
{
  GSocket *socket = bind_loopback ();
  guint16 port = socket_port (socket);

  g_socket_close (socket, NULL);
  g_object_unref (socket);
  return port;
}

static void
test_connection_refused (void)
{
  const gchar *schemes[] = {"http", "https"};
  guint16 port = closed_port ();
  guint i;

  for (i = 0; i < G_N_ELEMENTS (schemes); i++) {
    g_autofree gchar *url =
        g_strdup_printf ("%s://127.0.0.1:%u/x?secret=1", schemes[i], port);
    g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) resp = cp_http_request_fetch (req, 0, NULL, &error);

    g_assert_null (resp);
    g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECT);
    g_assert_nonnull (strstr (error->message, "127.0.0.1"));
    g_assert_null (strstr (error->message, "secret"));
  }
}

/* Runs one request to @path and returns the response body as a string
 * (the /keep handlers answer with the request's rank on its connection). */
static gchar *
fetch_text (Server *server, const gchar *method, const gchar *path,
    GBytes *body)
{
  g_autofree gchar *url = server_url (server, path);
  g_autoptr (CpHttpRequest) req = cp_http_request_new (method, url);
  g_autoptr (GBytes) resp = NULL;
  g_autoptr (GError) error = NULL;

  if (body)
    cp_http_request_set_body (req, body);
  resp = cp_http_request_fetch (req, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_request_get_status (req), ==, 200);
  return g_strndup (g_bytes_get_data (resp, NULL), g_bytes_get_size (resp));
}

/* Sequential requests, with and without bodies, share one connection. */
static void
test_keep_alive (Server *server, gconstpointer data)
{
  g_autoptr (GBytes) body = g_bytes_new_static ("0123456789", 10);
  guint i;

  for (i = 1; i <= 6; i++) {
    g_autofree gchar *rank = fetch_text (server, i % 2 ? "GET" : "PUT", "/keep",
        i % 2 ? NULL : body);
    g_autofree gchar *expected = g_strdup_printf ("%u", i);

    g_assert_cmpstr (rank, ==, expected);
  }
  g_assert_cmpint (g_atomic_int_get (&server->connections), ==, 1);
}

/* Requests that each run on a thread of their own (cp_http_request_start)
 * still reuse the connection the previous one left. */
static void
test_keep_alive_across_threads (Server *server, gconstpointer data)
{
  g_autofree gchar *url = server_url (server, "/keep");
  guint i;

  for (i = 1; i <= 4; i++) {
    g_autoptr (CpHttpRequest) req = cp_http_request_new ("GET", url);
    g_autoptr (GError) error = NULL;

    cp_http_request_start (req, NULL);
    g_assert_true (cp_http_request_wait (req, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (cp_http_request_get_status (req), ==, 200);
  }
  g_assert_cmpint (g_atomic_int_get (&server->connections), ==, 1);
}

/* A kept connection that the server closed meanwhile (idle timeout) is
 * not reused: the next request opens a new one and succeeds. */
static void
test_keep_alive_server_closed (Server *server, gconstpointer data)
{
  g_autofree gchar *first = fetch_text (server, "GET", "/drop", NULL);
  g_autofree gchar *second = NULL;
  g_autofree gchar *third = NULL;
  g_autoptr (GBytes) body = g_bytes_new_static ("payload", 7);
  gint64 deadline = g_get_monotonic_time () + WAIT_TIMEOUT_US;

  g_assert_cmpstr (first, ==, "1");
  /* The server thread closes right after answering; let the FIN arrive. */
  while (g_get_monotonic_time () < deadline && server->threads->len > 0) {
    GThread *thread;

    g_mutex_lock (&server->lock);
    thread = g_ptr_array_steal_index (server->threads, 0);
    g_mutex_unlock (&server->lock);
    g_thread_join (thread);
  }
  second = fetch_text (server, "PUT", "/keep", body);
  g_assert_cmpstr (second, ==, "1");
  third = fetch_text (server, "GET", "/keep", NULL);
  g_assert_cmpstr (third, ==, "2");
  g_assert_cmpint (g_atomic_int_get (&server->connections), ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func)                                                \
  g_test_add ("/http/request/" path, Server, NULL, server_setup, func, \
      server_teardown)
  ADD ("fetch-status-headers", test_fetch_status_headers);
  ADD ("fetch-too-large", test_fetch_too_large);
  ADD ("streamed-body", test_streamed_body);
  ADD ("streamed-upload", test_streamed_upload);
  ADD ("idle-timeout", test_idle_timeout);
  ADD ("cancel-in-flight", test_cancel_in_flight);
  ADD ("callback-stops", test_callback_stops);
  ADD ("keep-alive", test_keep_alive);
  ADD ("keep-alive-across-threads", test_keep_alive_across_threads);
  ADD ("keep-alive-server-closed", test_keep_alive_server_closed);
#undef ADD
  g_test_add_func ("/http/request/connection-refused", test_connection_refused);
  return g_test_run ();
}

/* Unit tests for the full-duplex HTTP/2 stream API against h2peer.py (h2c,
 * and TLS with a certificate made at run time by the openssl CLI). */
#include "http/cphttp2.h"
#include "http/cphttprequest.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* Hard bound per test: SIGALRM ends the process (and with it the peer,
 * which exits when its stdin closes) if anything hangs. */
#define TEST_ALARM_S 60

typedef struct
{
  GSubprocess *peer;
  guint16 port;
  gchar *tmpdir;
  gchar *cert;
  gchar *key;
} Fixture;

static gboolean
start_peer (Fixture *fx, gboolean tls)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  const gchar *argv[] = {H2PEER_PYTHON, H2PEER_SCRIPT, "--cert", fx->cert,
      "--key", fx->key, NULL};

  if (!tls)
    argv[2] = NULL;
  fx->peer = g_subprocess_newv (argv,
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fx->peer));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  if (!line) {
    g_test_skip ("h2peer.py did not start (is python3-h2 installed?)");
    return FALSE;
  }
  fx->port = (guint16) g_ascii_strtoull (line, NULL, 10);
  g_assert_cmpuint (fx->port, >, 0);
  return TRUE;
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  alarm (TEST_ALARM_S);
  memset (fx, 0, sizeof (*fx));
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  if (fx->peer) {
    g_subprocess_force_exit (fx->peer);
    g_subprocess_wait (fx->peer, NULL, NULL);
    g_object_unref (fx->peer);
  }
  if (fx->tmpdir) {
    g_unlink (fx->cert);
    g_unlink (fx->key);
    g_rmdir (fx->tmpdir);
  }
  g_free (fx->cert);
  g_free (fx->key);
  g_free (fx->tmpdir);
  alarm (0);
}

static gboolean
have_peer (void)
{
  if (H2PEER_PYTHON[0] == '\0'
      || !g_file_test (H2PEER_PYTHON, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip ("/usr/bin/python3 (with python3-h2) not found");
    return FALSE;
  }
  return TRUE;
}

static gboolean
start_h2c_peer (Fixture *fx)
{
  return have_peer () && start_peer (fx, FALSE);
}

static CpHttp2Connection *
connect_peer (Fixture *fx, const gchar *scheme, const gchar *host,
    const CpHttpOptions *options)
{
  g_autofree gchar *url =
      g_strdup_printf ("%s://%s:%u", scheme, host, fx->port);
  g_autoptr (GError) error = NULL;
  CpHttp2Connection *conn = cp_http2_connection_new (url, options, &error);

  g_assert_no_error (error);
  return conn;
}

/* ---- stream recorder ---- */

typedef struct
{
  GMutex lock;
  GCond cond;
  guint status;
  CpHttpHeaders *headers;
  GByteArray *body;
  guint data_calls;
  gboolean closed;
  GError *error;
  GThread *callback_thread;
} Rec;

static Rec *
rec_new (void)
{
  Rec *rec = g_new0 (Rec, 1);

  g_mutex_init (&rec->lock);
  g_cond_init (&rec->cond);
  rec->body = g_byte_array_new ();
  return rec;
}

static void
rec_free (Rec *rec)
{
  g_byte_array_unref (rec->body);
  g_clear_pointer (&rec->headers, cp_http_headers_unref);
  g_clear_error (&rec->error);
  g_mutex_clear (&rec->lock);
  g_cond_clear (&rec->cond);
  g_free (rec);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Rec, rec_free)

static void
on_response (CpHttp2Stream *stream, guint status, CpHttpHeaders *headers,
    gpointer user_data)
{
  Rec *rec = user_data;

  g_mutex_lock (&rec->lock);
  rec->status = status;
  rec->headers = cp_http_headers_ref (headers);
  rec->callback_thread = g_thread_self ();
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
}

static void
on_data (CpHttp2Stream *stream, const guint8 *data, gsize len,
    gpointer user_data)
{
  Rec *rec = user_data;

  g_mutex_lock (&rec->lock);
  g_byte_array_append (rec->body, data, len);
  rec->data_calls++;
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
}

static void
on_closed (CpHttp2Stream *stream, const GError *error, gpointer user_data)
{
  Rec *rec = user_data;

  g_mutex_lock (&rec->lock);
  g_assert_false (rec->closed);
  rec->closed = TRUE;
  rec->error = error ? g_error_copy (error) : NULL;
  g_cond_broadcast (&rec->cond);
  g_mutex_unlock (&rec->lock);
}

static const CpHttp2StreamCallbacks rec_callbacks = {on_response, on_data,
    on_closed};

static CpHttp2Stream *
open_stream (CpHttp2Connection *conn, const gchar *method, const gchar *path,
    Rec *rec)
{
  g_autoptr (CpHttpHeaders) headers = cp_http_headers_new ();

  cp_http_headers_add (headers, "X-Test", "abc");
  cp_http_headers_add (headers, "Host", "ignored.example");
  return cp_http2_connection_open_stream (conn, method, path, headers,
      &rec_callbacks, rec, NULL);
}

static void
wait_response (Rec *rec)
{
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT_US;

  g_mutex_lock (&rec->lock);
  while (!rec->headers && !rec->closed
      && g_cond_wait_until (&rec->cond, &rec->lock, end))
    ;
  g_assert_nonnull (rec->headers);
  g_mutex_unlock (&rec->lock);
}

static void
wait_body_len (Rec *rec, gsize len)
{
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT_US;

  g_mutex_lock (&rec->lock);
  while (rec->body->len < len && !rec->closed
      && g_cond_wait_until (&rec->cond, &rec->lock, end))
    ;
  g_assert_cmpuint (rec->body->len, ==, len);
  g_mutex_unlock (&rec->lock);
}

static void
wait_closed (Rec *rec)
{
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT_US;

  g_mutex_lock (&rec->lock);
  while (!rec->closed && g_cond_wait_until (&rec->cond, &rec->lock, end))
    ;
  g_assert_true (rec->closed);
  g_mutex_unlock (&rec->lock);
}

static void
write_all (CpHttp2Stream *stream, const guint8 *data, gsize len, gsize chunk)
{
  gsize off = 0;

  while (off < len) {
    g_autoptr (GError) error = NULL;
    gsize n = MIN (chunk, len - off);

    if (cp_http2_stream_write (stream, data + off, n, &error)) {
      off += n;
      continue;
    }
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
    g_clear_error (&error);
    cp_http2_stream_wait_writable (stream, WAIT_TIMEOUT_US, NULL, &error);
    g_assert_no_error (error);
  }
}

/* ---- tests ---- */

/* Each chunk is sent only after the echo of the previous one came back:
 * this deadlocks (and times out) unless request DATA goes out while the
 * request is still open and response DATA is delivered as it arrives. */
static void
test_duplex_echo (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  g_autoptr (GString) sent = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  guint i;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/echo", rec);

  wait_response (rec);
  g_assert_cmpuint (rec->status, ==, 200);
  g_assert_cmpstr (cp_http_headers_get (rec->headers, "content-type"), ==,
      "application/x-echo");
  g_assert_cmpstr (cp_http_headers_get (rec->headers, "x-method"), ==, "POST");
  g_assert_cmpstr (cp_http_headers_get (rec->headers, "x-test"), ==, "abc");
  g_assert_true (rec->callback_thread != g_thread_self ());

  for (i = 0; i < 20; i++) {
    g_autofree gchar *chunk = g_strdup_printf ("chunk-%u;", i);

    g_assert_true (cp_http2_stream_write (stream, (const guint8 *) chunk,
        strlen (chunk), &error));
    g_assert_no_error (error);
    g_string_append (sent, chunk);
    wait_body_len (rec, sent->len);
  }
  g_assert_cmpuint (rec->data_calls, >=, 20);

  cp_http2_stream_end (stream);
  g_assert_false (
      cp_http2_stream_write (stream, (const guint8 *) "x", 1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  wait_closed (rec);
  g_assert_no_error (rec->error);
  g_assert_cmpmem (rec->body->data, rec->body->len, sent->str, sent->len);
}

/* 4 MiB up against the peer's 64 KiB window (needs its WINDOW_UPDATEs),
 * through a 64 KiB send queue (back-pressure). */
static void
test_large_upload (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  gsize len = 4 * 1024 * 1024;
  g_autofree guint8 *payload = g_malloc (len);
  g_autofree gchar *sum = NULL;
  g_autofree gchar *expected = NULL;
  gsize i;

  if (!start_h2c_peer (fx))
    return;
  for (i = 0; i < len; i++)
    payload[i] = (i * 7) % 256;
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, payload, len);
  expected = g_strdup_printf ("%zu %s", len, sum);

  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "PUT", "/sink", rec);
  cp_http2_stream_set_max_queued (stream, 64 * 1024);
  write_all (stream, payload, len, 16 * 1024);
  cp_http2_stream_end (stream);
  wait_closed (rec);
  g_assert_no_error (rec->error);
  g_assert_cmpuint (rec->status, ==, 200);
  g_assert_cmpmem (rec->body->data, rec->body->len, expected,
      strlen (expected));
}

/* 12 MiB down: more than the client's stream and connection windows, so
 * it only completes if the client sends WINDOW_UPDATEs. */
static void
test_large_download (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  gsize len = 12 * 1024 * 1024;
  g_autofree gchar *path = g_strdup_printf ("/source?bytes=%zu", len);
  gsize i;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "GET", path, rec);
  cp_http2_stream_end (stream);
  wait_closed (rec);
  g_assert_no_error (rec->error);
  g_assert_cmpuint (rec->status, ==, 200);
  g_assert_cmpuint (rec->body->len, ==, len);
  for (i = 0; i < len; i++) {
    if (rec->body->data[i] != i % 251)
      g_assert_cmpuint (rec->body->data[i], ==, i % 251);
  }
}

static void
test_peer_reset (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  g_autoptr (GError) error = NULL;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/reset", rec);
  wait_response (rec);
  g_assert_true (
      cp_http2_stream_write (stream, (const guint8 *) "go", 2, NULL));
  wait_closed (rec);
  g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_STREAM_RESET);
  g_assert_nonnull (strstr (rec->error->message, "ENHANCE_YOUR_CALM"));
  g_assert_false (
      cp_http2_stream_write (stream, (const guint8 *) "x", 1, &error));
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_STREAM_RESET);
}

/* The peer closes the TCP connection mid-stream; streams opened later on
 * the dead connection fail the same way. */
static void
test_peer_drops_connection (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (CpHttp2Stream) later = NULL;
  g_autoptr (Rec) rec = rec_new ();
  g_autoptr (Rec) rec2 = rec_new ();

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/drop", rec);
  wait_response (rec);
  g_assert_true (
      cp_http2_stream_write (stream, (const guint8 *) "go", 2, NULL));
  wait_closed (rec);
  g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECTION_CLOSED);

  later = open_stream (conn, "POST", "/echo", rec2);
  wait_closed (rec2);
  g_assert_error (rec2->error, CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECTION_CLOSED);
}

/* GOAWAY with an error and last-stream-id 0: the open stream fails with the
 * peer's reason rather than a bare REFUSED_STREAM. */
static void
test_peer_goaway (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/goaway", rec);
  wait_closed (rec);
  g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (rec->error->message, "GOAWAY INTERNAL_ERROR"));
}

/* timeout_ms bounds a stream's life even while the peer is active enough
 * for the idle timeout not to fire. */
static void
test_stream_timeout (Fixture *fx, gconstpointer data)
{
  CpHttpOptions options = {0, 400, 0, NULL};
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  gint64 start;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", &options);
  start = g_get_monotonic_time ();
  stream = open_stream (conn, "POST", "/stall", rec);
  wait_closed (rec);
  g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (rec->error->message, "stream timed out"));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 400 * 1000);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

static void
test_idle_timeout (Fixture *fx, gconstpointer data)
{
  CpHttpOptions options = {0, 0, 300, NULL};
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  gint64 start;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", &options);
  start = g_get_monotonic_time ();
  stream = open_stream (conn, "POST", "/stall", rec);
  wait_closed (rec);
  g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (rec->error->message, "idle"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpuint (rec->status, ==, 200);
}

/* Cancelling one stream resets only that stream: the connection carries a
 * new one afterwards. */
static void
test_cancel_stream (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (CpHttp2Stream) next = NULL;
  g_autoptr (Rec) rec = rec_new ();
  g_autoptr (Rec) rec2 = rec_new ();
  gint64 start;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/stall", rec);
  wait_response (rec);
  start = g_get_monotonic_time ();
  cp_http2_stream_cancel (stream);
  wait_closed (rec);
  g_assert_error (rec->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC / 2);

  next = open_stream (conn, "POST", "/echo", rec2);
  g_assert_true (cp_http2_stream_write (next, (const guint8 *) "hi", 2, NULL));
  wait_body_len (rec2, 2);
  cp_http2_stream_end (next);
  wait_closed (rec2);
  g_assert_no_error (rec2->error);
}

/* A stream cancelled before the I/O thread has even submitted it: closed
 * with G_IO_ERROR_CANCELLED, and the connection carries the next one. */
static void
test_cancel_before_open (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (CpHttp2Stream) next = NULL;
  g_autoptr (Rec) rec = rec_new ();
  g_autoptr (Rec) rec2 = rec_new ();

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/echo", rec);
  g_assert_true (cp_http2_stream_write (stream, (const guint8 *) "x", 1, NULL));
  cp_http2_stream_cancel (stream);
  wait_closed (rec);
  g_assert_error (rec->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  next = open_stream (conn, "POST", "/echo", rec2);
  g_assert_true (cp_http2_stream_write (next, (const guint8 *) "hi", 2, NULL));
  wait_body_len (rec2, 2);
  cp_http2_stream_end (next);
  wait_closed (rec2);
  g_assert_no_error (rec2->error);
}

typedef struct
{
  CpHttp2Stream *stream;
  GString *sent;
  guint index;
} Writer;

/* Small writes as fast as they are accepted, each one while the I/O
 * thread may be draining the previous ones: wakeups coalesce and no
 * write may be left behind. */
static gpointer
write_burst (gpointer data)
{
  Writer *w = data;
  guint i;

  for (i = 0; i < 400; i++) {
    g_autofree gchar *chunk = g_strdup_printf ("s%u-w%u;", w->index, i);

    write_all (w->stream, (const guint8 *) chunk, strlen (chunk), 64);
    g_string_append (w->sent, chunk);
    if (i % 50 == 0)
      g_usleep (1000);
  }
  cp_http2_stream_end (w->stream);
  return NULL;
}

/* Eight streams of one connection, each written by a thread of its own,
 * and a ninth cancelled meanwhile: each echo comes back whole and in
 * order, the cancelled stream alone fails. */
static void
test_concurrent_writers (Fixture *fx, gconstpointer data)
{
  enum
  {
    N = 8
  };
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) doomed = NULL;
  g_autoptr (Rec) doomed_rec = rec_new ();
  Writer writers[N];
  Rec *recs[N];
  GThread *threads[N];
  guint i;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  doomed = open_stream (conn, "POST", "/stall", doomed_rec);
  for (i = 0; i < N; i++) {
    recs[i] = rec_new ();
    writers[i].stream = open_stream (conn, "POST", "/echo", recs[i]);
    writers[i].sent = g_string_new (NULL);
    writers[i].index = i;
    threads[i] = g_thread_new ("writer", write_burst, &writers[i]);
  }
  cp_http2_stream_cancel (doomed);
  for (i = 0; i < N; i++) {
    g_thread_join (threads[i]);
    wait_closed (recs[i]);
    g_assert_no_error (recs[i]->error);
    g_assert_cmpmem (recs[i]->body->data, recs[i]->body->len,
        writers[i].sent->str, writers[i].sent->len);
    g_string_free (writers[i].sent, TRUE);
    cp_http2_stream_unref (writers[i].stream);
    rec_free (recs[i]);
  }
  wait_closed (doomed_rec);
  g_assert_error (doomed_rec->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* Deadlines of streams opened at different times: each times out on its
 * own, the later one after the earlier one has gone. */
static void
test_staggered_timeouts (Fixture *fx, gconstpointer data)
{
  CpHttpOptions options = {0, 400, 0, NULL};
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) first = NULL;
  g_autoptr (CpHttp2Stream) second = NULL;
  g_autoptr (Rec) rec1 = rec_new ();
  g_autoptr (Rec) rec2 = rec_new ();
  gint64 start, second_start;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", &options);
  start = g_get_monotonic_time ();
  first = open_stream (conn, "POST", "/stall", rec1);
  wait_response (rec1);
  g_usleep (200 * 1000);
  second_start = g_get_monotonic_time ();
  second = open_stream (conn, "POST", "/stall", rec2);
  wait_closed (rec1);
  g_assert_error (rec1->error, CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 400 * 1000);
  wait_closed (rec2);
  g_assert_error (rec2->error, CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - second_start, >=, 400 * 1000);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

static void
test_close_connection (Fixture *fx, gconstpointer data)
{
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();
  g_autoptr (GError) error = NULL;

  if (!start_h2c_peer (fx))
    return;
  conn = connect_peer (fx, "http", "127.0.0.1", NULL);
  stream = open_stream (conn, "POST", "/stall", rec);
  wait_response (rec);
  cp_http2_connection_close (conn);
  wait_closed (rec);
  g_assert_error (rec->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (cp_http2_stream_wait_writable (stream, 0, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static guint16
closed_port (void)
{
  g_autoptr (GInetAddress) lo =
      g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4,
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

  g_assert_true (g_socket_bind (socket, addr, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  g_socket_close (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_connection_refused (Fixture *fx, gconstpointer data)
{
  const gchar *schemes[] = {"http", "https"};
  guint i;

  fx->port = closed_port ();
  for (i = 0; i < G_N_ELEMENTS (schemes); i++) {
    g_autoptr (CpHttp2Connection) conn =
        connect_peer (fx, schemes[i], "127.0.0.1", NULL);
    g_autoptr (Rec) rec = rec_new ();
    g_autoptr (CpHttp2Stream) stream = open_stream (conn, "POST", "/", rec);

    wait_closed (rec);
    g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECT);
    g_assert_nonnull (strstr (rec->error->message, "refused"));
    g_assert_nonnull (strstr (rec->error->message, "127.0.0.1"));
  }
}

static void
test_invalid_url (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_null (cp_http2_connection_new ("ftp://example.com/", NULL, &error));
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_INVALID_URL);
}

/* RFC 9110: the scheme's default port is not part of :authority. */
static void
test_authority (void)
{
  static const gchar *const cases[][2] = {
      {"https://bedrock-runtime.us-east-1.amazonaws.com",
          "bedrock-runtime.us-east-1.amazonaws.com"},
      {"https://example.com:443/x", "example.com"},
      {"https://example.com:8443/", "example.com:8443"},
      {"http://127.0.0.1:80", "127.0.0.1"},
      {"http://127.0.0.1:443", "127.0.0.1:443"},
      {"https://[::1]/", "[::1]"},
      {"http://[::1]:8080/", "[::1]:8080"},
  };
  g_autoptr (GError) error = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *authority =
        cp_http2_authority_for_url (cases[i][0], &error);

    g_assert_no_error (error);
    g_assert_cmpstr (authority, ==, cases[i][1]);
  }
  g_assert_null (cp_http2_authority_for_url ("no host", &error));
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_INVALID_URL);
}

/* ---- TLS against a self-signed peer ---- */

static gboolean
make_certificate (Fixture *fx)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *openssl = g_find_program_in_path ("openssl");
  gint status = 0;

  if (!openssl) {
    g_test_skip ("openssl CLI not found");
    return FALSE;
  }
  fx->tmpdir = g_dir_make_tmp ("cphttp-XXXXXX", &error);
  g_assert_no_error (error);
  fx->cert = g_build_filename (fx->tmpdir, "cert.pem", NULL);
  fx->key = g_build_filename (fx->tmpdir, "key.pem", NULL);
  {
    const gchar *argv[] = {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout",
        fx->key, "-out", fx->cert, NULL};

    g_spawn_sync (NULL, (gchar **) argv, NULL,
        G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
        NULL, NULL, &status, &error);
  }
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return TRUE;
}

static gboolean
start_tls_peer (Fixture *fx)
{
  return have_peer () && make_certificate (fx) && start_peer (fx, TRUE);
}

static void
test_tls_echo (Fixture *fx, gconstpointer data)
{
  CpHttpOptions options = {0, 0, 0, NULL};
  g_autoptr (CpHttp2Connection) conn = NULL;
  g_autoptr (CpHttp2Stream) stream = NULL;
  g_autoptr (Rec) rec = rec_new ();

  if (!start_tls_peer (fx))
    return;
  options.ca_file = fx->cert;
  conn = connect_peer (fx, "https", "localhost", &options);
  stream = open_stream (conn, "POST", "/echo", rec);
  wait_response (rec);
  g_assert_cmpuint (rec->status, ==, 200);
  g_assert_true (
      cp_http2_stream_write (stream, (const guint8 *) "secure", 6, NULL));
  wait_body_len (rec, 6);
  cp_http2_stream_end (stream);
  wait_closed (rec);
  g_assert_no_error (rec->error);
  g_assert_cmpmem (rec->body->data, rec->body->len, "secure", 6);
}

/* Without the CA file the system store must reject the self-signed
 * certificate; with it, a certificate for "localhost" must not pass for
 * another name (127.0.0.1). */
static void
test_tls_verification (Fixture *fx, gconstpointer data)
{
  CpHttpOptions with_ca = {0, 0, 0, NULL};
  struct
  {
    const gchar *host;
    const CpHttpOptions *options;
  } cases[] = {
      {"localhost", NULL},
      {"127.0.0.1", &with_ca},
  };
  guint i;

  if (!start_tls_peer (fx))
    return;
  with_ca.ca_file = fx->cert;
  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (CpHttp2Connection) conn =
        connect_peer (fx, "https", cases[i].host, cases[i].options);
    g_autoptr (Rec) rec = rec_new ();
    g_autoptr (CpHttp2Stream) stream = open_stream (conn, "POST", "/echo", rec);

    wait_closed (rec);
    g_assert_error (rec->error, CP_HTTP_ERROR, CP_HTTP_ERROR_TLS);
    g_assert_nonnull (strstr (rec->error->message, "certificate"));
    g_assert_null (rec->headers);
  }
}

/* The libcurl path with ca_file, over the same TLS peer (curl negotiates
 * HTTP/2 through ALPN), and its verification failure without it. */
static void
test_tls_curl (Fixture *fx, gconstpointer data)
{
  /* Generous: under ASan on a loaded machine, loading the system CA store
   * and the handshake take seconds. */
  CpHttpOptions options = {60000, 60000, 30000, NULL};
  CpHttpOptions untrusted_options = {60000, 60000, 30000, NULL};
  g_autofree gchar *url = NULL;
  g_autoptr (CpHttpRequest) req = NULL;
  g_autoptr (CpHttpRequest) untrusted = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (GError) error = NULL;

  if (!start_tls_peer (fx))
    return;
  url = g_strdup_printf ("https://localhost:%u/source?bytes=100000", fx->port);
  options.ca_file = fx->cert;
  req = cp_http_request_new ("GET", url);
  cp_http_request_set_options (req, &options);
  body = cp_http_request_fetch (req, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_request_get_status (req), ==, 200);
  g_assert_cmpuint (g_bytes_get_size (body), ==, 100000);
  g_assert_cmpstr (cp_http_headers_get (cp_http_request_get_response_headers (
                                            req),
                       "content-type"),
      ==, "application/octet-stream");

  untrusted = cp_http_request_new ("GET", url);
  cp_http_request_set_options (untrusted, &untrusted_options);
  g_assert_null (cp_http_request_fetch (untrusted, 0, NULL, &error));
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_TLS);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func)                                             \
  g_test_add ("/http/h2/" path, Fixture, NULL, fixture_setup, func, \
      fixture_teardown)
  ADD ("duplex-echo", test_duplex_echo);
  ADD ("large-upload", test_large_upload);
  ADD ("large-download", test_large_download);
  ADD ("peer-reset", test_peer_reset);
  ADD ("peer-drops-connection", test_peer_drops_connection);
  ADD ("peer-goaway", test_peer_goaway);
  ADD ("idle-timeout", test_idle_timeout);
  ADD ("stream-timeout", test_stream_timeout);
  ADD ("cancel-stream", test_cancel_stream);
  ADD ("cancel-before-open", test_cancel_before_open);
  ADD ("concurrent-writers", test_concurrent_writers);
  ADD ("staggered-timeouts", test_staggered_timeouts);
  ADD ("close-connection", test_close_connection);
  ADD ("connection-refused", test_connection_refused);
  ADD ("tls-echo", test_tls_echo);
  ADD ("tls-verification", test_tls_verification);
  ADD ("tls-curl", test_tls_curl);
#undef ADD
  g_test_add_func ("/http/h2/invalid-url", test_invalid_url);
  g_test_add_func ("/http/h2/authority", test_authority);
  return g_test_run ();
}

/* callpipe — full-duplex HTTP/2 streams on nghttp2 + OpenSSL */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cphttp2.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Receive windows: the protocol default (64 KiB) would stall a response
 * stream after 64 KiB whenever the I/O thread lags; these let seconds of
 * audio events be in flight. */
#define STREAM_WINDOW_SIZE (1024 * 1024)
#define CONNECTION_WINDOW_SIZE (8 * 1024 * 1024)
#define READ_CHUNK 16384
/* nghttp2's frames are gathered up to this much for one send. */
#define SEND_CHUNK (64 * 1024)

struct _CpHttp2Stream
{
  gatomicrefcount ref;
  CpHttp2Connection *conn;
  gchar *method;
  gchar *path;
  CpHttpHeaders *headers;
  CpHttp2StreamCallbacks callbacks;
  gpointer user_data;
  GDestroyNotify notify;

  /* Under conn->lock. */
  GQueue queue; /* GBytes */
  gsize head_offset;
  gsize queued;
  gsize max_queued;
  gboolean end_requested;
  gboolean cancel_requested;
  gboolean deferred;
  gboolean dirty; /* in conn->dirty */
  gboolean closed;
  GError *error;

  /* I/O thread only. */
  gint32 id;
  gboolean in_session; /* nghttp2 holds a pointer to it */
  gboolean finished;
  gboolean remote_ended;
  gboolean response_delivered;
  gboolean rst_received;
  guint status;
  CpHttpHeaders *response_headers;
  gint64 deadline_us;
};

struct _CpHttp2Connection
{
  gatomicrefcount ref;
  gchar *host;
  gchar *authority;
  gchar *scheme;
  guint port;
  gboolean tls;
  CpHttpOptions options;
  gchar *ca_file;

  GMutex lock;
  GCond cond;
  /* Under lock. */
  GPtrArray *pending_open;
  /* Streams with news for the I/O thread (data for a deferred stream, end,
   * cancel), each with a reference: a wakeup handles these, not every
   * stream of the connection. */
  GPtrArray *dirty;
  guint writers_waiting; /* in cp_http2_stream_wait_writable */
  gboolean close_requested;
  gboolean stopping;
  /* Set by the wakeup that wrote the eventfd, cleared once the I/O thread
   * has drained it: wakeups in between need no write of their own. */
  gint wake_pending;

  /* I/O thread only. */
  GThread *thread;
  int wake_fd;
  int fd;
  SSL_CTX *ssl_ctx;
  SSL *ssl;
  gboolean ssl_want_write;
  nghttp2_session *session;
  GHashTable *active; /* CpHttp2Stream -> owned ref */
  GPtrArray *released; /* finished streams, refs dropped later */
  GPtrArray *dirty_taken; /* this round's dirty streams */
  gint64 next_deadline_us; /* the earliest stream deadline, or G_MAXINT64 */
  GByteArray *outbuf;
  gsize out_offset;
  gint64 last_io_us;
  GError *dead_error; /* set once the connection is unusable */
  gboolean goaway_received;
  gboolean orphaned;
};

static void wake (CpHttp2Connection *conn);

/* ---- errors ---- */

static GError *
conn_error_new (CpHttp2Connection *conn, CpHttpError code, const gchar *what)
{
  return g_error_new (CP_HTTP_ERROR, code, "HTTP/2 %s://%s: %s", conn->scheme,
      conn->authority, what);
}

static gchar *
ssl_error_string (void)
{
  unsigned long e = ERR_get_error ();
  gchar buf[256];

  if (e == 0)
    return g_strdup ("unknown TLS error");
  ERR_error_string_n (e, buf, sizeof (buf));
  ERR_clear_error ();
  return g_strdup (buf);
}

/* ---- streams ---- */

CpHttp2Stream *
cp_http2_stream_ref (CpHttp2Stream *stream)
{
  g_return_val_if_fail (stream != NULL, NULL);
  g_atomic_ref_count_inc (&stream->ref);
  return stream;
}

void
cp_http2_stream_unref (CpHttp2Stream *stream)
{
  g_return_if_fail (stream != NULL);
  if (!g_atomic_ref_count_dec (&stream->ref))
    return;
  if (stream->notify)
    stream->notify (stream->user_data);
  g_queue_clear_full (&stream->queue, (GDestroyNotify) g_bytes_unref);
  g_clear_error (&stream->error);
  g_free (stream->method);
  g_free (stream->path);
  cp_http_headers_unref (stream->headers);
  cp_http_headers_unref (stream->response_headers);
  cp_http2_connection_unref (stream->conn);
  g_free (stream);
}

static void
deliver_closed (CpHttp2Stream *stream, const GError *error)
{
  CpHttp2Connection *conn = stream->conn;

  stream->finished = TRUE;

  g_mutex_lock (&conn->lock);
  stream->closed = TRUE;
  if (error)
    stream->error = g_error_copy (error);
  g_queue_clear_full (&stream->queue, (GDestroyNotify) g_bytes_unref);
  stream->queued = 0;
  g_cond_broadcast (&conn->cond);
  g_mutex_unlock (&conn->lock);

  if (stream->callbacks.closed)
    stream->callbacks.closed (stream, error, stream->user_data);
}

/* Delivers the one closed callback, and schedules the stream's release once
 * nghttp2 no longer points at it (its data source). */
static void
finish_stream (CpHttp2Stream *stream, const GError *error)
{
  CpHttp2Connection *conn = stream->conn;

  if (!stream->finished)
    deliver_closed (stream, error);
  if (!stream->in_session && g_hash_table_steal (conn->active, stream))
    g_ptr_array_add (conn->released, stream);
}

/* Hands @stream to the I/O thread's next round. Returns whether the I/O
 * thread needs waking (it does not when the stream is queued already).
 * conn->lock held. */
static gboolean
mark_dirty (CpHttp2Stream *stream)
{
  if (stream->dirty)
    return FALSE;
  stream->dirty = TRUE;
  g_ptr_array_add (stream->conn->dirty, cp_http2_stream_ref (stream));
  return TRUE;
}

static void
release_finished (CpHttp2Connection *conn)
{
  /* May drop the last reference to the connection (see finalize). */
  g_ptr_array_set_size (conn->released, 0);
}

gboolean
cp_http2_stream_write_bytes (CpHttp2Stream *stream, GBytes *bytes,
    GError **error)
{
  CpHttp2Connection *conn;
  gboolean ok = FALSE, need_wake = FALSE;

  g_return_val_if_fail (stream != NULL && bytes != NULL, FALSE);
  conn = stream->conn;

  g_mutex_lock (&conn->lock);
  if (stream->error) {
    g_propagate_error (error, g_error_copy (stream->error));
  } else if (stream->closed || stream->cancel_requested) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "Stream is closed");
  } else if (stream->end_requested) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
        "Request body already ended");
  } else if (stream->queued >= stream->max_queued) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
        "Send queue full (%" G_GSIZE_FORMAT " bytes)", stream->queued);
  } else {
    if (g_bytes_get_size (bytes) > 0) {
      g_queue_push_tail (&stream->queue, g_bytes_ref (bytes));
      stream->queued += g_bytes_get_size (bytes);
      /* nghttp2 asks for data by itself until the queue runs dry and
       * the stream is deferred: only then does the I/O thread need to
       * hear of it. */
      if (stream->deferred)
        need_wake = mark_dirty (stream);
    }
    ok = TRUE;
  }
  g_mutex_unlock (&conn->lock);

  if (need_wake)
    wake (conn);
  return ok;
}

gboolean
cp_http2_stream_write (CpHttp2Stream *stream, const guint8 *data, gsize len,
    GError **error)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, len);

  return cp_http2_stream_write_bytes (stream, bytes, error);
}

static void
broadcast_cond (GCancellable *cancellable, gpointer user_data)
{
  CpHttp2Connection *conn = user_data;

  g_mutex_lock (&conn->lock);
  g_cond_broadcast (&conn->cond);
  g_mutex_unlock (&conn->lock);
}

gboolean
cp_http2_stream_wait_writable (CpHttp2Stream *stream, gint64 timeout_us,
    GCancellable *cancellable, GError **error)
{
  CpHttp2Connection *conn;
  gint64 end_time =
      timeout_us < 0 ? G_MAXINT64 : g_get_monotonic_time () + timeout_us;
  gulong handler = 0;
  gboolean ok = FALSE, timed_out;

  g_return_val_if_fail (stream != NULL, FALSE);
  conn = stream->conn;
  g_return_val_if_fail (g_thread_self () != conn->thread, FALSE);

  if (cancellable)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (broadcast_cond),
        conn, NULL);

  g_mutex_lock (&conn->lock);
  for (;;) {
    if (stream->error) {
      g_propagate_error (error, g_error_copy (stream->error));
      break;
    }
    if (stream->closed) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "Stream is closed");
      break;
    }
    if (stream->queued < stream->max_queued) {
      ok = TRUE;
      break;
    }
    if (g_cancellable_set_error_if_cancelled (cancellable, error))
      break;
    /* The I/O thread signals drained data only to waiting writers. */
    conn->writers_waiting++;
    if (end_time == G_MAXINT64) {
      g_cond_wait (&conn->cond, &conn->lock);
      timed_out = FALSE;
    } else {
      timed_out = !g_cond_wait_until (&conn->cond, &conn->lock, end_time);
    }
    conn->writers_waiting--;
    if (timed_out && stream->queued >= stream->max_queued) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
          "Send queue still full after %" G_GINT64_FORMAT " us", timeout_us);
      break;
    }
  }
  g_mutex_unlock (&conn->lock);

  if (cancellable)
    g_cancellable_disconnect (cancellable, handler);
  return ok;
}

void
cp_http2_stream_set_max_queued (CpHttp2Stream *stream, gsize max_queued)
{
  g_return_if_fail (stream != NULL && max_queued > 0);
  g_mutex_lock (&stream->conn->lock);
  stream->max_queued = max_queued;
  g_cond_broadcast (&stream->conn->cond);
  g_mutex_unlock (&stream->conn->lock);
}

gsize
cp_http2_stream_get_queued (CpHttp2Stream *stream)
{
  gsize queued;

  g_return_val_if_fail (stream != NULL, 0);
  g_mutex_lock (&stream->conn->lock);
  queued = stream->queued;
  g_mutex_unlock (&stream->conn->lock);
  return queued;
}

void
cp_http2_stream_end (CpHttp2Stream *stream)
{
  gboolean need_wake;

  g_return_if_fail (stream != NULL);
  g_mutex_lock (&stream->conn->lock);
  stream->end_requested = TRUE;
  need_wake = mark_dirty (stream);
  g_mutex_unlock (&stream->conn->lock);
  if (need_wake)
    wake (stream->conn);
}

void
cp_http2_stream_cancel (CpHttp2Stream *stream)
{
  gboolean need_wake;

  g_return_if_fail (stream != NULL);
  g_mutex_lock (&stream->conn->lock);
  stream->cancel_requested = TRUE;
  need_wake = mark_dirty (stream);
  g_mutex_unlock (&stream->conn->lock);
  if (need_wake)
    wake (stream->conn);
}

/* ---- nghttp2 callbacks (I/O thread) ---- */

static ssize_t
data_source_read (nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user_data)
{
  CpHttp2Stream *stream = source->ptr;
  CpHttp2Connection *conn = stream->conn;
  gsize copied = 0;

  g_mutex_lock (&conn->lock);
  while (copied < length && !g_queue_is_empty (&stream->queue)) {
    GBytes *head = g_queue_peek_head (&stream->queue);
    gsize size;
    const guint8 *data = g_bytes_get_data (head, &size);
    gsize n = MIN (length - copied, size - stream->head_offset);

    memcpy (buf + copied, data + stream->head_offset, n);
    copied += n;
    stream->head_offset += n;
    if (stream->head_offset == size) {
      g_bytes_unref (g_queue_pop_head (&stream->queue));
      stream->head_offset = 0;
    }
  }
  stream->queued -= copied;
  if (g_queue_is_empty (&stream->queue) && stream->end_requested)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  else if (copied == 0)
    stream->deferred = TRUE;
  if (copied > 0 && conn->writers_waiting > 0)
    g_cond_broadcast (&conn->cond);
  g_mutex_unlock (&conn->lock);

  if (copied == 0 && !(*data_flags & NGHTTP2_DATA_FLAG_EOF))
    return NGHTTP2_ERR_DEFERRED;
  return copied;
}

static CpHttp2Stream *
stream_for_id (CpHttp2Connection *conn, gint32 stream_id)
{
  return nghttp2_session_get_stream_user_data (conn->session, stream_id);
}

static int
on_begin_headers (nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
  CpHttp2Stream *stream = stream_for_id (user_data, frame->hd.stream_id);

  if (stream && !stream->response_delivered)
    cp_http_headers_clear (stream->response_headers);
  return 0;
}

static int
on_header (nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
    uint8_t flags, void *user_data)
{
  CpHttp2Stream *stream = stream_for_id (user_data, frame->hd.stream_id);

  if (!stream || stream->response_delivered
      || frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  if (namelen == 7 && memcmp (name, ":status", 7) == 0) {
    g_autofree gchar *text = g_strndup ((const gchar *) value, valuelen);

    stream->status = (guint) g_ascii_strtoull (text, NULL, 10);
  } else if (namelen > 0 && name[0] != ':') {
    cp_http_headers_add_len (stream->response_headers, (const gchar *) name,
        namelen, (const gchar *) value, valuelen);
  }
  return 0;
}

static int
on_frame_recv (nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
  CpHttp2Connection *conn = user_data;
  CpHttp2Stream *stream = stream_for_id (conn, frame->hd.stream_id);

  if (frame->hd.type == NGHTTP2_GOAWAY)
    conn->goaway_received = TRUE;
  if (frame->hd.type == NGHTTP2_GOAWAY
      && frame->goaway.error_code != NGHTTP2_NO_ERROR && !conn->dead_error) {
    g_autofree gchar *what = g_strdup_printf ("peer sent GOAWAY %s (0x%x)",
        nghttp2_http2_strerror (frame->goaway.error_code),
        frame->goaway.error_code);

    conn->dead_error = conn_error_new (conn, CP_HTTP_ERROR_PROTOCOL, what);
  }
  if (!stream || stream->finished)
    return 0;

  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (!stream->response_delivered && stream->status >= 200) {
        stream->response_delivered = TRUE;
        if (stream->callbacks.response)
          stream->callbacks.response (stream, stream->status,
              stream->response_headers, stream->user_data);
      }
      break;
    case NGHTTP2_RST_STREAM:
      stream->rst_received = TRUE;
      break;
    default:
      break;
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)
      && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    stream->remote_ended = TRUE;
  return 0;
}

static int
on_data_chunk_recv (nghttp2_session *session, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *user_data)
{
  CpHttp2Stream *stream = stream_for_id (user_data, stream_id);

  if (stream && !stream->finished && stream->callbacks.data)
    stream->callbacks.data (stream, data, len, stream->user_data);
  return 0;
}

static int
on_stream_close (nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *user_data)
{
  CpHttp2Connection *conn = user_data;
  CpHttp2Stream *stream = stream_for_id (conn, stream_id);
  g_autoptr (GError) error = NULL;

  if (!stream)
    return 0;
  stream->in_session = FALSE;
  if (stream->finished
      || (error_code == NGHTTP2_NO_ERROR && stream->remote_ended)) {
    finish_stream (stream, NULL);
    return 0;
  }
  if (conn->goaway_received && !stream->rst_received) {
    /* nghttp2 refuses the streams a GOAWAY did not cover. */
    error = conn->dead_error
        ? g_error_copy (conn->dead_error)
        : conn_error_new (conn, CP_HTTP_ERROR_STREAM_RESET,
            "stream refused: the peer is going away (GOAWAY); retry on a "
            "new connection");
  } else if (error_code == NGHTTP2_NO_ERROR) {
    error = conn_error_new (conn, CP_HTTP_ERROR_PROTOCOL,
        "stream closed before the response ended");
  } else {
    g_autofree gchar *what = g_strdup_printf ("stream %d %s: %s (0x%x)",
        stream_id, stream->rst_received ? "reset by the peer" : "closed",
        nghttp2_http2_strerror (error_code), error_code);

    error = conn_error_new (conn, CP_HTTP_ERROR_STREAM_RESET, what);
  }
  finish_stream (stream, error);
  return 0;
}

static nghttp2_session *
create_session (CpHttp2Connection *conn)
{
  nghttp2_session_callbacks *callbacks;
  nghttp2_session *session = NULL;
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW_SIZE},
  };

  nghttp2_session_callbacks_new (&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback (callbacks,
      on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback (callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback (callbacks,
      on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback (callbacks,
      on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback (callbacks,
      on_stream_close);
  nghttp2_session_client_new (&session, callbacks, conn);
  nghttp2_session_callbacks_del (callbacks);

  nghttp2_submit_settings (session, NGHTTP2_FLAG_NONE, settings,
      G_N_ELEMENTS (settings));
  nghttp2_session_set_local_window_size (session, NGHTTP2_FLAG_NONE, 0,
      CONNECTION_WINDOW_SIZE);
  return session;
}

/* ---- socket I/O ---- */

/* Called after the command is recorded under the lock: the I/O thread
 * reads commands only after clearing wake_pending, so a wakeup that
 * finds it set is covered by the one that set it. */
static void
wake (CpHttp2Connection *conn)
{
  guint64 one = 1;

  if (!g_atomic_int_compare_and_exchange (&conn->wake_pending, FALSE, TRUE))
    return;
  if (write (conn->wake_fd, &one, sizeof (one)) < 0 && errno != EAGAIN)
    g_warning ("HTTP/2 wakeup failed: %s", g_strerror (errno));
}

static void
drain_wake (CpHttp2Connection *conn)
{
  guint64 value;

  if (read (conn->wake_fd, &value, sizeof (value)) < 0 && errno != EAGAIN)
    g_warning ("HTTP/2 wakeup drain failed: %s", g_strerror (errno));
  g_atomic_int_set (&conn->wake_pending, FALSE);
}

static gboolean
stop_requested (CpHttp2Connection *conn)
{
  gboolean stop;

  g_mutex_lock (&conn->lock);
  stop = conn->stopping || conn->close_requested;
  g_mutex_unlock (&conn->lock);
  return stop;
}

/* Waits for events on fd (or a wakeup) until deadline_us; FALSE with error
 * on timeout or when a close/stop was requested. */
static gboolean
wait_fd (CpHttp2Connection *conn, short events, gint64 deadline_us,
    const gchar *what, GError **error)
{
  for (;;) {
    struct pollfd fds[2] = {
        {conn->fd, events, 0},
        {conn->wake_fd, POLLIN, 0},
    };
    gint64 left_ms = (deadline_us - g_get_monotonic_time () + 999) / 1000;
    int n;

    if (stop_requested (conn)) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
          "HTTP/2 connection closed while %s", what);
      return FALSE;
    }
    if (left_ms <= 0) {
      g_autofree gchar *msg = g_strdup_printf ("%s timed out after %u ms", what,
          conn->options.connect_timeout_ms);

      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_TIMEOUT, msg));
      return FALSE;
    }
    n = poll (fds, 2, (int) MIN (left_ms, G_MAXINT));
    if (n < 0 && errno != EINTR) {
      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_FAILED, g_strerror (errno)));
      return FALSE;
    }
    if (n > 0 && (fds[1].revents & POLLIN))
      drain_wake (conn);
    if (n > 0 && fds[0].revents)
      return TRUE;
  }
}

static gboolean
connect_tcp (CpHttp2Connection *conn, gint64 deadline_us, GError **error)
{
  struct addrinfo hints = {0};
  struct addrinfo *res = NULL, *ai;
  g_autofree gchar *port = g_strdup_printf ("%u", conn->port);
  int last_errno = 0;
  int rc;

  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo (conn->host, port, &hints, &res);
  if (rc != 0) {
    g_autofree gchar *msg = g_strdup_printf ("resolving %s failed: %s",
        conn->host, gai_strerror (rc));

    g_propagate_error (error,
        conn_error_new (conn, CP_HTTP_ERROR_CONNECT, msg));
    return FALSE;
  }

  for (ai = res; ai; ai = ai->ai_next) {
    int soerr = 0;
    socklen_t len = sizeof (soerr);
    int one = 1;

    conn->fd = socket (ai->ai_family,
        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (conn->fd < 0) {
      last_errno = errno;
      continue;
    }
    if (connect (conn->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
      if (errno != EINPROGRESS) {
        last_errno = errno;
        close (conn->fd);
        conn->fd = -1;
        continue;
      }
      if (!wait_fd (conn, POLLOUT, deadline_us, "connecting", error)) {
        freeaddrinfo (res);
        return FALSE;
      }
      getsockopt (conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) {
        last_errno = soerr;
        close (conn->fd);
        conn->fd = -1;
        continue;
      }
    }
    setsockopt (conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    setsockopt (conn->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof (one));
    break;
  }
  freeaddrinfo (res);

  if (conn->fd < 0) {
    g_autofree gchar *msg =
        g_strdup_printf ("connecting failed: %s", g_strerror (last_errno));

    g_propagate_error (error,
        conn_error_new (conn, CP_HTTP_ERROR_CONNECT, msg));
    return FALSE;
  }
  return TRUE;
}

static gboolean
setup_tls (CpHttp2Connection *conn, GError **error)
{
  static const unsigned char alpn[] = "\x02h2";
  g_autofree gchar *msg = NULL;
  X509_VERIFY_PARAM *param;
  g_autoptr (GInetAddress) literal =
      g_inet_address_new_from_string (conn->host);

  ERR_clear_error ();
  conn->ssl_ctx = SSL_CTX_new (TLS_client_method ());
  if (!conn->ssl_ctx)
    goto fail;
  SSL_CTX_set_min_proto_version (conn->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify (conn->ssl_ctx, SSL_VERIFY_PEER, NULL);
  if (conn->ca_file) {
    if (SSL_CTX_load_verify_locations (conn->ssl_ctx, conn->ca_file, NULL)
        != 1) {
      g_autofree gchar *detail = ssl_error_string ();

      msg = g_strdup_printf ("loading CA file %s failed: %s", conn->ca_file,
          detail);
      g_propagate_error (error, conn_error_new (conn, CP_HTTP_ERROR_TLS, msg));
      return FALSE;
    }
  } else if (SSL_CTX_set_default_verify_paths (conn->ssl_ctx) != 1) {
    goto fail;
  }
  SSL_CTX_set_alpn_protos (conn->ssl_ctx, alpn, sizeof (alpn) - 1);

  conn->ssl = SSL_new (conn->ssl_ctx);
  if (!conn->ssl)
    goto fail;
  SSL_set_mode (conn->ssl,
      SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  param = SSL_get0_param (conn->ssl);
  if (literal) {
    X509_VERIFY_PARAM_set1_ip_asc (param, conn->host);
  } else {
    SSL_set_tlsext_host_name (conn->ssl, conn->host);
    X509_VERIFY_PARAM_set1_host (param, conn->host, 0);
  }
  SSL_set_fd (conn->ssl, conn->fd);
  return TRUE;

fail : {
  g_autofree gchar *detail = ssl_error_string ();

  msg = g_strdup_printf ("TLS setup failed: %s", detail);
  g_propagate_error (error, conn_error_new (conn, CP_HTTP_ERROR_TLS, msg));
  return FALSE;
}
}

static gboolean
tls_handshake (CpHttp2Connection *conn, gint64 deadline_us, GError **error)
{
  const unsigned char *proto = NULL;
  unsigned int proto_len = 0;

  if (!setup_tls (conn, error))
    return FALSE;

  for (;;) {
    int rc, err;

    ERR_clear_error ();
    rc = SSL_connect (conn->ssl);
    if (rc == 1)
      break;
    err = SSL_get_error (conn->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait_fd (conn, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
              deadline_us, "TLS handshake", error))
        return FALSE;
      continue;
    } else {
      long verify = SSL_get_verify_result (conn->ssl);
      g_autofree gchar *detail = verify != X509_V_OK
          ? g_strdup_printf ("certificate verification failed: %s",
              X509_verify_cert_error_string (verify))
          : ssl_error_string ();
      g_autofree gchar *msg =
          g_strdup_printf ("TLS handshake failed: %s", detail);

      g_propagate_error (error, conn_error_new (conn, CP_HTTP_ERROR_TLS, msg));
      return FALSE;
    }
  }

  SSL_get0_alpn_selected (conn->ssl, &proto, &proto_len);
  if (proto_len != 2 || memcmp (proto, "h2", 2) != 0) {
    g_propagate_error (error,
        conn_error_new (conn, CP_HTTP_ERROR_TLS,
            "the server did not select HTTP/2 (ALPN h2)"));
    return FALSE;
  }
  return TRUE;
}

/* Returns bytes read, 0 on EOF, -1 when nothing is available (EAGAIN) and
 * -2 on error (set). */
static gssize
sock_read (CpHttp2Connection *conn, guint8 *buf, gsize len, GError **error)
{
  if (conn->ssl) {
    int rc, err;

    ERR_clear_error ();
    rc = SSL_read (conn->ssl, buf, (int) len);
    if (rc > 0)
      return rc;
    err = SSL_get_error (conn->ssl, rc);
    if (err == SSL_ERROR_WANT_READ)
      return -1;
    if (err == SSL_ERROR_WANT_WRITE) {
      conn->ssl_want_write = TRUE;
      return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN
        || (err == SSL_ERROR_SYSCALL && ERR_peek_error () == 0))
      return 0;
    {
      g_autofree gchar *detail = ssl_error_string ();
      g_autofree gchar *msg = g_strdup_printf ("TLS read failed: %s", detail);

      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_CONNECTION_CLOSED, msg));
      return -2;
    }
  } else {
    gssize n = recv (conn->fd, buf, len, 0);

    if (n >= 0)
      return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return -1;
    g_propagate_error (error,
        conn_error_new (conn, CP_HTTP_ERROR_CONNECTION_CLOSED,
            g_strerror (errno)));
    return -2;
  }
}

static gssize
sock_write (CpHttp2Connection *conn, const guint8 *buf, gsize len,
    GError **error)
{
  if (conn->ssl) {
    int rc, err;

    ERR_clear_error ();
    conn->ssl_want_write = FALSE;
    rc = SSL_write (conn->ssl, buf, (int) MIN (len, G_MAXINT));
    if (rc > 0)
      return rc;
    err = SSL_get_error (conn->ssl, rc);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
      return 0;
    {
      g_autofree gchar *detail = ssl_error_string ();
      g_autofree gchar *msg = g_strdup_printf ("TLS write failed: %s", detail);

      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_CONNECTION_CLOSED, msg));
      return -1;
    }
  } else {
    gssize n = send (conn->fd, buf, len, MSG_NOSIGNAL);

    if (n >= 0)
      return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return 0;
    g_propagate_error (error,
        conn_error_new (conn, CP_HTTP_ERROR_CONNECTION_CLOSED,
            g_strerror (errno)));
    return -1;
  }
}

/* Moves frames from nghttp2 to the socket until either is blocked; the
 * frames nghttp2 has ready (a WINDOW_UPDATE and DATA, say) go out in one
 * send. */
static gboolean
flush_session (CpHttp2Connection *conn, GError **error)
{
  for (;;) {
    if (conn->out_offset == conn->outbuf->len) {
      g_byte_array_set_size (conn->outbuf, 0);
      conn->out_offset = 0;
      while (conn->outbuf->len < SEND_CHUNK) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send (conn->session, &data);

        if (n < 0) {
          g_propagate_error (error,
              conn_error_new (conn, CP_HTTP_ERROR_PROTOCOL,
                  nghttp2_strerror ((int) n)));
          return FALSE;
        }
        if (n == 0)
          break;
        g_byte_array_append (conn->outbuf, data, n);
      }
      if (conn->outbuf->len == 0)
        return TRUE;
    }
    while (conn->out_offset < conn->outbuf->len) {
      gssize n = sock_write (conn, conn->outbuf->data + conn->out_offset,
          conn->outbuf->len - conn->out_offset, error);

      if (n < 0)
        return FALSE;
      if (n == 0)
        return TRUE;
      conn->out_offset += n;
      conn->last_io_us = g_get_monotonic_time ();
    }
  }
}

static gboolean
read_session (CpHttp2Connection *conn, GError **error)
{
  guint8 buf[READ_CHUNK];

  for (;;) {
    gssize n = sock_read (conn, buf, sizeof (buf), error);
    ssize_t rc;

    if (n == -1)
      return TRUE;
    if (n == -2)
      return FALSE;
    if (n == 0) {
      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_CONNECTION_CLOSED,
              "connection closed by the peer"));
      return FALSE;
    }
    conn->last_io_us = g_get_monotonic_time ();
    rc = nghttp2_session_mem_recv (conn->session, buf, n);
    if (rc < 0) {
      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_PROTOCOL,
              nghttp2_strerror ((int) rc)));
      return FALSE;
    }
    /* A short read emptied the socket (poll is level-triggered, so what
     * comes next wakes it again): no need for a read that says EAGAIN.
     * TLS may hold decrypted bytes the socket no longer shows. */
    if ((gsize) n < sizeof (buf)
        && (!conn->ssl || !SSL_has_pending (conn->ssl)))
      return TRUE;
  }
}

/* ---- stream submission and commands (I/O thread) ---- */

static gboolean
is_connection_header (const gchar *name)
{
  static const gchar *const names[] = {"host", "connection", "keep-alive",
      "proxy-connection", "transfer-encoding", "upgrade", "te"};
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++) {
    if (g_ascii_strcasecmp (name, names[i]) == 0)
      return TRUE;
  }
  return FALSE;
}

static nghttp2_nv
make_nv (const gchar *name, const gchar *value)
{
  nghttp2_nv nv = {(uint8_t *) name, (uint8_t *) value, strlen (name),
      strlen (value), NGHTTP2_NV_FLAG_NONE};

  return nv;
}

static void
submit_stream (CpHttp2Connection *conn, CpHttp2Stream *stream)
{
  guint n = cp_http_headers_size (stream->headers);
  g_autofree nghttp2_nv *nva = g_new0 (nghttp2_nv, n + 4);
  g_autoptr (GPtrArray) lowered = g_ptr_array_new_with_free_func (g_free);
  nghttp2_data_provider provider;
  guint count = 0, i;
  gint32 id;

  nva[count++] = make_nv (":method", stream->method);
  nva[count++] = make_nv (":scheme", conn->scheme);
  nva[count++] = make_nv (":authority", conn->authority);
  nva[count++] = make_nv (":path", stream->path);
  for (i = 0; i < n; i++) {
    const gchar *name, *value;
    gchar *lower;

    cp_http_headers_nth (stream->headers, i, &name, &value);
    /* Pseudo-headers are the connection's own: a signed ":authority"
     * in the list is the one sent above. */
    if (name[0] == ':' || is_connection_header (name))
      continue;
    lower = g_ascii_strdown (name, -1);
    g_ptr_array_add (lowered, lower);
    nva[count++] = make_nv (lower, value);
  }

  provider.source.ptr = stream;
  provider.read_callback = data_source_read;
  id = nghttp2_submit_request (conn->session, NULL, nva, count, &provider,
      stream);
  g_hash_table_add (conn->active, stream);
  if (id < 0) {
    g_autoptr (GError) error =
        conn_error_new (conn, CP_HTTP_ERROR_FAILED, nghttp2_strerror (id));

    finish_stream (stream, error);
    return;
  }
  stream->id = id;
  stream->in_session = TRUE;
  /* A new stream is activity: an idle connection must not time it out. */
  conn->last_io_us = g_get_monotonic_time ();
  if (conn->options.timeout_ms > 0) {
    stream->deadline_us =
        g_get_monotonic_time () + (gint64) conn->options.timeout_ms * 1000;
    conn->next_deadline_us = MIN (conn->next_deadline_us, stream->deadline_us);
  }
}

/* The streams opened since the last call, or NULL. */
static GPtrArray *
take_pending_opens (CpHttp2Connection *conn)
{
  GPtrArray *opens = NULL;

  g_mutex_lock (&conn->lock);
  if (conn->pending_open->len > 0) {
    opens = conn->pending_open;
    conn->pending_open =
        g_ptr_array_new_with_free_func ((GDestroyNotify) cp_http2_stream_unref);
  }
  g_mutex_unlock (&conn->lock);
  return opens;
}

/* Swaps the dirty streams into dirty_taken; each is no longer dirty, so
 * that news from now on queues it again. */
static void
take_dirty (CpHttp2Connection *conn)
{
  GPtrArray *taken;
  guint i;

  g_mutex_lock (&conn->lock);
  taken = conn->dirty;
  conn->dirty = conn->dirty_taken;
  conn->dirty_taken = taken;
  for (i = 0; i < taken->len; i++)
    ((CpHttp2Stream *) g_ptr_array_index (taken, i))->dirty = FALSE;
  g_mutex_unlock (&conn->lock);
}

static void
fail_stream (CpHttp2Connection *conn, CpHttp2Stream *stream, GQuark domain,
    gint code, const gchar *what)
{
  g_autoptr (GError) error = NULL;

  if (domain == CP_HTTP_ERROR)
    error = conn_error_new (conn, code, what);
  else
    error = g_error_new_literal (domain, code, what);
  if (stream->in_session)
    nghttp2_submit_rst_stream (conn->session, NGHTTP2_FLAG_NONE, stream->id,
        NGHTTP2_CANCEL);
  finish_stream (stream, error);
}

/* Fails the streams whose deadline has passed, and finds the next
 * deadline. */
static void
expire_streams (CpHttp2Connection *conn, gint64 now)
{
  g_autoptr (GPtrArray) expired = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;
  guint i;

  conn->next_deadline_us = G_MAXINT64;
  g_hash_table_iter_init (&iter, conn->active);
  while (g_hash_table_iter_next (&iter, &key, NULL)) {
    CpHttp2Stream *stream = key;

    if (stream->finished || stream->deadline_us <= 0)
      continue;
    if (now >= stream->deadline_us)
      g_ptr_array_add (expired, stream);
    else
      conn->next_deadline_us =
          MIN (conn->next_deadline_us, stream->deadline_us);
  }
  for (i = 0; i < expired->len; i++) {
    g_autofree gchar *what = g_strdup_printf ("stream timed out after %u ms",
        conn->options.timeout_ms);

    fail_stream (conn, g_ptr_array_index (expired, i), CP_HTTP_ERROR,
        CP_HTTP_ERROR_TIMEOUT, what);
  }
}

/* Applies a stream's news: a cancel, or data (or the end) for a stream
 * nghttp2 had deferred. */
static void
apply_news (CpHttp2Connection *conn, CpHttp2Stream *stream)
{
  gboolean cancel, resume = FALSE;

  /* Done with, or not submitted yet (its open comes next round). */
  if (stream->finished || stream->id <= 0)
    return;

  g_mutex_lock (&conn->lock);
  cancel = stream->cancel_requested;
  if (stream->deferred && (stream->queued > 0 || stream->end_requested)) {
    stream->deferred = FALSE;
    resume = TRUE;
  }
  g_mutex_unlock (&conn->lock);

  if (cancel)
    fail_stream (conn, stream, G_IO_ERROR, G_IO_ERROR_CANCELLED,
        "Stream cancelled");
  else if (resume)
    nghttp2_session_resume_data (conn->session, stream->id);
}

/* Applies what other threads asked for since the last wakeup: the work
 * is that of the streams opened or with news, not of every stream. */
static void
process_commands (CpHttp2Connection *conn)
{
  g_autoptr (GPtrArray) opens = take_pending_opens (conn);
  gint64 now;
  guint i;

  for (i = 0; opens && i < opens->len; i++) {
    CpHttp2Stream *stream = g_ptr_array_index (opens, i);

    submit_stream (conn, cp_http2_stream_ref (stream));
    /* Cancelled before it was submitted, maybe. */
    apply_news (conn, stream);
  }

  take_dirty (conn);
  for (i = 0; i < conn->dirty_taken->len; i++)
    apply_news (conn, g_ptr_array_index (conn->dirty_taken, i));
  /* May drop the last references (see release_finished). */
  g_ptr_array_set_size (conn->dirty_taken, 0);

  now = g_get_monotonic_time ();
  if (now >= conn->next_deadline_us)
    expire_streams (conn, now);
}

static void
fail_all_streams (CpHttp2Connection *conn, const GError *error)
{
  g_autoptr (GPtrArray) opens = take_pending_opens (conn);
  g_autoptr (GList) active = g_hash_table_get_keys (conn->active);
  GList *l;
  guint i;

  for (l = active; l; l = l->next)
    finish_stream (l->data, error);
  for (i = 0; opens && i < opens->len; i++) {
    CpHttp2Stream *stream = g_ptr_array_index (opens, i);

    g_hash_table_add (conn->active, cp_http2_stream_ref (stream));
    finish_stream (stream, error);
  }
  take_dirty (conn);
  g_ptr_array_set_size (conn->dirty_taken, 0);
}

static gint
poll_timeout_ms (CpHttp2Connection *conn)
{
  gint64 now = g_get_monotonic_time ();
  gint64 deadline = conn->next_deadline_us;

  if (g_hash_table_size (conn->active) == 0)
    return -1;
  if (conn->options.idle_timeout_ms > 0)
    deadline = MIN (deadline,
        conn->last_io_us + (gint64) conn->options.idle_timeout_ms * 1000);
  if (deadline == G_MAXINT64)
    return -1;
  return (gint) CLAMP ((deadline - now + 999) / 1000, 0, G_MAXINT);
}

static gboolean
check_idle (CpHttp2Connection *conn, GError **error)
{
  guint idle_ms = conn->options.idle_timeout_ms;
  g_autofree gchar *what = NULL;

  if (idle_ms == 0 || g_hash_table_size (conn->active) == 0
      || g_get_monotonic_time () - conn->last_io_us < (gint64) idle_ms * 1000)
    return TRUE;
  what = g_strdup_printf ("no data for %u ms (idle timeout)", idle_ms);
  g_propagate_error (error, conn_error_new (conn, CP_HTTP_ERROR_TIMEOUT, what));
  return FALSE;
}

/* The connected phase; returns when the connection ends, with the reason. */
static void
run_session (CpHttp2Connection *conn, GError **error)
{
  conn->session = create_session (conn);
  conn->last_io_us = g_get_monotonic_time ();

  for (;;) {
    struct pollfd fds[2];
    gboolean want_out;
    int n;

    process_commands (conn);
    release_finished (conn);
    if (conn->orphaned)
      return;
    if (stop_requested (conn)) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
          "HTTP/2 connection closed");
      return;
    }
    if (!flush_session (conn, error))
      return;
    if (!nghttp2_session_want_read (conn->session)
        && !nghttp2_session_want_write (conn->session)
        && conn->out_offset == conn->outbuf->len) {
      g_propagate_error (error,
          conn->dead_error
              ? g_error_copy (conn->dead_error)
              : conn_error_new (conn, CP_HTTP_ERROR_CONNECTION_CLOSED,
                  "the peer ended the connection (GOAWAY)"));
      return;
    }

    want_out = conn->out_offset < conn->outbuf->len || conn->ssl_want_write;
    fds[0].fd = conn->fd;
    fds[0].events = POLLIN | (want_out ? POLLOUT : 0);
    fds[0].revents = 0;
    fds[1].fd = conn->wake_fd;
    fds[1].events = POLLIN;
    fds[1].revents = 0;
    n = poll (fds, 2, poll_timeout_ms (conn));
    if (n < 0 && errno != EINTR) {
      g_propagate_error (error,
          conn_error_new (conn, CP_HTTP_ERROR_FAILED, g_strerror (errno)));
      return;
    }
    if (n > 0 && (fds[1].revents & POLLIN))
      drain_wake (conn);
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
        && !read_session (conn, error))
      return;
    release_finished (conn);
    if (conn->orphaned)
      return;
    if (!check_idle (conn, error))
      return;
  }
}

static void
close_socket (CpHttp2Connection *conn)
{
  if (conn->ssl) {
    SSL_free (conn->ssl);
    conn->ssl = NULL;
  }
  if (conn->ssl_ctx) {
    SSL_CTX_free (conn->ssl_ctx);
    conn->ssl_ctx = NULL;
  }
  if (conn->fd >= 0) {
    close (conn->fd);
    conn->fd = -1;
  }
}

/* Streams still known to nghttp2 (finished, awaiting its close) are
 * released with the session. */
static void
drop_session (CpHttp2Connection *conn)
{
  g_autoptr (GList) active = g_hash_table_get_keys (conn->active);
  GList *l;

  if (conn->session) {
    nghttp2_session_del (conn->session);
    conn->session = NULL;
  }
  for (l = active; l; l = l->next) {
    CpHttp2Stream *stream = l->data;

    stream->in_session = FALSE;
    finish_stream (stream, conn->dead_error);
  }
}

static void
free_connection (CpHttp2Connection *conn)
{
  close_socket (conn);
  if (conn->session)
    nghttp2_session_del (conn->session);
  close (conn->wake_fd);
  g_hash_table_unref (conn->active);
  g_ptr_array_unref (conn->released);
  g_ptr_array_unref (conn->pending_open);
  g_ptr_array_unref (conn->dirty);
  g_ptr_array_unref (conn->dirty_taken);
  g_byte_array_unref (conn->outbuf);
  g_clear_error (&conn->dead_error);
  g_mutex_clear (&conn->lock);
  g_cond_clear (&conn->cond);
  g_free (conn->host);
  g_free (conn->authority);
  g_free (conn->scheme);
  g_free (conn->ca_file);
  g_free (conn);
}

/* After the connection failed or was closed: fail whatever is opened later,
 * until the last reference goes. */
static void
run_dead (CpHttp2Connection *conn)
{
  for (;;) {
    struct pollfd fd = {conn->wake_fd, POLLIN, 0};
    gboolean stopping;

    fail_all_streams (conn, conn->dead_error);
    release_finished (conn);
    if (conn->orphaned)
      return;
    g_mutex_lock (&conn->lock);
    stopping = conn->stopping;
    g_mutex_unlock (&conn->lock);
    if (stopping)
      return;
    if (poll (&fd, 1, -1) > 0)
      drain_wake (conn);
  }
}

static gpointer
io_thread (gpointer data)
{
  CpHttp2Connection *conn = data;
  GError *error = NULL;
  gint64 deadline = g_get_monotonic_time ()
      + (gint64) conn->options.connect_timeout_ms * 1000;
  sigset_t sigpipe;

  /* SSL_write() uses write(): a peer that has gone away must give EPIPE,
   * not kill the process. Blocked here, the signal stays pending on this
   * thread and dies with it. */
  sigemptyset (&sigpipe);
  sigaddset (&sigpipe, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &sigpipe, NULL);

  if (connect_tcp (conn, deadline, &error)
      && (!conn->tls || tls_handshake (conn, deadline, &error)))
    run_session (conn, &error);

  if (conn->orphaned)
    goto out;

  if (!error)
    error = conn_error_new (conn, CP_HTTP_ERROR_FAILED, "connection ended");
  if (conn->dead_error && error->domain == CP_HTTP_ERROR
      && error->code == CP_HTTP_ERROR_CONNECTION_CLOSED) {
    g_clear_error (&error);
    error = g_error_copy (conn->dead_error);
  }
  g_clear_error (&conn->dead_error);
  conn->dead_error = error;

  fail_all_streams (conn, conn->dead_error);
  if (conn->session
      && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    GError *ignored = NULL;

    nghttp2_session_terminate_session (conn->session, NGHTTP2_NO_ERROR);
    if (!flush_session (conn, &ignored))
      g_clear_error (&ignored);
  }
  close_socket (conn);
  drop_session (conn);
  run_dead (conn);

out:
  if (conn->orphaned) {
    /* The last reference went away on this thread: nobody will join it. */
    g_thread_unref (conn->thread);
    free_connection (conn);
  }
  return NULL;
}

/* ---- connection ---- */

/* RFC 9110 §4.2.3: the scheme's default port is left out, as the AWS SDKs
 * send (and sign) it; an IPv6 host is bracketed. */
static gchar *
authority_for (const gchar *scheme, const gchar *host, gint port)
{
  gboolean is_default = port <= 0
      || (port == 443 && g_ascii_strcasecmp (scheme, "https") == 0)
      || (port == 80 && g_ascii_strcasecmp (scheme, "http") == 0);
  const gchar *open = strchr (host, ':') ? "[" : "";
  const gchar *close = open[0] ? "]" : "";

  if (is_default)
    return g_strdup_printf ("%s%s%s", open, host, close);
  return g_strdup_printf ("%s%s%s:%d", open, host, close, port);
}

gchar *
cp_http2_authority_for_url (const gchar *url, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  const gchar *host = uri ? g_uri_get_host (uri) : NULL;

  if (host == NULL || host[0] == '\0') {
    g_set_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_INVALID_URL,
        "Not a URL with a host: %.*s", (int) strcspn (url, "?#"), url);
    return NULL;
  }
  return authority_for (g_uri_get_scheme (uri), host, g_uri_get_port (uri));
}

CpHttp2Connection *
cp_http2_connection_new (const gchar *url, const CpHttpOptions *options,
    GError **error)
{
  g_autoptr (GUri) uri = NULL;
  CpHttp2Connection *conn;
  const gchar *scheme;
  gint port;
  gboolean tls;
  g_autofree gchar *host = NULL;

  g_return_val_if_fail (url != NULL, NULL);

  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (!uri || !g_uri_get_host (uri) || *g_uri_get_host (uri) == '\0'
      || (g_strcmp0 (scheme, "https") != 0
          && g_strcmp0 (scheme, "http") != 0)) {
    g_set_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_INVALID_URL,
        "Not an http:// or https:// URL with a host: %.*s",
        (int) strcspn (url, "?#"), url);
    return NULL;
  }
  tls = g_strcmp0 (scheme, "https") == 0;
  port = g_uri_get_port (uri);
  if (port <= 0)
    port = tls ? 443 : 80;
  host = g_strdup (g_uri_get_host (uri));

  conn = g_new0 (CpHttp2Connection, 1);
  g_atomic_ref_count_init (&conn->ref);
  conn->tls = tls;
  conn->scheme = g_strdup (scheme);
  conn->port = port;
  conn->authority = authority_for (scheme, host, port);
  conn->host = g_steal_pointer (&host);
  if (options)
    conn->options = *options;
  conn->ca_file = g_strdup (conn->options.ca_file);
  conn->options.ca_file = conn->ca_file;
  if (conn->options.connect_timeout_ms == 0)
    conn->options.connect_timeout_ms = CP_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
  g_mutex_init (&conn->lock);
  g_cond_init (&conn->cond);
  conn->pending_open =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_http2_stream_unref);
  conn->active = g_hash_table_new_full (NULL, NULL,
      (GDestroyNotify) cp_http2_stream_unref, NULL);
  conn->released =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_http2_stream_unref);
  conn->dirty =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_http2_stream_unref);
  conn->dirty_taken =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_http2_stream_unref);
  conn->next_deadline_us = G_MAXINT64;
  conn->outbuf = g_byte_array_new ();
  conn->fd = -1;
  conn->wake_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (conn->wake_fd < 0) {
    g_set_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_FAILED,
        "eventfd failed: %s", g_strerror (errno));
    conn->wake_fd = -1;
    free_connection (conn);
    return NULL;
  }
  conn->thread = g_thread_new ("cp-http2", io_thread, conn);
  return conn;
}

CpHttp2Connection *
cp_http2_connection_ref (CpHttp2Connection *connection)
{
  g_return_val_if_fail (connection != NULL, NULL);
  g_atomic_ref_count_inc (&connection->ref);
  return connection;
}

void
cp_http2_connection_unref (CpHttp2Connection *connection)
{
  g_return_if_fail (connection != NULL);
  if (!g_atomic_ref_count_dec (&connection->ref))
    return;

  g_mutex_lock (&connection->lock);
  connection->stopping = TRUE;
  g_mutex_unlock (&connection->lock);
  if (g_thread_self () == connection->thread) {
    connection->orphaned = TRUE;
    return;
  }
  wake (connection);
  g_thread_join (connection->thread);
  free_connection (connection);
}

void
cp_http2_connection_close (CpHttp2Connection *connection)
{
  g_return_if_fail (connection != NULL);
  g_mutex_lock (&connection->lock);
  connection->close_requested = TRUE;
  g_mutex_unlock (&connection->lock);
  wake (connection);
}

CpHttp2Stream *
cp_http2_connection_open_stream (CpHttp2Connection *connection,
    const gchar *method, const gchar *path, CpHttpHeaders *headers,
    const CpHttp2StreamCallbacks *callbacks, gpointer user_data,
    GDestroyNotify notify)
{
  CpHttp2Stream *stream;
  guint i;

  g_return_val_if_fail (connection != NULL, NULL);
  g_return_val_if_fail (method != NULL && path != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL, NULL);

  stream = g_new0 (CpHttp2Stream, 1);
  g_atomic_ref_count_init (&stream->ref);
  stream->conn = cp_http2_connection_ref (connection);
  stream->method = g_strdup (method);
  stream->path = g_strdup (*path ? path : "/");
  stream->headers = cp_http_headers_new ();
  for (i = 0; headers && i < cp_http_headers_size (headers); i++) {
    const gchar *name, *value;

    cp_http_headers_nth (headers, i, &name, &value);
    cp_http_headers_add (stream->headers, name, value);
  }
  stream->response_headers = cp_http_headers_new ();
  stream->callbacks = *callbacks;
  stream->user_data = user_data;
  stream->notify = notify;
  stream->max_queued = CP_HTTP2_DEFAULT_MAX_QUEUED;
  g_queue_init (&stream->queue);

  g_mutex_lock (&connection->lock);
  g_ptr_array_add (connection->pending_open, cp_http2_stream_ref (stream));
  g_mutex_unlock (&connection->lock);
  wake (connection);
  return stream;
}

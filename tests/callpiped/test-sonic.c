/* GET /sonic against the real daemon: a GLib WebSocket client speaks to
 * the bot (novasonic, bedrock backend, on sonicpeer.py) through callpiped,
 * gets the transcript events and the reply audio, and checks auth, frame
 * limits, disconnects and the SIGTERM drain. A raw client that does the
 * handshake itself can stop reading: the bounds towards a slow browser,
 * the session cap and a browser flooding caller audio are checked with
 * it. Every wait is bounded. */
#include "sonic-harness.h"
#include "test-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_BYTES 640 /* 20 ms at 16 kHz S16LE */
#define CP_TEST_SECOND_BYTES 32000 /* the largest frame: 1 s */
#define WAIT_S 30
/* sonicpeer's reply samples are 1000 + the turn number. */
#define REPLY_SAMPLE 1001

typedef struct
{
  SonicDaemon d;
  gboolean skipped;
  GBytes *speech;
} Fixture;

/* What a test changes in the daemon's setup. */
typedef struct
{
  const gchar *server_extra;
  guint reply_ms;
} Options;

typedef struct
{
  SoupWebsocketConnection *ws;
  gboolean finished; /* the handshake finished, well or not */
  guint status;
  GPtrArray *events; /* JsonNode */
  guint64 audio_bytes;
  guint64 reply_samples;
  gboolean closed;
  gushort close_code;
  /* sending */
  GBytes *audio;
  gsize sent;
  guint send_id;
} Client;

static void
setup (Fixture *f, gconstpointer data)
{
  const Options *o = data;

  if (o != NULL) {
    f->d.server_extra = o->server_extra;
    f->d.reply_ms = o->reply_ms;
  }
  if (!sonic_daemon_start (&f->d)) {
    f->skipped = TRUE;
    g_test_skip ("sonicpeer.py needs Debian's python3-h2");
    return;
  }
  f->speech = sonic_speech_pcm (SONIC_TEST_QUESTION, 1500);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  sonic_daemon_stop (&f->d);
  g_clear_pointer (&f->speech, g_bytes_unref);
}

/* ---- the client ---- */

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message,
    gpointer data)
{
  Client *c = data;
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (message, &len);

  if (type == SOUP_WEBSOCKET_DATA_TEXT) {
    g_autoptr (GError) error = NULL;
    JsonNode *node = json_from_string ((const gchar *) p, &error);

    g_assert_no_error (error);
    g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
    g_ptr_array_add (c->events, node);
    return;
  }
  g_assert_cmpuint (len % 2, ==, 0);
  c->audio_bytes += len;
  for (gsize i = 0; i + 1 < len; i += 2) {
    if ((gint16) (p[i] | (p[i + 1] << 8)) == REPLY_SAMPLE)
      c->reply_samples++;
  }
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  Client *c = data;

  c->closed = TRUE;
  c->close_code = soup_websocket_connection_get_close_code (ws);
}

static void
on_connected (GObject *source, GAsyncResult *res, gpointer data)
{
  Client *c = data;

  c->ws =
      soup_session_websocket_connect_finish (SOUP_SESSION (source), res, NULL);
  c->finished = TRUE;
  if (c->ws == NULL)
    return;
  g_signal_connect (c->ws, "message", G_CALLBACK (on_message), c);
  g_signal_connect (c->ws, "closed", G_CALLBACK (on_closed), c);
}

static gboolean
handshake_done (gpointer data)
{
  return ((Client *) data)->finished;
}

/* Connects with ?@query and @protocols; the client, open or not. */
static Client *
client_connect (Fixture *f, const gchar *query, const gchar *const *protocols,
    const gchar *authorization)
{
  Client *c = g_new0 (Client, 1);
  g_autofree gchar *url = g_strdup_printf ("ws://127.0.0.1:%u/sonic%s%s",
      f->d.port, query ? "?" : "", query ? query : "");
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);

  c->events = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  if (authorization != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", authorization);
  soup_session_websocket_connect_async (f->d.http, msg, NULL,
      (gchar **) protocols, G_PRIORITY_DEFAULT, NULL, on_connected, c);
  g_assert_true (sonic_wait (handshake_done, c, WAIT_S));
  c->status = soup_message_get_status (msg);
  return c;
}

static void
client_free (Client *c)
{
  if (c->send_id != 0)
    g_source_remove (c->send_id);
  if (c->ws != NULL) {
    g_signal_handlers_disconnect_by_data (c->ws, c);
    if (soup_websocket_connection_get_state (c->ws)
        == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (c->ws, SOUP_WEBSOCKET_CLOSE_NORMAL,
          NULL);
    g_object_unref (c->ws);
  }
  g_clear_pointer (&c->audio, g_bytes_unref);
  g_ptr_array_unref (c->events);
  g_free (c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Client, client_free)

/* Real-time pacing, as a browser sends. */
static gboolean
send_next (gpointer data)
{
  Client *c = data;
  gsize len = g_bytes_get_size (c->audio);
  gsize n = MIN (FRAME_BYTES, len - c->sent);

  if (n == 0
      || soup_websocket_connection_get_state (c->ws)
          != SOUP_WEBSOCKET_STATE_OPEN) {
    c->send_id = 0;
    return G_SOURCE_REMOVE;
  }
  soup_websocket_connection_send_binary (c->ws,
      (const guint8 *) g_bytes_get_data (c->audio, NULL) + c->sent, n);
  c->sent += n;
  return G_SOURCE_CONTINUE;
}

static void
client_speak (Client *c, GBytes *pcm)
{
  c->audio = g_bytes_ref (pcm);
  c->send_id = g_timeout_add (20, send_next, c);
}

/* The first event of @type whose @member is @value (either may be NULL). */
static JsonObject *
find_event (Client *c, const gchar *type, const gchar *member,
    const gchar *value)
{
  for (guint i = 0; i < c->events->len; i++) {
    JsonObject *o = json_node_get_object (c->events->pdata[i]);

    if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", NULL),
            type)
        != 0)
      continue;
    if (member == NULL
        || g_strcmp0 (json_object_get_string_member_with_default (o, member,
                          NULL),
               value)
            == 0)
      return o;
  }
  return NULL;
}

static gboolean
has_created (gpointer data)
{
  return find_event (data, "session", "event", "created") != NULL;
}

static gboolean
has_reply (gpointer data)
{
  Client *c = data;

  return find_event (c, "transcript", "role", "USER") != NULL
      && c->reply_samples >= 8000;
}

static gboolean
is_closed (gpointer data)
{
  return ((Client *) data)->closed;
}

static const gchar *
session_id (Client *c)
{
  JsonObject *o = find_event (c, "session", "event", "created");

  g_assert_nonnull (o);
  return json_object_get_string_member (o, "sessionId");
}

static Client *
open_session (Fixture *f)
{
  Client *c = client_connect (f, "token=" SONIC_TEST_TOKEN, NULL, NULL);

  g_assert_nonnull (c->ws);
  g_assert_cmpuint (c->status, ==, SOUP_STATUS_SWITCHING_PROTOCOLS);
  g_assert_true (sonic_wait (has_created, c, WAIT_S));
  g_assert_true (g_uuid_string_is_valid (session_id (c)));
  return c;
}

typedef struct
{
  Fixture *f;
  const gchar *id;
  const gchar *state;
} StateWait;

static gboolean
call_in_state (gpointer data)
{
  StateWait *w = data;
  g_autofree gchar *path = g_strconcat ("/calls/", w->id, NULL);
  g_autofree gchar *body = sonic_daemon_get (&w->f->d, path, NULL);
  g_autofree gchar *want = g_strdup_printf ("\"state\":\"%s\"", w->state);

  return strstr (body, want) != NULL;
}

/* ---- tests ---- */

static void
test_conversation (Fixture *f, gconstpointer data)
{
  g_autoptr (Client) c = NULL;
  g_autofree gchar *list = NULL;
  g_autofree gchar *metrics = NULL;
  g_autofree gchar *call = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *path = NULL;
  StateWait w = {f, NULL, "ended"};
  JsonObject *t;
  guint status;

  if (f->skipped)
    return;
  c = open_session (f);
  id = g_strdup (session_id (c));
  client_speak (c, f->speech);
  g_assert_true (sonic_wait (has_reply, c, WAIT_S));

  t = find_event (c, "transcript", "role", "USER");
  g_assert_cmpstr (json_object_get_string_member (t, "stage"), ==, "FINAL");
  g_assert_cmpstr (json_object_get_string_member (t, "text"), ==, "turn 1");
  g_assert_nonnull (find_event (c, "transcript", "role", "ASSISTANT"));
  g_assert_nonnull (find_event (c, "session", "event", "running"));

  /* The session is in the pool like any call. */
  list = sonic_daemon_get (&f->d, "/calls", &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (list, id));
  g_assert_nonnull (strstr (list, "\"kind\":\"browser\""));
  metrics = sonic_daemon_get (&f->d, "/metrics", NULL);
  g_assert_nonnull (
      strstr (metrics, "callpipe_sessions_active{kind=\"browser\"} 1"));

  /* {"type":"end"}: the session ends, then the server closes normally. */
  soup_websocket_connection_send_text (c->ws, "{\"type\":\"end\"}");
  g_assert_true (sonic_wait (is_closed, c, WAIT_S));
  g_assert_cmpuint (c->close_code, ==, SOUP_WEBSOCKET_CLOSE_NORMAL);
  g_assert_nonnull (find_event (c, "session", "event", "ended"));
  w.id = id;
  g_assert_true (sonic_wait (call_in_state, &w, WAIT_S));
  path = g_strconcat ("/calls/", id, NULL);
  call = sonic_daemon_get (&f->d, path, NULL);
  g_assert_nonnull (strstr (call, "turn 1"));
}

static void
test_auth (Fixture *f, gconstpointer data)
{
  const gchar *const good[] = {"callpipe.v1", "bearer." SONIC_TEST_TOKEN, NULL};
  const gchar *const bad[] = {"callpipe.v1", "bearer.wrong", NULL};
  g_autoptr (Client) none = NULL;
  g_autoptr (Client) wrong = NULL;
  g_autoptr (Client) wrong_protocol = NULL;
  g_autoptr (Client) by_protocol = NULL;
  g_autoptr (Client) by_header = NULL;

  if (f->skipped)
    return;
  none = client_connect (f, NULL, NULL, NULL);
  g_assert_null (none->ws);
  g_assert_cmpuint (none->status, ==, SOUP_STATUS_UNAUTHORIZED);
  wrong = client_connect (f, "token=" SONIC_TEST_TOKEN "x", NULL, NULL);
  g_assert_null (wrong->ws);
  g_assert_cmpuint (wrong->status, ==, SOUP_STATUS_UNAUTHORIZED);
  wrong_protocol = client_connect (f, NULL, bad, NULL);
  g_assert_null (wrong_protocol->ws);
  g_assert_cmpuint (wrong_protocol->status, ==, SOUP_STATUS_UNAUTHORIZED);

  /* What browsers can do: the token as a subprotocol. */
  by_protocol = client_connect (f, NULL, good, NULL);
  g_assert_nonnull (by_protocol->ws);
  g_assert_cmpstr (soup_websocket_connection_get_protocol (by_protocol->ws), ==,
      "callpipe.v1");
  g_assert_true (sonic_wait (has_created, by_protocol, WAIT_S));
  by_header = client_connect (f, NULL, NULL, "Bearer " SONIC_TEST_TOKEN);
  g_assert_nonnull (by_header->ws);
  g_assert_true (sonic_wait (has_created, by_header, WAIT_S));
}

static void
check_refused_frame (Fixture *f, gsize len, gushort code,
    const gchar *error_code)
{
  g_autoptr (Client) c = open_session (f);
  g_autofree guint8 *frame = g_malloc0 (len);
  StateWait w = {f, session_id (c), "ended"};
  JsonObject *err;

  soup_websocket_connection_send_binary (c->ws, frame, len);
  g_assert_true (sonic_wait (is_closed, c, WAIT_S));
  g_assert_cmpuint (c->close_code, ==, code);
  err = find_event (c, "error", "code", error_code);
  g_assert_nonnull (err);
  g_assert_true (json_object_has_member (err, "message"));
  /* The session does not outlive its socket. */
  g_assert_true (sonic_wait (call_in_state, &w, WAIT_S));
}

static void
test_limits (Fixture *f, gconstpointer data)
{
  if (f->skipped)
    return;
  check_refused_frame (f, 641, SOUP_WEBSOCKET_CLOSE_BAD_DATA, "odd_frame");
  check_refused_frame (f, 40000, SOUP_WEBSOCKET_CLOSE_TOO_BIG,
      "frame_too_large");
}

static void
test_disconnect (Fixture *f, gconstpointer data)
{
  g_autoptr (Client) c = NULL;
  g_autofree gchar *id = NULL;
  StateWait w = {f, NULL, "ended"};

  if (f->skipped)
    return;
  c = open_session (f);
  id = g_strdup (session_id (c));
  client_speak (c, f->speech);
  g_assert_true (sonic_wait (has_reply, c, WAIT_S));
  soup_websocket_connection_close (c->ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
      NULL);
  g_assert_true (sonic_wait (is_closed, c, WAIT_S));
  w.id = id;
  g_assert_true (sonic_wait (call_in_state, &w, WAIT_S));
}

static void
test_drain (Fixture *f, gconstpointer data)
{
  g_autoptr (Client) c = NULL;

  if (f->skipped)
    return;
  c = open_session (f);
  client_speak (c, f->speech);
  g_assert_true (sonic_wait (has_reply, c, WAIT_S));
  g_subprocess_send_signal (f->d.daemon, SIGTERM);
  g_assert_true (sonic_wait (is_closed, c, WAIT_S));
  g_assert_cmpuint (c->close_code, ==, SOUP_WEBSOCKET_CLOSE_GOING_AWAY);
  g_assert_cmpint (sonic_daemon_wait_exit (&f->d), ==, 0);
}

/* ---- a raw client: it reads only when told to ---- */

#define SAMPLES_PER_S 16000
/* The raw client's receive buffer: small, so that what the server sends
 * stays with the server until the client reads. */
#define RAW_RCVBUF 4096

typedef struct
{
  int fd;
  GByteArray *in; /* read, not parsed yet */
  guint status; /* of the handshake */
  SoupMessageHeaders *headers; /* of the handshake's response */
  gchar *body; /* the response's body when it was no upgrade */
  GPtrArray *events; /* JsonNode of the text frames read */
  guint64 audio_bytes;
  guint64 reply_samples;
  gint close_code; /* -1 until a close frame came */
  gboolean eof;
} Raw;

static void
raw_free (Raw *r)
{
  if (r->fd >= 0)
    close (r->fd);
  g_byte_array_unref (r->in);
  g_clear_pointer (&r->headers, soup_message_headers_unref);
  g_free (r->body);
  g_ptr_array_unref (r->events);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Raw, raw_free)

static void
raw_write (Raw *r, const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0) {
    ssize_t n = send (r->fd, p, len, MSG_NOSIGNAL);

    if (n < 0 && errno == EINTR)
      continue;
    g_assert_cmpint (n, >, 0);
    p += n;
    len -= n;
  }
}

/* Waits up to @timeout_ms for more bytes; FALSE when none came. */
static gboolean
raw_fill (Raw *r, gint timeout_ms)
{
  struct pollfd p = {r->fd, POLLIN, 0};
  guint8 buf[4096];
  ssize_t n;

  if (r->eof || poll (&p, 1, timeout_ms) <= 0)
    return FALSE;
  n = recv (r->fd, buf, sizeof (buf), 0);
  if (n <= 0) {
    r->eof = TRUE;
    return FALSE;
  }
  g_byte_array_append (r->in, buf, n);
  return TRUE;
}

static void
raw_send (Raw *r, guint8 opcode, const guint8 *data, gsize len)
{
  static const guint8 mask[4] = {0x12, 0x34, 0x56, 0x78};
  g_autofree guint8 *frame = g_malloc (8 + len);
  gsize at = 2, i;

  g_assert_cmpuint (len, <=, G_MAXUINT16);
  frame[0] = 0x80 | opcode;
  if (len < 126) {
    frame[1] = 0x80 | len;
  } else {
    frame[1] = 0x80 | 126;
    frame[2] = len >> 8;
    frame[3] = len & 0xff;
    at = 4;
  }
  memcpy (frame + at, mask, 4);
  at += 4;
  for (i = 0; i < len; i++)
    frame[at + i] = data[i] ^ mask[i & 3];
  raw_write (r, frame, at + len);
}

static void
raw_frame (Raw *r, guint opcode, const guint8 *p, gsize len)
{
  switch (opcode) {
    case 0x1: {
      g_autoptr (GError) error = NULL;
      g_autofree gchar *text = g_strndup ((const gchar *) p, len);
      JsonNode *node = json_from_string (text, &error);

      g_assert_no_error (error);
      g_ptr_array_add (r->events, node);
      break;
    }
    case 0x2:
      r->audio_bytes += len;
      for (gsize i = 0; i + 1 < len; i += 2) {
        if ((gint16) (p[i] | (p[i + 1] << 8)) == REPLY_SAMPLE)
          r->reply_samples++;
      }
      break;
    case 0x8:
      r->close_code = len >= 2 ? (p[0] << 8) | p[1] : 1005;
      /* A client answers the close: the server then closes at once. */
      raw_send (r, 0x8, p, MIN (len, 2));
      break;
    default:
      break;
  }
}

/* Takes every whole frame read so far. */
static void
raw_parse (Raw *r)
{
  for (;;) {
    const guint8 *d = r->in->data;
    gsize n = r->in->len, at = 2;
    guint64 len;

    if (n < 2)
      return;
    g_assert_cmpuint (d[1] & 0x80, ==, 0); /* servers do not mask */
    len = d[1] & 0x7f;
    if (len == 126) {
      if (n < 4)
        return;
      len = (d[2] << 8) | d[3];
      at = 4;
    } else if (len == 127) {
      if (n < 10)
        return;
      len = 0;
      for (gsize i = 2; i < 10; i++)
        len = (len << 8) | d[i];
      at = 10;
    }
    if (n < at + len)
      return;
    raw_frame (r, d[0] & 0x0f, d + at, len);
    g_byte_array_remove_range (r->in, 0, at + len);
  }
}

/* The end of the response head read so far, or NULL. */
static const gchar *
head_end (GByteArray *in)
{
  if (in->len == 0)
    return NULL;
  return g_strstr_len ((const gchar *) in->data, in->len, "\r\n\r\n");
}

/* Connects to GET /sonic?@query and does the handshake with a small
 * receive buffer; the response's status, and its body when it refused. */
static Raw *
raw_connect (Fixture *f, const gchar *query)
{
  Raw *r = g_new0 (Raw, 1);
  struct sockaddr_in sa = {0};
  int rcvbuf = RAW_RCVBUF;
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_USEC_PER_SEC;
  g_autofree gchar *req =
      g_strdup_printf ("GET /sonic?%s HTTP/1.1\r\n"
                       "Host: 127.0.0.1:%u\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
          query, f->d.port);
  const gchar *end;
  gsize head_len;
  goffset body_len;

  r->in = g_byte_array_new ();
  r->events = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  r->close_code = -1;
  r->fd = socket (AF_INET, SOCK_STREAM, 0);
  g_assert_cmpint (r->fd, >=, 0);
  g_assert_cmpint (setsockopt (r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
                       sizeof (rcvbuf)),
      ==, 0);
  sa.sin_family = AF_INET;
  sa.sin_port = htons (f->d.port);
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (connect (r->fd, (struct sockaddr *) &sa, sizeof (sa)), ==,
      0);
  raw_write (r, req, strlen (req));
  while ((end = head_end (r->in)) == NULL) {
    g_assert_false (r->eof);
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    raw_fill (r, 100);
  }
  head_len = end + 4 - (const gchar *) r->in->data;
  r->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_true (soup_headers_parse_response ((const gchar *) r->in->data,
      head_len, r->headers, NULL, &r->status, NULL));
  g_byte_array_remove_range (r->in, 0, head_len);
  if (r->status == SOUP_STATUS_SWITCHING_PROTOCOLS)
    return r;
  body_len = soup_message_headers_get_content_length (r->headers);
  while (r->in->len < (gsize) body_len) {
    g_assert_false (r->eof);
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    raw_fill (r, 100);
  }
  r->body = g_strndup ((const gchar *) r->in->data, body_len);
  return r;
}

/* Reads until @done says so; FALSE after @seconds or at EOF. */
static gboolean
raw_read_until (Raw *r, gboolean (*done) (Raw *), guint seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

  for (;;) {
    raw_parse (r);
    if (done (r))
      return TRUE;
    if (r->eof || g_get_monotonic_time () > deadline)
      return FALSE;
    raw_fill (r, 100);
  }
}

/* Reads until nothing came for @quiet_ms, EOF or @seconds. */
static void
raw_read_until_quiet (Raw *r, gint quiet_ms, guint seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline && raw_fill (r, quiet_ms))
    raw_parse (r);
  raw_parse (r);
}

static JsonObject *
raw_event (Raw *r, const gchar *type, const gchar *member, const gchar *value)
{
  for (guint i = 0; i < r->events->len; i++) {
    JsonObject *o = json_node_get_object (r->events->pdata[i]);

    if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", NULL),
            type)
            == 0
        && g_strcmp0 (json_object_get_string_member_with_default (o, member,
                          NULL),
               value)
            == 0)
      return o;
  }
  return NULL;
}

static gboolean
raw_has_created (Raw *r)
{
  return raw_event (r, "session", "event", "created") != NULL;
}

static gboolean
raw_at_eof (Raw *r)
{
  return r->eof;
}

static gboolean
raw_closed (Raw *r)
{
  return r->close_code >= 0;
}

/* A session whose "created" event was read. */
static Raw *
raw_open_session (Fixture *f, gchar **id)
{
  Raw *r = raw_connect (f, "token=" SONIC_TEST_TOKEN);

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_SWITCHING_PROTOCOLS);
  g_assert_true (raw_read_until (r, raw_has_created, WAIT_S));
  *id = g_strdup (json_object_get_string_member (raw_event (r, "session",
                                                     "event", "created"),
      "sessionId"));
  return r;
}

/* Sends @pcm in real time, 20 ms a frame, reading nothing meanwhile. */
static void
raw_speak (Raw *r, GBytes *pcm)
{
  gsize len = 0, off;
  const guint8 *p = g_bytes_get_data (pcm, &len);

  for (off = 0; off < len; off += FRAME_BYTES) {
    raw_send (r, 0x2, p + off, MIN (FRAME_BYTES, len - off));
    g_usleep (20 * 1000);
  }
}

typedef struct
{
  Fixture *f;
  const gchar *id;
  const gchar *needle;
} ReasonWait;

/* The session is over (ended, or failed when the bot's answer outlasted
 * the drain) and its reason starts with @needle. */
static gboolean
call_over_because (gpointer data)
{
  ReasonWait *w = data;
  g_autofree gchar *path = g_strconcat ("/calls/", w->id, NULL);
  g_autofree gchar *body = sonic_daemon_get (&w->f->d, path, NULL);
  g_autofree gchar *reason = g_strconcat ("\"reason\":\"", w->needle, NULL);

  return (strstr (body, "\"state\":\"ended\"") != NULL
             || strstr (body, "\"state\":\"failed\"") != NULL)
      && strstr (body, reason) != NULL;
}

static gboolean
stalled_once (gpointer data)
{
  Fixture *f = data;

  return sonic_daemon_metric (&f->d, "callpipe_browser_stalled_total") == 1;
}

#define REPLY_DROPPED \
  "callpipe_browser_audio_dropped_seconds_total{direction=\"reply\"}"
#define CALLER_DROPPED \
  "callpipe_browser_audio_dropped_seconds_total{direction=\"caller\"}"
/* sonicpeer's answer in the backpressure tests: long enough that a
 * browser not reading for a while misses a good part of it. */
#define LONG_REPLY_S 24

static const Options long_reply = {NULL, LONG_REPLY_S * 1000};
static const Options short_stall = {"browser-stall-timeout = 3\n",
    LONG_REPLY_S * 1000};
static const Options one_session = {"max-browser-sessions = 1\n", 0};

/* A browser that stops reading for 12 s while the bot speaks: callpiped
 * keeps at most 3 s of the answer for it and drops the oldest, the
 * session goes on, and once the browser reads again it hears the rest. */
static void
test_slow_reader (Fixture *f, gconstpointer data)
{
  g_autoptr (Raw) r = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *call = NULL;
  gdouble dropped, heard;

  if (f->skipped)
    return;
  r = raw_open_session (f, &id);
  raw_speak (r, f->speech);
  g_usleep (12 * G_USEC_PER_SEC);
  /* The bot spoke about 11 s into the silence; 3 s were kept. */
  g_assert_cmpfloat (sonic_daemon_metric (&f->d, REPLY_DROPPED), >=, 6.0);

  raw_read_until_quiet (r, 3000, 2 * LONG_REPLY_S);
  g_assert_false (r->eof);
  heard = (gdouble) r->reply_samples / SAMPLES_PER_S;
  dropped = sonic_daemon_metric (&f->d, REPLY_DROPPED);
  /* Every second of the answer was heard or counted as dropped, and
   * what came after the pause was heard. */
  g_assert_cmpfloat (ABS (heard + dropped - LONG_REPLY_S), <, 1.0);
  g_assert_cmpfloat (heard, >, LONG_REPLY_S - 12 - 4.5);
  g_assert_cmpfloat (heard, <, LONG_REPLY_S - 6.0);
  g_assert_nonnull (raw_event (r, "transcript", "role", "ASSISTANT"));
  path = g_strconcat ("/calls/", id, NULL);
  call = sonic_daemon_get (&f->d, path, NULL);
  g_assert_nonnull (strstr (call, "\"state\":\"running\""));
  g_assert_cmpfloat (sonic_daemon_metric (&f->d,
                         "callpipe_browser_stalled_total"),
      ==, 0);

  raw_send (r, 0x1, (const guint8 *) "{\"type\":\"end\"}", 14);
  g_assert_true (raw_read_until (r, raw_closed, WAIT_S));
  g_assert_cmpint (r->close_code, ==, SOUP_WEBSOCKET_CLOSE_NORMAL);
}

/* A browser that reads nothing at all: [server] browser-stall-timeout
 * (3 s here) after the socket stopped taking data, callpiped gives up:
 * the session ends with the reason, the socket closes with 1008, and what
 * was queued for the browser by then was dropped, not sent. */
static void
test_stalled_reader (Fixture *f, gconstpointer data)
{
  g_autoptr (Raw) r = NULL;
  g_autofree gchar *id = NULL;
  ReasonWait w = {f, NULL, "the browser stopped reading"};
  guint64 before;

  if (f->skipped)
    return;
  r = raw_open_session (f, &id);
  before = r->audio_bytes;
  raw_speak (r, f->speech);
  g_assert_true (sonic_wait (stalled_once, f, WAIT_S));

  /* Read now, within libsoup's 5 s for the close handshake. */
  g_assert_true (raw_read_until (r, raw_at_eof, WAIT_S));
  g_assert_cmpint (r->close_code, ==, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION);
  /* Left: what the kernel and libsoup held, not the 3 s backlog. */
  g_assert_cmpuint (r->audio_bytes - before, <, 32000);
  g_assert_cmpfloat (sonic_daemon_metric (&f->d, REPLY_DROPPED), >, 0.5);
  w.id = id;
  g_assert_true (sonic_wait (call_over_because, &w, WAIT_S));
}

/* [server] max-browser-sessions = 1: the second browser gets 503 with a
 * JSON error and Retry-After before any upgrade; the slot comes back when
 * the first one leaves. */
static void
test_session_cap (Fixture *f, gconstpointer data)
{
  g_autoptr (Client) first = NULL;
  g_autoptr (Raw) over = NULL;
  g_autoptr (Raw) next = NULL;
  g_autoptr (JsonNode) body = NULL;
  g_autofree gchar *id = NULL;
  JsonObject *e;
  gint64 deadline;

  if (f->skipped)
    return;
  first = open_session (f);
  over = raw_connect (f, "token=" SONIC_TEST_TOKEN);
  g_assert_cmpuint (over->status, ==, SOUP_STATUS_SERVICE_UNAVAILABLE);
  g_assert_cmpstr (soup_message_headers_get_one (over->headers, "Retry-After"),
      ==, "10");
  body = json_from_string (over->body, NULL);
  g_assert_nonnull (body);
  e = json_object_get_object_member (json_node_get_object (body), "error");
  g_assert_cmpstr (json_object_get_string_member (e, "code"), ==,
      "at_capacity");
  g_assert_nonnull (strstr (json_object_get_string_member (e, "message"),
      "max-browser-sessions"));
  g_assert_cmpfloat (sonic_daemon_metric (&f->d,
                         "callpipe_sessions_refused_total{kind=\"browser\","
                         "reason=\"capacity\"}"),
      ==, 1);

  soup_websocket_connection_send_text (first->ws, "{\"type\":\"end\"}");
  g_assert_true (sonic_wait (is_closed, first, WAIT_S));
  deadline = g_get_monotonic_time () + WAIT_S * G_USEC_PER_SEC;
  /* The server lets go of the first socket a moment after the client. */
  for (;;) {
    next = raw_connect (f, "token=" SONIC_TEST_TOKEN);
    if (next->status == SOUP_STATUS_SWITCHING_PROTOCOLS
        || g_get_monotonic_time () > deadline)
      break;
    g_clear_pointer (&next, raw_free);
    g_usleep (100 * 1000);
  }
  g_assert_cmpuint (next->status, ==, SOUP_STATUS_SWITCHING_PROTOCOLS);
  g_assert_true (raw_read_until (next, raw_has_created, WAIT_S));
}

static gboolean
has_too_fast (gpointer data)
{
  return find_event (data, "error", "code", "audio_too_fast") != NULL;
}

/* A browser sending 20 s of caller audio at once: 5 s ahead of real time
 * are taken, the rest is dropped and counted, the browser is told once.
 * The session goes on: once real time has caught up, speech sent at the
 * right pace is taken whole and the bot answers it. */
static void
test_caller_flood (Fixture *f, gconstpointer data)
{
  g_autoptr (Client) c = NULL;
  g_autofree guint8 *second = g_malloc0 (CP_TEST_SECOND_BYTES);
  gdouble dropped;
  guint i;

  if (f->skipped)
    return;
  c = open_session (f);
  for (i = 0; i < 20; i++)
    soup_websocket_connection_send_binary (c->ws, second, CP_TEST_SECOND_BYTES);
  g_assert_true (sonic_wait (has_too_fast, c, WAIT_S));
  dropped = sonic_daemon_metric (&f->d, CALLER_DROPPED);
  g_assert_cmpfloat (dropped, >=, 14.0);
  g_assert_cmpfloat (dropped, <=, 15.0);

  g_usleep (5500 * 1000);
  client_speak (c, f->speech);
  g_assert_true (sonic_wait (has_reply, c, WAIT_S));
  g_assert_false (c->closed);
  g_assert_cmpfloat (sonic_daemon_metric (&f->d, CALLER_DROPPED), ==, dropped);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) \
  g_test_add ("/callpiped/sonic/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("conversation", test_conversation);
  ADD ("auth", test_auth);
  ADD ("limits", test_limits);
  ADD ("disconnect", test_disconnect);
  ADD ("drain", test_drain);
  ADD ("caller-flood", test_caller_flood);
#undef ADD
#define ADD_WITH(name, options, fn) \
  g_test_add ("/callpiped/sonic/" name, Fixture, &options, setup, fn, teardown)
  ADD_WITH ("slow-reader", long_reply, test_slow_reader);
  ADD_WITH ("stalled-reader", short_stall, test_stalled_reader);
  ADD_WITH ("session-cap", one_session, test_session_cap);
#undef ADD_WITH
  return g_test_run ();
}

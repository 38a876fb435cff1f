/* GET /sonic against the real daemon: a GLib WebSocket client speaks to
 * the bot (novasonic, bedrock backend, on sonicpeer.py) through callpiped,
 * gets the transcript events and the reply audio, and checks auth, frame
 * limits, disconnects and the SIGTERM drain. Every wait is bounded. */
#include "sonic-harness.h"
#include "test-util.h"

#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#define FRAME_BYTES 640 /* 20 ms at 16 kHz S16LE */
#define WAIT_S 30
/* sonicpeer's reply samples are 1000 + the turn number. */
#define REPLY_SAMPLE 1001

typedef struct
{
  SonicDaemon d;
  gboolean skipped;
  GBytes *speech;
} Fixture;

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
#undef ADD
  return g_test_run ();
}

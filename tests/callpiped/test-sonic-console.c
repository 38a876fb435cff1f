/* The web console: its pages are served without auth, and in headless
 * Chromium the talk page speaks to the bot. Chromium's fake microphone
 * plays a flite-spoken question (a WAV made here with ttssrc); the test
 * drives the page over the DevTools protocol (a WebSocket from libsoup,
 * no Node) and waits, bounded, for the bot's transcript of the question in
 * the DOM and for reply audio counted by the page. Skips when chromium is
 * not installed (CI installs it). */
#include "sonic-harness.h"
#include "test-util.h"

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define WAIT_S 60
#define POLL_MS 250

typedef struct
{
  SonicDaemon d;
  gboolean skipped;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  if (!sonic_daemon_start (&f->d)) {
    f->skipped = TRUE;
    g_test_skip ("sonicpeer.py needs Debian's python3-h2");
  }
}

static void
teardown (Fixture *f, gconstpointer data)
{
  sonic_daemon_stop (&f->d);
}

static SoupMessage *
get (Fixture *f, const gchar *path, GBytes **body)
{
  g_autofree gchar *url =
      g_strdup_printf ("http://127.0.0.1:%u%s", f->d.port, path);
  SoupMessage *msg = soup_message_new ("GET", url);
  g_autoptr (GError) error = NULL;

  *body = soup_session_send_and_read (f->d.http, msg, NULL, &error);
  g_assert_no_error (error);
  return msg;
}

static void
test_pages (Fixture *f, gconstpointer data)
{
  static const gchar *const pages[][2] = {
      {"/", "text/html"},
      {"/static/talk.html", "text/html"},
      {"/static/talk.js", "text/javascript"},
      {"/static/capture-worklet.js", "text/javascript"},
      {"/static/console.css", "text/css"},
  };
  guint i;

  if (f->skipped)
    return;
  for (i = 0; i < G_N_ELEMENTS (pages); i++) {
    g_autoptr (GBytes) body = NULL;
    g_autoptr (SoupMessage) msg = get (f, pages[i][0], &body);
    SoupMessageHeaders *h = soup_message_get_response_headers (msg);

    g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_OK);
    g_assert_cmpstr (soup_message_headers_get_content_type (h, NULL), ==,
        pages[i][1]);
    g_assert_nonnull (
        soup_message_headers_get_one (h, "Content-Security-Policy"));
    g_assert_cmpuint (g_bytes_get_size (body), >, 100);
  }
  {
    g_autoptr (GBytes) body = NULL;
    g_autoptr (SoupMessage) missing = get (f, "/static/nope.js", &body);
    g_autoptr (GBytes) body2 = NULL;
    g_autoptr (SoupMessage) api = get (f, "/calls", &body2);

    g_assert_cmpuint (soup_message_get_status (missing), ==, 404);
    /* The API itself still wants the token. */
    g_assert_cmpuint (soup_message_get_status (api), ==, 401);
  }
}

/* ---- Chromium over the DevTools protocol ---- */

typedef struct
{
  SoupWebsocketConnection *ws;
  gboolean finished;
  guint next_id;
  gint64 waiting_id;
  JsonNode *result;
} Cdp;

static void
cdp_on_message (SoupWebsocketConnection *ws, gint type, GBytes *message,
    gpointer data)
{
  Cdp *c = data;
  g_autoptr (JsonNode) node =
      json_from_string (g_bytes_get_data (message, NULL), NULL);
  JsonObject *o;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return;
  o = json_node_get_object (node);
  if (json_object_get_int_member_with_default (o, "id", -1) == c->waiting_id)
    c->result = g_steal_pointer (&node);
}

static void
cdp_on_connected (GObject *source, GAsyncResult *res, gpointer data)
{
  Cdp *c = data;

  c->ws =
      soup_session_websocket_connect_finish (SOUP_SESSION (source), res, NULL);
  c->finished = TRUE;
  if (c->ws != NULL) {
    /* DevTools replies with the page's whole state can be large. */
    g_object_set (c->ws, "max-incoming-payload-size", (guint64) 0, NULL);
    g_signal_connect (c->ws, "message", G_CALLBACK (cdp_on_message), c);
  }
}

static gboolean
cdp_connected (gpointer data)
{
  return ((Cdp *) data)->finished;
}

static gboolean
cdp_answered (gpointer data)
{
  return ((Cdp *) data)->result != NULL;
}

/* Evaluates @expr (which yields a string) in the page; NULL on timeout. */
static gchar *
cdp_eval (Cdp *c, const gchar *expr)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *text = NULL;
  g_autoptr (JsonNode) result = NULL;
  JsonObject *r;

  c->waiting_id = ++c->next_id;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_int_value (b, c->waiting_id);
  json_builder_set_member_name (b, "method");
  json_builder_add_string_value (b, "Runtime.evaluate");
  json_builder_set_member_name (b, "params");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "expression");
  json_builder_add_string_value (b, expr);
  json_builder_set_member_name (b, "returnByValue");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = json_to_string (root, FALSE);
  soup_websocket_connection_send_text (c->ws, text);
  if (!sonic_wait (cdp_answered, c, 10))
    return NULL;
  result = g_steal_pointer (&c->result);
  r = json_object_get_object_member (json_node_get_object (result), "result");
  if (r == NULL || !json_object_has_member (r, "result"))
    return NULL;
  r = json_object_get_object_member (r, "result");
  return g_strdup (
      json_object_get_string_member_with_default (r, "value", NULL));
}

static void
browser_child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* Its own process group, so that teardown ends the renderers too. */
  setpgid (0, 0);
}

static GSubprocess *
start_chromium (const gchar *profile, const gchar *wav, const gchar *url)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autofree gchar *profile_arg =
      g_strconcat ("--user-data-dir=", profile, NULL);
  g_autofree gchar *wav_arg =
      g_strconcat ("--use-file-for-fake-audio-capture=", wav, NULL);
  g_autoptr (GError) error = NULL;
  GSubprocess *p;

  g_subprocess_launcher_set_child_setup (launcher, browser_child_setup, NULL,
      NULL);
  p = g_subprocess_launcher_spawn (launcher, &error, CHROMIUM_BIN, "--headless",
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-default-apps", "--mute-audio",
      "--autoplay-policy=no-user-gesture-required",
      "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
      profile_arg, "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream", wav_arg, url, NULL);
  g_assert_no_error (error);
  return p;
}

static gboolean
exited (gpointer data)
{
  return g_subprocess_get_identifier (data) == NULL;
}

/* SIGTERM lets Chromium end and reap its renderers; whatever is left of
 * its process group after 10 s is killed. */
static void
stop_chromium (GSubprocess *browser)
{
  gint pgid = atoi (g_subprocess_get_identifier (browser));

  g_subprocess_send_signal (browser, SIGTERM);
  sonic_wait (exited, browser, 10);
  kill (-pgid, SIGKILL);
  g_subprocess_wait (browser, NULL, NULL);
}

typedef struct
{
  const gchar *path;
  gchar *contents;
} FileWait;

static gboolean
file_ready (gpointer data)
{
  FileWait *w = data;

  g_clear_pointer (&w->contents, g_free);
  return g_file_get_contents (w->path, &w->contents, NULL, NULL)
      && strchr (w->contents, '\n') != NULL;
}

/* The page target's DevTools WebSocket URL, from /json/list. */
static gchar *
page_debugger_url (SoupSession *http, guint port)
{
  g_autofree gchar *url =
      g_strdup_printf ("http://127.0.0.1:%u/json/list", port);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr (GBytes) body = soup_session_send_and_read (http, msg, NULL, NULL);
  g_autoptr (JsonNode) node = NULL;
  JsonArray *targets;
  guint i;

  if (body == NULL)
    return NULL;
  node = json_from_string (g_bytes_get_data (body, NULL), NULL);
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  targets = json_node_get_array (node);
  for (i = 0; i < json_array_get_length (targets); i++) {
    JsonObject *t = json_array_get_object_element (targets, i);

    if (g_strcmp0 (json_object_get_string_member_with_default (t, "type", NULL),
            "page")
            == 0
        && strstr (json_object_get_string_member_with_default (t, "url", ""),
               "talk.html")
            != NULL)
      return g_strdup (
          json_object_get_string_member (t, "webSocketDebuggerUrl"));
  }
  return NULL;
}

#define PAGE_STATE                                                 \
  "JSON.stringify({"                                               \
  "state: document.getElementById('state').textContent,"           \
  "sent: +document.getElementById('frames-sent').textContent,"     \
  "bytes: +document.getElementById('bytes-received').textContent," \
  "error: document.getElementById('error').textContent,"           \
  "caller: [...document.querySelectorAll("                         \
  "'#transcript li[data-role=\"USER\"][data-stage=\"FINAL\"]')]"   \
  ".map((li) => li.textContent)})"

typedef struct
{
  Cdp *cdp;
  gchar *last; /* the page's last state, for the failure message */
  gint64 next_poll;
  gboolean heard;
} PageWait;

static gboolean
page_heard_bot (gpointer data)
{
  PageWait *w = data;
  g_autoptr (JsonNode) node = NULL;
  gchar *state;
  JsonObject *o;

  if (w->heard || g_get_monotonic_time () < w->next_poll)
    return w->heard;
  w->next_poll = g_get_monotonic_time () + POLL_MS * 1000;
  state = cdp_eval (w->cdp, PAGE_STATE);
  if (state == NULL)
    return FALSE;
  g_free (w->last);
  w->last = state;
  node = json_from_string (state, NULL);
  o = json_node_get_object (node);
  /* sonicpeer's transcript of the caller's first turn, and at least half
   * of its 1 s reply. */
  w->heard = strstr (state, "\"caller\":[\"turn 1\"") != NULL
      && json_object_get_int_member (o, "bytes") >= 16000;
  return w->heard;
}

static void
test_talk_page (Fixture *f, gconstpointer data)
{
  g_autofree gchar *profile = NULL;
  g_autofree gchar *wav = NULL;
  g_autofree gchar *url = NULL;
  g_autofree gchar *port_file = NULL;
  g_autofree gchar *debugger = NULL;
  g_autoptr (GBytes) speech = NULL;
  g_autoptr (GSubprocess) browser = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  FileWait fw = {NULL, NULL};
  Cdp cdp = {0};
  PageWait pw = {&cdp, NULL, 0, FALSE};
  gboolean heard;

  if (f->skipped)
    return;
  if (CHROMIUM_BIN[0] == '\0'
      || !g_file_test (CHROMIUM_BIN, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip ("chromium is not installed (apt-get install chromium)");
    return;
  }
  profile = g_build_filename (f->d.dir, "chromium-profile", NULL);
  g_assert_cmpint (g_mkdir (profile, 0700), ==, 0);
  wav = g_build_filename (f->d.dir, "question.wav", NULL);
  speech = sonic_speech_pcm (SONIC_TEST_QUESTION, 1500);
  sonic_write_wav (wav, speech);
  url = g_strdup_printf ("http://127.0.0.1:%u/static/talk.html"
                         "#token=" SONIC_TEST_TOKEN "&autostart=1",
      f->d.port);
  browser = start_chromium (profile, wav, url);

  port_file = g_build_filename (profile, "DevToolsActivePort", NULL);
  fw.path = port_file;
  g_assert_true (sonic_wait (file_ready, &fw, WAIT_S));
  for (gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
       debugger == NULL && g_get_monotonic_time () < end; g_usleep (100 * 1000))
    debugger = page_debugger_url (f->d.http, atoi (fw.contents));
  g_free (fw.contents);
  g_assert_nonnull (debugger);

  msg = soup_message_new ("GET", debugger);
  soup_session_websocket_connect_async (f->d.http, msg, NULL, NULL,
      G_PRIORITY_DEFAULT, NULL, cdp_on_connected, &cdp);
  g_assert_true (sonic_wait (cdp_connected, &cdp, WAIT_S));
  g_assert_nonnull (cdp.ws);

  heard = sonic_wait (page_heard_bot, &pw, WAIT_S);
  if (!heard)
    g_printerr ("talk page state: %s\n", pw.last ? pw.last : "(none)");
  g_assert_true (heard);
  g_free (pw.last);

  soup_websocket_connection_close (cdp.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_signal_handlers_disconnect_by_data (cdp.ws, &cdp);
  g_clear_object (&cdp.ws);
  stop_chromium (browser);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/callpiped/console/pages", Fixture, NULL, setup, test_pages,
      teardown);
  g_test_add ("/callpiped/console/talk-page", Fixture, NULL, setup,
      test_talk_page, teardown);
  return g_test_run ();
}

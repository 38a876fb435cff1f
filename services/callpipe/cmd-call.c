/* callpipe call — start a call from local media, or from a sentence
 * spoken by ttssrc, on a running callpiped. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SERVER "http://127.0.0.1:8080"
#define WAIT_POLL_US (500 * 1000)

/* --say: the caller's speech as an 8 kHz 16-bit mono WAV, a short pause
 * before it and, after it, the pause that ends the caller's turn for the
 * bot's voice activity detection. */
#define SAY_RATE 8000
#define SAY_LEAD_MS 500
#define SAY_TAIL_MS 2000

static gboolean
synthesize_raw (const gchar *text, const gchar *raw_path, GError **error)
{
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) tts = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autoptr (GstBus) bus = NULL;
  g_autoptr (GstMessage) msg = NULL;
  gboolean ok;

  pipeline =
      gst_parse_launch ("ttssrc name=tts ! audioconvert "
                        "! audioresample "
                        "! audio/x-raw,format=S16LE,rate=8000,channels=1 "
                        "! filesink name=out",
          error);
  if (pipeline == NULL)
    return FALSE;
  tts = gst_bin_get_by_name (GST_BIN (pipeline), "tts");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  g_object_set (tts, "text", text, NULL);
  g_object_set (sink, "location", raw_path, NULL);
  bus = gst_element_get_bus (pipeline);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE,
        "the speech synthesis pipeline did not start");
    return FALSE;
  }
  msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  ok = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS;
  if (!ok)
    gst_message_parse_error (msg, error, NULL);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  return ok;
}

/* Speaks @text with ttssrc into a new temporary WAV; returns its path. */
static gchar *
say_to_wav (const gchar *text, GError **error)
{
  gsize lead = SAY_RATE * SAY_LEAD_MS / 1000 * 2;
  gsize tail = SAY_RATE * SAY_TAIL_MS / 1000 * 2;
  g_autofree gchar *raw_path = NULL;
  g_autofree gchar *wav_path = NULL;
  g_autofree gchar *pcm = NULL;
  g_autofree guint8 *wav = NULL;
  gsize pcm_len = 0, data_len, total;
  gint fd;

  gst_init (NULL, NULL);
  fd = g_file_open_tmp ("callpipe-say-XXXXXX.raw", &raw_path, error);
  if (fd < 0)
    return NULL;
  close (fd);
  if (!synthesize_raw (text, raw_path, error)
      || !g_file_get_contents (raw_path, &pcm, &pcm_len, error)) {
    g_unlink (raw_path);
    return NULL;
  }
  g_unlink (raw_path);

  data_len = lead + pcm_len + tail;
  total = 44 + data_len;
  wav = g_malloc0 (total);
  memcpy (wav, "RIFF", 4);
  GST_WRITE_UINT32_LE (wav + 4, total - 8);
  memcpy (wav + 8, "WAVEfmt ", 8);
  GST_WRITE_UINT32_LE (wav + 16, 16);
  GST_WRITE_UINT16_LE (wav + 20, 1);
  GST_WRITE_UINT16_LE (wav + 22, 1);
  GST_WRITE_UINT32_LE (wav + 24, SAY_RATE);
  GST_WRITE_UINT32_LE (wav + 28, SAY_RATE * 2);
  GST_WRITE_UINT16_LE (wav + 32, 2);
  GST_WRITE_UINT16_LE (wav + 34, 16);
  memcpy (wav + 36, "data", 4);
  GST_WRITE_UINT32_LE (wav + 40, data_len);
  memcpy (wav + 44 + lead, pcm, pcm_len);

  fd = g_file_open_tmp ("callpipe-say-XXXXXX.wav", &wav_path, error);
  if (fd < 0)
    return NULL;
  close (fd);
  if (!g_file_set_contents (wav_path, (const gchar *) wav, total, error)) {
    g_unlink (wav_path);
    return NULL;
  }
  return g_steal_pointer (&wav_path);
}

static gchar *
media_to_uri (const gchar *media, GError **error)
{
  g_autofree gchar *scheme = g_uri_parse_scheme (media);
  g_autofree gchar *abs = NULL;

  /* One-letter "schemes" would be Windows drive letters, never URIs here. */
  if (scheme != NULL && strlen (scheme) > 1)
    return g_strdup (media);
  abs = g_canonicalize_filename (media, NULL);
  if (!g_file_test (abs, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such file",
        media);
    return NULL;
  }
  return g_filename_to_uri (abs, NULL, error);
}

static gchar *
call_body (const gchar *contact_id, const gchar *uri)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "contactId");
  json_builder_add_string_value (b, contact_id);
  json_builder_set_member_name (b, "mediaUri");
  json_builder_add_string_value (b, uri);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* Sends one request; returns the parsed JSON object body and the status. */
static JsonNode *
request (SoupSession *session, const gchar *method, const gchar *url,
    const gchar *token, const gchar *body, guint *status, GError **error)
{
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const gchar *data;

  if (msg == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "bad server URL %s", url);
    return NULL;
  }
  if (token != NULL) {
    g_autofree gchar *auth = g_strconcat ("Bearer ", token, NULL);

    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", auth);
  }
  if (body != NULL) {
    g_autoptr (GBytes) b = g_bytes_new (body, strlen (body));

    soup_message_set_request_body_from_bytes (msg, "application/json", b);
  }
  reply = soup_session_send_and_read (session, msg, NULL, error);
  if (reply == NULL)
    return NULL;
  *status = soup_message_get_status (msg);
  data = g_bytes_get_data (reply, &len);
  if (!json_parser_load_from_data (parser, data ? data : "", len, error)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    if (error != NULL && *error == NULL)
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "HTTP %u without a JSON object", *status);
    return NULL;
  }
  return json_node_copy (json_parser_get_root (parser));
}

static const gchar *
member_string (JsonNode *node, const gchar *name)
{
  JsonObject *o = json_node_get_object (node);
  JsonNode *m = json_object_get_member (o, name);

  if (m == NULL || json_node_get_value_type (m) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (m);
}

static void
print_error (guint status, JsonNode *node)
{
  JsonObject *o = json_node_get_object (node);
  JsonObject *e = json_object_get_object_member (o, "error");
  const gchar *msg = NULL;

  if (e != NULL && json_object_has_member (e, "message"))
    msg = json_object_get_string_member (e, "message");
  fprintf (stderr, "callpipe call: HTTP %u: %s\n", status,
      msg != NULL ? msg : "(no message)");
}

/* "  bot: ..." and "  caller: ..." lines, then the intents. */
static void
print_transcript (JsonNode *node)
{
  JsonObject *o = json_node_get_object (node);
  JsonArray *a;
  guint i;

  a = json_object_has_member (o, "transcript")
      ? json_object_get_array_member (o, "transcript")
      : NULL;
  for (i = 0; a != NULL && i < json_array_get_length (a); i++) {
    JsonObject *e = json_array_get_object_element (a, i);

    printf ("  %s: %s\n", json_object_get_string_member (e, "role"),
        json_object_get_string_member (e, "text"));
  }
  a = json_object_has_member (o, "intents")
      ? json_object_get_array_member (o, "intents")
      : NULL;
  for (i = 0; a != NULL && i < json_array_get_length (a); i++) {
    JsonNode *n = json_array_get_element (a, i);
    g_autofree gchar *text = json_to_string (n, FALSE);

    printf ("  intent: %s\n", text);
  }
}

static int
wait_for_end (SoupSession *session, const gchar *server, const gchar *token,
    const gchar *id)
{
  g_autofree gchar *url = g_strdup_printf ("%s/calls/%s", server, id);

  for (;;) {
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonNode) node = NULL;
    guint status = 0;
    const gchar *state;

    node = request (session, "GET", url, token, NULL, &status, &error);
    if (node == NULL) {
      fprintf (stderr, "callpipe call: %s\n", error->message);
      return 1;
    }
    if (status != SOUP_STATUS_OK) {
      print_error (status, node);
      return 1;
    }
    state = member_string (node, "state");
    if (!g_strcmp0 (state, "ended") || !g_strcmp0 (state, "failed")) {
      const gchar *reason = member_string (node, "reason");
      const gchar *rec = member_string (node, "recordingUrl");
      const gchar *doc = member_string (node, "transcriptUrl");

      printf ("%s: %s\n", state, reason ? reason : "");
      print_transcript (node);
      if (rec != NULL)
        printf ("recording: %s\n", rec);
      if (doc != NULL)
        printf ("transcript: %s\n", doc);
      return !g_strcmp0 (state, "ended") ? 0 : 1;
    }
    g_usleep (WAIT_POLL_US);
  }
}

int
cp_cli_cmd_call (int argc, char **argv)
{
  g_autofree gchar *media = NULL;
  g_autofree gchar *say = NULL;
  g_autofree gchar *say_wav = NULL;
  g_autofree gchar *server = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *contact_id = NULL;
  gboolean wait = FALSE;
  GOptionEntry entries[] =
      {{"media", 'm', 0, G_OPTION_ARG_FILENAME, &media,
           "Audio file (or file/http/https URI) to play as the caller", "FILE"},
          {"say", 0, 0, G_OPTION_ARG_STRING, &say,
              "Speak TEXT as the caller (ttssrc); callpiped must run on this "
              "machine",
              "TEXT"},
          {"server", 's', 0, G_OPTION_ARG_STRING, &server,
              "callpiped base URL (default " DEFAULT_SERVER ")", "URL"},
          {"token", 't', 0, G_OPTION_ARG_STRING, &token,
              "API bearer token (default: $CALLPIPE_SERVER_TOKEN)", "T"},
          {"contact-id", 0, 0, G_OPTION_ARG_STRING, &contact_id,
              "Contact id to report (default: a random UUID)", "ID"},
          {"wait", 'w', 0, G_OPTION_ARG_NONE, &wait,
              "Follow the call until it ends and print how it ended", NULL},
          {NULL}};
  g_autoptr (GOptionContext) ctx =
      g_option_context_new ("--media FILE|--say TEXT - start a call on "
                            "callpiped");
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (JsonNode) node = NULL;
  g_autofree gchar *uri = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *url = NULL;
  const gchar *id;
  guint status = 0;
  int ret;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)
      || (media == NULL) == (say == NULL) || argc > 1) {
    fprintf (stderr,
        "usage: callpipe call --media FILE|URI|--say TEXT [--server URL] "
        "[--token T] [--contact-id ID] [--wait]%s%s\n",
        error ? "\n" : "", error ? error->message : "");
    return 2;
  }
  if (server == NULL)
    server = g_strdup (DEFAULT_SERVER);
  g_strchomp (server);
  while (g_str_has_suffix (server, "/"))
    server[strlen (server) - 1] = '\0';
  if (token == NULL && g_getenv ("CALLPIPE_SERVER_TOKEN") != NULL
      && *g_getenv ("CALLPIPE_SERVER_TOKEN") != '\0')
    token = g_strdup (g_getenv ("CALLPIPE_SERVER_TOKEN"));
  if (contact_id == NULL)
    contact_id = g_uuid_string_random ();

  if (say != NULL) {
    say_wav = say_to_wav (say, &error);
    if (say_wav == NULL) {
      fprintf (stderr, "callpipe call: cannot speak the text: %s\n",
          error->message);
      return 1;
    }
    uri = g_filename_to_uri (say_wav, NULL, &error);
  } else {
    uri = media_to_uri (media, &error);
  }
  if (uri == NULL) {
    fprintf (stderr, "callpipe call: %s\n", error->message);
    return 1;
  }
  body = call_body (contact_id, uri);
  url = g_strconcat (server, "/calls", NULL);
  session = soup_session_new ();
  node = request (session, "POST", url, token, body, &status, &error);
  if (node == NULL) {
    fprintf (stderr, "callpipe call: %s: %s\n", url, error->message);
    ret = 1;
  } else if (status != SOUP_STATUS_ACCEPTED
      || (id = member_string (node, "sessionId")) == NULL) {
    print_error (status, node);
    ret = 1;
  } else {
    printf ("%s\n", id);
    fflush (stdout);
    ret = wait ? wait_for_end (session, server, token, id) : 0;
  }
  /* callpiped plays the spoken WAV for the whole call: without --wait it
   * stays in the temporary directory. */
  if (say_wav != NULL && (wait || ret != 0))
    g_unlink (say_wav);
  else if (say_wav != NULL)
    printf ("speech: %s\n", say_wav);
  return ret;
}

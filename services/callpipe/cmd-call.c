/* callpipe call — start a call from local media on a running callpiped. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_SERVER "http://127.0.0.1:8080"
#define WAIT_POLL_US (500 * 1000)

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

      printf ("%s: %s\n", state, reason ? reason : "");
      if (rec != NULL)
        printf ("recording: %s\n", rec);
      return !g_strcmp0 (state, "ended") ? 0 : 1;
    }
    g_usleep (WAIT_POLL_US);
  }
}

int
cp_cli_cmd_call (int argc, char **argv)
{
  g_autofree gchar *media = NULL;
  g_autofree gchar *server = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *contact_id = NULL;
  gboolean wait = FALSE;
  GOptionEntry entries[] =
      {{"media", 'm', 0, G_OPTION_ARG_FILENAME, &media,
           "Audio file (or file/http/https URI) to play as the caller", "FILE"},
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
      g_option_context_new ("--media FILE - start a call on callpiped");
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (JsonNode) node = NULL;
  g_autofree gchar *uri = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *url = NULL;
  const gchar *id;
  guint status = 0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || media == NULL
      || argc > 1) {
    fprintf (stderr,
        "usage: callpipe call --media FILE|URI [--server URL] "
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

  uri = media_to_uri (media, &error);
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
    return 1;
  }
  id = member_string (node, "sessionId");
  if (status != SOUP_STATUS_ACCEPTED || id == NULL) {
    print_error (status, node);
    return 1;
  }
  printf ("%s\n", id);
  fflush (stdout);
  if (wait)
    return wait_for_end (session, server, token, id);
  return 0;
}

/* callpipe sessions — list the sessions of a running callpiped
 * (GET /calls) as a table. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_SERVER "http://127.0.0.1:8080"

static const gchar *
field (JsonObject *o, const gchar *name)
{
  JsonNode *m = json_object_get_member (o, name);

  if (m == NULL || json_node_get_value_type (m) != G_TYPE_STRING)
    return "-";
  return json_node_get_string (m);
}

/* The last transcript line, so a glance shows where each call is. */
static const gchar *
last_words (JsonObject *o)
{
  JsonArray *a;
  JsonObject *e;

  if (!json_object_has_member (o, "transcript")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "transcript")))
    return "";
  a = json_object_get_array_member (o, "transcript");
  if (json_array_get_length (a) == 0)
    return "";
  e = json_array_get_object_element (a, json_array_get_length (a) - 1);
  return e != NULL && json_object_has_member (e, "text")
      ? json_object_get_string_member (e, "text")
      : "";
}

static void
print_table (JsonArray *calls)
{
  guint i;

  printf ("%-36s  %-7s  %-8s  %-17s  %-20s  %9s  %-20s  %s\n", "SESSION",
      "KIND", "STATE", "PIPELINE", "STARTED", "DURATION", "REASON",
      "LAST WORDS");
  for (i = 0; i < json_array_get_length (calls); i++) {
    JsonObject *o = json_array_get_object_element (calls, i);
    g_autofree gchar *started = NULL;
    g_autofree gchar *words = NULL;
    gdouble duration = 0;

    if (o == NULL)
      continue;
    /* 2026-01-02T03:04:05.678Z -> 2026-01-02 03:04:05 */
    started = g_strndup (field (o, "startedAt"), 19);
    g_strdelimit (started, "T", ' ');
    if (json_object_has_member (o, "duration"))
      duration = json_object_get_double_member (o, "duration");
    words = g_utf8_substring (last_words (o), 0,
        MIN (g_utf8_strlen (last_words (o), -1), 60));
    printf ("%-36s  %-7s  %-8s  %-17s  %-20s  %8.1fs  %-20s  %s\n",
        field (o, "sessionId"), field (o, "kind"), field (o, "state"),
        field (o, "pipeline"), started, duration, field (o, "reason"), words);
  }
}

int
cp_cli_cmd_sessions (int argc, char **argv)
{
  g_autofree gchar *server = NULL;
  g_autofree gchar *token = NULL;
  gint limit = 0;
  gboolean json = FALSE;
  GOptionEntry entries[] = {{"server", 's', 0, G_OPTION_ARG_STRING, &server,
                                "callpiped base URL (default " DEFAULT_SERVER
                                ")",
                                "URL"},
      {"token", 't', 0, G_OPTION_ARG_STRING, &token,
          "API bearer token (default: $CALLPIPE_SERVER_TOKEN)", "T"},
      {"limit", 'n', 0, G_OPTION_ARG_INT, &limit,
          "At most N sessions, newest first (server default 100, max 1000)",
          "N"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the JSON as received",
          NULL},
      {NULL}};
  g_autoptr (GOptionContext) ctx =
      g_option_context_new ("- list the sessions of callpiped");
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree gchar *url = NULL;
  JsonNode *root;
  JsonObject *o;
  const gchar *data;
  gsize len = 0;
  guint status;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc > 1
      || limit < 0) {
    fprintf (stderr,
        "usage: callpipe sessions [--server URL] [--token T] [--limit N] "
        "[--json]%s%s\n",
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

  url = limit > 0 ? g_strdup_printf ("%s/calls?limit=%d", server, limit)
                  : g_strconcat (server, "/calls", NULL);
  msg = soup_message_new ("GET", url);
  if (msg == NULL) {
    fprintf (stderr, "callpipe sessions: bad server URL %s\n", server);
    return 2;
  }
  if (token != NULL) {
    g_autofree gchar *auth = g_strconcat ("Bearer ", token, NULL);

    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", auth);
  }
  session = soup_session_new ();
  reply = soup_session_send_and_read (session, msg, NULL, &error);
  if (reply == NULL) {
    fprintf (stderr, "callpipe sessions: %s: %s\n", url, error->message);
    return 1;
  }
  status = soup_message_get_status (msg);
  data = g_bytes_get_data (reply, &len);
  if (!json_parser_load_from_data (parser, data ? data : "", len, &error)
      || (root = json_parser_get_root (parser)) == NULL
      || !JSON_NODE_HOLDS_OBJECT (root)) {
    fprintf (stderr, "callpipe sessions: HTTP %u without a JSON object\n",
        status);
    return 1;
  }
  o = json_node_get_object (root);
  if (status != SOUP_STATUS_OK) {
    JsonObject *e = json_object_has_member (o, "error")
        ? json_object_get_object_member (o, "error")
        : NULL;

    fprintf (stderr, "callpipe sessions: HTTP %u: %s\n", status,
        e != NULL ? field (e, "message") : "(no message)");
    return 1;
  }
  if (!json_object_has_member (o, "calls")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "calls"))) {
    fprintf (stderr, "callpipe sessions: the reply has no calls list\n");
    return 1;
  }
  if (json) {
    g_autofree gchar *text = json_to_string (root, TRUE);

    printf ("%s\n", text);
    return 0;
  }
  print_table (json_object_get_array_member (o, "calls"));
  return 0;
}

/* callpiped — the web console */
#include "cp-console.h"
#include "cp-web-resources.h"

#include <gio/gio.h>
#include <string.h>

#define RESOURCE_ROOT "/org/callpipe/callpiped/web/"

/* The pages load scripts, styles and the audio worklet from here only and
 * talk to this server only (fetch and WebSocket). */
#define CSP                                                           \
  "default-src 'none'; script-src 'self'; style-src 'self'; "         \
  "img-src 'self' data:; media-src 'self' blob:; connect-src 'self' " \
  "ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

gboolean
cp_console_owns (const gchar *path)
{
  return !strcmp (path, "/")
      || g_str_has_prefix (path, CP_CONSOLE_STATIC_PREFIX);
}

static const gchar *
content_type (const gchar *name)
{
  if (g_str_has_suffix (name, ".html"))
    return "text/html; charset=utf-8";
  if (g_str_has_suffix (name, ".js"))
    return "text/javascript; charset=utf-8";
  if (g_str_has_suffix (name, ".css"))
    return "text/css; charset=utf-8";
  return "application/octet-stream";
}

static void
respond_text (SoupServerMessage *msg, guint status, const gchar *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8",
      SOUP_MEMORY_COPY, text, strlen (text));
}

void
cp_console_serve (SoupServerMessage *msg, const gchar *path)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  const gchar *method = soup_server_message_get_method (msg);
  const gchar *name = !strcmp (path, "/")
      ? "index.html"
      : path + strlen (CP_CONSOLE_STATIC_PREFIX);
  g_autofree gchar *resource = NULL;
  g_autoptr (GBytes) bytes = NULL;

  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
    soup_message_headers_replace (h, "Allow", "GET, HEAD");
    respond_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "the console is read-only\n");
    return;
  }
  /* Resource names are flat: no sub-directories, no "..". */
  if (*name == '\0' || strchr (name, '/') != NULL || name[0] == '.') {
    respond_text (msg, SOUP_STATUS_NOT_FOUND, "no such page\n");
    return;
  }
  resource = g_strconcat (RESOURCE_ROOT, name, NULL);
  /* Looked up in our own resource: naming it also keeps its object file
   * in the link from the static library. */
  bytes = g_resource_lookup_data (cp_web_get_resource (), resource,
      G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
  if (bytes == NULL) {
    respond_text (msg, SOUP_STATUS_NOT_FOUND, "no such page\n");
    return;
  }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (h, content_type (name), NULL);
  soup_message_headers_replace (h, "Cache-Control", "no-cache");
  soup_message_headers_replace (h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (h, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace (h, "Content-Security-Policy", CSP);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg),
      bytes);
}

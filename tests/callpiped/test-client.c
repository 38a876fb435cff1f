/* callpiped's client, as the integration tests use it. */
#include "test-client.h"

#include <math.h>
#include <string.h>

void
cp_test_reply_free (CpTestReply *r)
{
  g_free (r->content_type);
  g_clear_pointer (&r->body, g_bytes_unref);
  g_clear_pointer (&r->json, json_node_unref);
  g_free (r);
}

CpTestReply *
cp_test_http (SoupSession *session, guint port, const gchar *method,
    const gchar *path, const gchar *token, const gchar *body)
{
  g_autofree gchar *url = g_str_has_prefix (path, "http")
      ? g_strdup (path)
      : g_strdup_printf ("http://127.0.0.1:%u%s", port, path);
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GError) error = NULL;
  CpTestReply *r = g_new0 (CpTestReply, 1);
  const gchar *ct;

  g_assert_nonnull (msg);
  if (token != NULL) {
    g_autofree gchar *auth = g_strconcat ("Bearer ", token, NULL);

    soup_message_headers_replace (soup_message_get_request_headers (msg),
        "Authorization", auth);
  }
  if (body != NULL) {
    g_autoptr (GBytes) b = g_bytes_new (body, strlen (body));

    soup_message_set_request_body_from_bytes (msg, "application/json", b);
  }
  r->body = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  r->status = soup_message_get_status (msg);
  ct =
      soup_message_headers_get_content_type (soup_message_get_response_headers (
                                                 msg),
          NULL);
  r->content_type = g_strdup (ct);
  if (g_strcmp0 (ct, "application/json") == 0) {
    g_autoptr (JsonParser) parser = json_parser_new ();
    gsize len;
    const gchar *data = g_bytes_get_data (r->body, &len);

    g_assert_true (json_parser_load_from_data (parser, data, len, NULL));
    r->json = json_node_copy (json_parser_get_root (parser));
  }
  return r;
}

const gchar *
cp_test_reply_string (CpTestReply *r, const gchar *member)
{
  JsonObject *o;

  g_assert_nonnull (r->json);
  o = json_node_get_object (r->json);
  if (!json_object_has_member (o, member)
      || json_object_get_null_member (o, member))
    return NULL;
  return json_object_get_string_member (o, member);
}

static void
put_u16 (guint8 *p, guint16 v)
{
  p[0] = v & 0xff;
  p[1] = v >> 8;
}

static void
put_u32 (guint8 *p, guint32 v)
{
  put_u16 (p, v & 0xffff);
  put_u16 (p + 2, v >> 16);
}

gchar *
cp_test_write_wav (const gchar *dir, const gchar *name, guint tone_s,
    guint total_s, gsize *len)
{
  guint rate = 16000, n = rate * total_s, i;
  gsize size = 44 + (gsize) n * 2;
  g_autofree guint8 *buf = g_malloc0 (size);
  gchar *path = g_build_filename (dir, name, NULL);

  memcpy (buf, "RIFF", 4);
  put_u32 (buf + 4, size - 8);
  memcpy (buf + 8, "WAVEfmt ", 8);
  put_u32 (buf + 16, 16);
  put_u16 (buf + 20, 1);
  put_u16 (buf + 22, 1);
  put_u32 (buf + 24, rate);
  put_u32 (buf + 28, rate * 2);
  put_u16 (buf + 32, 2);
  put_u16 (buf + 34, 16);
  memcpy (buf + 36, "data", 4);
  put_u32 (buf + 40, n * 2);
  for (i = 0; i < rate * tone_s && i < n; i++)
    put_u16 (buf + 44 + 2 * i,
        (guint16) (gint16) (8000 * sin (2 * G_PI * 440 * i / rate)));
  g_assert_true (g_file_set_contents (path, (gchar *) buf, size, NULL));
  if (len != NULL)
    *len = size;
  return path;
}

/* What the callpiped integration tests share as callpiped's client: HTTP
 * requests with their JSON answers, and the WAV files they send. */
#ifndef CP_TEST_CLIENT_H
#define CP_TEST_CLIENT_H

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct
{
  guint status;
  gchar *content_type;
  GBytes *body;
  JsonNode *json; /* when the body is JSON */
} CpTestReply;

void         cp_test_reply_free   (CpTestReply *r);
/* @path is a path on 127.0.0.1:@port or a whole URL; @token (NULL: none)
 * goes in a bearer Authorization header. */
CpTestReply *cp_test_http         (SoupSession *session, guint port,
                                   const gchar *method, const gchar *path,
                                   const gchar *token, const gchar *body);
/* The string member @member of the reply's JSON object; NULL when absent
 * or null. */
const gchar *cp_test_reply_string (CpTestReply *r, const gchar *member);
/* @dir/@name: a 16 kHz mono WAV, @tone_s of a loud 440 Hz tone (speech to
 * sonicpeer), silence up to @total_s; its size in @len (may be NULL). */
gchar       *cp_test_write_wav    (const gchar *dir, const gchar *name,
                                   guint tone_s, guint total_s, gsize *len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpTestReply, cp_test_reply_free)

G_END_DECLS

#endif /* CP_TEST_CLIENT_H */

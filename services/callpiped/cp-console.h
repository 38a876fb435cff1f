/* callpiped — the web console (DESIGN.md §6, GET /)
 *
 * Static pages compiled into the binary as a GResource (web/): "/" lists
 * the sessions with their state and transcript, /static/talk.html talks
 * to the bot through GET /sonic. The pages hold no secrets, so they are
 * served without auth; their scripts send the API token the user enters.
 */
#ifndef CP_CONSOLE_H
#define CP_CONSOLE_H

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define CP_CONSOLE_STATIC_PREFIX "/static/"

gboolean cp_console_owns  (const gchar *path);
void     cp_console_serve (SoupServerMessage *msg, const gchar *path);

G_END_DECLS

#endif /* CP_CONSOLE_H */

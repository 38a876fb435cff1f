/* callpiped — JSON-lines logging
 *
 * One JSON object per line on stderr: time, level, msg, and the session and
 * contact ids when the line is about a session. GLib's own messages go
 * through the same writer, so the log stays machine-readable.
 */
#ifndef CP_LOG_H
#define CP_LOG_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  CP_LOG_DEBUG,
  CP_LOG_INFO,
  CP_LOG_WARNING,
  CP_LOG_ERROR,
} CpLogLevel;

void   cp_log_install      (void);
void   cp_log_set_debug    (gboolean enabled);
gchar *cp_log_format_line  (gint64 real_time_us, CpLogLevel level,
                            const gchar *session_id,
                            const gchar *contact_id,
                            const gchar *msg);
void   cp_log              (CpLogLevel level, const gchar *session_id,
                            const gchar *contact_id,
                            const gchar *format, ...) G_GNUC_PRINTF (4, 5);

G_END_DECLS

#endif /* CP_LOG_H */

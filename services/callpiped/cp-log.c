/* callpiped — JSON-lines logging */
#include "cp-log.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

static gboolean debug_enabled;

static const gchar *
level_name (CpLogLevel level)
{
  switch (level) {
    case CP_LOG_DEBUG:
      return "debug";
    case CP_LOG_INFO:
      return "info";
    case CP_LOG_WARNING:
      return "warning";
    case CP_LOG_ERROR:
      break;
  }
  return "error";
}

gchar *
cp_log_format_line (gint64 real_time_us, CpLogLevel level,
    const gchar *session_id, const gchar *contact_id, const gchar *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (0);
  g_autoptr (GDateTime) t = g_date_time_add (dt, real_time_us);
  g_autofree gchar *stamp = g_date_time_format (t, "%Y-%m-%dT%H:%M:%S.%fZ");

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "time");
  json_builder_add_string_value (b, stamp);
  json_builder_set_member_name (b, "level");
  json_builder_add_string_value (b, level_name (level));
  json_builder_set_member_name (b, "msg");
  json_builder_add_string_value (b, msg);
  if (session_id != NULL) {
    json_builder_set_member_name (b, "sessionId");
    json_builder_add_string_value (b, session_id);
  }
  if (contact_id != NULL) {
    json_builder_set_member_name (b, "contactId");
    json_builder_add_string_value (b, contact_id);
  }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static void
write_line (CpLogLevel level, const gchar *session_id, const gchar *contact_id,
    const gchar *msg)
{
  g_autofree gchar *line = NULL;

  if (level == CP_LOG_DEBUG && !debug_enabled)
    return;
  line = cp_log_format_line (g_get_real_time (), level, session_id, contact_id,
      msg);
  /* One fprintf per line: stdio locks the stream, so lines from the main loop
   * and from GStreamer threads logging through GLib never interleave. */
  fprintf (stderr, "%s\n", line);
  fflush (stderr);
}

void
cp_log (CpLogLevel level, const gchar *session_id, const gchar *contact_id,
    const gchar *format, ...)
{
  g_autofree gchar *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  write_line (level, session_id, contact_id, msg);
}

void
cp_log_set_debug (gboolean enabled)
{
  debug_enabled = enabled;
}

static GLogWriterOutput
glib_writer (GLogLevelFlags log_level, const GLogField *fields, gsize n_fields,
    gpointer user_data)
{
  const gchar *message = NULL;
  const gchar *domain = NULL;
  CpLogLevel level;
  gsize i;

  for (i = 0; i < n_fields; i++) {
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
      message = fields[i].value;
    else if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0
        && fields[i].length < 0)
      domain = fields[i].value;
  }
  if (message == NULL)
    return G_LOG_WRITER_UNHANDLED;

  if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    level = CP_LOG_ERROR;
  else if (log_level & G_LOG_LEVEL_WARNING)
    level = CP_LOG_WARNING;
  else if (log_level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    level = CP_LOG_INFO;
  else
    level = CP_LOG_DEBUG;

  if (domain != NULL) {
    g_autofree gchar *msg = g_strdup_printf ("%s: %s", domain, message);
    write_line (level, NULL, NULL, msg);
  } else {
    write_line (level, NULL, NULL, message);
  }
  return G_LOG_WRITER_HANDLED;
}

void
cp_log_install (void)
{
  g_log_set_writer_func (glib_writer, NULL, NULL);
}

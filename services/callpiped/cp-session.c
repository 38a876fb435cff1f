/* callpiped — one session: a pipeline instance and its state machine */
#include "cp-session.h"
#include "cp-log.h"

#include <string.h>

struct _CpSession
{
  CpSessionRecord *record; /* state and reason mirror @state */
  CpSessionState state;
  CpFactory *factory; /* owned by the pool, outlives the session */
  GHashTable *values; /* ${NAME} -> value */
  guint long_call_warning;

  GstElement *pipeline;
  GSource *bus_source;
  guint start_id;
  guint stop_timeout_id;
  guint long_call_id;
  gchar *stop_reason; /* why stop() was called, for the EOS */
  gboolean pipeline_failed; /* an ERROR came from the pipeline */

  CpSessionChangedFunc changed;
  gpointer user_data;
};

static const gchar *const state_names[] = {"starting", "running", "ending",
    "ended", "failed"};

const gchar *
cp_session_state_name (CpSessionState state)
{
  return state_names[state];
}

CpSession *
cp_session_new (CpSessionRecord *record, CpFactory *factory, GHashTable *values,
    guint long_call_warning, CpSessionChangedFunc changed, gpointer user_data)
{
  CpSession *s = g_new0 (CpSession, 1);

  s->record = record;
  s->state = CP_SESSION_STARTING;
  g_free (s->record->state);
  s->record->state = g_strdup (state_names[s->state]);
  s->factory = factory;
  s->values = values;
  s->long_call_warning = long_call_warning;
  s->changed = changed;
  s->user_data = user_data;
  return s;
}

static void
clear_source (guint *id)
{
  if (*id != 0) {
    g_source_remove (*id);
    *id = 0;
  }
}

static void
release_pipeline (CpSession *s)
{
  if (s->bus_source != NULL) {
    g_source_destroy (s->bus_source);
    g_clear_pointer (&s->bus_source, g_source_unref);
  }
  if (s->pipeline != NULL) {
    gst_element_set_state (s->pipeline, GST_STATE_NULL);
    gst_clear_object (&s->pipeline);
  }
}

void
cp_session_free (CpSession *s)
{
  if (s == NULL)
    return;
  clear_source (&s->start_id);
  clear_source (&s->stop_timeout_id);
  clear_source (&s->long_call_id);
  release_pipeline (s);
  g_hash_table_unref (s->values);
  cp_session_record_free (s->record);
  g_free (s->stop_reason);
  g_free (s);
}

CpSessionState
cp_session_get_state (CpSession *s)
{
  return s->state;
}

gboolean
cp_session_is_live (CpSession *s)
{
  return s->state < CP_SESSION_ENDED;
}

gboolean
cp_session_pipeline_failed (CpSession *s)
{
  return s->pipeline_failed;
}

const CpSessionRecord *
cp_session_get_record (CpSession *s)
{
  return s->record;
}

static void
set_state (CpSession *s, CpSessionState state, const gchar *reason)
{
  CpLogLevel level = state == CP_SESSION_FAILED ? CP_LOG_WARNING : CP_LOG_INFO;

  s->state = state;
  g_free (s->record->state);
  s->record->state = g_strdup (state_names[state]);
  if (reason != NULL) {
    g_free (s->record->reason);
    s->record->reason = g_strdup (reason);
  }
  if (state >= CP_SESSION_ENDED) {
    s->record->ended_at = g_get_real_time ();
    clear_source (&s->start_id);
    clear_source (&s->stop_timeout_id);
    clear_source (&s->long_call_id);
    release_pipeline (s);
  }
  cp_log (level, s->record->id, s->record->contact_id, "session %s%s%s",
      state_names[state], reason != NULL ? ": " : "",
      reason != NULL ? reason : "");
  s->changed (s, s->user_data);
}

static gboolean
on_long_call (gpointer data)
{
  CpSession *s = data;

  s->long_call_id = 0;
  cp_log (CP_LOG_WARNING, s->record->id, s->record->contact_id,
      "session has been running for more than %u s", s->long_call_warning);
  return G_SOURCE_REMOVE;
}

static gchar *
describe_error (GstMessage *msg)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *debug = NULL;
  g_autofree gchar *src = gst_object_get_name (GST_MESSAGE_SRC (msg));

  gst_message_parse_error (msg, &err, &debug);
  return g_strdup_printf ("%s: %s", src, err->message);
}

static gboolean
on_bus_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  CpSession *s = data;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_STATE_CHANGED: {
      GstState old_state, new_state;

      if (GST_MESSAGE_SRC (msg) != GST_OBJECT (s->pipeline))
        break;
      gst_message_parse_state_changed (msg, &old_state, &new_state, NULL);
      if (new_state == GST_STATE_PLAYING && s->state == CP_SESSION_STARTING) {
        if (s->long_call_warning > 0)
          s->long_call_id =
              g_timeout_add_seconds (s->long_call_warning, on_long_call, s);
        set_state (s, CP_SESSION_RUNNING, NULL);
      }
      break;
    }
    case GST_MESSAGE_EOS:
      set_state (s, CP_SESSION_ENDED,
          s->stop_reason != NULL ? s->stop_reason : "end of stream");
      return G_SOURCE_REMOVE;
    case GST_MESSAGE_ERROR: {
      g_autofree gchar *why = describe_error (msg);

      s->pipeline_failed = TRUE;
      set_state (s, CP_SESSION_FAILED, why);
      return G_SOURCE_REMOVE;
    }
    case GST_MESSAGE_WARNING: {
      g_autoptr (GError) err = NULL;
      g_autofree gchar *debug = NULL;
      g_autofree gchar *src = gst_object_get_name (GST_MESSAGE_SRC (msg));

      gst_message_parse_warning (msg, &err, &debug);
      cp_log (CP_LOG_WARNING, s->record->id, s->record->contact_id, "%s: %s",
          src, err->message);
      break;
    }
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
build_and_play (gpointer data)
{
  CpSession *s = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GstBus) bus = NULL;
  g_autofree gchar *name = g_strconcat ("session-", s->record->id, NULL);

  s->start_id = 0;
  s->pipeline =
      cp_factory_create_pipeline (s->factory, name, s->values, &error);
  if (s->pipeline == NULL) {
    set_state (s, CP_SESSION_FAILED, error->message);
    return G_SOURCE_REMOVE;
  }
  gst_object_ref_sink (s->pipeline);
  bus = gst_pipeline_get_bus (GST_PIPELINE (s->pipeline));
  s->bus_source = gst_bus_create_watch (bus);
  g_source_set_callback (s->bus_source, G_SOURCE_FUNC (on_bus_message), s,
      NULL);
  g_source_attach (s->bus_source, NULL);

  /* A failure here also posts an ERROR naming the element, which the bus
   * watch turns into the reason. */
  gst_element_set_state (s->pipeline, GST_STATE_PLAYING);
  return G_SOURCE_REMOVE;
}

void
cp_session_start (CpSession *s)
{
  g_return_if_fail (s->state == CP_SESSION_STARTING && s->start_id == 0);

  s->start_id = g_idle_add (build_and_play, s);
}

static gboolean
on_stop_timeout (gpointer data)
{
  CpSession *s = data;
  g_autofree gchar *why = g_strdup_printf ("%s: the pipeline did not finish "
                                           "within the time allowed",
      s->stop_reason);

  s->stop_timeout_id = 0;
  set_state (s, CP_SESSION_FAILED, why);
  return G_SOURCE_REMOVE;
}

void
cp_session_stop (CpSession *s, const gchar *reason, guint timeout_s)
{
  if (!cp_session_is_live (s) || s->state == CP_SESSION_ENDING)
    return;
  g_free (s->stop_reason);
  s->stop_reason = g_strdup (reason);
  if (s->pipeline == NULL) {
    set_state (s, CP_SESSION_ENDED, reason);
    return;
  }
  set_state (s, CP_SESSION_ENDING, NULL);
  /* EOS from the sources lets muxers and sinks finalize (wavenc rewrites
   * its header); the bus then reports EOS and the session ends. */
  gst_element_send_event (s->pipeline, gst_event_new_eos ());
  if (timeout_s == 0)
    on_stop_timeout (s);
  else
    s->stop_timeout_id = g_timeout_add_seconds (timeout_s, on_stop_timeout, s);
}

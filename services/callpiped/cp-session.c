/* callpiped — one session: a pipeline instance and its state machine */
#include "cp-session.h"
#include "cp-log.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* How long a transfer or end intent waits for the bot's answer to be
 * spoken before the call is ended anyway. */
#define INTENT_GRACE_S 10

struct _CpSession
{
  CpSessionRecord *record; /* state and reason mirror @state */
  CpSessionState state;
  CpFactory *factory; /* owned by the pool, outlives the session */
  GHashTable *values; /* ${NAME} -> value */
  guint long_call_warning;
  gboolean end_on_intent;
  guint stop_timeout;

  GstElement *pipeline;
  struct _BusLink *bus_link; /* while the pipeline exists */
  guint start_id;
  guint stop_timeout_id;
  guint long_call_id;
  gchar *stop_reason; /* why stop() was called, for the EOS */
  gboolean pipeline_failed; /* an ERROR came from the pipeline */

  JsonArray *transcript; /* of {role, text, offset} */
  JsonArray *intents; /* of {intent, reason, offset} */
  gchar *pending_intent; /* ends the call after the bot's answer */
  guint intent_grace_id;

  CpSessionChangedFunc changed;
  gpointer user_data;
  const CpSessionObserver *observer; /* NULL: none */
  gpointer observer_data;
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
    guint long_call_warning, gboolean end_on_intent, guint stop_timeout,
    CpSessionChangedFunc changed, gpointer user_data)
{
  CpSession *s = g_new0 (CpSession, 1);

  s->record = record;
  s->state = CP_SESSION_STARTING;
  g_free (s->record->state);
  s->record->state = g_strdup (state_names[s->state]);
  s->factory = factory;
  s->values = values;
  s->long_call_warning = long_call_warning;
  s->end_on_intent = end_on_intent;
  s->stop_timeout = stop_timeout;
  s->transcript = json_array_new ();
  s->intents = json_array_new ();
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

/* ---- bus messages ----
 *
 * Every session's bus messages reach the main loop through one source: a
 * sync handler on each bus queues them (in the streaming thread that
 * posted them) and wakes the loop once. A watch per bus made the main loop
 * poll one fd per call on every wake-up, which grew with the calls. */

typedef struct _BusLink
{
  gatomicrefcount ref;
  CpSession *session; /* NULL once the session let go; under hub_lock */
  gboolean done; /* EOS or ERROR handled: the rest is dropped (main loop) */
} BusLink;

typedef struct
{
  BusLink *link;
  GstMessage *msg;
} HubItem;

static GMutex hub_lock;
static GQueue hub_queue = G_QUEUE_INIT; /* of HubItem, under hub_lock */
static GSource *hub_source;

static gboolean on_bus_message (GstMessage *msg, CpSession *s);

static BusLink *
bus_link_ref (BusLink *link)
{
  g_atomic_ref_count_inc (&link->ref);
  return link;
}

static void
bus_link_unref (BusLink *link)
{
  if (g_atomic_ref_count_dec (&link->ref))
    g_free (link);
}

static GstBusSyncReply
bus_sync (GstBus *bus, GstMessage *msg, gpointer data)
{
  BusLink *link = data;
  HubItem *item;
  gboolean wake;

  g_mutex_lock (&hub_lock);
  if (link->session == NULL) {
    g_mutex_unlock (&hub_lock);
    return GST_BUS_DROP;
  }
  item = g_new (HubItem, 1);
  item->link = bus_link_ref (link);
  item->msg = gst_message_ref (msg);
  wake = g_queue_is_empty (&hub_queue);
  g_queue_push_tail (&hub_queue, item);
  g_mutex_unlock (&hub_lock);
  /* The dispatch clears the ready time before it takes the queue, so a
   * message queued after that wakes it again. */
  if (wake)
    g_source_set_ready_time (hub_source, 0);
  return GST_BUS_DROP;
}

static gboolean
hub_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  GQueue items;
  HubItem *item;

  g_source_set_ready_time (source, -1);
  g_mutex_lock (&hub_lock);
  items = hub_queue;
  g_queue_init (&hub_queue);
  g_mutex_unlock (&hub_lock);
  while ((item = g_queue_pop_head (&items)) != NULL) {
    CpSession *s;

    g_mutex_lock (&hub_lock);
    s = item->link->session;
    g_mutex_unlock (&hub_lock);
    /* The handler may free the session: the item's reference keeps the
     * link. */
    if (s != NULL && !item->link->done && !on_bus_message (item->msg, s))
      item->link->done = TRUE;
    gst_message_unref (item->msg);
    bus_link_unref (item->link);
    g_free (item);
  }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs hub_funcs = {NULL, NULL, hub_dispatch, NULL, NULL, NULL};

/* Routes @s's bus to the hub (created on the main context at first use). */
static void
attach_bus (CpSession *s, GstBus *bus)
{
  if (hub_source == NULL) {
    hub_source = g_source_new (&hub_funcs, sizeof (GSource));
    g_source_set_name (hub_source, "callpiped bus messages");
    g_source_attach (hub_source, NULL);
  }
  s->bus_link = g_new0 (BusLink, 1);
  g_atomic_ref_count_init (&s->bus_link->ref);
  s->bus_link->session = s;
  gst_bus_set_sync_handler (bus, bus_sync, bus_link_ref (s->bus_link),
      (GDestroyNotify) bus_link_unref);
}

/* No more messages for @s, also none already queued. */
static void
detach_bus (CpSession *s)
{
  g_autoptr (GstBus) bus = gst_pipeline_get_bus (GST_PIPELINE (s->pipeline));

  g_mutex_lock (&hub_lock);
  s->bus_link->session = NULL;
  g_mutex_unlock (&hub_lock);
  gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
  g_clear_pointer (&s->bus_link, bus_link_unref);
}

static void
release_pipeline (CpSession *s)
{
  if (s->bus_link != NULL)
    detach_bus (s);
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
  clear_source (&s->intent_grace_id);
  release_pipeline (s);
  g_hash_table_unref (s->values);
  json_array_unref (s->transcript);
  json_array_unref (s->intents);
  g_free (s->pending_intent);
  cp_session_record_free (s->record);
  g_free (s->stop_reason);
  g_free (s);
}

/* The session's FINAL texts of @role ("caller" or "bot"), joined by
 * spaces. */
gchar *
cp_session_get_text (CpSession *s, const gchar *role)
{
  GString *out = g_string_new (NULL);
  guint i;

  for (i = 0; i < json_array_get_length (s->transcript); i++) {
    JsonObject *e = json_array_get_object_element (s->transcript, i);

    if (strcmp (json_object_get_string_member (e, "role"), role) != 0)
      continue;
    if (out->len > 0)
      g_string_append_c (out, ' ');
    g_string_append (out, json_object_get_string_member (e, "text"));
  }
  return g_string_free (out, FALSE);
}

/* The first intent the bot signalled, or NULL. */
const gchar *
cp_session_get_intent (CpSession *s)
{
  if (json_array_get_length (s->intents) == 0)
    return NULL;
  return json_object_get_string_member (
      json_array_get_object_element (s->intents, 0), "intent");
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
    clear_source (&s->intent_grace_id);
    release_pipeline (s);
  }
  cp_log (level, s->record->id, s->record->contact_id, "session %s%s%s",
      state_names[state], reason != NULL ? ": " : "",
      reason != NULL ? reason : "");
  s->changed (s, s->user_data);
  if (s->observer != NULL && s->observer->changed != NULL)
    s->observer->changed (s, s->observer_data);
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

/* Seconds since the session started, to the millisecond. */
static gdouble
offset_now (CpSession *s)
{
  gint64 us = MAX (g_get_real_time () - s->record->started_at, 0);

  return (us / 1000) / 1000.0;
}

static void
mirror_conversation (CpSession *s)
{
  g_autoptr (JsonObject) o = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_array_member (o, "transcript",
      json_array_ref (s->transcript));
  json_object_set_array_member (o, "intents", json_array_ref (s->intents));
  json_node_set_object (node, o);
  g_free (s->record->conversation_json);
  s->record->conversation_json = json_to_string (node, FALSE);
  s->changed (s, s->user_data);
}

static gboolean
on_intent_grace (gpointer data)
{
  CpSession *s = data;
  g_autofree gchar *reason = g_steal_pointer (&s->pending_intent);

  s->intent_grace_id = 0;
  cp_session_stop (s, reason, s->stop_timeout);
  return G_SOURCE_REMOVE;
}

static void
on_transcript (CpSession *s, const GstStructure *st)
{
  const gchar *role = gst_structure_get_string (st, "role");
  const gchar *text = gst_structure_get_string (st, "text");
  JsonObject *e;

  if (g_strcmp0 (gst_structure_get_string (st, "stage"), "FINAL") != 0
      || text == NULL || *text == '\0')
    return;
  if (g_strcmp0 (role, "USER") == 0)
    role = "caller";
  else if (g_strcmp0 (role, "ASSISTANT") == 0)
    role = "bot";
  else
    return;
  e = json_object_new ();
  json_object_set_string_member (e, "role", role);
  json_object_set_string_member (e, "text", text);
  json_object_set_double_member (e, "offset", offset_now (s));
  json_array_add_object_element (s->transcript, e);
  mirror_conversation (s);
  /* The bot has answered the intent: EOS now lets it finish speaking. */
  if (s->pending_intent != NULL && !strcmp (role, "bot")) {
    clear_source (&s->intent_grace_id);
    on_intent_grace (s);
  }
}

static void
on_intent (CpSession *s, const GstStructure *st)
{
  const gchar *intent = gst_structure_get_string (st, "intent");
  const gchar *reason = gst_structure_get_string (st, "reason");
  JsonObject *e;

  if (intent == NULL)
    return;
  e = json_object_new ();
  json_object_set_string_member (e, "intent", intent);
  json_object_set_string_member (e, "reason", reason ? reason : "");
  json_object_set_double_member (e, "offset", offset_now (s));
  json_array_add_object_element (s->intents, e);
  cp_log (CP_LOG_INFO, s->record->id, s->record->contact_id,
      "bot intent %s%s%s", intent, reason && *reason ? ": " : "",
      reason ? reason : "");
  if (s->end_on_intent && s->pending_intent == NULL
      && s->state == CP_SESSION_RUNNING
      && (!strcmp (intent, "transfer") || !strcmp (intent, "end"))) {
    s->pending_intent = g_strdup (intent);
    s->intent_grace_id =
        g_timeout_add_seconds (INTENT_GRACE_S, on_intent_grace, s);
  }
  mirror_conversation (s);
}

static void
on_element_message (CpSession *s, GstMessage *msg)
{
  const GstStructure *st = gst_message_get_structure (msg);

  if (st == NULL)
    return;
  if (gst_structure_has_name (st, "novasonic-transcript"))
    on_transcript (s, st);
  else if (gst_structure_has_name (st, "novasonic-intent"))
    on_intent (s, st);
}

/* FALSE once the session has ended (EOS or ERROR): later messages are
 * dropped. */
static gboolean
on_bus_message (GstMessage *msg, CpSession *s)
{
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
    case GST_MESSAGE_ELEMENT:
      on_element_message (s, msg);
      if (s->observer != NULL && s->observer->element_message != NULL)
        s->observer->element_message (s, msg, s->observer_data);
      break;
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
  attach_bus (s, bus);
  if (s->observer != NULL && s->observer->prepared != NULL)
    s->observer->prepared (s, s->pipeline, s->observer_data);

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

void
cp_session_set_observer (CpSession *s, const CpSessionObserver *observer,
    gpointer user_data)
{
  s->observer = observer;
  s->observer_data = user_data;
}

/* callpiped — GET /sonic: browser voice sessions over WebSocket */
#include "cp-sonic.h"
#include "cp-log.h"
#include "cp-storage.h"

#include <json-glib/json-glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

/* Audio that arrives before the pipeline is built is kept, up to 1 s, and
 * pushed ahead of the next frame: by then the pipeline was set to PLAYING
 * and appsrc has started. */
#define PENDING_MAX_BYTES 32000
/* Frames up to this size reach on_message and are refused with a JSON
 * error; libsoup closes the connection on anything larger by itself. */
#define SOUP_MAX_PAYLOAD (4 * CP_SONIC_MAX_FRAME_BYTES)
/* RFC 6455 §7.4 registry: the server cannot take the session now. */
#define CLOSE_TRY_AGAIN_LATER 1013
/* What a browser over the cap is told to wait before trying again. */
#define RETRY_AFTER_S 10
/* 16 kHz S16LE mono, both ways. */
#define BYTES_PER_SECOND 32000
/* Reply audio a slow browser has not taken yet is kept up to this, with
 * what the kernel still holds for it; beyond, the oldest is dropped: the
 * browser hears a gap and then the bot as it speaks now, rather than a bot
 * that falls further behind for the rest of the session. 3 s rides out a
 * mobile network's hiccup. */
#define REPLY_BACKLOG_BYTES (3 * BYTES_PER_SECOND)
/* The socket counts as writable only while the kernel holds less than
 * this unsent (TCP_NOTSENT_LOWAT): send-buffer autotuning would otherwise
 * let a browser that does not read park megabytes (minutes of audio) in
 * the kernel before any of the backlog logic saw it. */
#define SOCKET_UNSENT_LOWAT 16384
/* How far ahead of real time a browser may send caller audio: enough for
 * the burst after a network stall, no more. Beyond it frames are dropped,
 * so a flooding client cannot feed the bot faster than it can listen nor
 * fill the pipeline's queues; appsrc's own bound (browser-bot.pipeline,
 * 10 s) is never reached. */
#define CALLER_AHEAD_US (5 * G_USEC_PER_SEC)
/* How often the open connections are checked for a browser that stopped
 * reading. */
#define WATCH_INTERVAL_S 1

struct _CpSonic
{
  const CpConfig *config;
  CpPool *pool;
  CpMetrics *metrics; /* NULL: nothing is counted */
  SoupServer *soup;
  GHashTable *conns; /* SonicConn -> itself, one reference each */
  guint watch_id; /* the stall check, while there are connections */
};

typedef struct
{
  gatomicrefcount ref;
  CpSonic *sonic; /* NULL once the server let go of the connection */
  SoupWebsocketConnection *ws;
  CpSession *session; /* NULL once it ended or was let go */
  gchar *id;
  GstElement *appsrc; /* set once the pipeline is built */
  GByteArray *pending;

  /* Towards the browser. libsoup queues whatever it is given without
   * bound and says nothing of it, so reply audio waits here and is handed
   * over only while the socket takes more. */
  GPollableOutputStream *out;
  GSocket *socket; /* NULL when libsoup does not say */
  GQueue backlog; /* GBytes of reply audio */
  gsize backlog_bytes;
  GSource *writable; /* while the backlog waits for the socket */
  gint64 stalled_since; /* monotonic µs; 0 while the socket takes data */
  guint64 reply_dropped; /* bytes */
  gboolean closing; /* once the close is decided */
  gushort close_code; /* a close waiting for the backlog, or 0 */
  gchar *close_why;

  /* From the browser: the real-time clock of the caller audio taken. */
  gint64 caller_clock; /* monotonic µs at which the audio taken ends */
  guint64 caller_dropped; /* bytes */
} SonicConn;

typedef struct
{
  SonicConn *conn;
  GBytes *audio;
} AudioOut;

static const gchar *const protocols[] = {CP_SONIC_PROTOCOL, NULL};

static SonicConn *
conn_ref (SonicConn *c)
{
  g_atomic_ref_count_inc (&c->ref);
  return c;
}

static void
conn_unref (SonicConn *c)
{
  if (!g_atomic_ref_count_dec (&c->ref))
    return;
  g_queue_clear_full (&c->backlog, (GDestroyNotify) g_bytes_unref);
  g_clear_object (&c->out);
  g_clear_object (&c->socket);
  g_clear_object (&c->ws);
  gst_clear_object (&c->appsrc);
  g_byte_array_unref (c->pending);
  g_free (c->close_why);
  g_free (c->id);
  g_free (c);
}

static void
conn_closure_unref (gpointer data, GClosure *closure)
{
  conn_unref (data);
}

/* ---- sending ---- */

static gboolean
is_open (SonicConn *c)
{
  return c->ws != NULL
      && soup_websocket_connection_get_state (c->ws)
      == SOUP_WEBSOCKET_STATE_OPEN;
}

/* Whether the socket takes more now; with TCP_NOTSENT_LOWAT set, only
 * while the kernel holds little unsent. */
static gboolean
is_writable (SonicConn *c)
{
  return c->out == NULL || g_pollable_output_stream_is_writable (c->out);
}

/* What the kernel still holds for the browser: unsent, or sent and not
 * acknowledged. */
static gsize
socket_queued (SonicConn *c)
{
#ifdef SIOCOUTQ
  int n = 0;

  if (c->socket != NULL
      && ioctl (g_socket_get_fd (c->socket), SIOCOUTQ, &n) == 0 && n > 0)
    return n;
#endif
  return 0;
}

static void
send_event (SonicConn *c, JsonBuilder *b)
{
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *text = NULL;

  json_builder_end_object (b);
  if (!is_open (c))
    return;
  root = json_builder_get_root (b);
  text = json_to_string (root, FALSE);
  soup_websocket_connection_send_text (c->ws, text);
}

/* A builder with {"type": @type, ... open for more members. */
static JsonBuilder *
begin_event (const gchar *type)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  return b;
}

static void
add_string (JsonBuilder *b, const gchar *name, const gchar *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value != NULL ? value : "");
}

static void
send_error (SonicConn *c, const gchar *code, const gchar *message)
{
  g_autoptr (JsonBuilder) b = begin_event ("error");

  add_string (b, "code", code);
  add_string (b, "message", message);
  send_event (c, b);
}

/* An answer to something the browser sent: only while the browser reads,
 * so that a client sending without reading cannot make the server queue
 * answers. */
static void
answer_error (SonicConn *c, const gchar *code, const gchar *message)
{
  if (is_writable (c))
    send_error (c, code, message);
}

static void
count_dropped (SonicConn *c, CpMetricsAudio direction, gsize bytes)
{
  if (c->sonic != NULL && c->sonic->metrics != NULL)
    cp_metrics_audio_dropped (c->sonic->metrics, direction,
        (gdouble) bytes / BYTES_PER_SECOND);
}

static void
stop_waiting (SonicConn *c)
{
  if (c->writable != NULL) {
    g_source_destroy (c->writable);
    g_clear_pointer (&c->writable, g_source_unref);
  }
}

/* Nothing more goes to the browser: what waited is counted as dropped. */
static void
drop_backlog (SonicConn *c)
{
  stop_waiting (c);
  if (c->backlog_bytes > 0) {
    c->reply_dropped += c->backlog_bytes;
    count_dropped (c, CP_METRICS_AUDIO_REPLY, c->backlog_bytes);
  }
  g_queue_clear_full (&c->backlog, (GDestroyNotify) g_bytes_unref);
  c->backlog_bytes = 0;
}

static void
close_now (SonicConn *c, gushort code, const gchar *why)
{
  c->closing = TRUE;
  drop_backlog (c);
  if (is_open (c))
    soup_websocket_connection_close (c->ws, code, why);
}

/* Reply audio still waiting goes first, as long as the browser takes it:
 * a session that ended normally keeps the end of the bot's answer. */
static void
close_with (SonicConn *c, gushort code, const gchar *why)
{
  if (c->closing)
    return;
  if (c->backlog_bytes == 0 || !is_open (c)) {
    close_now (c, code, why);
    return;
  }
  c->closing = TRUE;
  c->close_code = code;
  g_free (c->close_why);
  c->close_why = g_strdup (why);
}

static void wait_writable (SonicConn *c);

/* Hands the backlog to libsoup while the socket takes it. */
static void
flush_backlog (SonicConn *c)
{
  while (!g_queue_is_empty (&c->backlog)) {
    GBytes *audio;

    if (!is_open (c)) {
      drop_backlog (c);
      return;
    }
    if (!is_writable (c)) {
      if (c->stalled_since == 0)
        c->stalled_since = g_get_monotonic_time ();
      wait_writable (c);
      return;
    }
    audio = g_queue_pop_head (&c->backlog);
    c->backlog_bytes -= g_bytes_get_size (audio);
    soup_websocket_connection_send_message (c->ws, SOUP_WEBSOCKET_DATA_BINARY,
        audio);
    g_bytes_unref (audio);
  }
  c->stalled_since = 0;
  stop_waiting (c);
  if (c->close_code != 0) {
    g_autofree gchar *why = g_steal_pointer (&c->close_why);
    gushort code = c->close_code;

    c->close_code = 0;
    close_now (c, code, why);
  }
}

static gboolean
on_writable (GObject *stream, gpointer data)
{
  SonicConn *c = data;

  g_clear_pointer (&c->writable, g_source_unref);
  flush_backlog (c);
  return G_SOURCE_REMOVE;
}

static void
wait_writable (SonicConn *c)
{
  if (c->writable != NULL || c->out == NULL)
    return;
  c->writable = g_pollable_output_stream_create_source (c->out, NULL);
  g_source_set_callback (c->writable, G_SOURCE_FUNC (on_writable), conn_ref (c),
      (GDestroyNotify) conn_unref);
  g_source_attach (c->writable, NULL);
}

/* Keeps what is queued for the browser within REPLY_BACKLOG_BYTES,
 * dropping the oldest reply audio. */
static void
queue_reply (SonicConn *c, GBytes *audio)
{
  gsize queued, dropped = 0;

  g_queue_push_tail (&c->backlog, g_bytes_ref (audio));
  c->backlog_bytes += g_bytes_get_size (audio);
  queued = c->backlog_bytes + socket_queued (c);
  while (queued > REPLY_BACKLOG_BYTES && !g_queue_is_empty (&c->backlog)) {
    GBytes *old = g_queue_pop_head (&c->backlog);
    gsize len = g_bytes_get_size (old);

    c->backlog_bytes -= len;
    queued -= len;
    dropped += len;
    g_bytes_unref (old);
  }
  if (dropped > 0) {
    if (c->reply_dropped == 0)
      cp_log (CP_LOG_INFO, c->id, NULL,
          "the browser is not keeping up: reply audio beyond %u ms is "
          "dropped",
          REPLY_BACKLOG_BYTES * 1000 / BYTES_PER_SECOND);
    c->reply_dropped += dropped;
    count_dropped (c, CP_METRICS_AUDIO_REPLY, dropped);
  }
  flush_backlog (c);
}

/* ---- the session ---- */

static void
push_audio (SonicConn *c, const guint8 *data, gsize len)
{
  GstBuffer *buf = gst_buffer_new_memdup (data, len);
  GstFlowReturn ret = GST_FLOW_OK;

  /* appsrc's push-buffer takes its own reference. */
  g_signal_emit_by_name (c->appsrc, "push-buffer", buf, &ret);
  gst_buffer_unref (buf);
  if (ret != GST_FLOW_OK && ret != GST_FLOW_FLUSHING)
    cp_log (CP_LOG_DEBUG, c->id, NULL, "caller audio refused: %s",
        gst_flow_get_name (ret));
}

static void
release_session (SonicConn *c, const gchar *reason)
{
  if (c->session == NULL)
    return;
  cp_session_set_observer (c->session, NULL, NULL);
  cp_session_stop (c->session, reason, c->sonic->config->drain_timeout);
  c->session = NULL;
}

static gboolean
send_audio (gpointer data)
{
  AudioOut *a = data;

  if (is_open (a->conn) && !a->conn->closing)
    queue_reply (a->conn, a->audio);
  return G_SOURCE_REMOVE;
}

static void
audio_out_free (gpointer data)
{
  AudioOut *a = data;

  g_bytes_unref (a->audio);
  conn_unref (a->conn);
  g_free (a);
}

/* Streaming thread: the WebSocket belongs to the main loop. */
static GstFlowReturn
on_new_sample (GstElement *sink, gpointer data)
{
  SonicConn *c = data;
  GstSample *sample = NULL;
  GstBuffer *buf;
  GstMapInfo map;
  AudioOut *a;

  g_signal_emit_by_name (sink, "pull-sample", &sample);
  if (sample == NULL)
    return GST_FLOW_FLUSHING;
  buf = gst_sample_get_buffer (sample);
  if (buf == NULL || !gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_sample_unref (sample);
    return GST_FLOW_OK;
  }
  a = g_new0 (AudioOut, 1);
  a->conn = conn_ref (c);
  a->audio = g_bytes_new (map.data, map.size);
  gst_buffer_unmap (buf, &map);
  gst_sample_unref (sample);
  g_main_context_invoke_full (NULL, G_PRIORITY_DEFAULT, send_audio, a,
      audio_out_free);
  return GST_FLOW_OK;
}

static void
on_prepared (CpSession *s, GstElement *pipeline, gpointer data)
{
  SonicConn *c = data;
  g_autoptr (GstElement) sink = NULL;

  c->appsrc = gst_bin_get_by_name (GST_BIN (pipeline), "caller");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "reply");
  if (c->appsrc == NULL || sink == NULL) {
    send_error (c, "pipeline",
        CP_SONIC_PIPELINE ".pipeline needs an appsrc "
                          "named caller and an appsink named reply");
    close_now (c, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "bad pipeline");
    return;
  }
  g_object_set (sink, "emit-signals", TRUE, NULL);
  g_signal_connect_data (sink, "new-sample", G_CALLBACK (on_new_sample),
      conn_ref (c), conn_closure_unref, 0);
}

static void
forward_tool_use (SonicConn *c, const GstStructure *st)
{
  g_autoptr (JsonBuilder) b = begin_event ("toolUse");
  const gchar *input = gst_structure_get_string (st, "input");
  JsonNode *parsed = input != NULL ? json_from_string (input, NULL) : NULL;

  add_string (b, "toolName", gst_structure_get_string (st, "tool-name"));
  add_string (b, "toolUseId", gst_structure_get_string (st, "tool-use-id"));
  json_builder_set_member_name (b, "input");
  if (parsed != NULL)
    json_builder_add_value (b, parsed);
  else
    json_builder_add_string_value (b, input != NULL ? input : "");
  send_event (c, b);
}

static void
forward_intent (SonicConn *c, const GstStructure *st)
{
  const gchar *intent = gst_structure_get_string (st, "intent");
  g_autoptr (JsonBuilder) b = begin_event (
      g_strcmp0 (intent, "transfer") == 0 ? "transferToAgent" : "endCall");

  add_string (b, "reason", gst_structure_get_string (st, "reason"));
  send_event (c, b);
}

static void
forward_usage (SonicConn *c, const GstStructure *st)
{
  static const gchar *const fields[][2] = {{"input-tokens", "inputTokens"},
      {"output-tokens", "outputTokens"}, {"total-tokens", "totalTokens"}};
  g_autoptr (JsonBuilder) b = begin_event ("usage");
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (fields); i++) {
    gint64 v = 0;

    gst_structure_get_int64 (st, fields[i][0], &v);
    json_builder_set_member_name (b, fields[i][1]);
    json_builder_add_int_value (b, v);
  }
  send_event (c, b);
}

/* novasonic-session's started/renewed/ended become streamStarted... so
 * they do not read as the session's own states. */
static void
forward_stream (SonicConn *c, const GstStructure *st)
{
  const gchar *event = gst_structure_get_string (st, "event");
  g_autoptr (JsonBuilder) b = begin_event ("session");
  g_autofree gchar *name = NULL;

  if (event == NULL || *event == '\0')
    return;
  name = g_strdup_printf ("stream%c%s", g_ascii_toupper (event[0]), event + 1);
  add_string (b, "event", name);
  send_event (c, b);
}

static void
on_element_message (CpSession *s, GstMessage *msg, gpointer data)
{
  SonicConn *c = data;
  const GstStructure *st = gst_message_get_structure (msg);

  if (gst_structure_has_name (st, "novasonic-transcript")) {
    g_autoptr (JsonBuilder) b = begin_event ("transcript");

    add_string (b, "role", gst_structure_get_string (st, "role"));
    add_string (b, "stage", gst_structure_get_string (st, "stage"));
    add_string (b, "text", gst_structure_get_string (st, "text"));
    send_event (c, b);
  } else if (gst_structure_has_name (st, "novasonic-tool-use")) {
    forward_tool_use (c, st);
  } else if (gst_structure_has_name (st, "novasonic-intent")) {
    forward_intent (c, st);
  } else if (gst_structure_has_name (st, "novasonic-barge-in")) {
    g_autoptr (JsonBuilder) b = begin_event ("bargeIn");
    guint64 dropped = 0;

    gst_structure_get_uint64 (st, "dropped", &dropped);
    json_builder_set_member_name (b, "droppedMs");
    json_builder_add_int_value (b, (gint64) (dropped / GST_MSECOND));
    send_event (c, b);
  } else if (gst_structure_has_name (st, "novasonic-session")) {
    forward_stream (c, st);
  } else if (gst_structure_has_name (st, "novasonic-usage")) {
    forward_usage (c, st);
  }
}

static void
send_state (SonicConn *c, CpSession *s)
{
  const CpSessionRecord *r = cp_session_get_record (s);
  g_autoptr (JsonBuilder) b = begin_event ("session");

  add_string (b, "event", r->state);
  add_string (b, "sessionId", r->id);
  if (r->reason != NULL && !cp_session_is_live (s))
    add_string (b, "reason", r->reason);
  send_event (c, b);
}

static void
on_changed (CpSession *s, gpointer data)
{
  SonicConn *c = data;
  CpSessionState state = cp_session_get_state (s);

  send_state (c, s);
  if (cp_session_is_live (s))
    return;
  /* The pool frees the session on its next idle. */
  cp_session_set_observer (s, NULL, NULL);
  c->session = NULL;
  gst_clear_object (&c->appsrc);
  if (cp_pool_is_draining (c->sonic->pool))
    close_with (c, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
  else if (state == CP_SESSION_FAILED)
    close_with (c, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "session failed");
  else
    close_with (c, SOUP_WEBSOCKET_CLOSE_NORMAL, "session ended");
}

static const CpSessionObserver observer = {
    on_prepared,
    on_element_message,
    on_changed,
};

/* ---- the WebSocket ---- */

static void
refuse_frame (SonicConn *c, gushort code, const gchar *error_code,
    const gchar *message)
{
  send_error (c, error_code, message);
  release_session (c, message);
  close_now (c, code, error_code);
}

/* Caller audio is taken at real time plus CALLER_AHEAD_US at most. */
static gboolean
take_caller_audio (SonicConn *c, gsize len)
{
  gint64 now = g_get_monotonic_time ();
  gint64 start = MAX (c->caller_clock, now);
  gint64 end = start + (gint64) len * G_USEC_PER_SEC / BYTES_PER_SECOND;

  if (end - now > CALLER_AHEAD_US) {
    if (c->caller_dropped == 0) {
      g_autofree gchar *m = g_strdup_printf ("caller audio is 16 kHz S16LE "
                                             "mono sent in real time; what "
                                             "runs more than %u s ahead is "
                                             "dropped",
          (guint) (CALLER_AHEAD_US / G_USEC_PER_SEC));

      cp_log (CP_LOG_WARNING, c->id, NULL, "the browser sends too fast: %s", m);
      answer_error (c, "audio_too_fast", m);
    }
    c->caller_dropped += len;
    count_dropped (c, CP_METRICS_AUDIO_CALLER, len);
    return FALSE;
  }
  c->caller_clock = end;
  return TRUE;
}

static void
on_audio_frame (SonicConn *c, GBytes *message)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (message, &len);

  if (len > CP_SONIC_MAX_FRAME_BYTES) {
    g_autofree gchar *m = g_strdup_printf ("an audio frame holds at most "
                                           "%u bytes (1 s of 16 kHz S16LE); "
                                           "this one had %" G_GSIZE_FORMAT,
        CP_SONIC_MAX_FRAME_BYTES, len);

    refuse_frame (c, SOUP_WEBSOCKET_CLOSE_TOO_BIG, "frame_too_large", m);
    return;
  }
  if (len % 2 != 0) {
    refuse_frame (c, SOUP_WEBSOCKET_CLOSE_BAD_DATA, "odd_frame",
        "audio frames are 16-bit samples: the length must be even");
    return;
  }
  if (c->session == NULL || len == 0 || !take_caller_audio (c, len))
    return;
  if (c->appsrc != NULL && c->pending->len > 0) {
    push_audio (c, c->pending->data, c->pending->len);
    g_byte_array_set_size (c->pending, 0);
  }
  if (c->appsrc != NULL)
    push_audio (c, data, len);
  else if (c->pending->len + len <= PENDING_MAX_BYTES)
    g_byte_array_append (c->pending, data, len);
}

/* The one command: {"type":"end"} ends the conversation; the server
 * closes the socket (1000) once the session has ended. */
static void
on_command (SonicConn *c, GBytes *message)
{
  gsize len = 0;
  const gchar *text = g_bytes_get_data (message, &len);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *o;

  if (text == NULL || !json_parser_load_from_data (parser, text, len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (root = json_parser_get_root (parser))
      || !json_object_has_member (o = json_node_get_object (root), "type")
      || g_strcmp0 (json_object_get_string_member (o, "type"), "end") != 0) {
    answer_error (c, "unknown_command",
        "text frames from the client must be {\"type\":\"end\"}");
    return;
  }
  if (c->session != NULL)
    cp_session_stop (c->session, "client ended the session",
        c->sonic->config->drain_timeout);
}

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message,
    gpointer data)
{
  SonicConn *c = data;

  if (type == SOUP_WEBSOCKET_DATA_BINARY)
    on_audio_frame (c, message);
  else
    on_command (c, message);
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  SonicConn *c = data;

  c->closing = TRUE;
  drop_backlog (c);
  cp_log (CP_LOG_INFO, c->id, NULL, "browser socket closed (%u)",
      soup_websocket_connection_get_close_code (ws));
  if (c->reply_dropped + c->caller_dropped > 0)
    cp_log (CP_LOG_INFO, c->id, NULL,
        "dropped %.1f s of reply audio the browser did not read in time and "
        "%.1f s of caller audio sent ahead of real time",
        (gdouble) c->reply_dropped / BYTES_PER_SECOND,
        (gdouble) c->caller_dropped / BYTES_PER_SECOND);
  /* The client went away: EOS lets the pipeline finish and the session
   * end on its own. */
  release_session (c, "client disconnected");
  g_signal_handlers_disconnect_by_data (ws, c);
  if (c->sonic != NULL)
    g_hash_table_remove (c->sonic->conns, c);
}

static void
on_error (SoupWebsocketConnection *ws, GError *error, gpointer data)
{
  SonicConn *c = data;

  cp_log (CP_LOG_WARNING, c->id, NULL, "browser socket: %s", error->message);
}

/* ---- browsers that stopped reading ---- */

static void
give_up (SonicConn *c, guint seconds)
{
  g_autofree gchar *why =
      g_strdup_printf ("the browser stopped reading: nothing could be sent "
                       "to it for %u s",
          seconds);

  cp_log (CP_LOG_WARNING, c->id, NULL, "%s; ending the session", why);
  if (c->sonic->metrics != NULL)
    cp_metrics_browser_stalled (c->sonic->metrics);
  release_session (c, why);
  /* libsoup gives the close handshake 5 s, then closes the socket. */
  close_now (c, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "not reading");
}

/* A socket that takes nothing for [server] browser-stall-timeout seconds
 * ends its session, whether reply audio or only events wait. */
static gboolean
watch_stalls (gpointer data)
{
  CpSonic *sonic = data;
  g_autoptr (GPtrArray) conns =
      g_ptr_array_new_with_free_func ((GDestroyNotify) conn_unref);
  gint64 now = g_get_monotonic_time ();
  guint limit = sonic->config->browser_stall_timeout;
  GHashTableIter it;
  gpointer key;
  guint i;

  /* Closing and ending sessions may change the table: walk a copy. */
  g_hash_table_iter_init (&it, sonic->conns);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (conns, conn_ref (key));
  for (i = 0; i < conns->len; i++) {
    SonicConn *c = g_ptr_array_index (conns, i);

    if (c->sonic == NULL || !is_open (c))
      continue;
    if (is_writable (c))
      flush_backlog (c);
    else if (c->stalled_since == 0)
      c->stalled_since = now;
    else if (now - c->stalled_since >= (gint64) limit * G_USEC_PER_SEC)
      give_up (c, limit);
  }
  return G_SOURCE_CONTINUE;
}

static void
watch_start (CpSonic *sonic)
{
  if (sonic->watch_id == 0)
    sonic->watch_id =
        g_timeout_add_seconds (WATCH_INTERVAL_S, watch_stalls, sonic);
}

static void
watch_stop (CpSonic *sonic)
{
  if (sonic->watch_id != 0) {
    g_source_remove (sonic->watch_id);
    sonic->watch_id = 0;
  }
}

static void
forget_conn (gpointer data)
{
  SonicConn *c = data;

  if (c->sonic != NULL && g_hash_table_size (c->sonic->conns) == 0)
    watch_stop (c->sonic);
  conn_unref (c);
}

/* ---- the WebSocket's start ---- */

/* Where the reply audio goes out, to see whether it takes more. */
static void
attach_socket (SonicConn *c, SoupServerMessage *msg)
{
  GOutputStream *out = g_io_stream_get_output_stream (
      soup_websocket_connection_get_io_stream (c->ws));
  GSocket *socket = soup_server_message_get_socket (msg);

  if (G_IS_POLLABLE_OUTPUT_STREAM (out)
      && g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (out)))
    c->out = G_POLLABLE_OUTPUT_STREAM (g_object_ref (out));
  if (socket == NULL)
    return;
  c->socket = g_object_ref (socket);
#ifdef TCP_NOTSENT_LOWAT
  {
    g_autoptr (GError) error = NULL;

    if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT,
            SOCKET_UNSENT_LOWAT, &error))
      cp_log (CP_LOG_DEBUG, NULL, NULL, "TCP_NOTSENT_LOWAT: %s",
          error->message);
  }
#endif
}

static void
on_websocket (SoupServer *soup, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *ws, gpointer data)
{
  CpSonic *sonic = data;
  g_autoptr (GError) error = NULL;
  SonicConn *c = g_new0 (SonicConn, 1);
  g_autoptr (JsonBuilder) b = NULL;

  g_atomic_ref_count_init (&c->ref);
  c->sonic = sonic;
  c->ws = g_object_ref (ws);
  c->pending = g_byte_array_new ();
  g_queue_init (&c->backlog);
  attach_socket (c, msg);
  g_object_set (ws, "max-incoming-payload-size", (guint64) SOUP_MAX_PAYLOAD,
      NULL);
  g_signal_connect (ws, "message", G_CALLBACK (on_message), c);
  g_signal_connect (ws, "closed", G_CALLBACK (on_closed), c);
  g_signal_connect (ws, "error", G_CALLBACK (on_error), c);
  g_hash_table_add (sonic->conns, c);
  watch_start (sonic);

  /* Upgrades that passed the early check together may overshoot. */
  if (g_hash_table_size (sonic->conns) > sonic->config->max_browser_sessions) {
    if (sonic->metrics != NULL)
      cp_metrics_session_refused (sonic->metrics, "browser", "capacity");
    send_error (c, "at_capacity",
        "callpiped runs as many browser sessions as it may "
        "([server] max-browser-sessions); try again later");
    close_now (c, CLOSE_TRY_AGAIN_LATER, "at capacity");
    return;
  }

  c->session =
      cp_pool_start_session (sonic->pool, "browser", CP_SONIC_PIPELINE, &error);
  if (c->session == NULL) {
    gboolean later =
        g_error_matches (error, CP_POOL_ERROR, CP_POOL_ERROR_DRAINING)
        || g_error_matches (error, CP_POOL_ERROR, CP_POOL_ERROR_UNAVAILABLE);

    cp_log (CP_LOG_WARNING, NULL, NULL, "browser session refused: %s",
        error->message);
    send_error (c, later ? "unavailable" : "internal", error->message);
    close_now (c,
        later ? CLOSE_TRY_AGAIN_LATER : SOUP_WEBSOCKET_CLOSE_SERVER_ERROR,
        "no session");
    return;
  }
  c->id = g_strdup (cp_session_get_record (c->session)->id);
  cp_session_set_observer (c->session, &observer, c);
  b = begin_event ("session");
  add_string (b, "event", "created");
  add_string (b, "sessionId", c->id);
  json_builder_set_member_name (b, "sampleRate");
  json_builder_add_int_value (b, 16000);
  json_builder_set_member_name (b, "maxFrameBytes");
  json_builder_add_int_value (b, CP_SONIC_MAX_FRAME_BYTES);
  send_event (c, b);
}

/* ---- before the upgrade: auth, draining ---- */

static gboolean
protocol_has_token (const gchar *header, const gchar *token)
{
  g_auto (GStrv) items = NULL;
  gboolean found = FALSE;
  guint i;

  if (header == NULL)
    return FALSE;
  items = g_strsplit (header, ",", -1);
  for (i = 0; items[i] != NULL; i++) {
    const gchar *item = g_strstrip (items[i]);

    if (g_str_has_prefix (item, CP_SONIC_BEARER_PREFIX)
        && cp_constant_time_equal (item + strlen (CP_SONIC_BEARER_PREFIX),
            token))
      found = TRUE;
  }
  return found;
}

static gboolean
authorized (CpSonic *sonic, SoupServerMessage *msg, GHashTable *query)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const gchar *token = sonic->config->token;
  const gchar *q = query != NULL ? g_hash_table_lookup (query, "token") : NULL;
  const gchar *auth = soup_message_headers_get_one (h, "Authorization");

  if (q != NULL)
    return cp_constant_time_equal (q, token);
  if (auth != NULL && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
    return cp_constant_time_equal (auth + 7, token);
  return protocol_has_token (soup_message_headers_get_one (h,
                                 "Sec-WebSocket-Protocol"),
      token);
}

static void
refuse (SoupServerMessage *msg, guint status, const gchar *code,
    const gchar *message)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  gchar *body;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  add_string (b, "code", code);
  add_string (b, "message", message);
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  body = json_to_string (root, FALSE);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
      body, strlen (body));
}

/* Before the upgrade, so the browser gets a status and a reason. */
static void
refuse_at_capacity (CpSonic *sonic, SoupServerMessage *msg)
{
  g_autofree gchar *m = g_strdup_printf ("callpiped runs its maximum of %u "
                                         "browser sessions ([server] "
                                         "max-browser-sessions); try again "
                                         "later",
      sonic->config->max_browser_sessions);
  g_autofree gchar *after = g_strdup_printf ("%u", RETRY_AFTER_S);

  cp_log (CP_LOG_WARNING, NULL, NULL, "browser session refused: %s", m);
  if (sonic->metrics != NULL)
    cp_metrics_session_refused (sonic->metrics, "browser", "capacity");
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Retry-After", after);
  refuse (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "at_capacity", m);
}

static void
early_handler (SoupServer *soup, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  CpSonic *sonic = data;

  if (strcmp (path, CP_SONIC_PATH) != 0)
    refuse (msg, SOUP_STATUS_NOT_FOUND, "not_found", "no such route");
  else if (sonic->config->token != NULL && !authorized (sonic, msg, query))
    refuse (msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized",
        "give the API token as ?token=<token> or as the WebSocket "
        "subprotocol " CP_SONIC_BEARER_PREFIX
        "<token> next to " CP_SONIC_PROTOCOL);
  else if (cp_pool_is_draining (sonic->pool))
    refuse (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "draining",
        "callpiped is shutting down and takes no new sessions");
  else if (g_hash_table_size (sonic->conns)
      >= sonic->config->max_browser_sessions)
    refuse_at_capacity (sonic, msg);
}

void
cp_sonic_set_metrics (CpSonic *sonic, CpMetrics *metrics)
{
  sonic->metrics = metrics;
}

CpSonic *
cp_sonic_new (const CpConfig *config, CpPool *pool, SoupServer *soup)
{
  CpSonic *sonic = g_new0 (CpSonic, 1);

  sonic->config = config;
  sonic->pool = pool;
  sonic->soup = soup;
  sonic->conns = g_hash_table_new_full (NULL, NULL, forget_conn, NULL);
  soup_server_add_early_handler (soup, CP_SONIC_PATH, early_handler, sonic,
      NULL);
  soup_server_add_websocket_handler (soup, CP_SONIC_PATH, NULL,
      (gchar **) protocols, on_websocket, sonic, NULL);
  return sonic;
}

/* The server goes first at shutdown: sessions stay with the pool, which
 * has drained them; sockets still open are told the server is going. */
void
cp_sonic_free (CpSonic *sonic)
{
  GHashTableIter it;
  gpointer key;

  if (sonic == NULL)
    return;
  watch_stop (sonic);
  soup_server_remove_handler (sonic->soup, CP_SONIC_PATH);
  g_hash_table_iter_init (&it, sonic->conns);
  while (g_hash_table_iter_next (&it, &key, NULL)) {
    SonicConn *c = key;

    release_session (c, "server shutting down");
    g_signal_handlers_disconnect_by_data (c->ws, c);
    close_now (c, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
    c->sonic = NULL;
  }
  g_hash_table_unref (sonic->conns);
  g_free (sonic);
}

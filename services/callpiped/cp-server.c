/* callpiped — the HTTP API (libsoup 3) */
#include "cp-server.h"
#include "cp-console.h"
#include "cp-log.h"
#include "cp-sonic.h"
#include "cp-turn.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#define CALLS_LIST_DEFAULT 100
#define CALLS_LIST_MAX 1000

struct _CpServer
{
  const CpConfig *config;
  CpPool *pool;
  CpStore *store;
  CpStorage *storage;
  CpMetrics *metrics;
  CpTurns *turns;
  SoupServer *soup;
  CpSonic *sonic; /* GET /sonic */
};

static void
add_cors (CpServer *self, SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  if (self->config->cors_origin == NULL)
    return;
  soup_message_headers_replace (h, "Access-Control-Allow-Origin",
      self->config->cors_origin);
  soup_message_headers_replace (h, "Vary", "Origin");
}

static void
respond_node (CpServer *self, SoupServerMessage *msg, guint status,
    JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  gsize len = 0;
  gchar *body;

  json_generator_set_root (gen, node);
  body = json_generator_to_data (gen, &len);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
      body, len);
  add_cors (self, msg);
}

static void
respond_error (CpServer *self, SoupServerMessage *msg, guint status,
    const gchar *code, const gchar *message)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "code");
  json_builder_add_string_value (b, code);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  respond_node (self, msg, status, root);
}

static void
method_not_allowed (CpServer *self, SoupServerMessage *msg, const gchar *allow)
{
  g_autofree gchar *m = g_strdup_printf ("%s is not allowed here (allowed: "
                                         "%s)",
      soup_server_message_get_method (msg), allow);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Allow", allow);
  respond_error (self, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
      "method_not_allowed", m);
}

static gboolean
is_method (SoupServerMessage *msg, const gchar *method)
{
  return !strcmp (soup_server_message_get_method (msg), method);
}

static gboolean
is_read (SoupServerMessage *msg)
{
  return is_method (msg, "GET") || is_method (msg, "HEAD");
}

/* ---- early checks: before the body is read ---- */

static gboolean
authorized (CpServer *self, SoupServerMessage *msg)
{
  const gchar *h =
      soup_message_headers_get_one (soup_server_message_get_request_headers (
                                        msg),
          "Authorization");

  if (h == NULL || g_ascii_strncasecmp (h, "Bearer ", 7) != 0)
    return FALSE;
  return cp_constant_time_equal (h + 7, self->config->token);
}

static void
early_handler (SoupServer *soup, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  CpServer *self = data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  gboolean open_route = !strcmp (path, "/health")
      || g_str_has_prefix (path, "/media/") || cp_console_owns (path)
      || (is_method (msg, "OPTIONS") && self->config->cors_origin != NULL);

  if (self->config->token != NULL && !open_route && !authorized (self, msg)) {
    soup_message_headers_replace (soup_server_message_get_response_headers (
                                      msg),
        "WWW-Authenticate", "Bearer");
    respond_error (self, msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized",
        "a valid 'Authorization: Bearer <token>' header is required");
    return;
  }
  switch (soup_message_headers_get_encoding (req)) {
    case SOUP_ENCODING_NONE:
      break;
    case SOUP_ENCODING_CONTENT_LENGTH:
      if ((guint64) soup_message_headers_get_content_length (req)
          > self->config->max_body_bytes) {
        g_autofree gchar *m =
            g_strdup_printf ("the body is larger than the "
                             "%" G_GUINT64_FORMAT " bytes allowed",
                self->config->max_body_bytes);

        respond_error (self, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
            "payload_too_large", m);
      }
      break;
    default:
      /* Without a length the limit could only be enforced after buffering. */
      respond_error (self, msg, SOUP_STATUS_LENGTH_REQUIRED, "length_required",
          "send the body with a Content-Length");
      break;
  }
}

/* ---- session JSON ---- */

static gchar *
iso_time (gint64 us)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);

  return g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ");
}

static gchar *
base_url (SoupServerMessage *msg)
{
  GUri *uri = soup_server_message_get_uri (msg);

  return g_uri_join (G_URI_FLAGS_ENCODED, g_uri_get_scheme (uri), NULL,
      g_uri_get_host (uri), g_uri_get_port (uri), "", NULL, NULL);
}

/* A link only once the WAV is whole: on S3 once the session ended (the
 * upload completes at EOS); in a directory once the session is over and
 * the header agrees with the file (after EOS, or after the repair at
 * restart of a call that was interrupted). */
static gchar *
recording_url (CpServer *self, SoupServerMessage *msg, const CpSessionRecord *r)
{
  g_autofree gchar *base = NULL;
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;
  gchar *url;

  if (r->recording_path == NULL)
    return NULL;
  if (cp_storage_is_s3 (self->storage)) {
    if (g_strcmp0 (r->state, "ended") != 0)
      return NULL;
  } else if ((g_strcmp0 (r->state, "ended") != 0
                 && g_strcmp0 (r->state, "failed") != 0)
      || !cp_storage_check_wav (r->recording_path, &wav, NULL)
      || wav.state != CP_STORAGE_WAV_COMPLETE || wav.frames == 0) {
    return NULL;
  }
  base = base_url (msg);
  url = cp_storage_link (self->storage, r->recording_path, base,
      self->config->link_ttl, &error);
  if (url == NULL)
    cp_log (CP_LOG_WARNING, r->id, r->contact_id, "%s", error->message);
  return url;
}

static gchar *
transcript_url (CpServer *self, SoupServerMessage *msg,
    const CpSessionRecord *r)
{
  g_autofree gchar *base = NULL;
  g_autoptr (GError) error = NULL;
  gchar *url;

  if (r->transcript_path == NULL)
    return NULL;
  if (!cp_storage_is_s3 (self->storage)
      && !g_file_test (r->transcript_path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  base = base_url (msg);
  url = cp_storage_link (self->storage, r->transcript_path, base,
      self->config->link_ttl, &error);
  if (url == NULL)
    cp_log (CP_LOG_WARNING, r->id, r->contact_id, "%s", error->message);
  return url;
}

/* transcript and intents from the record's conversation, [] before the
 * bot said anything. */
static void
add_conversation (JsonBuilder *b, const CpSessionRecord *r)
{
  static const gchar *const members[] = {"transcript", "intents"};
  g_autoptr (JsonNode) conv = NULL;
  JsonObject *o = NULL;
  gsize i;

  if (r->conversation_json != NULL)
    conv = json_from_string (r->conversation_json, NULL);
  if (conv != NULL && JSON_NODE_HOLDS_OBJECT (conv))
    o = json_node_get_object (conv);
  for (i = 0; i < G_N_ELEMENTS (members); i++) {
    json_builder_set_member_name (b, members[i]);
    if (o != NULL && json_object_has_member (o, members[i])) {
      json_builder_add_value (b,
          json_node_copy (json_object_get_member (o, members[i])));
    } else {
      json_builder_begin_array (b);
      json_builder_end_array (b);
    }
  }
}

static void
add_optional_string (JsonBuilder *b, const gchar *name, const gchar *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
build_session (CpServer *self, SoupServerMessage *msg, JsonBuilder *b,
    const CpSessionRecord *r)
{
  g_autofree gchar *started = iso_time (r->started_at);
  g_autofree gchar *ended = r->ended_at ? iso_time (r->ended_at) : NULL;
  g_autofree gchar *rec_url = recording_url (self, msg, r);
  g_autofree gchar *tr_url = transcript_url (self, msg, r);
  gint64 end = r->ended_at ? r->ended_at : g_get_real_time ();
  g_autoptr (JsonNode) attrs = NULL;

  if (r->attributes_json != NULL)
    attrs = json_from_string (r->attributes_json, NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, r->kind);
  add_optional_string (b, "contactId", r->contact_id);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, r->state);
  add_optional_string (b, "reason", r->reason);
  add_optional_string (b, "pipeline", r->pipeline);
  json_builder_set_member_name (b, "startedAt");
  json_builder_add_string_value (b, started);
  add_optional_string (b, "endedAt", ended);
  json_builder_set_member_name (b, "duration");
  /* Milliseconds are as precise as the clocks behind it. */
  json_builder_add_double_value (b,
      (MAX (end - r->started_at, 0) / 1000) / 1000.0);
  json_builder_set_member_name (b, "attributes");
  if (attrs != NULL)
    json_builder_add_value (b, g_steal_pointer (&attrs));
  else
    json_builder_add_null_value (b);
  add_conversation (b, r);
  add_optional_string (b, "recordingUrl", rec_url);
  add_optional_string (b, "transcriptUrl", tr_url);
  json_builder_end_object (b);
}

/* ---- routes ---- */

static void
handle_health (CpServer *self, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  gboolean draining = cp_pool_is_draining (self->pool);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, draining ? "draining" : "ok");
  json_builder_set_member_name (b, "activeSessions");
  json_builder_add_int_value (b, cp_pool_count_live (self->pool));
  json_builder_set_member_name (b, "draining");
  json_builder_add_boolean_value (b, draining);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  respond_node (self, msg, SOUP_STATUS_OK, root);
}

static void
handle_metrics (CpServer *self, SoupServerMessage *msg)
{
  gchar *text = cp_metrics_render (self->metrics);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg,
      "text/plain; version=0.0.4; charset=utf-8", SOUP_MEMORY_TAKE, text,
      strlen (text));
  add_cors (self, msg);
}

static const gchar *
code_for_event_error (const GError *error)
{
  switch (error->code) {
    case CP_EVENT_ERROR_MALFORMED:
      return "malformed_event";
    case CP_EVENT_ERROR_MISSING_FIELD:
      return "missing_field";
    default:
      break;
  }
  return "invalid_field";
}

static void
handle_start_call (CpServer *self, SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (CpCallRequest) req = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) root = NULL;
  gsize len = 0;
  const gchar *data = g_bytes_get_data (bytes, &len);
  CpSession *s;

  req = cp_call_request_parse (data != NULL ? data : "", len, &error);
  if (req == NULL) {
    respond_error (self, msg, SOUP_STATUS_BAD_REQUEST,
        code_for_event_error (error), error->message);
    return;
  }
  s = cp_pool_start_call (self->pool, req, &error);
  if (s == NULL) {
    switch (error->code) {
      case CP_POOL_ERROR_DRAINING:
        respond_error (self, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "draining",
            error->message);
        break;
      case CP_POOL_ERROR_UNAVAILABLE:
        respond_error (self, msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
            "pipeline_unavailable", error->message);
        break;
      default:
        respond_error (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal",
            error->message);
        break;
    }
    return;
  }

  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, cp_session_get_record (s)->id);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, "started");
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  respond_node (self, msg, SOUP_STATUS_ACCEPTED, root);
}

static void
respond_turn (SoupServerMessage *msg, guint status, JsonNode *body,
    gpointer data)
{
  respond_node (data, msg, status, body);
}

static void
turn_error (CpServer *self, SoupServerMessage *msg, const GError *error)
{
  static const gchar *const turn_codes[] = {
      [CP_TURN_ERROR_MALFORMED] = "malformed_body",
      [CP_TURN_ERROR_MISSING_FIELD] = "missing_field",
      [CP_TURN_ERROR_INVALID_FIELD] = "invalid_field",
      [CP_TURN_ERROR_INVALID_AUDIO] = "invalid_audio",
      [CP_TURN_ERROR_AUDIO_TOO_LONG] = "audio_too_long",
      [CP_TURN_ERROR_NOT_FOUND] = "audio_not_found",
      [CP_TURN_ERROR_BUSY] = "turn_in_progress",
  };

  if (error->domain == CP_TURN_ERROR) {
    respond_error (self, msg,
        error->code == CP_TURN_ERROR_BUSY ? SOUP_STATUS_CONFLICT
                                          : SOUP_STATUS_BAD_REQUEST,
        turn_codes[error->code], error->message);
  } else if (error->domain == CP_POOL_ERROR
      && error->code != CP_POOL_ERROR_INTERNAL) {
    respond_error (self, msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        error->code == CP_POOL_ERROR_DRAINING ? "draining"
                                              : "pipeline_unavailable",
        error->message);
  } else {
    respond_error (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal",
        error->message);
  }
}

/* Answered later, when the turn's pipeline is done: see cp-turn.h. */
static void
handle_turn (CpServer *self, SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *base = base_url (msg);
  gsize len = 0;
  const gchar *data = g_bytes_get_data (bytes, &len);

  if (!cp_turns_start (self->turns, msg, data != NULL ? data : "", len, base,
          &error))
    turn_error (self, msg, error);
}

static void
handle_list_calls (CpServer *self, SoupServerMessage *msg, GHashTable *query)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  const gchar *limit_s = query ? g_hash_table_lookup (query, "limit") : NULL;
  guint64 limit = CALLS_LIST_DEFAULT;
  guint i;

  if (limit_s != NULL
      && !g_ascii_string_to_unsigned (limit_s, 10, 1, CALLS_LIST_MAX, &limit,
          NULL)) {
    respond_error (self, msg, SOUP_STATUS_BAD_REQUEST, "invalid_field",
        "limit: expected an integer from 1 to 1000");
    return;
  }
  rows = cp_store_list (self->store, limit, &error);
  if (rows == NULL) {
    respond_error (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal",
        error->message);
    return;
  }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "calls");
  json_builder_begin_array (b);
  for (i = 0; i < rows->len; i++) {
    const CpSessionRecord *r = g_ptr_array_index (rows, i);
    CpSession *live = cp_pool_lookup (self->pool, r->id);

    build_session (self, msg, b, live ? cp_session_get_record (live) : r);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  respond_node (self, msg, SOUP_STATUS_OK, root);
}

static void
handle_get_call (CpServer *self, SoupServerMessage *msg, const gchar *id)
{
  g_autoptr (CpSessionRecord) stored = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  CpSession *live = cp_pool_lookup (self->pool, id);
  const CpSessionRecord *r;

  if (live != NULL) {
    r = cp_session_get_record (live);
  } else {
    stored = cp_store_get (self->store, id, &error);
    if (error != NULL) {
      respond_error (self, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal",
          error->message);
      return;
    }
    if (stored == NULL) {
      respond_error (self, msg, SOUP_STATUS_NOT_FOUND, "not_found",
          "no such call");
      return;
    }
    r = stored;
  }
  build_session (self, msg, b, r);
  root = json_builder_get_root (b);
  respond_node (self, msg, SOUP_STATUS_OK, root);
}

static void
handle_hangup (CpServer *self, SoupServerMessage *msg, const gchar *id)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  CpSession *s = cp_pool_lookup (self->pool, id);
  g_autoptr (CpSessionRecord) stored = NULL;
  guint status = SOUP_STATUS_ACCEPTED;
  const gchar *state;

  if (s != NULL && cp_session_is_live (s)) {
    cp_session_stop (s, "hangup", self->config->drain_timeout);
    state = cp_session_get_record (s)->state;
  } else {
    if (s == NULL)
      stored = cp_store_get (self->store, id, NULL);
    if (s == NULL && stored == NULL) {
      respond_error (self, msg, SOUP_STATUS_NOT_FOUND, "not_found",
          "no such call");
      return;
    }
    /* Hanging up a finished call is not an error: the caller's goal holds. */
    status = SOUP_STATUS_OK;
    state = s != NULL ? cp_session_get_record (s)->state : stored->state;
  }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, state);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  respond_node (self, msg, status, root);
}

static const gchar *
media_content_type (const gchar *path)
{
  if (g_str_has_suffix (path, ".wav"))
    return "audio/wav";
  if (g_str_has_suffix (path, ".json"))
    return "application/json";
  return "application/octet-stream";
}

static void
handle_media (CpServer *self, SoupServerMessage *msg, const gchar *rel,
    GHashTable *query)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *file = NULL;
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GBytes) bytes = NULL;
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  if (!cp_storage_verify (self->storage, rel,
          query ? g_hash_table_lookup (query, "expires") : NULL,
          query ? g_hash_table_lookup (query, "sig") : NULL,
          g_get_real_time () / G_USEC_PER_SEC, &error)) {
    respond_error (self, msg, SOUP_STATUS_FORBIDDEN, "forbidden",
        error->message);
    return;
  }
  file = cp_storage_resolve (self->storage, rel, &error);
  if (file == NULL || !g_file_test (file, G_FILE_TEST_IS_REGULAR)) {
    gboolean forbidden =
        error != NULL && error->code == CP_STORAGE_ERROR_FORBIDDEN;

    respond_error (self, msg,
        forbidden ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_NOT_FOUND,
        forbidden ? "forbidden" : "not_found",
        error != NULL ? error->message : "no such media");
    return;
  }
  /* Mapping keeps hours-long recordings out of the heap; pages are read as
   * libsoup writes them. */
  mapped = g_mapped_file_new (file, FALSE, &error);
  if (mapped == NULL) {
    respond_error (self, msg, SOUP_STATUS_NOT_FOUND, "not_found",
        error->message);
    return;
  }
  bytes = g_mapped_file_get_bytes (mapped);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (h, media_content_type (file), NULL);
  soup_message_headers_replace (h, "Cache-Control", "private, no-store");
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg),
      bytes);
  add_cors (self, msg);
}

static void
handle_preflight (CpServer *self, SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
  soup_message_headers_replace (h, "Access-Control-Allow-Methods",
      "GET, POST, DELETE, OPTIONS");
  soup_message_headers_replace (h, "Access-Control-Allow-Headers",
      "Authorization, Content-Type");
  soup_message_headers_replace (h, "Access-Control-Max-Age", "600");
  add_cors (self, msg);
}

static void
route (SoupServer *soup, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  CpServer *self = data;

  /* The early handler already answered (401, 411, 413). */
  if (soup_server_message_get_status (msg) != 0)
    return;

  if (is_method (msg, "OPTIONS") && self->config->cors_origin != NULL) {
    handle_preflight (self, msg);
  } else if (!strcmp (path, "/health")) {
    if (is_read (msg))
      handle_health (self, msg);
    else
      method_not_allowed (self, msg, "GET, HEAD");
  } else if (!strcmp (path, "/metrics")) {
    if (is_read (msg))
      handle_metrics (self, msg);
    else
      method_not_allowed (self, msg, "GET, HEAD");
  } else if (!strcmp (path, "/calls") || !strcmp (path, "/calls/")) {
    if (is_method (msg, "POST"))
      handle_start_call (self, msg);
    else if (is_read (msg))
      handle_list_calls (self, msg, query);
    else
      method_not_allowed (self, msg, "GET, HEAD, POST");
  } else if (g_str_has_prefix (path, "/calls/")
      && g_uuid_string_is_valid (path + strlen ("/calls/"))) {
    const gchar *id = path + strlen ("/calls/");

    if (is_read (msg))
      handle_get_call (self, msg, id);
    else if (is_method (msg, "DELETE"))
      handle_hangup (self, msg, id);
    else
      method_not_allowed (self, msg, "GET, HEAD, DELETE");
  } else if (!strcmp (path, "/turn")) {
    if (is_method (msg, "POST"))
      handle_turn (self, msg);
    else
      method_not_allowed (self, msg, "POST");
  } else if (g_str_has_prefix (path, "/media/")) {
    if (is_read (msg))
      handle_media (self, msg, path + strlen ("/media/"), query);
    else
      method_not_allowed (self, msg, "GET, HEAD");
  } else if (cp_console_owns (path)) {
    cp_console_serve (msg, path);
  } else {
    respond_error (self, msg, SOUP_STATUS_NOT_FOUND, "not_found",
        "no such route");
  }
}

CpServer *
cp_server_new (const CpConfig *config, CpPool *pool, CpStore *store,
    CpStorage *storage, CpMetrics *metrics)
{
  CpServer *self = g_new0 (CpServer, 1);

  self->config = config;
  self->pool = pool;
  self->store = store;
  self->storage = storage;
  self->metrics = metrics;
  self->turns = cp_turns_new (config, pool, storage, respond_turn, self);
  self->soup = soup_server_new ("server-header", "callpiped ", NULL);
  soup_server_add_early_handler (self->soup, NULL, early_handler, self, NULL);
  soup_server_add_handler (self->soup, NULL, route, self, NULL);
  self->sonic = cp_sonic_new (config, pool, self->soup);
  cp_sonic_set_metrics (self->sonic, metrics);
  return self;
}

void
cp_server_free (CpServer *self)
{
  if (self == NULL)
    return;
  cp_sonic_free (self->sonic);
  soup_server_disconnect (self->soup);
  cp_turns_free (self->turns);
  g_object_unref (self->soup);
  g_free (self);
}

gboolean
cp_server_listen (CpServer *self, const gchar *address, guint port,
    guint *bound_port, GError **error)
{
  g_autoptr (GSocketAddress) sa = NULL;
  GSList *uris;

  if (address == NULL) {
    if (!soup_server_listen_all (self->soup, port, 0, error))
      return FALSE;
  } else {
    sa = g_inet_socket_address_new_from_string (address, port);
    if (sa == NULL) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
          "[server] address must be an IP address, not '%s'", address);
      return FALSE;
    }
    if (!soup_server_listen (self->soup, sa, 0, error))
      return FALSE;
  }
  uris = soup_server_get_uris (self->soup);
  *bound_port = uris != NULL ? (guint) g_uri_get_port (uris->data) : port;
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return TRUE;
}

/* callpiped — POST /turn */
#include "cp-turn.h"
#include "cp-log.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define PROMPT_NAME "customer-service.txt"
/* What of the conversation so far goes into the next turn's prompt. */
#define HISTORY_MAX_TURNS 20
#define HISTORY_MAX_BYTES (16 * 1024)
#define CONVERSATION_ID_MAX 128
#define EXPIRE_INTERVAL_S 60
/* After [turn] timeout the turn gets EOS and this long to finish. */
#define STOP_GRACE_S 5

typedef struct
{
  gchar *caller;
  gchar *bot;
} Exchange;

typedef struct
{
  GPtrArray *exchanges; /* of Exchange, oldest first */
  gint64 last_used; /* monotonic µs */
  gboolean busy;
} Conversation;

typedef struct
{
  CpTurns *turns;
  SoupServerMessage *msg; /* ref held while paused */
  gulong disconnected_id;
  gboolean disconnected;
  gchar *conversation_id;
  gchar *turn_id;
  gchar *base_url;
  gchar *spooled_audio; /* deleted when done, or NULL */
  gchar *prompt_path; /* deleted when done */
  gchar *reply_location;
  CpSession *session;
  guint timeout_id;
} Pending;

struct _CpTurns
{
  const CpConfig *config;
  CpPool *pool;
  CpStorage *storage;
  CpTurnRespondFunc respond;
  gpointer respond_data;
  gchar *base_prompt;
  GHashTable *conversations; /* sessionId -> Conversation */
  GHashTable *pending; /* Pending -> Pending, for teardown */
  guint expire_id;
};

GQuark
cp_turn_error_quark (void)
{
  return g_quark_from_static_string ("cp-turn-error-quark");
}

static void
exchange_free (Exchange *e)
{
  g_free (e->caller);
  g_free (e->bot);
  g_free (e);
}

static void
conversation_free (Conversation *c)
{
  g_ptr_array_unref (c->exchanges);
  g_free (c);
}

static void
pending_free (Pending *pd)
{
  if (pd->timeout_id != 0)
    g_source_remove (pd->timeout_id);
  if (pd->disconnected_id != 0)
    g_signal_handler_disconnect (pd->msg, pd->disconnected_id);
  if (pd->spooled_audio != NULL)
    g_unlink (pd->spooled_audio);
  g_unlink (pd->prompt_path);
  g_object_unref (pd->msg);
  g_free (pd->conversation_id);
  g_free (pd->turn_id);
  g_free (pd->base_url);
  g_free (pd->spooled_audio);
  g_free (pd->prompt_path);
  g_free (pd->reply_location);
  g_free (pd);
}

static gboolean
expire_conversations (gpointer data)
{
  CpTurns *t = data;
  gint64 cutoff = g_get_monotonic_time ()
      - (gint64) t->config->turn_context_ttl * G_USEC_PER_SEC;
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, t->conversations);
  while (g_hash_table_iter_next (&it, NULL, &value)) {
    Conversation *c = value;

    if (!c->busy && c->last_used < cutoff)
      g_hash_table_iter_remove (&it);
  }
  return G_SOURCE_CONTINUE;
}

CpTurns *
cp_turns_new (const CpConfig *config, CpPool *pool, CpStorage *storage,
    CpTurnRespondFunc respond, gpointer user_data)
{
  CpTurns *t = g_new0 (CpTurns, 1);
  g_autofree gchar *prompt_file =
      g_build_filename (config->pipelines_dir, "prompts", PROMPT_NAME, NULL);
  g_autoptr (GError) error = NULL;

  t->config = config;
  t->pool = pool;
  t->storage = storage;
  t->respond = respond;
  t->respond_data = user_data;
  if (!g_file_get_contents (prompt_file, &t->base_prompt, NULL, &error)) {
    cp_log (CP_LOG_WARNING, NULL, NULL,
        "turns run without the shipped system prompt: %s", error->message);
    t->base_prompt = g_strdup ("");
  }
  t->conversations = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) conversation_free);
  t->pending = g_hash_table_new (NULL, NULL);
  t->expire_id =
      g_timeout_add_seconds (EXPIRE_INTERVAL_S, expire_conversations, t);
  return t;
}

void
cp_turns_free (CpTurns *t)
{
  GHashTableIter it;
  gpointer key;

  if (t == NULL)
    return;
  g_source_remove (t->expire_id);
  g_hash_table_iter_init (&it, t->pending);
  while (g_hash_table_iter_next (&it, &key, NULL))
    pending_free (key);
  g_hash_table_unref (t->pending);
  g_hash_table_unref (t->conversations);
  g_free (t->base_prompt);
  g_free (t);
}

/* ---- input checks ---- */

/* Strict base64: the alphabet, padding only at the end, whole quads.
 * Whitespace (line breaks of wrapped encoders) is skipped. GLib's decoder
 * alone would silently drop anything else. */
guint8 *
cp_turn_decode_base64 (const gchar *text, gsize *out_len, GError **error)
{
  g_autoptr (GString) clean = g_string_sized_new (strlen (text));
  const gchar *p;
  guint pad = 0;
  guchar *out;

  for (p = text; *p != '\0'; p++) {
    if (g_ascii_isspace (*p))
      continue;
    if (*p == '=') {
      pad++;
    } else if (pad > 0 || (!g_ascii_isalnum (*p) && *p != '+' && *p != '/')) {
      g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_FIELD,
          "audioBase64: not base64 (offset %" G_GSIZE_FORMAT ")",
          (gsize) (p - text));
      return NULL;
    }
    g_string_append_c (clean, *p);
  }
  if (clean->len == 0 || clean->len % 4 != 0 || pad > 2) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_FIELD,
        "audioBase64: not base64 (length or padding)");
    return NULL;
  }
  out = g_base64_decode (clean->str, out_len);
  return out;
}

static guint32
read_le32 (const guint8 *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32) p[3] << 24);
}

/* A RIFF/WAVE file with PCM (or float) samples and a data chunk, no
 * longer than @max_seconds. */
gboolean
cp_turn_check_wav (const guint8 *d, gsize len, guint max_seconds,
    GError **error)
{
  gsize off = 12;
  guint32 byte_rate = 0;
  gboolean have_fmt = FALSE;

  if (len < 12 || memcmp (d, "RIFF", 4) != 0 || memcmp (d + 8, "WAVE", 4)) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_AUDIO,
        "the audio is not a WAV file (no RIFF/WAVE header)");
    return FALSE;
  }
  while (off + 8 <= len) {
    guint32 size = read_le32 (d + off + 4);
    const guint8 *c = d + off + 8;
    gsize avail = len - off - 8;

    if (!memcmp (d + off, "fmt ", 4)) {
      guint16 format, channels, bits;
      guint32 rate;

      if (avail < 16 || size < 16)
        break;
      format = c[0] | (c[1] << 8);
      channels = c[2] | (c[3] << 8);
      rate = read_le32 (c + 4);
      bits = c[14] | (c[15] << 8);
      if ((format != 1 && format != 3 && format != 0xfffe) || channels == 0
          || channels > 8 || rate < 8000 || rate > 48000
          || (bits != 8 && bits != 16 && bits != 24 && bits != 32)) {
        g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_AUDIO,
            "the WAV must be PCM, 1-8 channels, 8-48 kHz (format %u, "
            "%u channels, %u Hz, %u bits)",
            format, channels, rate, bits);
        return FALSE;
      }
      byte_rate = rate * channels * (bits / 8);
      have_fmt = TRUE;
    } else if (!memcmp (d + off, "data", 4)) {
      gsize data_len = MIN ((gsize) size, avail);

      if (!have_fmt)
        break;
      if (data_len / byte_rate >= max_seconds) {
        g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_AUDIO_TOO_LONG,
            "the audio is longer than the %u s a turn takes", max_seconds);
        return FALSE;
      }
      return TRUE;
    }
    if (size > avail)
      break;
    off += 8 + (gsize) size + (size & 1);
  }
  g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_AUDIO,
      "the WAV has no fmt chunk followed by a data chunk");
  return FALSE;
}

/* sessionId names files in storage: plain characters only. */
static gboolean
conversation_id_is_valid (const gchar *id)
{
  const gchar *p;

  if (*id == '\0' || strlen (id) > CONVERSATION_ID_MAX
      || !g_ascii_isalnum (*id))
    return FALSE;
  for (p = id; *p != '\0'; p++) {
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  }
  return TRUE;
}

static const gchar *
string_member (JsonObject *o, const gchar *name, GError **error)
{
  JsonNode *m = json_object_get_member (o, name);

  if (m == NULL || JSON_NODE_HOLDS_NULL (m))
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (m)
      || json_node_get_value_type (m) != G_TYPE_STRING) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_FIELD,
        "%s: expected a string", name);
    return NULL;
  }
  return json_node_get_string (m);
}

/* ---- the prompt ---- */

static gchar *
build_prompt (CpTurns *t, Conversation *c)
{
  GString *history = g_string_new (NULL);
  GString *out = g_string_new (t->base_prompt);
  guint first = c->exchanges->len > HISTORY_MAX_TURNS
      ? c->exchanges->len - HISTORY_MAX_TURNS
      : 0;
  guint i;

  for (i = c->exchanges->len; i > first; i--) {
    Exchange *e = g_ptr_array_index (c->exchanges, i - 1);
    g_autofree gchar *lines =
        g_strdup_printf ("Caller: %s\nYou: %s\n", e->caller, e->bot);

    if (history->len + strlen (lines) > HISTORY_MAX_BYTES)
      break;
    g_string_prepend (history, lines);
  }
  if (history->len > 0) {
    g_string_append (out,
        "\n\nThis call is answered one turn at a time. The conversation so "
        "far, oldest first; carry on from it without greeting again:\n");
    g_string_append (out, history->str);
  }
  g_string_free (history, TRUE);
  return g_string_free (out, FALSE);
}

/* ---- the turn ---- */

static void
respond_json (CpTurns *t, Pending *pd, guint status, JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);

  t->respond (pd->msg, status, root, t->respond_data);
  soup_server_message_unpause (pd->msg);
}

static void
respond_failed (CpTurns *t, Pending *pd, const gchar *why)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "code");
  json_builder_add_string_value (b, "turn_failed");
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, why);
  json_builder_end_object (b);
  json_builder_end_object (b);
  respond_json (t, pd, SOUP_STATUS_BAD_GATEWAY, b);
}

static gchar *
reply_link (CpTurns *t, Pending *pd)
{
  g_autoptr (GError) error = NULL;
  gchar *url;

  if (!cp_storage_is_s3 (t->storage)) {
    GStatBuf st;

    if (g_stat (pd->reply_location, &st) != 0 || st.st_size <= 44)
      return NULL;
  }
  url = cp_storage_link (t->storage, pd->reply_location, pd->base_url,
      t->config->link_ttl, &error);
  if (url == NULL)
    cp_log (CP_LOG_WARNING, NULL, pd->conversation_id, "%s", error->message);
  return url;
}

static void
on_turn_done (CpSession *s, gpointer data)
{
  Pending *pd = data;
  CpTurns *t = pd->turns;
  Conversation *c = g_hash_table_lookup (t->conversations, pd->conversation_id);
  g_autofree gchar *caller = cp_session_get_text (s, "caller");
  g_autofree gchar *bot = cp_session_get_text (s, "bot");
  g_autofree gchar *url = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const gchar *intent = cp_session_get_intent (s);

  c->busy = FALSE;
  c->last_used = g_get_monotonic_time ();
  if (*caller != '\0' || *bot != '\0') {
    Exchange *e = g_new0 (Exchange, 1);

    e->caller = g_strdup (caller);
    e->bot = g_strdup (bot);
    g_ptr_array_add (c->exchanges, e);
  }
  g_hash_table_remove (t->pending, pd);
  if (pd->disconnected) {
    pending_free (pd);
    return;
  }
  if (cp_session_get_state (s) == CP_SESSION_FAILED) {
    respond_failed (t, pd, cp_session_get_record (s)->reason);
    pending_free (pd);
    return;
  }
  url = reply_link (t, pd);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, pd->conversation_id);
  json_builder_set_member_name (b, "turnId");
  json_builder_add_string_value (b, cp_session_get_record (s)->id);
  json_builder_set_member_name (b, "responseAudioUrl");
  if (url != NULL)
    json_builder_add_string_value (b, url);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "intent");
  json_builder_add_string_value (b, intent != NULL ? intent : "continue");
  json_builder_set_member_name (b, "transcript");
  json_builder_add_string_value (b, caller);
  json_builder_set_member_name (b, "reply");
  json_builder_add_string_value (b, bot);
  json_builder_end_object (b);
  respond_json (t, pd, SOUP_STATUS_OK, b);
  pending_free (pd);
}

static gboolean
on_turn_timeout (gpointer data)
{
  Pending *pd = data;

  pd->timeout_id = 0;
  cp_log (CP_LOG_WARNING, cp_session_get_record (pd->session)->id,
      pd->conversation_id, "turn ran past %u s; stopping it",
      pd->turns->config->turn_timeout);
  cp_session_stop (pd->session, "turn timeout", STOP_GRACE_S);
  return G_SOURCE_REMOVE;
}

static void
on_disconnected (SoupServerMessage *msg, gpointer data)
{
  Pending *pd = data;

  pd->disconnected = TRUE;
}

/* Where the caller's audio is: a spooled copy of audioBase64, or the
 * storage object audioS3Key. */
static gboolean
locate_audio (CpTurns *t, Pending *pd, JsonObject *o, const gchar **source,
    gchar **location, GError **error)
{
  const gchar *b64 = string_member (o, "audioBase64", error);
  const gchar *key;
  g_autofree guint8 *wav = NULL;
  gsize len = 0;

  if (b64 == NULL && *error != NULL)
    return FALSE;
  key = string_member (o, "audioS3Key", error);
  if (key == NULL && *error != NULL)
    return FALSE;
  if ((b64 == NULL) == (key == NULL)) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_MISSING_FIELD,
        "give exactly one of audioBase64 and audioS3Key");
    return FALSE;
  }
  if (key != NULL) {
    if (!cp_storage_rel_path_is_safe (key)) {
      g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_FIELD,
          "audioS3Key: a key in storage of letters, digits and . _ - / "
          "segments");
      return FALSE;
    }
    *source = cp_storage_source_element (t->storage);
    if (cp_storage_is_s3 (t->storage)) {
      *location = cp_storage_location (t->storage, key);
      return TRUE;
    }
    *location = cp_storage_resolve (t->storage, key, NULL);
    if (*location == NULL || !g_file_test (*location, G_FILE_TEST_IS_REGULAR)) {
      g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_NOT_FOUND,
          "audioS3Key: no such object in storage");
      return FALSE;
    }
    return TRUE;
  }
  wav = cp_turn_decode_base64 (b64, &len, error);
  if (wav == NULL
      || !cp_turn_check_wav (wav, len, t->config->turn_max_seconds, error))
    return FALSE;
  pd->spooled_audio = g_strconcat (pd->prompt_path, ".caller.wav", NULL);
  if (!g_file_set_contents (pd->spooled_audio, (const gchar *) wav, len, error))
    return FALSE;
  *source = "filesrc";
  *location = g_strdup (pd->spooled_audio);
  return TRUE;
}

gboolean
cp_turns_start (CpTurns *t, SoupServerMessage *msg, const gchar *body,
    gsize len, const gchar *base_url, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) perr = NULL;
  g_autofree gchar *rel_dir = NULL;
  g_autofree gchar *local_dir = NULL;
  g_autofree gchar *rel_reply = NULL;
  g_autofree gchar *prompt = NULL;
  g_autofree gchar *audio_location = NULL;
  const gchar *audio_source = NULL;
  const gchar *id;
  Conversation *c;
  Pending *pd;
  JsonObject *o;
  CpTurnRequest req = {0};

  if (!json_parser_load_from_data (parser, body, len, &perr)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_MALFORMED,
        "the body must be a JSON object%s%s", perr ? ": " : "",
        perr ? perr->message : "");
    return FALSE;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  id = string_member (o, "sessionId", error);
  if (id == NULL) {
    if (*error == NULL)
      g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_MISSING_FIELD,
          "sessionId is required");
    return FALSE;
  }
  if (!conversation_id_is_valid (id)) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_FIELD,
        "sessionId: up to %d letters, digits and . _ -, starting with a "
        "letter or digit",
        CONVERSATION_ID_MAX);
    return FALSE;
  }
  c = g_hash_table_lookup (t->conversations, id);
  if (c != NULL && c->busy) {
    g_set_error (error, CP_TURN_ERROR, CP_TURN_ERROR_BUSY,
        "a turn of session %s is still running", id);
    return FALSE;
  }

  pd = g_new0 (Pending, 1);
  pd->turns = t;
  pd->msg = g_object_ref (msg);
  pd->conversation_id = g_strdup (id);
  pd->turn_id = g_uuid_string_random ();
  pd->base_url = g_strdup (base_url);
  rel_dir = g_strconcat ("turns/", id, NULL);
  local_dir = cp_storage_local_path (t->storage, rel_dir);
  pd->prompt_path = g_strconcat (local_dir, "/", pd->turn_id, ".prompt", NULL);
  if (g_mkdir_with_parents (local_dir, 0750) != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
        "cannot create %s: %s", local_dir, g_strerror (errno));
    pending_free (pd);
    return FALSE;
  }
  if (!locate_audio (t, pd, o, &audio_source, &audio_location, error)) {
    pending_free (pd);
    return FALSE;
  }
  if (c == NULL) {
    c = g_new0 (Conversation, 1);
    c->exchanges =
        g_ptr_array_new_with_free_func ((GDestroyNotify) exchange_free);
    g_hash_table_insert (t->conversations, g_strdup (id), c);
  }
  prompt = build_prompt (t, c);
  if (!g_file_set_contents (pd->prompt_path, prompt, -1, error)) {
    pending_free (pd);
    return FALSE;
  }
  rel_reply = g_strconcat (rel_dir, "/", pd->turn_id, ".wav", NULL);
  pd->reply_location = cp_storage_location (t->storage, rel_reply);

  req.conversation_id = id;
  req.audio_source = audio_source;
  req.audio_location = audio_location;
  req.prompt_path = pd->prompt_path;
  req.reply_location = pd->reply_location;
  pd->session = cp_pool_start_turn (t->pool, &req, on_turn_done, pd, error);
  if (pd->session == NULL) {
    pending_free (pd);
    return FALSE;
  }
  c->busy = TRUE;
  c->last_used = g_get_monotonic_time ();
  g_hash_table_add (t->pending, pd);
  pd->timeout_id =
      g_timeout_add_seconds (t->config->turn_timeout, on_turn_timeout, pd);
  pd->disconnected_id =
      g_signal_connect (msg, "disconnected", G_CALLBACK (on_disconnected), pd);
  soup_server_message_pause (msg);
  return TRUE;
}

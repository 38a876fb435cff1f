/* callpiped — session records in SQLite */
#include "cp-store.h"

#include <json-glib/json-glib.h>
#include <sqlite3.h>

struct _CpStore
{
  sqlite3 *db;
};

GQuark
cp_store_error_quark (void)
{
  return g_quark_from_static_string ("cp-store-error-quark");
}

static const gchar schema[] =
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " contact_id TEXT,"
    " state TEXT NOT NULL,"
    " reason TEXT,"
    " pipeline TEXT,"
    " recording_path TEXT,"
    " attributes TEXT,"
    " started_at INTEGER NOT NULL,"
    " ended_at INTEGER,"
    " transcript_path TEXT,"
    " conversation TEXT);"
    "CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started_at);";

/* Columns added after the first release, for databases created before. */
static const gchar *const added_columns[] = {"transcript_path", "conversation"};

static const gchar columns[] =
    "id, kind, contact_id, state, reason, pipeline, recording_path, "
    "attributes, started_at, ended_at, transcript_path, conversation";

static gboolean
db_error (CpStore *s, GError **error, const gchar *what)
{
  g_set_error (error, CP_STORE_ERROR, CP_STORE_ERROR_FAILED, "%s: %s", what,
      sqlite3_errmsg (s->db));
  return FALSE;
}

static gboolean
add_missing_columns (CpStore *s)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (added_columns); i++) {
    g_autofree gchar *probe =
        g_strdup_printf ("SELECT %s FROM sessions LIMIT 0", added_columns[i]);
    g_autofree gchar *alter = g_strdup_printf ("ALTER TABLE sessions ADD "
                                               "COLUMN %s TEXT",
        added_columns[i]);
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2 (s->db, probe, -1, &st, NULL) == SQLITE_OK) {
      sqlite3_finalize (st);
      continue;
    }
    if (sqlite3_exec (s->db, alter, NULL, NULL, NULL) != SQLITE_OK)
      return FALSE;
  }
  return TRUE;
}

CpStore *
cp_store_open (const gchar *path, GError **error)
{
  g_autoptr (CpStore) s = g_new0 (CpStore, 1);

  if (sqlite3_open_v2 (path, &s->db,
          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
          NULL)
      != SQLITE_OK) {
    db_error (s, error, path);
    return NULL;
  }
  /* WAL with synchronous=NORMAL commits without an fsync per write, so a
   * state change never stalls the main loop on the disk, while a crash
   * still leaves a consistent database. */
  if (sqlite3_busy_timeout (s->db, 1000) != SQLITE_OK
      || sqlite3_exec (s->db,
             "PRAGMA journal_mode=WAL;"
             "PRAGMA synchronous=NORMAL;",
             NULL, NULL, NULL)
          != SQLITE_OK
      || sqlite3_exec (s->db, schema, NULL, NULL, NULL) != SQLITE_OK
      || !add_missing_columns (s)) {
    db_error (s, error, path);
    return NULL;
  }
  return g_steal_pointer (&s);
}

void
cp_store_close (CpStore *s)
{
  if (s == NULL)
    return;
  sqlite3_close (s->db);
  g_free (s);
}

void
cp_session_record_free (CpSessionRecord *r)
{
  if (r == NULL)
    return;
  g_free (r->id);
  g_free (r->kind);
  g_free (r->contact_id);
  g_free (r->state);
  g_free (r->reason);
  g_free (r->pipeline);
  g_free (r->recording_path);
  g_free (r->attributes_json);
  g_free (r->transcript_path);
  g_free (r->conversation_json);
  g_free (r);
}

CpSessionRecord *
cp_session_record_copy (const CpSessionRecord *r)
{
  CpSessionRecord *c = g_new0 (CpSessionRecord, 1);

  c->id = g_strdup (r->id);
  c->kind = g_strdup (r->kind);
  c->contact_id = g_strdup (r->contact_id);
  c->state = g_strdup (r->state);
  c->reason = g_strdup (r->reason);
  c->pipeline = g_strdup (r->pipeline);
  c->recording_path = g_strdup (r->recording_path);
  c->attributes_json = g_strdup (r->attributes_json);
  c->transcript_path = g_strdup (r->transcript_path);
  c->conversation_json = g_strdup (r->conversation_json);
  c->started_at = r->started_at;
  c->ended_at = r->ended_at;
  return c;
}

static void
bind_text (sqlite3_stmt *st, int idx, const gchar *v)
{
  if (v != NULL)
    sqlite3_bind_text (st, idx, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (st, idx);
}

static gchar *
column_text (sqlite3_stmt *st, int idx)
{
  const unsigned char *v = sqlite3_column_text (st, idx);

  return v != NULL ? g_strdup ((const gchar *) v) : NULL;
}

static CpSessionRecord *
row_to_record (sqlite3_stmt *st)
{
  CpSessionRecord *r = g_new0 (CpSessionRecord, 1);

  r->id = column_text (st, 0);
  r->kind = column_text (st, 1);
  r->contact_id = column_text (st, 2);
  r->state = column_text (st, 3);
  r->reason = column_text (st, 4);
  r->pipeline = column_text (st, 5);
  r->recording_path = column_text (st, 6);
  r->attributes_json = column_text (st, 7);
  r->started_at = sqlite3_column_int64 (st, 8);
  r->ended_at = sqlite3_column_int64 (st, 9);
  r->transcript_path = column_text (st, 10);
  r->conversation_json = column_text (st, 11);
  return r;
}

static sqlite3_stmt *
prepare (CpStore *s, const gchar *sql, GError **error)
{
  sqlite3_stmt *st = NULL;

  if (sqlite3_prepare_v2 (s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    db_error (s, error, "prepare");
    return NULL;
  }
  return st;
}

static gboolean
step_done (CpStore *s, sqlite3_stmt *st, GError **error)
{
  int rc = sqlite3_step (st);

  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    return db_error (s, error, "write");
  return TRUE;
}

/* Every row a crash left live becomes failed; the caller gets them to log
 * and report. */
GPtrArray *
cp_store_recover (CpStore *s, gint64 now, GError **error)
{
  g_autoptr (GPtrArray) out =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_session_record_free);
  g_autofree gchar *sql =
      g_strdup_printf ("SELECT %s FROM sessions WHERE "
                       "state IN ('starting', 'running', 'ending')",
          columns);
  sqlite3_stmt *st = prepare (s, sql, error);
  int rc;

  if (st == NULL)
    return NULL;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (out, row_to_record (st));
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE) {
    db_error (s, error, "read");
    return NULL;
  }

  st = prepare (s,
      "UPDATE sessions SET state = 'failed', reason = ?1, "
      "ended_at = ?2 WHERE state IN ('starting', 'running', 'ending')",
      error);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, CP_STORE_INTERRUPTED_REASON, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, now);
  if (!step_done (s, st, error))
    return NULL;
  return g_steal_pointer (&out);
}

gboolean
cp_store_insert (CpStore *s, const CpSessionRecord *r, GError **error)
{
  sqlite3_stmt *st = prepare (s,
      "INSERT INTO sessions (id, kind, "
      "contact_id, state, reason, pipeline, recording_path, attributes, "
      "started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
      error);

  if (st == NULL)
    return FALSE;
  bind_text (st, 1, r->id);
  bind_text (st, 2, r->kind);
  bind_text (st, 3, r->contact_id);
  bind_text (st, 4, r->state);
  bind_text (st, 5, r->reason);
  bind_text (st, 6, r->pipeline);
  bind_text (st, 7, r->recording_path);
  bind_text (st, 8, r->attributes_json);
  sqlite3_bind_int64 (st, 9, r->started_at);
  if (r->ended_at != 0)
    sqlite3_bind_int64 (st, 10, r->ended_at);
  else
    sqlite3_bind_null (st, 10);
  return step_done (s, st, error);
}

gboolean
cp_store_update (CpStore *s, const CpSessionRecord *r, GError **error)
{
  sqlite3_stmt *st = prepare (s,
      "UPDATE sessions SET state = ?2, "
      "reason = ?3, pipeline = ?4, recording_path = ?5, ended_at = ?6, "
      "transcript_path = ?7, conversation = ?8 WHERE id = ?1",
      error);

  if (st == NULL)
    return FALSE;
  bind_text (st, 1, r->id);
  bind_text (st, 2, r->state);
  bind_text (st, 3, r->reason);
  bind_text (st, 4, r->pipeline);
  bind_text (st, 5, r->recording_path);
  if (r->ended_at != 0)
    sqlite3_bind_int64 (st, 6, r->ended_at);
  else
    sqlite3_bind_null (st, 6);
  bind_text (st, 7, r->transcript_path);
  bind_text (st, 8, r->conversation_json);
  return step_done (s, st, error);
}

CpSessionRecord *
cp_store_get (CpStore *s, const gchar *id, GError **error)
{
  g_autofree gchar *sql =
      g_strdup_printf ("SELECT %s FROM sessions WHERE id = ?1", columns);
  sqlite3_stmt *st = prepare (s, sql, error);
  CpSessionRecord *r = NULL;
  int rc;

  if (st == NULL)
    return NULL;
  bind_text (st, 1, id);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    r = row_to_record (st);
  else if (rc != SQLITE_DONE)
    db_error (s, error, "read");
  sqlite3_finalize (st);
  return r;
}

static GPtrArray *
list_where (CpStore *s, const gchar *where, guint limit, GError **error)
{
  g_autoptr (GPtrArray) out =
      g_ptr_array_new_with_free_func ((GDestroyNotify) cp_session_record_free);
  g_autofree gchar *sql = g_strdup_printf ("SELECT %s FROM sessions %s "
                                           "ORDER BY started_at DESC LIMIT ?1",
      columns, where);
  sqlite3_stmt *st = prepare (s, sql, error);
  int rc;

  if (st == NULL)
    return NULL;
  sqlite3_bind_int (st, 1, limit);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (out, row_to_record (st));
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE) {
    db_error (s, error, "read");
    return NULL;
  }
  return g_steal_pointer (&out);
}

GPtrArray *
cp_store_list (CpStore *s, guint limit, GError **error)
{
  return list_where (s, "", limit, error);
}

/* Finished calls without a stored transcript, most recent first: a crash
 * between writing one and storing it (S3: mid-upload) leaves them so. */
GPtrArray *
cp_store_list_untranscribed (CpStore *s, guint limit, GError **error)
{
  return list_where (s,
      "WHERE kind = 'call' AND transcript_path IS NULL "
      "AND state IN ('ended', 'failed')",
      limit, error);
}

static void
add_conversation_member (JsonBuilder *b, JsonObject *conv, const gchar *name)
{
  json_builder_set_member_name (b, name);
  if (conv != NULL && json_object_has_member (conv, name)) {
    json_builder_add_value (b,
        json_node_copy (json_object_get_member (conv, name)));
  } else {
    json_builder_begin_array (b);
    json_builder_end_array (b);
  }
}

/* The call's transcript document (transcripts/<id>.json): who said what
 * and the bot's intents, with the session's outcome. */
gchar *
cp_session_record_transcript (const CpSessionRecord *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (JsonNode) conv = NULL;
  JsonObject *o = NULL;

  if (r->conversation_json != NULL)
    conv = json_from_string (r->conversation_json, NULL);
  if (conv != NULL && JSON_NODE_HOLDS_OBJECT (conv))
    o = json_node_get_object (conv);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "contactId");
  json_builder_add_string_value (b, r->contact_id);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, r->state);
  json_builder_set_member_name (b, "reason");
  json_builder_add_string_value (b, r->reason);
  json_builder_set_member_name (b, "duration");
  json_builder_add_double_value (b,
      MAX (r->ended_at - r->started_at, 0) / 1000 / 1000.0);
  add_conversation_member (b, o, "transcript");
  add_conversation_member (b, o, "intents");
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, TRUE);
}

/* callpiped — the session pool */
#include "cp-pool.h"
#include "cp-log.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* The DESIGN.md §4 pipelines a call runs: KVS media or, for local runs, a
 * mediaUri. */
#define CALL_PIPELINE "connect-bot"
#define CALL_MEDIA_PIPELINE "connect-bot-media"
#define TURN_PIPELINE "connect-turn"
#define UPLOAD_PIPELINE "storage-upload"

typedef struct
{
  CpPoolTurnDoneFunc func;
  gpointer data;
} TurnDone;

/* A call's transcript on its way to S3: its link appears once it is
 * there. */
typedef struct
{
  gchar *call_id;
  gchar *location;
} TranscriptUpload;

static void
transcript_upload_free (TranscriptUpload *u)
{
  g_free (u->call_id);
  g_free (u->location);
  g_free (u);
}

struct _CpPool
{
  const CpConfig *config;
  CpStore *store;
  CpStorage *storage;
  CpMetrics *metrics;

  GHashTable *factories; /* name -> CpFactory */
  GHashTable *sessions; /* id -> CpSession */
  GHashTable *turn_done; /* CpSession -> TurnDone, until it is called */
  GHashTable *uploads; /* upload session id -> TranscriptUpload */
  GHashTable *transcribed; /* ids of the calls whose transcript is written */
  guint reap_id;
  gboolean draining;
  CpPoolDrainedFunc drain_done;
  gpointer drain_data;
};

GQuark
cp_pool_error_quark (void)
{
  return g_quark_from_static_string ("cp-pool-error-quark");
}

CpPool *
cp_pool_new (const CpConfig *config, CpStore *store, CpStorage *storage,
    CpMetrics *metrics)
{
  CpPool *p = g_new0 (CpPool, 1);

  p->config = config;
  p->store = store;
  p->storage = storage;
  p->metrics = metrics;
  p->factories = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) cp_factory_free);
  p->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) cp_session_free);
  p->turn_done = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  p->uploads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) transcript_upload_free);
  p->transcribed =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return p;
}

void
cp_pool_free (CpPool *p)
{
  if (p == NULL)
    return;
  if (p->reap_id != 0)
    g_source_remove (p->reap_id);
  g_hash_table_unref (p->turn_done);
  g_hash_table_unref (p->uploads);
  g_hash_table_unref (p->transcribed);
  g_hash_table_unref (p->sessions);
  g_hash_table_unref (p->factories);
  g_free (p);
}

static CpFactory *
get_factory (CpPool *p, const gchar *name, GError **error)
{
  CpFactory *f = g_hash_table_lookup (p->factories, name);

  if (f != NULL)
    return f;
  f = cp_factory_load (p->config->pipelines_dir, name, error);
  if (f != NULL)
    g_hash_table_insert (p->factories, g_strdup (name), f);
  return f;
}

static void
log_factory (CpPool *p, const gchar *name)
{
  g_autoptr (GError) error = NULL;
  CpFactory *f = get_factory (p, name, &error);

  if (f == NULL) {
    cp_log (CP_LOG_WARNING, NULL, NULL, "%s", error->message);
  } else if (!cp_factory_is_available (f)) {
    g_autofree gchar *names =
        g_strjoinv (", ", (gchar **) cp_factory_get_missing (f));

    cp_log (CP_LOG_WARNING, NULL, NULL,
        "pipeline %s cannot run until these "
        "elements are installed: %s",
        name, names);
  } else {
    cp_log (CP_LOG_INFO, NULL, NULL, "pipeline %s ready", name);
  }
}

/* Loading at start-up says at once which pipelines can run. */
void
cp_pool_log_pipelines (CpPool *p)
{
  log_factory (p, CALL_PIPELINE);
  log_factory (p, CALL_MEDIA_PIPELINE);
  log_factory (p, TURN_PIPELINE);
  if (cp_storage_is_s3 (p->storage))
    log_factory (p, UPLOAD_PIPELINE);
  if (p->config->call_pipeline != NULL)
    log_factory (p, p->config->call_pipeline);
}

static gboolean
unavailable (CpFactory *f, GError **error)
{
  g_autofree gchar *names =
      g_strjoinv (", ", (gchar **) cp_factory_get_missing (f));

  g_set_error (error, CP_POOL_ERROR, CP_POOL_ERROR_UNAVAILABLE,
      "pipeline %s needs elements that are not installed: %s",
      cp_factory_get_name (f), names);
  return FALSE;
}

static gboolean
internal_error (GError **error, GError *cause)
{
  g_set_error_literal (error, CP_POOL_ERROR, CP_POOL_ERROR_INTERNAL,
      cause->message);
  return FALSE;
}

/* The factory @name, if its elements (and the storage's, which the
 * sample parse cannot see behind an element variable) are installed. */
static CpFactory *
runnable_factory (CpPool *p, const gchar *name, GError **error)
{
  g_autoptr (GError) ferr = NULL;
  const gchar *sink = cp_storage_sink_element (p->storage);
  GstElementFactory *ef;
  CpFactory *f;

  f = get_factory (p, name, &ferr);
  if (f == NULL) {
    internal_error (error, ferr);
    return NULL;
  }
  if (!cp_factory_is_available (f)) {
    unavailable (f, error);
    return NULL;
  }
  ef = gst_element_factory_find (sink);
  if (ef == NULL) {
    g_set_error (error, CP_POOL_ERROR, CP_POOL_ERROR_UNAVAILABLE,
        "the storage needs an element that is not installed: %s", sink);
    return NULL;
  }
  gst_object_unref (ef);
  return f;
}

/* mediaUri calls run [pipelines] call when it is set, else the bot's
 * media pipeline; KVS calls run the bot pipeline. */
static CpFactory *
choose_call_factory (CpPool *p, const CpCallRequest *req, GError **error)
{
  const gchar *name = CALL_PIPELINE;

  if (req->media_uri != NULL)
    name = p->config->call_pipeline ? p->config->call_pipeline
                                    : CALL_MEDIA_PIPELINE;
  return runnable_factory (p, name, error);
}

/* Keys are the static variable names; values are owned. */
static void
put (GHashTable *values, const gchar *name, gchar *value)
{
  g_hash_table_insert (values, (gpointer) name, value);
}

/* What every bot pipeline takes: the [bot] settings. */
static GHashTable *
bot_values (CpPool *p, const gchar *id)
{
  GHashTable *v = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);

  put (v, "SESSION_ID", g_strdup (id));
  put (v, "BOT_BACKEND", g_strdup (p->config->bot_backend));
  put (v, "BOT_ENDPOINT",
      g_strdup (p->config->bot_endpoint ? p->config->bot_endpoint : ""));
  /* Nova Sonic takes 16 kHz. The local recognizer decodes telephone audio
   * best at its own 8 kHz, with its band-widening front end: the same
   * speech upsampled to 16 kHz first lacks the upper band its model
   * expects, and a fresh decoder then misses the caller's first words. */
  put (v, "BOT_INPUT_RATE",
      g_strdup (!strcmp (p->config->bot_backend, "local") ? "8000" : "16000"));
  put (v, "REGION", g_strdup (p->config->bot_region));
  put (v, "MODEL_ID", g_strdup (p->config->bot_model_id));
  put (v, "VOICE_ID", g_strdup (p->config->bot_voice_id));
  return v;
}

static GHashTable *
call_values (CpPool *p, const gchar *id, const CpCallRequest *req,
    const gchar *recording_path)
{
  GHashTable *v = bot_values (p, id);
  const gchar *selector = "now";

  put (v, "CONTACT_ID", g_strdup (req->contact_id));
  if (req->stream_arn != NULL)
    put (v, "STREAM_ARN", g_strdup (req->stream_arn));
  put (v, "KVS_ENDPOINT",
      g_strdup (p->config->kvs_endpoint ? p->config->kvs_endpoint : ""));
  put (v, "KVS_REGION", cp_config_kvs_region (p->config, req->stream_arn));
  /* GetMedia's FRAGMENT_NUMBER starts after the fragment named, and
   * Connect's StartFragmentNumber is the call's first: the caller's first
   * second would be lost. Its StartTimestamp starts with that fragment. */
  if (req->start_timestamp >= 0)
    selector = "producer-timestamp";
  else if (req->start_fragment != NULL)
    selector = "fragment-number";
  put (v, "START_SELECTOR", g_strdup (selector));
  put (v, "START_FRAGMENT",
      g_strdup (req->start_fragment ? req->start_fragment : ""));
  put (v, "START_TIMESTAMP",
      g_strdup_printf ("%" G_GINT64_FORMAT, MAX (req->start_timestamp, 0)));
  if (req->media_uri != NULL)
    put (v, "MEDIA_URI", g_strdup (req->media_uri));
  if (recording_path != NULL) {
    put (v, "RECORDING_SINK", g_strdup (cp_storage_sink_element (p->storage)));
    put (v, "RECORDING_LOCATION", g_strdup (recording_path));
  }
  return v;
}

static gboolean
reap (gpointer data)
{
  CpPool *p = data;
  GHashTableIter it;
  gpointer key, value;

  p->reap_id = 0;
  g_hash_table_iter_init (&it, p->sessions);
  while (g_hash_table_iter_next (&it, &key, &value)) {
    if (!cp_session_is_live (value)) {
      /* A reaped session reports no more changes. */
      g_hash_table_remove (p->transcribed, key);
      g_hash_table_iter_remove (&it);
    }
  }
  if (p->draining && p->drain_done != NULL && cp_pool_count_live (p) == 0) {
    CpPoolDrainedFunc done = p->drain_done;

    p->drain_done = NULL;
    done (p->drain_data);
  }
  return G_SOURCE_REMOVE;
}

static void
schedule_reap (CpPool *p)
{
  if (p->reap_id == 0)
    p->reap_id = g_idle_add (reap, p);
}

static CpSession *start_session (CpPool *p, CpSessionRecord *rec, CpFactory *f,
    GHashTable *values, GError **error);

/* S3 storage: the spooled transcript of @call_id goes up through
 * storage-upload, an "upload" session the drain waits for. */
static gboolean
upload (CpPool *p, const gchar *call_id, const gchar *local,
    const gchar *location, GError **error)
{
  g_autofree gchar *upload_id = NULL;
  TranscriptUpload *u;

  g_autoptr (CpSessionRecord) rec = g_new0 (CpSessionRecord, 1);
  g_autoptr (GHashTable) values =
      g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  CpFactory *f = runnable_factory (p, UPLOAD_PIPELINE, error);

  if (f == NULL)
    return FALSE;
  rec->id = g_uuid_string_random ();
  rec->kind = g_strdup ("upload");
  rec->state = g_strdup ("starting");
  rec->pipeline = g_strdup (UPLOAD_PIPELINE);
  rec->started_at = g_get_real_time ();
  put (values, "UPLOAD_PATH", g_strdup (local));
  put (values, "UPLOAD_LOCATION", g_strdup (location));
  u = g_new0 (TranscriptUpload, 1);
  u->call_id = g_strdup (call_id);
  u->location = g_strdup (location);
  upload_id = g_strdup (rec->id);
  g_hash_table_insert (p->uploads, g_strdup (upload_id), u);
  if (start_session (p, g_steal_pointer (&rec), f, g_steal_pointer (&values),
          error)
      == NULL) {
    g_hash_table_remove (p->uploads, upload_id);
    return FALSE;
  }
  return TRUE;
}

/* The upload @r ended: the call's transcriptUrl now has an object behind
 * it, or the failure is logged. */
static void
upload_done (CpPool *p, const CpSessionRecord *r)
{
  TranscriptUpload *u = g_hash_table_lookup (p->uploads, r->id);
  g_autoptr (CpSessionRecord) stored = NULL;
  g_autoptr (GError) error = NULL;
  CpSession *call;
  CpSessionRecord *target;

  if (u == NULL)
    return;
  if (strcmp (r->state, "ended") != 0) {
    cp_log (CP_LOG_ERROR, u->call_id, NULL,
        "the transcript was not uploaded to %s: %s", u->location,
        r->reason ? r->reason : "failed");
    g_hash_table_remove (p->uploads, r->id);
    return;
  }
  call = g_hash_table_lookup (p->sessions, u->call_id);
  if (call != NULL) {
    target = (CpSessionRecord *) cp_session_get_record (call);
  } else {
    stored = cp_store_get (p->store, u->call_id, &error);
    target = stored;
  }
  if (target != NULL) {
    g_free (target->transcript_path);
    target->transcript_path = g_strdup (u->location);
    g_clear_error (&error);
    cp_store_update (p->store, target, &error);
  }
  if (error != NULL)
    cp_log (CP_LOG_ERROR, u->call_id, NULL, "%s", error->message);
  g_hash_table_remove (p->uploads, r->id);
}

/* Written when the call ends, whatever way: what was said is kept. */
static void
write_transcript (CpPool *p, CpSessionRecord *r)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *doc = cp_session_record_transcript (r);
  g_autofree gchar *rel = g_strconcat ("transcripts/", r->id, ".json", NULL);
  g_autofree gchar *local = cp_storage_local_path (p->storage, rel);
  g_autofree gchar *location = cp_storage_location (p->storage, rel);

  g_hash_table_add (p->transcribed, g_strdup (r->id));
  if (!g_file_set_contents (local, doc, -1, &error)
      || (cp_storage_is_s3 (p->storage)
          && !upload (p, r->id, local, location, &error))) {
    cp_log (CP_LOG_ERROR, r->id, r->contact_id,
        "the transcript was not stored: %s", error->message);
    return;
  }
  /* With S3, upload_done() sets the link once the object is there. */
  if (!cp_storage_is_s3 (p->storage)) {
    g_free (r->transcript_path);
    r->transcript_path = g_steal_pointer (&location);
  }
}

static void
on_session_changed (CpSession *s, gpointer data)
{
  CpPool *p = data;
  CpSessionRecord *r = (CpSessionRecord *) cp_session_get_record (s);
  g_autoptr (GError) error = NULL;
  TurnDone *done;

  if (!cp_session_is_live (s) && !strcmp (r->kind, "call")
      && !g_hash_table_contains (p->transcribed, r->id))
    write_transcript (p, r);
  if (!cp_session_is_live (s) && !strcmp (r->kind, "upload"))
    upload_done (p, r);
  if (strcmp (r->kind, "upload") != 0 && !cp_store_update (p->store, r, &error))
    cp_log (CP_LOG_ERROR, r->id, r->contact_id, "%s", error->message);
  if (cp_session_is_live (s))
    return;
  done = g_hash_table_lookup (p->turn_done, s);
  if (done != NULL) {
    done->func (s, done->data);
    g_hash_table_remove (p->turn_done, s);
  }
  cp_metrics_session_ended (p->metrics, r->kind,
      cp_session_get_state (s) == CP_SESSION_FAILED,
      (r->ended_at - r->started_at) / (gdouble) G_USEC_PER_SEC);
  if (cp_session_pipeline_failed (s))
    cp_metrics_pipeline_error (p->metrics, r->pipeline);
  /* The session may be inside its own bus callback: free it later. */
  schedule_reap (p);
}

CpSession *
cp_pool_start_call (CpPool *p, const CpCallRequest *req, GError **error)
{
  g_autoptr (CpSessionRecord) rec = NULL;
  g_autoptr (GHashTable) values = NULL;
  CpFactory *f;

  if (p->draining) {
    g_set_error (error, CP_POOL_ERROR, CP_POOL_ERROR_DRAINING,
        "callpiped is shutting down and takes no new calls");
    return NULL;
  }
  f = choose_call_factory (p, req, error);
  if (f == NULL)
    return NULL;

  rec = g_new0 (CpSessionRecord, 1);
  rec->id = g_uuid_string_random ();
  rec->kind = g_strdup ("call");
  rec->contact_id = g_strdup (req->contact_id);
  rec->state = g_strdup ("starting");
  rec->pipeline = g_strdup (cp_factory_get_name (f));
  rec->attributes_json = g_strdup (req->attributes_json);
  rec->started_at = g_get_real_time ();
  if (g_strv_contains (cp_factory_get_variables (f), "RECORDING_LOCATION"))
    rec->recording_path = cp_storage_recording_path (p->storage, rec->id);
  values = call_values (p, rec->id, req, rec->recording_path);
  return start_session (p, g_steal_pointer (&rec), f, g_steal_pointer (&values),
      error);
}

/* Takes @rec and @values. */
static CpSession *
start_session (CpPool *p, CpSessionRecord *rec, CpFactory *f,
    GHashTable *values, GError **error)
{
  g_autoptr (CpSessionRecord) owned = rec;
  g_autoptr (GHashTable) owned_values = values;
  g_autoptr (GError) lerr = NULL;
  g_autofree gchar *launch = NULL;
  gboolean is_call = !strcmp (rec->kind, "call");
  gboolean open_ended =
      strcmp (rec->kind, "turn") && strcmp (rec->kind, "upload");
  CpSession *s;

  /* Substitution is cheap and catches a pipeline asking for a value this
   * session does not have, so the caller hears about it now. */
  launch = cp_factory_expand (f, values, &lerr);
  if (launch == NULL
      || (strcmp (rec->kind, "upload") != 0
          && !cp_store_insert (p->store, rec, &lerr))) {
    internal_error (error, lerr);
    return NULL;
  }

  s = cp_session_new (g_steal_pointer (&owned), f,
      g_steal_pointer (&owned_values),
      open_ended ? p->config->long_call_warning : 0, is_call,
      p->config->drain_timeout, on_session_changed, p);
  g_hash_table_insert (p->sessions, g_strdup (cp_session_get_record (s)->id),
      s);
  cp_metrics_session_started (p->metrics, cp_session_get_record (s)->kind);
  cp_log (CP_LOG_INFO, cp_session_get_record (s)->id,
      cp_session_get_record (s)->contact_id, "%s accepted (pipeline %s)",
      cp_session_get_record (s)->kind, cp_factory_get_name (f));
  cp_session_start (s);
  return s;
}

CpSession *
cp_pool_start_turn (CpPool *p, const CpTurnRequest *req,
    CpPoolTurnDoneFunc done, gpointer user_data, GError **error)
{
  g_autoptr (CpSessionRecord) rec = NULL;
  GHashTable *values;
  TurnDone *td;
  CpFactory *f;
  CpSession *s;

  if (p->draining) {
    g_set_error (error, CP_POOL_ERROR, CP_POOL_ERROR_DRAINING,
        "callpiped is shutting down and takes no new turns");
    return NULL;
  }
  f = runnable_factory (p, TURN_PIPELINE, error);
  if (f == NULL)
    return NULL;
  rec = g_new0 (CpSessionRecord, 1);
  rec->id = g_uuid_string_random ();
  rec->kind = g_strdup ("turn");
  rec->contact_id = g_strdup (req->conversation_id);
  rec->state = g_strdup ("starting");
  rec->pipeline = g_strdup (TURN_PIPELINE);
  rec->recording_path = g_strdup (req->reply_location);
  rec->started_at = g_get_real_time ();
  values = bot_values (p, rec->id);
  put (values, "AUDIO_SOURCE", g_strdup (req->audio_source));
  put (values, "AUDIO_LOCATION", g_strdup (req->audio_location));
  put (values, "PROMPT_PATH", g_strdup (req->prompt_path));
  put (values, "REPLY_SINK", g_strdup (cp_storage_sink_element (p->storage)));
  put (values, "REPLY_LOCATION", g_strdup (req->reply_location));
  s = start_session (p, g_steal_pointer (&rec), f, values, error);
  if (s == NULL)
    return NULL;
  td = g_new0 (TurnDone, 1);
  td->func = done;
  td->data = user_data;
  g_hash_table_insert (p->turn_done, s, td);
  return s;
}

CpSession *
cp_pool_start_session (CpPool *p, const gchar *kind, const gchar *pipeline,
    GError **error)
{
  g_autoptr (CpSessionRecord) rec = NULL;
  GHashTable *values;
  CpFactory *f;

  if (p->draining) {
    g_set_error (error, CP_POOL_ERROR, CP_POOL_ERROR_DRAINING,
        "callpiped is shutting down and takes no new sessions");
    return NULL;
  }
  f = runnable_factory (p, pipeline, error);
  if (f == NULL)
    return NULL;

  rec = g_new0 (CpSessionRecord, 1);
  rec->id = g_uuid_string_random ();
  rec->kind = g_strdup (kind);
  rec->state = g_strdup ("starting");
  rec->pipeline = g_strdup (pipeline);
  rec->started_at = g_get_real_time ();
  values = bot_values (p, rec->id);
  return start_session (p, g_steal_pointer (&rec), f, values, error);
}

CpSession *
cp_pool_lookup (CpPool *p, const gchar *id)
{
  return g_hash_table_lookup (p->sessions, id);
}

guint
cp_pool_count_live (CpPool *p)
{
  GHashTableIter it;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&it, p->sessions);
  while (g_hash_table_iter_next (&it, NULL, &value)) {
    if (cp_session_is_live (value))
      n++;
  }
  return n;
}

gboolean
cp_pool_is_draining (CpPool *p)
{
  return p->draining;
}

void
cp_pool_drain (CpPool *p, guint timeout_s, CpPoolDrainedFunc done,
    gpointer data)
{
  g_autoptr (GPtrArray) live = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;
  guint i;

  p->draining = TRUE;
  p->drain_done = done;
  p->drain_data = data;
  /* stop() reports back synchronously, so walk a copy. */
  g_hash_table_iter_init (&it, p->sessions);
  while (g_hash_table_iter_next (&it, NULL, &value)) {
    if (cp_session_is_live (value))
      g_ptr_array_add (live, value);
  }
  cp_log (CP_LOG_INFO, NULL, NULL, "draining %u session(s), up to %u s",
      live->len, timeout_s);
  for (i = 0; i < live->len; i++)
    cp_session_stop (g_ptr_array_index (live, i), "shutdown", timeout_s);
  schedule_reap (p);
}

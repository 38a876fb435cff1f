/* callpiped — the callpipe supervisor: runs calls as pipelines behind an
 * HTTP API. See DESIGN.md §6. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cp-config.h"
#include "cp-factory.h"
#include "cp-log.h"
#include "cp-metrics.h"
#include "cp-pool.h"
#include "cp-server.h"
#include "cp-storage.h"
#include "cp-store.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>

/* A transcript upload at start-up waits this long for S3. */
#define RECOVERY_UPLOAD_TIMEOUT_S 30
/* Finished calls checked at start-up for a transcript never stored. */
#define RECOVERY_SCAN_LIMIT 1000
#define UPLOAD_PIPELINE "storage-upload"

typedef struct
{
  GMainLoop *loop;
  CpPool *pool;
  guint drain_timeout;
  gboolean stopping;
} Daemon;

static void
on_drained (gpointer data)
{
  Daemon *d = data;

  cp_log (CP_LOG_INFO, NULL, NULL, "all sessions finished; exiting");
  g_main_loop_quit (d->loop);
}

static gboolean
on_signal (gpointer data)
{
  Daemon *d = data;

  if (d->stopping) {
    cp_log (CP_LOG_INFO, NULL, NULL, "already draining");
    return G_SOURCE_CONTINUE;
  }
  d->stopping = TRUE;
  cp_log (CP_LOG_INFO, NULL, NULL, "shutdown requested");
  cp_pool_drain (d->pool, d->drain_timeout, on_drained, d);
  return G_SOURCE_CONTINUE;
}

/* ---- start-up: finishing what a crash left half done ---- */

typedef struct
{
  const CpConfig *config;
  CpStore *store;
  CpStorage *storage;
  CpFactory *upload; /* S3 only, loaded on first use */
  gboolean upload_failed; /* S3 is not answering: the rest waits */
  guint waiting; /* transcripts left in the spool */
} Recovery;

/* Copies a spooled transcript to S3 with the pipeline calls use, and
 * waits for it. */
static gboolean
upload_now (Recovery *rc, const gchar *local, const gchar *location,
    GError **error)
{
  g_autoptr (GHashTable) values = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstBus) bus = NULL;
  g_autoptr (GstMessage) msg = NULL;

  if (rc->upload == NULL) {
    rc->upload =
        cp_factory_load (rc->config->pipelines_dir, UPLOAD_PIPELINE, error);
    if (rc->upload == NULL)
      return FALSE;
  }
  g_hash_table_insert (values, (gpointer) "UPLOAD_PATH", (gpointer) local);
  g_hash_table_insert (values, (gpointer) "UPLOAD_LOCATION",
      (gpointer) location);
  pipeline =
      cp_factory_create_pipeline (rc->upload, "recovery-upload", values, error);
  if (pipeline == NULL)
    return FALSE;
  gst_object_ref_sink (pipeline);
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (bus, RECOVERY_UPLOAD_TIMEOUT_S * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  if (msg == NULL) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
        "no answer from S3 within %u s", RECOVERY_UPLOAD_TIMEOUT_S);
    return FALSE;
  }
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    g_autoptr (GError) err = NULL;

    gst_message_parse_error (msg, &err, NULL);
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED, "%s",
        err->message);
    return FALSE;
  }
  return TRUE;
}

/* The call's transcript is in storage once this is TRUE: a directory
 * holds it already, S3 gets the spooled copy. */
static gboolean
store_transcript (Recovery *rc, CpSessionRecord *r)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *rel = g_strconcat ("transcripts/", r->id, ".json", NULL);
  g_autofree gchar *local = cp_storage_local_path (rc->storage, rel);
  g_autofree gchar *location = cp_storage_location (rc->storage, rel);

  if (cp_storage_is_s3 (rc->storage)) {
    if (rc->upload_failed || !upload_now (rc, local, location, &error)) {
      if (error != NULL) {
        cp_log (CP_LOG_ERROR, r->id, r->contact_id,
            "the spooled transcript %s was not uploaded: %s", local,
            error->message);
        rc->upload_failed = TRUE;
      }
      return FALSE;
    }
  }
  g_free (r->transcript_path);
  r->transcript_path = g_steal_pointer (&location);
  return TRUE;
}

/* What became of a recording that was being written: the reason's note,
 * or NULL when it is whole. */
static gchar *
recover_recording (Recovery *rc, const CpSessionRecord *r)
{
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;

  if (r->recording_path == NULL)
    return NULL;
  /* s3sink completes the object at EOS only. */
  if (g_str_has_prefix (r->recording_path, "s3://"))
    return g_strdup ("recording lost: its upload to S3 never completed");
  if (!cp_storage_repair_wav (r->recording_path, &wav, &error)) {
    GStatBuf st;

    if (g_error_matches (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_NOT_FOUND))
      return g_strdup ("no recording was written");
    if (g_stat (r->recording_path, &st) == 0 && st.st_size == 0)
      return g_strdup ("recording lost: none of it reached the disk");
    return g_strdup_printf ("recording unplayable: %s", error->message);
  }
  if (wav.state == CP_STORAGE_WAV_COMPLETE)
    return NULL;
  return g_strdup_printf ("recording repaired: %.1f s kept, the last moments "
                          "before the crash may be missing",
      wav.rate > 0 ? (gdouble) wav.frames / wav.rate : 0.0);
}

/* A session the crash cut short: its recording is made playable, a call's
 * transcript (the conversation so far) is written, and the reason says
 * what could not be saved. */
static void
recover_interrupted (Recovery *rc, CpSessionRecord *r, gint64 now)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) reason = g_string_new (CP_STORE_INTERRUPTED_REASON);
  g_autofree gchar *note = NULL;
  GStatBuf st;

  cp_log (CP_LOG_WARNING, r->id, r->contact_id,
      "session was %s when callpiped stopped", r->state);
  /* The recording's last write is the last sign of life there is. */
  r->ended_at = now;
  if (r->recording_path != NULL && g_stat (r->recording_path, &st) == 0
      && st.st_mtime * G_USEC_PER_SEC > r->started_at)
    r->ended_at = MIN (now, (gint64) st.st_mtime * G_USEC_PER_SEC);
  note = recover_recording (rc, r);
  if (note != NULL)
    g_string_append_printf (reason, "; %s", note);
  g_free (r->state);
  r->state = g_strdup ("failed");
  g_free (r->reason);
  r->reason = g_strdup (reason->str);

  if (!g_strcmp0 (r->kind, "call") && r->transcript_path == NULL) {
    g_autofree gchar *doc = cp_session_record_transcript (r);
    g_autofree gchar *rel = g_strconcat ("transcripts/", r->id, ".json", NULL);
    g_autofree gchar *local = cp_storage_local_path (rc->storage, rel);

    if (!g_file_set_contents (local, doc, -1, &error)) {
      g_string_append_printf (reason, "; transcript not saved: %s",
          error->message);
      g_free (r->reason);
      r->reason = g_strdup (reason->str);
    } else {
      store_transcript (rc, r);
    }
  }
  cp_log (CP_LOG_WARNING, r->id, r->contact_id, "marked failed (%s)",
      r->reason);
  g_clear_error (&error);
  if (!cp_store_update (rc->store, r, &error))
    cp_log (CP_LOG_ERROR, r->id, r->contact_id, "%s", error->message);
}

/* Calls that ended with their transcript written but not stored: S3 went
 * away mid-upload, or the crash came between the two. */
static void
recover_transcripts (Recovery *rc)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rows =
      cp_store_list_untranscribed (rc->store, RECOVERY_SCAN_LIMIT, &error);
  guint i;

  if (rows == NULL) {
    cp_log (CP_LOG_ERROR, NULL, NULL, "%s", error->message);
    return;
  }
  for (i = 0; i < rows->len; i++) {
    CpSessionRecord *r = g_ptr_array_index (rows, i);
    g_autofree gchar *rel = g_strconcat ("transcripts/", r->id, ".json", NULL);
    g_autofree gchar *local = cp_storage_local_path (rc->storage, rel);

    if (!g_file_test (local, G_FILE_TEST_IS_REGULAR))
      continue;
    if (!store_transcript (rc, r)) {
      rc->waiting++;
      continue;
    }
    cp_log (CP_LOG_INFO, r->id, r->contact_id,
        "the transcript left by the last run is stored");
    g_clear_error (&error);
    if (!cp_store_update (rc->store, r, &error))
      cp_log (CP_LOG_ERROR, r->id, r->contact_id, "%s", error->message);
  }
}

static void
recover (const CpConfig *config, CpStore *store, CpStorage *storage,
    GPtrArray *interrupted)
{
  Recovery rc = {config, store, storage, NULL, FALSE, 0};
  gint64 now = g_get_real_time ();
  guint i;

  for (i = 0; i < interrupted->len; i++)
    recover_interrupted (&rc, g_ptr_array_index (interrupted, i), now);
  recover_transcripts (&rc);
  if (rc.waiting > 0)
    cp_log (CP_LOG_WARNING, NULL, NULL,
        "%u transcript(s) wait in the spool for S3; the next start tries "
        "again",
        rc.waiting);
  if (rc.upload != NULL)
    cp_factory_free (rc.upload);
}

static int
run (CpConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpStore) store = NULL;
  g_autoptr (CpStorage) storage = NULL;
  g_autoptr (CpMetrics) metrics = NULL;
  g_autoptr (CpServer) server = NULL;
  g_autoptr (GPtrArray) recovered = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autofree gchar *db_path = NULL;
  g_autofree gchar *secret_path = NULL;
  CpPool *pool;
  Daemon d = {0};
  guint port = 0;
  guint sig_term, sig_int;

  if (g_mkdir_with_parents (config->data_dir, 0750) != 0) {
    cp_log (CP_LOG_ERROR, NULL, NULL, "cannot create %s: %s", config->data_dir,
        g_strerror (errno));
    return 1;
  }
  db_path = g_build_filename (config->data_dir, "callpiped.db", NULL);
  secret_path = g_build_filename (config->data_dir, "media-secret", NULL);
  store = cp_store_open (db_path, &error);
  if (store == NULL)
    goto failed;
  if (g_str_has_prefix (config->storage_uri, "s3://")) {
    /* s3sink, s3src and the presigned links all resolve the endpoint
     * through AWS_ENDPOINT_URL_S3; set before any thread starts. */
    if (config->storage_endpoint != NULL)
      g_setenv ("AWS_ENDPOINT_URL_S3", config->storage_endpoint, TRUE);
    /* Files on their way to or from S3 wait in the data directory. */
    g_autofree gchar *spool =
        g_build_filename (config->data_dir, "spool", NULL);

    storage = cp_storage_new (spool, secret_path, &error);
    if (storage != NULL)
      cp_storage_set_s3 (storage, config->storage_uri);
  } else {
    storage = cp_storage_new (config->storage_uri, secret_path, &error);
  }
  if (storage == NULL)
    goto failed;
  /* Marked and finished together: a start that fails before this leaves
   * the sessions for the next one. */
  recovered = cp_store_recover (store, g_get_real_time (), &error);
  if (recovered == NULL)
    goto failed;
  recover (config, store, storage, recovered);

  metrics = cp_metrics_new ();
  pool = cp_pool_new (config, store, storage, metrics);
  cp_pool_log_pipelines (pool);
  server = cp_server_new (config, pool, store, storage, metrics);
  if (!cp_server_listen (server, config->address, config->port, &port,
          &error)) {
    cp_pool_free (pool);
    goto failed;
  }

  loop = g_main_loop_new (NULL, FALSE);
  d.loop = loop;
  d.pool = pool;
  d.drain_timeout = config->drain_timeout;
  sig_term = g_unix_signal_add (SIGTERM, on_signal, &d);
  sig_int = g_unix_signal_add (SIGINT, on_signal, &d);

  cp_log (CP_LOG_INFO, NULL, NULL,
      "listening on port %u (data %s, storage "
      "%s, pipelines %s)",
      port, config->data_dir, config->storage_uri, config->pipelines_dir);
  /* The one line on stdout: scripts and tests started with --port 0 read
   * the port from it. */
  printf ("callpiped listening on port %u\n", port);
  fflush (stdout);

  g_main_loop_run (loop);

  g_source_remove (sig_term);
  g_source_remove (sig_int);
  /* Stop taking requests before the sessions go away. */
  g_clear_pointer (&server, cp_server_free);
  cp_pool_free (pool);
  return 0;

failed:
  cp_log (CP_LOG_ERROR, NULL, NULL, "%s", error->message);
  return 1;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *config_path = NULL;
  g_autofree gchar *data_dir = NULL;
  gint port = -1;
  gboolean debug = FALSE;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (CpConfig) config = NULL;
  g_auto (GStrv) envp = NULL;
  GOptionEntry entries[] =
      {{"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
           "Key file with [server], [storage], [bot], [pipelines]", "FILE"},
          {"port", 'p', 0, G_OPTION_ARG_INT, &port,
              "HTTP port (default 8080; 0 picks a free one and prints it)",
              "N"},
          {"data-dir", 'd', 0, G_OPTION_ARG_FILENAME, &data_dir,
              "State directory: SQLite, media secret, default storage (./var)",
              "DIR"},
          {"debug", 0, 0, G_OPTION_ARG_NONE, &debug, "Log debug lines", NULL},
          {NULL}};
  int ret;

  ctx = g_option_context_new ("- the callpipe supervisor");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "callpiped: %s\n", error->message);
    return 2;
  }
  cp_log_install ();
  cp_log_set_debug (debug);

  envp = g_get_environ ();
  config = cp_config_load (config_path, (const gchar *const *) envp, &error);
  if (config == NULL) {
    cp_log (CP_LOG_ERROR, NULL, NULL, "%s", error->message);
    return 2;
  }
  if (port > 65535) {
    cp_log (CP_LOG_ERROR, NULL, NULL, "--port must be 0..65535");
    return 2;
  }
  if (port >= 0)
    config->port = port;
  if (data_dir != NULL) {
    g_free (config->data_dir);
    config->data_dir = g_steal_pointer (&data_dir);
  }
  if (!cp_config_resolve (config, &error)) {
    cp_log (CP_LOG_ERROR, NULL, NULL, "%s", error->message);
    return 2;
  }

  /* novasonic finds the shipped prompts and tools there. */
  g_setenv ("CALLPIPE_PIPELINES_DIR", config->pipelines_dir, FALSE);
  ret = run (config);
  gst_deinit ();
  return ret;
}

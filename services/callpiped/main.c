/* callpiped — the callpipe supervisor: runs calls as pipelines behind an
 * HTTP API. See DESIGN.md §6. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cp-config.h"
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

static void
log_recovered (GPtrArray *rows)
{
  guint i;

  for (i = 0; i < rows->len; i++) {
    const CpSessionRecord *r = g_ptr_array_index (rows, i);

    cp_log (CP_LOG_WARNING, r->id, r->contact_id,
        "session was %s when "
        "callpiped stopped; marked failed (%s)",
        r->state, CP_STORE_INTERRUPTED_REASON);
  }
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
  recovered = cp_store_recover (store, g_get_real_time (), &error);
  if (recovered == NULL)
    goto failed;
  log_recovered (recovered);
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

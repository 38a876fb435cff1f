/* Unit tests: signed media links, path checks, the session store. */
#include "cp-metrics.h"
#include "cp-storage.h"
#include "cp-store.h"
#include "test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static const guint8 secret[CP_STORAGE_SECRET_LEN] = {1, 2, 3, 4, 5};

/* Splits "/media/<rel>?expires=E&sig=S" back into its parts. */
static void
split_link (const gchar *link, gchar **rel, gchar **expires, gchar **sig)
{
  g_autoptr (GUri) uri = g_uri_parse (link, G_URI_FLAGS_NONE, NULL);
  g_autoptr (GHashTable) q = NULL;

  if (uri == NULL) {
    g_autofree gchar *abs = g_strconcat ("http://h", link, NULL);

    uri = g_uri_parse (abs, G_URI_FLAGS_NONE, NULL);
  }
  g_assert_nonnull (uri);
  g_assert_true (g_str_has_prefix (g_uri_get_path (uri), "/media/"));
  *rel = g_strdup (g_uri_get_path (uri) + strlen ("/media/"));
  q = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE,
      NULL);
  *expires = g_strdup (g_hash_table_lookup (q, "expires"));
  *sig = g_strdup (g_hash_table_lookup (q, "sig"));
}

static void
test_sign_verify (void)
{
  g_autoptr (CpStorage) s =
      cp_storage_new_with_secret ("/tmp", secret, sizeof (secret));
  g_autoptr (CpStorage) other = NULL;
  g_autofree gchar *link = cp_storage_sign (s, "recordings/a.wav", 2000);
  g_autofree gchar *rel = NULL, *exp = NULL, *sig = NULL;
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;
  g_autoptr (GError) e4 = NULL;
  g_autoptr (GError) e5 = NULL;
  guint8 other_secret[CP_STORAGE_SECRET_LEN] = {9};
  gchar first;

  split_link (link, &rel, &exp, &sig);
  g_assert_cmpstr (rel, ==, "recordings/a.wav");
  g_assert_cmpstr (exp, ==, "2000");
  g_assert_true (cp_storage_verify (s, rel, exp, sig, 1999, NULL));
  g_assert_true (cp_storage_verify (s, rel, exp, sig, 2000, NULL));

  /* expired */
  g_assert_false (cp_storage_verify (s, rel, exp, sig, 2001, &e1));
  g_assert_error (e1, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN);
  /* longer life, other file, altered signature */
  g_assert_false (cp_storage_verify (s, rel, "3000", sig, 1999, &e2));
  g_assert_false (
      cp_storage_verify (s, "recordings/b.wav", exp, sig, 1999, &e3));
  first = sig[0];
  sig[0] = first == 'a' ? 'b' : 'a';
  g_assert_false (cp_storage_verify (s, rel, exp, sig, 1999, &e4));
  g_assert_false (cp_storage_verify (s, rel, exp, NULL, 1999, NULL));
  /* another install's secret */
  other =
      cp_storage_new_with_secret ("/tmp", other_secret, sizeof (other_secret));
  sig[0] = first;
  g_assert_true (cp_storage_verify (s, rel, exp, sig, 1999, NULL));
  g_assert_false (cp_storage_verify (other, rel, exp, sig, 1999, &e5));
  g_assert_error (e5, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN);
}

static void
test_traversal_rejected (void)
{
  g_autoptr (CpStorage) s =
      cp_storage_new_with_secret ("/tmp", secret, sizeof (secret));
  const gchar *bad[] = {
      "../etc/passwd",
      "recordings/../../etc/passwd",
      "/etc/passwd",
      "recordings//a.wav",
      "recordings/.hidden",
      "recordings/%2e%2e/x",
      "a\\b",
      "",
      "recordings/a b.wav",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree gchar *link = cp_storage_sign (s, bad[i], 5000);
    g_autofree gchar *rel = NULL, *exp = NULL, *sig = NULL;
    g_autoptr (GError) e1 = NULL;
    g_autoptr (GError) e2 = NULL;
    g_autoptr (GHmac) h = NULL;

    /* even correctly signed, an unsafe path is refused */
    h = g_hmac_new (G_CHECKSUM_SHA256, secret, sizeof (secret));
    g_hmac_update (h, (const guchar *) bad[i], strlen (bad[i]));
    g_hmac_update (h, (const guchar *) "\n5000", 5);
    g_assert_false (
        cp_storage_verify (s, bad[i], "5000", g_hmac_get_string (h), 1, &e1));
    g_assert_error (e1, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN);
    g_assert_null (cp_storage_resolve (s, bad[i], &e2));
    g_assert_error (e2, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN);
  }
}

static void
test_resolve_symlink_escape (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("callpiped-storage-XXXXXX", NULL);
  g_autofree gchar *secret_file = g_build_filename (dir, "secret", NULL);
  g_autofree gchar *root = g_build_filename (dir, "storage", NULL);
  g_autofree gchar *inside =
      g_build_filename (root, "recordings", "a.wav", NULL);
  g_autofree gchar *link =
      g_build_filename (root, "recordings", "out.wav", NULL);
  g_autofree gchar *resolved = NULL;
  g_autoptr (CpStorage) s = NULL;
  g_autoptr (CpStorage) again = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *l1 = NULL, *l2 = NULL;

  s = cp_storage_new (root, secret_file, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (inside, "RIFF", 4, NULL));
  g_assert_cmpint (symlink ("/etc/hostname", link), ==, 0);
  resolved = cp_storage_resolve (s, "recordings/a.wav", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (resolved, "/storage/recordings/a.wav"));
  g_assert_null (cp_storage_resolve (s, "recordings/out.wav", &error));
  g_assert_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN);
  g_clear_error (&error);
  g_assert_null (cp_storage_resolve (s, "recordings/none.wav", &error));
  g_assert_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* the secret persists across restarts */
  again = cp_storage_new (root, secret_file, &error);
  g_assert_no_error (error);
  l1 = cp_storage_sign (s, "recordings/a.wav", 10);
  l2 = cp_storage_sign (again, "recordings/a.wav", 10);
  g_assert_cmpstr (l1, ==, l2);

  cp_test_remove_tree (dir);
}

static void
test_constant_time_equal (void)
{
  g_assert_true (cp_constant_time_equal ("token", "token"));
  g_assert_false (cp_constant_time_equal ("token", "tokem"));
  g_assert_false (cp_constant_time_equal ("token", "token2"));
  g_assert_false (cp_constant_time_equal ("", "x"));
}

static CpSessionRecord *
record_new (const gchar *id, const gchar *state, gint64 started)
{
  CpSessionRecord *r = g_new0 (CpSessionRecord, 1);

  r->id = g_strdup (id);
  r->kind = g_strdup ("call");
  r->contact_id = g_strdup ("c");
  r->state = g_strdup (state);
  r->started_at = started;
  return r;
}

static void
test_store_recover (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("callpiped-store-XXXXXX", NULL);
  g_autofree gchar *db = g_build_filename (dir, "callpiped.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CpStore) store = cp_store_open (db, &error);
  g_autoptr (CpSessionRecord) a = record_new ("a", "running", 1);
  g_autoptr (CpSessionRecord) b = record_new ("b", "starting", 2);
  g_autoptr (CpSessionRecord) c = record_new ("c", "ended", 3);
  g_autoptr (CpSessionRecord) got = NULL;
  g_autoptr (GPtrArray) recovered = NULL;
  g_autoptr (GPtrArray) list = NULL;

  g_assert_no_error (error);
  g_assert_true (cp_store_insert (store, a, NULL));
  g_assert_true (cp_store_insert (store, b, NULL));
  c->reason = g_strdup ("end of stream");
  c->ended_at = 4;
  g_assert_true (cp_store_insert (store, c, NULL));
  g_assert_false (cp_store_insert (store, c, &error));
  g_clear_error (&error);

  /* a restart: reopen the file */
  g_clear_pointer (&store, cp_store_close);
  store = cp_store_open (db, &error);
  g_assert_no_error (error);
  recovered = cp_store_recover (store, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (recovered->len, ==, 2);
  got = cp_store_get (store, "a", &error);
  g_assert_cmpstr (got->state, ==, "failed");
  g_assert_cmpstr (got->reason, ==, CP_STORE_INTERRUPTED_REASON);
  g_assert_cmpint (got->ended_at, ==, 10);
  g_clear_pointer (&got, cp_session_record_free);
  got = cp_store_get (store, "c", &error);
  g_assert_cmpstr (got->state, ==, "ended");
  g_assert_cmpstr (got->reason, ==, "end of stream");
  g_assert_null (cp_store_get (store, "nope", &error));
  g_assert_no_error (error);

  list = cp_store_list (store, 2, &error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpstr (((CpSessionRecord *) list->pdata[0])->id, ==, "c");
  g_assert_cmpstr (((CpSessionRecord *) list->pdata[1])->id, ==, "b");
  g_clear_pointer (&store, cp_store_close);
  cp_test_remove_tree (dir);
}

static void
test_metrics_render (void)
{
  g_autoptr (CpMetrics) m = cp_metrics_new ();
  g_autofree gchar *text = NULL;

  cp_metrics_session_started (m, "call");
  cp_metrics_session_started (m, "call");
  cp_metrics_session_ended (m, "call", FALSE, 3.0);
  cp_metrics_pipeline_error (m, "media-record");
  text = cp_metrics_render (m);
  g_assert_nonnull (
      strstr (text, "callpipe_sessions_active{kind=\"call\"} 1\n"));
  g_assert_nonnull (
      strstr (text, "callpipe_sessions_started_total{kind=\"call\"} 2\n"));
  g_assert_nonnull (
      strstr (text, "callpipe_sessions_ended_total{kind=\"call\"} 1\n"));
  g_assert_nonnull (
      strstr (text, "callpipe_sessions_failed_total{kind=\"call\"} 0\n"));
  g_assert_nonnull (strstr (text,
      "callpipe_session_duration_seconds_bucket"
      "{kind=\"call\",le=\"1\"} 0\n"));
  g_assert_nonnull (strstr (text,
      "callpipe_session_duration_seconds_bucket"
      "{kind=\"call\",le=\"5\"} 1\n"));
  g_assert_nonnull (strstr (text,
      "callpipe_session_duration_seconds_bucket"
      "{kind=\"call\",le=\"+Inf\"} 1\n"));
  g_assert_nonnull (strstr (text,
      "callpipe_pipeline_errors_total{pipeline=\"media-record\"} 1\n"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/callpiped/storage/sign-verify", test_sign_verify);
  g_test_add_func ("/callpiped/storage/traversal", test_traversal_rejected);
  g_test_add_func ("/callpiped/storage/symlink-escape",
      test_resolve_symlink_escape);
  g_test_add_func ("/callpiped/storage/constant-time-equal",
      test_constant_time_equal);
  g_test_add_func ("/callpiped/store/recover", test_store_recover);
  g_test_add_func ("/callpiped/metrics/render", test_metrics_render);
  return g_test_run ();
}

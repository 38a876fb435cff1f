/* s3sink and s3src against moto's S3 on 127.0.0.1, through the
 * fault-injecting proxy of s3peer.py; objects are read back with boto3
 * (s3check.py) as well as with s3src. Skips when moto or boto3 is
 * missing. */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>

#include <glib/gstdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>

#define MIB (1024 * 1024)
#define PIPELINE_TIMEOUT (120 * GST_SECOND)
#define WAV_RATE 8000
#define WAV_SECONDS 3

static GSubprocess *peer;
static gchar *moto_url;
static gchar *proxy_url;
static gchar *tmpdir;
static gboolean skip_all;

/* ---- the peer ---- */

static void
kill_with_parent (gpointer data)
{
  /* The peer must not outlive the test, whatever ends it. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
peer_setup (void)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *line = NULL;
  g_auto (GStrv) ports = NULL;

  tmpdir = g_dir_make_tmp ("test-s3-XXXXXX", &error);
  g_assert_no_error (error);
  if (!g_file_test (S3_PYTHON, G_FILE_TEST_IS_EXECUTABLE)) {
    skip_all = TRUE;
    return;
  }
  launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, kill_with_parent, NULL,
      NULL);
  peer = g_subprocess_launcher_spawn (launcher, &error, S3_PYTHON,
      S3PEER_SCRIPT, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (peer));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  if (line == NULL || g_str_has_prefix (line, "SKIP")) {
    skip_all = TRUE;
    return;
  }
  ports = g_strsplit (line, " ", 2);
  g_assert_cmpuint (g_strv_length (ports), ==, 2);
  moto_url = g_strdup_printf ("http://127.0.0.1:%s", ports[0]);
  proxy_url = g_strdup_printf ("http://127.0.0.1:%s", ports[1]);
}

static void
peer_teardown (void)
{
  if (peer) {
    g_subprocess_force_exit (peer);
    g_subprocess_wait (peer, NULL, NULL);
    g_clear_object (&peer);
  }
  if (tmpdir) {
    g_autoptr (GDir) dir = g_dir_open (tmpdir, 0, NULL);
    const gchar *name;

    while (dir && (name = g_dir_read_name (dir))) {
      g_autofree gchar *path = g_build_filename (tmpdir, name, NULL);

      g_unlink (path);
    }
    g_rmdir (tmpdir);
  }
  g_clear_pointer (&tmpdir, g_free);
  g_clear_pointer (&moto_url, g_free);
  g_clear_pointer (&proxy_url, g_free);
}

#define SKIP_WITHOUT_PEER()                                                 \
  G_STMT_START                                                              \
  {                                                                         \
    if (skip_all) {                                                         \
      g_print ("SKIP: moto or boto3 is not installed for " S3_PYTHON "\n"); \
      return;                                                               \
    }                                                                       \
  }                                                                         \
  G_STMT_END

/* Runs s3check.py (boto3, straight to moto); returns its stdout. */
static gchar *
s3check (const gchar *command, const gchar *a, const gchar *b, const gchar *c)
{
  const gchar *argv[] = {S3_PYTHON, S3CHECK_SCRIPT, moto_url, command, a, b, c,
      NULL};
  g_autoptr (GError) error = NULL;
  gchar *out = NULL;
  g_autofree gchar *err = NULL;
  gint status;

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
      &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    fail ("s3check.py %s failed: %s", command, err);
  return out;
}

static void
make_bucket (const gchar *bucket)
{
  g_free (s3check ("mkbucket", bucket, NULL, NULL));
}

static guint
count_uploads (const gchar *bucket)
{
  g_autofree gchar *out = s3check ("uploads", bucket, NULL, NULL);

  return (guint) g_ascii_strtoull (out, NULL, 10);
}

static JsonObject *
head_object (const gchar *bucket, const gchar *key)
{
  g_autofree gchar *out = s3check ("head", bucket, key, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();

  fail_unless (json_parser_load_from_data (parser, out, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static GBytes *
boto3_get (const gchar *bucket, const gchar *key)
{
  g_autofree gchar *path = g_build_filename (tmpdir, "boto3.out", NULL);
  gchar *data;
  gsize len;

  g_free (s3check ("get", bucket, key, path));
  fail_unless (g_file_get_contents (path, &data, &len, NULL));
  g_unlink (path);
  return g_bytes_new_take (data, len);
}

/* ---- the proxy's control paths ---- */

static gchar *
proxy_control (const gchar *method, const gchar *path, const gchar *body)
{
  g_autofree gchar *url = g_strconcat (proxy_url, path, NULL);
  g_autoptr (GError) error = NULL;
  const gchar *argv[] = {S3_PYTHON, "-c",
      "import sys, urllib.request\n"
      "r = urllib.request.Request(sys.argv[2], method=sys.argv[1],"
      " data=sys.argv[3].encode() if len(sys.argv) > 3 else None)\n"
      "print(urllib.request.urlopen(r).read().decode())",
      method, url, body, NULL};
  gchar *out = NULL;
  gint status;

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
      NULL, &status, &error);
  g_assert_no_error (error);
  fail_unless (g_spawn_check_wait_status (status, NULL));
  return out;
}

static void
set_faults (const gchar *json)
{
  g_free (proxy_control ("POST", "/__reset", NULL));
  g_free (proxy_control ("POST", "/__faults", json));
}

/* How many proxied requests had @method and a query containing @query
 * (and, when @status is not 0, that status). */
static guint
count_requests (const gchar *path_suffix, const gchar *method,
    const gchar *query, guint status)
{
  g_autofree gchar *out = proxy_control ("GET", "/__log", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *log;
  guint i, n = 0;

  fail_unless (json_parser_load_from_data (parser, out, -1, NULL));
  log = json_node_get_array (json_parser_get_root (parser));
  for (i = 0; i < json_array_get_length (log); i++) {
    JsonObject *e = json_array_get_object_element (log, i);
    const gchar *q = json_object_get_string_member (e, "query");

    if (g_str_has_suffix (json_object_get_string_member (e, "path"),
            path_suffix)
        && strcmp (json_object_get_string_member (e, "method"), method) == 0
        && (query == NULL
            || (strstr (q, query) != NULL
                && (strlen (query) == strlen (q)
                    || strchr ("&=", q[strlen (query)]) != NULL)))
        && (status == 0
            || json_object_get_int_member (e, "status") == (gint64) status))
      n++;
  }
  return n;
}

/* ---- pipelines ---- */

typedef struct
{
  GError *error;
  GstStructure *complete; /* the s3sink-complete message */
} RunResult;

static void
run_result_clear (RunResult *r)
{
  g_clear_error (&r->error);
  g_clear_pointer (&r->complete, gst_structure_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RunResult, run_result_clear)

static void
run_bin (GstElement *pipeline, RunResult *result)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  gboolean done = FALSE;

  memset (result, 0, sizeof (*result));
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while (!done) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, PIPELINE_TIMEOUT,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT);

    fail_unless (msg != NULL, "pipeline timed out");
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_EOS:
        done = TRUE;
        break;
      case GST_MESSAGE_ERROR:
        gst_message_parse_error (msg, &result->error, NULL);
        done = TRUE;
        break;
      default:
        if (gst_message_has_name (msg, "s3sink-complete")) {
          fail_unless (result->complete == NULL);
          result->complete =
              gst_structure_copy (gst_message_get_structure (msg));
        }
        break;
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
}

static void
run_launch (const gchar *description, RunResult *result)
{
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (description, &error);

  g_assert_no_error (error);
  run_bin (pipeline, result);
  gst_object_unref (pipeline);
}

static gchar *
write_random_file (const gchar *name, gsize size, guint32 seed)
{
  gchar *path = g_build_filename (tmpdir, name, NULL);
  guint8 *data = g_malloc (size);
  GRand *rand = g_rand_new_with_seed (seed);
  gsize i;

  for (i = 0; i < size; i++)
    data[i] = (guint8) g_rand_int (rand);
  fail_unless (g_file_set_contents (path, (gchar *) data, size, NULL));
  g_rand_free (rand);
  g_free (data);
  return path;
}

static GBytes *
read_file (const gchar *path)
{
  gchar *data;
  gsize len;

  fail_unless (g_file_get_contents (path, &data, &len, NULL));
  return g_bytes_new_take (data, len);
}

/* Uploads @path with s3sink through the proxy; @extra are more
 * properties. */
static void
upload_file (const gchar *path, const gchar *bucket, const gchar *key,
    const gchar *extra, RunResult *result)
{
  g_autofree gchar *desc =
      g_strdup_printf ("filesrc location=%s "
                       "blocksize=65536 ! s3sink location=\"s3://%s/%s\" "
                       "endpoint=%s "
                       "access-key=testing secret-key=testing %s",
          path, bucket, key, proxy_url, extra ? extra : "");

  run_launch (desc, result);
}

/* Reads an object back with s3src into a file and returns its bytes. */
static GBytes *
s3src_get (const gchar *bucket, const gchar *key, const gchar *extra)
{
  g_autofree gchar *out = g_build_filename (tmpdir, "s3src.out", NULL);
  g_autofree gchar *desc =
      g_strdup_printf ("s3src location=\"s3://%s/%s\" "
                       "endpoint=%s access-key=testing secret-key=testing %s ! "
                       "filesink location=%s",
          bucket, key, proxy_url, extra ? extra : "", out);
  g_auto (RunResult) r = {0};
  GBytes *data;

  run_launch (desc, &r);
  fail_unless (r.error == NULL, "s3src: %s", r.error ? r.error->message : "");
  data = read_file (out);
  g_unlink (out);
  return data;
}

static void
assert_same_bytes (GBytes *a, GBytes *b)
{
  fail_unless_equals_uint64 (g_bytes_get_size (a), g_bytes_get_size (b));
  fail_unless (g_bytes_equal (a, b), "contents differ");
}

/* ---- tests ---- */

GST_START_TEST (test_small_object_put)
{
  g_autofree gchar *path = NULL;
  g_autoptr (GBytes) sent = NULL;
  g_autoptr (GBytes) via_boto3 = NULL;
  g_autoptr (GBytes) via_s3src = NULL;
  g_autoptr (JsonObject) head = NULL;
  g_auto (RunResult) r = {0};
  const gchar *etag;
  guint64 size;

  SKIP_WITHOUT_PEER ();
  make_bucket ("small");
  set_faults ("[]");
  path = write_random_file ("small.bin", 300 * 1024 + 7, 1);
  sent = read_file (path);
  upload_file (path, "small", "dir/small one.bin",
      "content-type=application/x-test "
      "metadata=\"m,contact-id=(string)c-42,n=7\"",
      &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");
  fail_unless (r.complete != NULL);

  fail_unless_equals_string (gst_structure_get_string (r.complete, "bucket"),
      "small");
  fail_unless_equals_string (gst_structure_get_string (r.complete, "key"),
      "dir/small one.bin");
  fail_unless (gst_structure_get_uint64 (r.complete, "size", &size));
  fail_unless_equals_uint64 (size, g_bytes_get_size (sent));
  etag = gst_structure_get_string (r.complete, "etag");
  fail_unless (etag != NULL && strchr (etag, '-') == NULL,
      "a single PutObject has a plain MD5 ETag, got %s", etag);
  /* One PutObject, no multipart upload. */
  fail_unless_equals_int (count_requests ("small%20one.bin", "PUT", NULL, 200),
      1);
  fail_unless_equals_int (count_requests ("small%20one.bin", "POST", NULL, 0),
      0);

  head = head_object ("small", "dir/small one.bin");
  fail_unless_equals_string (json_object_get_string_member (head, "etag"),
      etag);
  fail_unless_equals_string (json_object_get_string_member (head,
                                 "content-type"),
      "application/x-test");
  fail_unless_equals_string (
      json_object_get_string_member (json_object_get_object_member (head,
                                         "metadata"),
          "contact-id"),
      "c-42");
  fail_unless_equals_string (
      json_object_get_string_member (json_object_get_object_member (head,
                                         "metadata"),
          "n"),
      "7");

  via_boto3 = boto3_get ("small", "dir/small one.bin");
  assert_same_bytes (sent, via_boto3);
  via_s3src = s3src_get ("small", "dir/small one.bin", NULL);
  assert_same_bytes (sent, via_s3src);
}

GST_END_TEST;

GST_START_TEST (test_multipart_object)
{
  g_autofree gchar *path = NULL;
  g_autoptr (GBytes) sent = NULL;
  g_autoptr (GBytes) via_boto3 = NULL;
  g_autoptr (GBytes) via_s3src = NULL;
  g_autoptr (JsonObject) head = NULL;
  g_auto (RunResult) r = {0};
  const gchar *etag;
  guint parts;

  SKIP_WITHOUT_PEER ();
  make_bucket ("multi");
  set_faults ("[]");
  /* Three parts of 5 MiB, the last one short. */
  path = write_random_file ("multi.bin", 12 * MIB + 12345, 2);
  sent = read_file (path);
  upload_file (path, "multi", "rec/call.bin",
      "part-size=5242880 "
      "max-inflight-parts=2 content-type=audio/x-test "
      "storage-class=STANDARD_IA metadata=\"m,contact-id=abc\"",
      &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");
  fail_unless (r.complete != NULL);
  etag = gst_structure_get_string (r.complete, "etag");
  fail_unless (g_str_has_suffix (etag, "-3\""), "ETag %s", etag);
  fail_unless (gst_structure_get_uint (r.complete, "parts", &parts));
  fail_unless_equals_int (parts, 3);
  fail_unless_equals_int (count_requests ("call.bin", "PUT", "partNumber", 0),
      3);

  head = head_object ("multi", "rec/call.bin");
  fail_unless_equals_string (json_object_get_string_member (head, "etag"),
      etag);
  fail_unless_equals_int (json_object_get_int_member (head, "size"),
      g_bytes_get_size (sent));
  fail_unless_equals_string (json_object_get_string_member (head,
                                 "content-type"),
      "audio/x-test");
  fail_unless_equals_string (
      json_object_get_string_member (json_object_get_object_member (head,
                                         "metadata"),
          "contact-id"),
      "abc");
  fail_unless_equals_int (count_uploads ("multi"), 0);

  via_boto3 = boto3_get ("multi", "rec/call.bin");
  assert_same_bytes (sent, via_boto3);
  /* Small chunks: many ranged GETs, read ahead across chunk borders. */
  via_s3src = s3src_get ("multi", "rec/call.bin",
      "chunk-size=1000000 "
      "blocksize=300000");
  assert_same_bytes (sent, via_s3src);
}

GST_END_TEST;

GST_START_TEST (test_retries_lose_nothing)
{
  g_autofree gchar *path = NULL;
  g_autoptr (GBytes) sent = NULL;
  g_autoptr (GBytes) via_boto3 = NULL;
  g_auto (RunResult) r = {0};

  SKIP_WITHOUT_PEER ();
  make_bucket ("retry");
  /* Part 2 fails twice (500), part 3 once (503 SlowDown), part 1 is
   * slow, and the first CreateMultipartUpload and the first
   * CompleteMultipartUpload fail too. */
  set_faults ("[{\"method\": \"PUT\", \"query\": {\"partNumber\": \"2\"},"
              " \"status\": 500, \"code\": \"InternalError\", \"times\": 2},"
              " {\"method\": \"PUT\", \"query\": {\"partNumber\": \"3\"},"
              " \"status\": 503, \"code\": \"SlowDown\", \"times\": 1},"
              " {\"method\": \"PUT\", \"query\": {\"partNumber\": \"1\"},"
              " \"delay_ms\": 1500, \"times\": 1},"
              " {\"method\": \"POST\", \"status\": 500, \"times\": 1,"
              " \"query\": {\"uploads\": \"\"}},"
              " {\"method\": \"POST\", \"status\": 500, \"times\": 1,"
              " \"query\": {\"uploadId\": \"*\"}}]");
  path = write_random_file ("retry.bin", 15 * MIB + 999, 3);
  sent = read_file (path);
  upload_file (path, "retry", "retry.bin", "part-size=5242880", &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");
  fail_unless (r.complete != NULL);
  fail_unless (
      g_str_has_suffix (gst_structure_get_string (r.complete, "etag"), "-4\""));

  fail_unless_equals_int (count_requests ("retry.bin", "PUT", "partNumber=2",
                              500),
      2);
  fail_unless_equals_int (count_requests ("retry.bin", "PUT", "partNumber=2",
                              200),
      1);
  fail_unless_equals_int (count_requests ("retry.bin", "PUT", "partNumber=3",
                              503),
      1);
  fail_unless_equals_int (count_requests ("retry.bin", "PUT", "partNumber=3",
                              200),
      1);
  fail_unless_equals_int (count_requests ("retry.bin", "POST", "uploads", 500),
      1);
  fail_unless_equals_int (count_requests ("retry.bin", "POST", "uploadId", 500),
      1);
  fail_unless_equals_int (count_requests ("retry.bin", "PUT", "partNumber",
                              200),
      4);
  fail_unless_equals_int (count_uploads ("retry"), 0);

  via_boto3 = boto3_get ("retry", "retry.bin");
  assert_same_bytes (sent, via_boto3);
}

GST_END_TEST;

GST_START_TEST (test_failed_part_aborts)
{
  g_autofree gchar *path = NULL;
  g_autoptr (JsonObject) head = NULL;
  g_auto (RunResult) r = {0};

  SKIP_WITHOUT_PEER ();
  make_bucket ("fail");
  set_faults ("[{\"method\": \"PUT\", \"query\": {\"partNumber\": \"2\"},"
              " \"status\": 500, \"code\": \"InternalError\", \"times\": -1}]");
  path = write_random_file ("fail.bin", 16 * MIB, 4);
  upload_file (path, "fail", "fail.bin",
      "part-size=5242880 "
      "retry-attempts=2",
      &r);
  fail_unless (r.error != NULL);
  fail_unless (g_error_matches (r.error, GST_RESOURCE_ERROR,
                   GST_RESOURCE_ERROR_WRITE),
      "%s", r.error->message);
  fail_unless (strstr (r.error->message, "InternalError") != NULL, "%s",
      r.error->message);
  fail_unless (strstr (r.error->message, "part 2") != NULL, "%s",
      r.error->message);
  fail_unless (r.complete == NULL);
  fail_unless_equals_int (count_requests ("fail.bin", "PUT", "partNumber=2",
                              500),
      2);
  /* Aborted: nothing stored, no upload left behind. */
  fail_unless_equals_int (count_requests ("fail.bin", "DELETE", "uploadId",
                              204),
      1);
  fail_unless_equals_int (count_uploads ("fail"), 0);
  head = head_object ("fail", "fail.bin");
  fail_unless (!json_object_has_member (head, "etag"));
}

GST_END_TEST;

static GstElement *
appsrc_to_s3sink (const gchar *bucket, const gchar *key, const gchar *extra,
    GstElement **appsrc)
{
  g_autofree gchar *desc =
      g_strdup_printf ("appsrc name=src "
                       "format=bytes ! s3sink location=s3://%s/%s endpoint=%s "
                       "access-key=testing secret-key=testing "
                       "part-size=5242880 %s",
          bucket, key, proxy_url, extra);
  GstElement *pipeline = gst_parse_launch (desc, NULL);

  *appsrc = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  return pipeline;
}

static void
push_bytes (GstElement *appsrc, gsize size, guint8 value)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);

  gst_buffer_memset (buf, 0, value, size);
  fail_unless_equals_int (gst_app_src_push_buffer (GST_APP_SRC (appsrc), buf),
      GST_FLOW_OK);
}

/* Waits (bounded) until the proxy saw @n successful part uploads. */
static void
wait_for_parts (const gchar *key, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (count_requests (key, "PUT", "partNumber", 200) < n) {
    fail_unless (g_get_monotonic_time () < deadline, "parts never arrived");
    g_usleep (50 * 1000);
  }
}

GST_START_TEST (test_stop_without_eos_aborts)
{
  g_autoptr (JsonObject) head = NULL;
  GstElement *pipeline, *appsrc;

  SKIP_WITHOUT_PEER ();
  make_bucket ("stop");
  set_faults ("[]");
  pipeline = appsrc_to_s3sink ("stop", "stop.bin", "", &appsrc);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  push_bytes (appsrc, 11 * MIB, 0x5a);
  /* Part 2 goes up; part 1 waits in memory for EOS (header-rewrite). */
  wait_for_parts ("stop.bin", 1);
  fail_unless_equals_int (count_uploads ("stop"), 1);

  /* No EOS: the upload must go away with the pipeline. */
  gst_element_set_state (pipeline, GST_STATE_NULL);
  fail_unless_equals_int (count_uploads ("stop"), 0);
  head = head_object ("stop", "stop.bin");
  fail_unless (!json_object_has_member (head, "etag"));

  /* Reusable after READY: a second run stores an object. */
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  push_bytes (appsrc, 6 * MIB, 0x11);
  gst_app_src_end_of_stream (GST_APP_SRC (appsrc));
  {
    g_auto (RunResult) r = {0};

    run_bin (pipeline, &r);
    fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");
    fail_unless (r.complete != NULL);
  }
  g_clear_pointer (&head, json_object_unref);
  head = head_object ("stop", "stop.bin");
  fail_unless_equals_int (json_object_get_int_member (head, "size"), 6 * MIB);
  gst_object_unref (appsrc);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_stop_without_eos_complete)
{
  g_autoptr (JsonObject) head = NULL;
  GstElement *pipeline, *appsrc;

  SKIP_WITHOUT_PEER ();
  make_bucket ("partial");
  set_faults ("[]");
  pipeline =
      appsrc_to_s3sink ("partial", "partial.bin", "on-error=complete", &appsrc);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  push_bytes (appsrc, 11 * MIB, 0x5a);
  wait_for_parts ("partial.bin", 1);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  /* Everything that reached the sink is kept: part 1 from memory, part 2
   * as uploaded, part 3 from what was buffered. */
  fail_unless_equals_int (count_uploads ("partial"), 0);
  head = head_object ("partial", "partial.bin");
  fail_unless_equals_int (json_object_get_int_member (head, "size"), 11 * MIB);
  fail_unless (
      g_str_has_suffix (json_object_get_string_member (head, "etag"), "-3\""));
  gst_object_unref (appsrc);
  gst_object_unref (pipeline);
}

GST_END_TEST;

/* A mono 8 kHz WAV whose sample i is (i * 7) & 0x7fff. */
static gchar *
write_wav (void)
{
  gchar *path = g_build_filename (tmpdir, "ramp.wav", NULL);
  guint n = WAV_RATE * WAV_SECONDS;
  guint32 data_len = n * 2;
  GByteArray *wav = g_byte_array_new ();
  guint8 header[44];
  guint i;

  memcpy (header, "RIFF", 4);
  GST_WRITE_UINT32_LE (header + 4, 36 + data_len);
  memcpy (header + 8, "WAVEfmt ", 8);
  GST_WRITE_UINT32_LE (header + 16, 16);
  GST_WRITE_UINT16_LE (header + 20, 1);
  GST_WRITE_UINT16_LE (header + 22, 1);
  GST_WRITE_UINT32_LE (header + 24, WAV_RATE);
  GST_WRITE_UINT32_LE (header + 28, WAV_RATE * 2);
  GST_WRITE_UINT16_LE (header + 32, 2);
  GST_WRITE_UINT16_LE (header + 34, 16);
  memcpy (header + 36, "data", 4);
  GST_WRITE_UINT32_LE (header + 40, data_len);
  g_byte_array_append (wav, header, sizeof (header));
  for (i = 0; i < n; i++) {
    guint8 s[2];

    GST_WRITE_UINT16_LE (s, (i * 7) & 0x7fff);
    g_byte_array_append (wav, s, 2);
  }
  fail_unless (g_file_set_contents (path, (gchar *) wav->data, wav->len, NULL));
  g_byte_array_unref (wav);
  return path;
}

static GstElement *
s3src_pipeline (const gchar *bucket, const gchar *key, const gchar *tail)
{
  g_autofree gchar *desc =
      g_strdup_printf ("s3src name=src "
                       "location=s3://%s/%s endpoint=%s access-key=testing "
                       "secret-key=testing chunk-size=65536 ! %s",
          bucket, key, proxy_url, tail);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);

  g_assert_no_error (error);
  return pipeline;
}

/* Checks a buffer of ramp samples starting at sample @first. */
static void
check_ramp (GstBuffer *buffer, guint first)
{
  GstMapInfo map;
  guint i;

  gst_buffer_map (buffer, &map, GST_MAP_READ);
  for (i = 0; i < map.size / 2; i++)
    fail_unless (GST_READ_UINT16_LE (map.data + 2 * i)
            == (((first + i) * 7) & 0x7fff),
        "sample %u: %u", first + i, GST_READ_UINT16_LE (map.data + 2 * i));
  gst_buffer_unmap (buffer, &map);
}

GST_START_TEST (test_s3src_wavparse_and_seek)
{
  g_autofree gchar *path = NULL;
  GstElement *pipeline, *sink;
  GstSample *sample;
  g_auto (RunResult) r = {0};
  guint samples = 0;

  SKIP_WITHOUT_PEER ();
  make_bucket ("wav");
  set_faults ("[]");
  path = write_wav ();
  upload_file (path, "wav", "ramp.wav", "content-type=audio/wav", &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");

  /* Every sample, in order. */
  pipeline = s3src_pipeline ("wav", "ramp.wav",
      "wavparse ! "
      "appsink name=sink sync=false");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while ((sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink),
              PIPELINE_TIMEOUT))) {
    GstBuffer *buffer = gst_sample_get_buffer (sample);

    check_ramp (buffer, samples);
    samples += gst_buffer_get_size (buffer) / 2;
    gst_sample_unref (sample);
  }
  fail_unless (gst_app_sink_is_eos (GST_APP_SINK (sink)));
  fail_unless_equals_int (samples, WAV_RATE * WAV_SECONDS);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  /* A time seek becomes a byte seek in s3src: 1.5 s is sample 12000. */
  gst_element_set_state (pipeline, GST_STATE_PAUSED);
  fail_unless_equals_int (gst_element_get_state (pipeline, NULL, NULL,
                              PIPELINE_TIMEOUT),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless (gst_element_seek_simple (pipeline, GST_FORMAT_TIME,
      GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE, 1500 * GST_MSECOND));
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), PIPELINE_TIMEOUT);
  fail_unless (sample != NULL);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (gst_sample_get_buffer (sample)),
      1500 * GST_MSECOND);
  check_ramp (gst_sample_get_buffer (sample), 12000);
  gst_sample_unref (sample);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_s3src_qtdemux)
{
  g_autofree gchar *path = g_build_filename (tmpdir, "tone.mov", NULL);
  g_autofree gchar *make = NULL;
  g_auto (RunResult) r = {0};
  g_auto (RunResult) r2 = {0};
  GstElement *pipeline;

  SKIP_WITHOUT_PEER ();
  make_bucket ("mov");
  set_faults ("[]");
  /* The moov atom comes last: qtdemux has to seek to the end and back. */
  make = g_strdup_printf ("audiotestsrc num-buffers=200 samplesperbuffer=800 "
                          "! audio/x-raw,format=S16LE,rate=8000,channels=1 ! "
                          "qtmux ! "
                          "filesink location=%s",
      path);
  run_launch (make, &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");
  run_result_clear (&r);
  upload_file (path, "mov", "tone.mov", NULL, &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");

  pipeline = s3src_pipeline ("mov", "tone.mov",
      "qtdemux ! "
      "audio/x-raw ! fakesink sync=false");
  run_bin (pipeline, &r2);
  fail_unless (r2.error == NULL, "%s", r2.error ? r2.error->message : "");
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_s3src_not_found)
{
  g_autofree gchar *desc = NULL;
  g_auto (RunResult) r = {0};
  g_auto (RunResult) r2 = {0};

  SKIP_WITHOUT_PEER ();
  make_bucket ("notfound");
  set_faults ("[]");
  desc =
      g_strdup_printf ("s3src location=s3://notfound/missing.wav endpoint=%s "
                       "access-key=testing secret-key=testing ! fakesink",
          proxy_url);
  run_launch (desc, &r);
  fail_unless (g_error_matches (r.error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND));
  fail_unless (strstr (r.error->message, "NoSuchKey") != NULL, "%s",
      r.error->message);
  fail_unless (strstr (r.error->message, "s3://notfound/missing.wav") != NULL,
      "%s", r.error->message);

  g_free (desc);
  desc = g_strdup_printf ("s3src location=s3://no-such-bucket/x "
                          "endpoint=%s access-key=testing secret-key=testing ! "
                          "fakesink",
      proxy_url);
  run_launch (desc, &r2);
  fail_unless (g_error_matches (r2.error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND));
  fail_unless (strstr (r2.error->message, "NoSuchBucket") != NULL, "%s",
      r2.error->message);
}

GST_END_TEST;

GST_START_TEST (test_s3src_access_denied)
{
  g_autofree gchar *desc = NULL;
  g_auto (RunResult) r = {0};

  SKIP_WITHOUT_PEER ();
  make_bucket ("denied");
  set_faults (
      "[{\"method\": \"HEAD\", \"status\": 403, \"times\": -1},"
      " {\"method\": \"GET\", \"status\": 403, \"code\": \"AccessDenied\","
      " \"times\": -1}]");
  desc = g_strdup_printf ("s3src location=s3://denied/secret.wav endpoint=%s "
                          "access-key=testing secret-key=testing ! fakesink",
      proxy_url);
  run_launch (desc, &r);
  fail_unless (g_error_matches (r.error, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_AUTHORIZED));
  fail_unless (strstr (r.error->message, "AccessDenied") != NULL, "%s",
      r.error->message);
  set_faults ("[]");
}

GST_END_TEST;

/* ---- muxers that rewrite their header ---- */

/* The WAV of @n buffers of 100 ms stereo 48 kHz sine, as wavenc writes
 * it: header first with a placeholder size, fixed up at EOS by going
 * back to byte 0. */
static gchar *
wav_launch (guint n, const gchar *sink)
{
  return g_strdup_printf ("audiotestsrc num-buffers=%u samplesperbuffer=4800 "
                          "! audio/x-raw,format=S16LE,rate=48000,channels=2 "
                          "! wavenc ! %s",
      n, sink);
}

/* Parses @wav's RIFF chunks: the RIFF size must be the file's and the
 * data chunk must hold @data_len bytes. */
static void
assert_valid_wav (GBytes *wav, gsize data_len)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (wav, &len);
  gsize pos = 12;
  gboolean have_fmt = FALSE;

  fail_unless (len >= 44, "%" G_GSIZE_FORMAT " bytes", len);
  fail_unless (memcmp (d, "RIFF", 4) == 0 && memcmp (d + 8, "WAVE", 4) == 0);
  fail_unless_equals_uint64 (GST_READ_UINT32_LE (d + 4), len - 8);
  while (pos + 8 <= len) {
    guint32 size = GST_READ_UINT32_LE (d + pos + 4);

    if (memcmp (d + pos, "fmt ", 4) == 0) {
      fail_unless_equals_int (GST_READ_UINT16_LE (d + pos + 10), 2);
      fail_unless_equals_int (GST_READ_UINT32_LE (d + pos + 12), 48000);
      have_fmt = TRUE;
    } else if (memcmp (d + pos, "data", 4) == 0) {
      fail_unless (have_fmt, "data before fmt");
      fail_unless_equals_uint64 (size, data_len);
      fail_unless (pos + 8 + size <= len, "data chunk runs past the end");
      return;
    }
    pos += 8 + size + (size & 1);
  }
  fail ("no data chunk");
}

/* wavenc straight into s3sink: the object is byte for byte what wavenc
 * writes into a file (header fixed up), a valid WAV with the right
 * sizes. */
static void
check_wavenc_upload (const gchar *bucket, guint n_buffers, guint n_parts)
{
  g_autofree gchar *path = g_build_filename (tmpdir, "wavenc.wav", NULL);
  g_autofree gchar *file_sink = g_strdup_printf ("filesink location=%s", path);
  g_autofree gchar *s3_sink =
      g_strdup_printf ("s3sink location=s3://%s/call.wav endpoint=%s "
                       "access-key=testing secret-key=testing "
                       "part-size=5242880 max-inflight-parts=2 "
                       "content-type=audio/wav",
          bucket, proxy_url);
  g_autofree gchar *to_file = wav_launch (n_buffers, file_sink);
  g_autofree gchar *to_s3 = wav_launch (n_buffers, s3_sink);
  g_autofree gchar *suffix = g_strdup_printf ("-%u\"", n_parts);
  g_autoptr (GBytes) local = NULL;
  g_autoptr (GBytes) stored = NULL;
  g_auto (RunResult) r = {0};
  g_auto (RunResult) r2 = {0};
  const gchar *etag;
  guint64 size;

  make_bucket (bucket);
  set_faults ("[]");
  run_launch (to_file, &r);
  fail_unless (r.error == NULL, "%s", r.error ? r.error->message : "");
  local = read_file (path);
  g_unlink (path);
  assert_valid_wav (local, n_buffers * 4800 * 4);

  run_launch (to_s3, &r2);
  fail_unless (r2.error == NULL, "%s", r2.error ? r2.error->message : "");
  fail_unless (r2.complete != NULL);
  fail_unless (gst_structure_get_uint64 (r2.complete, "size", &size));
  fail_unless_equals_uint64 (size, g_bytes_get_size (local));
  etag = gst_structure_get_string (r2.complete, "etag");
  if (n_parts > 1) {
    fail_unless (g_str_has_suffix (etag, suffix), "ETag %s", etag);
    fail_unless_equals_int (count_requests ("call.wav", "PUT", "partNumber",
                                200),
        n_parts);
  } else {
    fail_unless (strchr (etag, '-') == NULL, "ETag %s", etag);
    fail_unless_equals_int (count_requests ("call.wav", "PUT", NULL, 200), 1);
  }
  fail_unless_equals_int (count_uploads (bucket), 0);

  stored = boto3_get (bucket, "call.wav");
  assert_valid_wav (stored, n_buffers * 4800 * 4);
  assert_same_bytes (local, stored);
}

/* 700 buffers of 19200 bytes: 13.4 MB, parts of 5 MiB. */
GST_START_TEST (test_wavenc_multipart)
{
  SKIP_WITHOUT_PEER ();
  check_wavenc_upload ("wavenc-long", 700, 3);
}

GST_END_TEST;

/* 20 buffers: under one part, a single PutObject. */
GST_START_TEST (test_wavenc_single_put)
{
  SKIP_WITHOUT_PEER ();
  check_wavenc_upload ("wavenc-short", 20, 1);
}

GST_END_TEST;

/* s3sink on a harness, so that the test decides where each write goes. */
static GstHarness *
harness_s3sink (const gchar *bucket, const gchar *key, GstBus *bus)
{
  GstElement *sink = gst_element_factory_make ("s3sink", NULL);
  g_autofree gchar *location = g_strdup_printf ("s3://%s/%s", bucket, key);
  GstHarness *h;
  GstSegment segment;

  g_object_set (sink, "location", location, "endpoint", proxy_url, "access-key",
      "testing", "secret-key", "testing", "part-size", (guint64) 5 * MIB,
      "max-inflight-parts", 1, NULL);
  gst_element_set_bus (sink, bus);
  h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_object_unref (sink);
  gst_harness_set_src_caps_str (h, "application/octet-stream");
  gst_segment_init (&segment, GST_FORMAT_BYTES);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  return h;
}

/* Sends a byte SEGMENT starting at @pos. The result says whether the pad
 * stored it (a sticky event), not whether s3sink took it: a refusal shows
 * as an error message and a failed stream. */
static gboolean
harness_seek (GstHarness *h, guint64 pos)
{
  GstSegment segment;

  gst_segment_init (&segment, GST_FORMAT_BYTES);
  segment.start = segment.time = segment.position = pos;
  return gst_harness_push_event (h, gst_event_new_segment (&segment));
}

/* Writes @len bytes of a pattern (or @text) at the current position and
 * mirrors them into @expected at @pos. */
static GstFlowReturn
harness_write (GstHarness *h, GByteArray *expected, guint64 pos,
    const gchar *text, gsize len)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, len, NULL);
  GstMapInfo map;
  gsize i;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (i = 0; i < len; i++)
    map.data[i] = text ? (guint8) text[i] : (guint8) ((pos + i) * 31 % 251);
  if (expected) {
    if (expected->len < pos + len)
      g_byte_array_set_size (expected, pos + len);
    memcpy (expected->data + pos, map.data, len);
  }
  gst_buffer_unmap (buf, &map);
  return gst_harness_push (h, buf);
}

static void
harness_write_mib (GstHarness *h, GByteArray *expected, guint from, guint to)
{
  guint i;

  for (i = from; i < to; i++)
    fail_unless_equals_int (harness_write (h, expected, (guint64) i * MIB, NULL,
                                MIB),
        GST_FLOW_OK);
}

/* Rewrites inside part 1 (held until EOS) and inside the part still
 * being filled, then goes back to the end and goes on: the stored object
 * has every rewrite in place. */
GST_START_TEST (test_rewrite_held_parts)
{
  g_autoptr (GByteArray) expected = g_byte_array_new ();
  g_autoptr (GBytes) want = NULL;
  g_autoptr (GBytes) stored = NULL;
  GstBus *bus = gst_bus_new ();
  GstHarness *h;
  GstMessage *msg;
  const gchar *etag;
  guint64 size;

  SKIP_WITHOUT_PEER ();
  make_bucket ("rewrite");
  set_faults ("[]");
  h = harness_s3sink ("rewrite", "r.bin", bus);
  /* Parts 1 [0, 5) MiB held, 2 [5, 10) sent, 3 from 10 MiB being filled. */
  harness_write_mib (h, expected, 0, 12);

  fail_unless (harness_seek (h, 4));
  fail_unless_equals_int (harness_write (h, expected, 4, "HEADER", 6),
      GST_FLOW_OK);
  fail_unless (harness_seek (h, 5 * MIB - 3));
  fail_unless_equals_int (harness_write (h, expected, 5 * MIB - 3, "END", 3),
      GST_FLOW_OK);
  fail_unless (harness_seek (h, 11 * MIB + 1));
  fail_unless_equals_int (harness_write (h, expected, 11 * MIB + 1, "TAIL", 4),
      GST_FLOW_OK);
  /* Back to the end, and a rewrite that runs past it (grows the object). */
  fail_unless (harness_seek (h, 12 * MIB - 2));
  fail_unless_equals_int (harness_write (h, expected, 12 * MIB - 2, "OVER", 4),
      GST_FLOW_OK);
  fail_unless (harness_seek (h, 12 * MIB + 2));
  fail_unless_equals_int (harness_write (h, expected, 12 * MIB + 2, NULL,
                              MIB - 2),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT);
  fail_unless (msg != NULL);
  fail_unless (gst_message_has_name (msg, "s3sink-complete"));
  etag = gst_structure_get_string (gst_message_get_structure (msg), "etag");
  fail_unless (g_str_has_suffix (etag, "-3\""), "ETag %s", etag);
  fail_unless (gst_structure_get_uint64 (gst_message_get_structure (msg),
      "size", &size));
  fail_unless_equals_uint64 (size, 13 * MIB);
  gst_message_unref (msg);
  gst_harness_teardown (h);

  want = g_bytes_new (expected->data, expected->len);
  stored = boto3_get ("rewrite", "r.bin");
  assert_same_bytes (want, stored);
  gst_object_unref (bus);
}

GST_END_TEST;

/* Asserts that @bus holds an error naming a byte already uploaded. */
static void
assert_seek_error (GstBus *bus)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  GError *error = NULL;

  fail_unless (msg != NULL, "no error posted");
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
                   GST_RESOURCE_ERROR_SEEK),
      "%s", error->message);
  fail_unless (strstr (error->message, "uploaded already") != NULL, "%s",
      error->message);
  g_error_free (error);
  gst_message_unref (msg);
}

/* A move into bytes already sent, and a rewrite that runs from part 1
 * into them, fail the stream with a clear error; the upload is aborted. */
GST_START_TEST (test_seek_outside_held_parts)
{
  GstBus *bus = gst_bus_new ();
  GstHarness *h;

  SKIP_WITHOUT_PEER ();
  make_bucket ("badseek");
  set_faults ("[]");
  h = harness_s3sink ("badseek", "b.bin", bus);
  harness_write_mib (h, NULL, 0, 12);
  wait_for_parts ("b.bin", 1);
  harness_seek (h, 6 * MIB);
  assert_seek_error (bus);
  fail_unless_equals_int (harness_write (h, NULL, 12 * MIB, NULL, 16),
      GST_FLOW_ERROR);
  gst_harness_teardown (h);
  fail_unless_equals_int (count_uploads ("badseek"), 0);

  h = harness_s3sink ("badseek", "c.bin", bus);
  harness_write_mib (h, NULL, 0, 12);
  wait_for_parts ("c.bin", 1);
  fail_unless (harness_seek (h, 5 * MIB - 2));
  fail_unless_equals_int (harness_write (h, NULL, 5 * MIB - 2, "CROSS", 5),
      GST_FLOW_ERROR);
  assert_seek_error (bus);
  gst_harness_teardown (h);
  fail_unless_equals_int (count_uploads ("badseek"), 0);
  fail_unless_equals_int (count_requests ("b.bin", "DELETE", "uploadId", 204),
      1);
  gst_object_unref (bus);
}

GST_END_TEST;

static Suite *
s3_moto_suite (void)
{
  Suite *s = suite_create ("s3-moto");
  TCase *tc = tcase_create ("moto");

  tcase_add_unchecked_fixture (tc, peer_setup, peer_teardown);
  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_small_object_put);
  tcase_add_test (tc, test_multipart_object);
  tcase_add_test (tc, test_retries_lose_nothing);
  tcase_add_test (tc, test_failed_part_aborts);
  tcase_add_test (tc, test_stop_without_eos_aborts);
  tcase_add_test (tc, test_stop_without_eos_complete);
  tcase_add_test (tc, test_s3src_wavparse_and_seek);
  tcase_add_test (tc, test_s3src_qtdemux);
  tcase_add_test (tc, test_s3src_not_found);
  tcase_add_test (tc, test_s3src_access_denied);
  tcase_add_test (tc, test_wavenc_multipart);
  tcase_add_test (tc, test_wavenc_single_put);
  tcase_add_test (tc, test_rewrite_held_parts);
  tcase_add_test (tc, test_seek_outside_held_parts);
  return s;
}

GST_CHECK_MAIN (s3_moto);

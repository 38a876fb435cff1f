/* kvssrc ! kvsdemux against the local GetMedia peer (kvs-getmedia-peer.py):
 * every sample exactly once across dropped connections and ended
 * sessions, the start selectors, service exceptions, idle timeout. The
 * peer serves a Connect-shaped fixture written by kvs-fixture.c, whose
 * PCM is known sample by sample. */
#include <gst/check/gstcheck.h>
#include <string.h>

#include "kvs-peer.h"

#define N_FRAGMENTS KVS_PEER_FRAGMENTS
#define FRAGMENT_SAMPLES KVS_PEER_FRAGMENT_SAMPLES
#define FRAGMENT_MS KVS_PEER_FRAGMENT_MS
#define BASE_MS KVS_PEER_BASE_MS
#define SERVER_DELAY_MS KVS_PEER_SERVER_DELAY_MS
#define ACCESS_KEY KVS_PEER_ACCESS_KEY
#define SECRET_KEY KVS_PEER_SECRET_KEY
#define SPEED "20"
#define RUN_TIMEOUT (30 * G_USEC_PER_SEC)
#define STREAM_ARN                                      \
  "arn:aws:kinesisvideo:us-east-1:123456789012:stream/" \
  "connect-contact-5b1c/1726677688000"

static KvsPeerFixture fixture;
static const gchar *peer_script;

#define peer_start(peer, ...) \
  kvs_peer_start ((peer), peer_script, &fixture, __VA_ARGS__)
#define peer_stop kvs_peer_stop
#define peer_get_media_selectors kvs_peer_get_media_selectors

/* ---- the pipeline ---- */

typedef struct
{
  GMutex lock;
  GCond cond;
  GByteArray *from;
  GByteArray *to;
  guint n_pads;
  guint eos_pads;
  GPtrArray *fragments; /* fragment numbers, kvs-fragment order */
  gboolean saw_truncated;
  GPtrArray *reconnects; /* GstStructure */
  GError *error;
  GstClockTime eos_after; /* since PLAYING */
} Run;

static GstFlowReturn
collect_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  Run *run = g_object_get_data (G_OBJECT (pad), "run");
  GByteArray *dst = g_object_get_data (G_OBJECT (pad), "dst");
  GstMapInfo map;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  g_mutex_lock (&run->lock);
  g_byte_array_append (dst, map.data, map.size);
  g_mutex_unlock (&run->lock);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  return GST_FLOW_OK;
}

static gboolean
collect_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  Run *run = g_object_get_data (G_OBJECT (pad), "run");

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    g_mutex_lock (&run->lock);
    run->eos_pads++;
    g_cond_broadcast (&run->cond);
    g_mutex_unlock (&run->lock);
  }
  gst_event_unref (event);
  return TRUE;
}

static void
pad_added (GstElement *demux, GstPad *pad, Run *run)
{
  GstPad *sink = gst_pad_new ("sink", GST_PAD_SINK);
  g_autofree gchar *name = gst_pad_get_name (pad);

  g_object_set_data (G_OBJECT (sink), "run", run);
  g_object_set_data (G_OBJECT (sink), "dst",
      !strcmp (name, "from_customer") ? run->from : run->to);
  g_object_set_data_full (G_OBJECT (pad), "collector", sink, gst_object_unref);
  gst_pad_set_chain_function (sink, collect_chain);
  gst_pad_set_event_function (sink, collect_event);
  gst_pad_set_active (sink, TRUE);
  fail_unless_equals_int (gst_pad_link (pad, sink), GST_PAD_LINK_OK);
  g_mutex_lock (&run->lock);
  run->n_pads++;
  g_mutex_unlock (&run->lock);
}

static void
run_clear (Run *run)
{
  g_byte_array_unref (run->from);
  g_byte_array_unref (run->to);
  g_ptr_array_unref (run->fragments);
  g_ptr_array_unref (run->reconnects);
  g_clear_error (&run->error);
  g_mutex_clear (&run->lock);
  g_cond_clear (&run->cond);
}

static gboolean
run_finished (Run *run)
{
  gboolean done;

  g_mutex_lock (&run->lock);
  done = run->n_pads > 0 && run->eos_pads == run->n_pads;
  g_mutex_unlock (&run->lock);
  return done;
}

static void
handle_message (Run *run, GstMessage *msg)
{
  const GstStructure *s = gst_message_get_structure (msg);

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR && run->error == NULL) {
    gst_message_parse_error (msg, &run->error, NULL);
  } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT) {
    if (gst_structure_has_name (s, "kvs-fragment")) {
      gboolean truncated = FALSE;

      gst_structure_get_boolean (s, "truncated", &truncated);
      run->saw_truncated |= truncated;
      g_ptr_array_add (run->fragments,
          g_strdup (gst_structure_get_string (s, "fragment-number")));
    } else if (gst_structure_has_name (s, "kvs-reconnect")) {
      g_ptr_array_add (run->reconnects, gst_structure_copy (s));
    }
  }
}

/* kvssrc (signed for the peer, plus @props) ! kvsdemux, until every pad
 * has EOS or an error is posted. */
static void
run_pipeline (Run *run, KvsPeer *peer, const gchar *props)
{
  g_autofree gchar *desc =
      g_strdup_printf ("kvssrc name=src "
                       "endpoint=http://127.0.0.1:%u region=us-east-1 "
                       "access-key=" ACCESS_KEY " secret-key=" SECRET_KEY
                       " stream-arn=" STREAM_ARN " %s ! "
                       "kvsdemux name=d",
          peer ? peer->port : 9, props);
  g_autoptr (GError) error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstElement *demux;
  GstBus *bus;
  gint64 start, deadline;

  fail_unless (pipeline != NULL, "%s", error ? error->message : "?");
  memset (run, 0, sizeof (*run));
  g_mutex_init (&run->lock);
  g_cond_init (&run->cond);
  run->from = g_byte_array_new ();
  run->to = g_byte_array_new ();
  run->fragments = g_ptr_array_new_with_free_func (g_free);
  run->reconnects =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  demux = gst_bin_get_by_name (GST_BIN (pipeline), "d");
  g_signal_connect (demux, "pad-added", G_CALLBACK (pad_added), run);
  gst_object_unref (demux);

  bus = gst_element_get_bus (pipeline);
  start = g_get_monotonic_time ();
  deadline = start + RUN_TIMEOUT;
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while (!run_finished (run) && run->error == NULL
      && g_get_monotonic_time () < deadline) {
    GstMessage *msg = gst_bus_timed_pop (bus, 20 * GST_MSECOND);

    if (msg) {
      handle_message (run, msg);
      gst_message_unref (msg);
    }
  }
  run->eos_after = (g_get_monotonic_time () - start) * GST_USECOND;
  gst_element_set_state (pipeline, GST_STATE_NULL);
  while (TRUE) {
    GstMessage *msg = gst_bus_pop (bus);

    if (msg == NULL)
      break;
    handle_message (run, msg);
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  fail_unless (run->error != NULL || run_finished (run),
      "the run neither ended nor failed");
}

/* Both directions hold exactly the fixture's samples of fragments
 * [start, N_FRAGMENTS): none lost, none twice. */
static void
check_samples (Run *run, guint start)
{
  guint64 n = (guint64) (N_FRAGMENTS - start) * FRAGMENT_SAMPLES;
  guint64 base = (guint64) start * FRAGMENT_SAMPLES;
  guint d;

  fail_unless (run->error == NULL, "error: %s",
      run->error ? run->error->message : "");
  for (d = 0; d < 2; d++) {
    GByteArray *data = d == 0 ? run->from : run->to;
    guint64 i;

    fail_unless_equals_uint64 (data->len, n * 2);
    for (i = 0; i < n; i++) {
      gint16 v = (gint16) GST_READ_UINT16_LE (data->data + 2 * i);
      gint16 want = kvs_fixture_sample (d == 0, base + i);

      fail_unless (v == want,
          "%s sample %" G_GUINT64_FORMAT ": %d, expected %d",
          d == 0 ? "from" : "to", i, v, want);
    }
  }
  fail_unless (run->fragments->len > 0);
  fail_unless_equals_string (g_ptr_array_index (run->fragments, 0),
      fixture.number[start]);
}

static const GstStructure *
find_reconnect (Run *run, const gchar *reason)
{
  guint i;

  for (i = 0; i < run->reconnects->len; i++) {
    const GstStructure *s = g_ptr_array_index (run->reconnects, i);

    if (!g_strcmp0 (gst_structure_get_string (s, "reason"), reason))
      return s;
  }
  return NULL;
}

static void
check_error (Run *run, GQuark domain, gint code, const gchar *text)
{
  fail_unless (run->error != NULL, "no error");
  fail_unless (g_error_matches (run->error, domain, code), "%s: %s",
      g_quark_to_string (run->error->domain), run->error->message);
  fail_unless (strstr (run->error->message, text) != NULL,
      "'%s' does not name %s", run->error->message, text);
}

static gchar *
cut_at (guint fragment, gdouble fraction)
{
  return g_strdup_printf ("%" G_GSIZE_FORMAT,
      fixture.offset[fragment] + (gsize) (fixture.length[fragment] * fraction));
}

/* ---- tests ---- */

GST_START_TEST (test_earliest)
{
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=400");
  check_samples (&run, 0);
  fail_unless (find_reconnect (&run, "connection-lost") == NULL);
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

/* The connection drops in the middle of fragment 2's Cluster, after its
 * first blocks went downstream: kvssrc resumes after fragment 1 (its
 * continuation token), kvsdemux skips what it already pushed. */
GST_START_TEST (test_drop_mid_fragment)
{
  g_autofree gchar *cut = cut_at (2, 0.5);
  g_autoptr (GPtrArray) selectors = NULL;
  const GstStructure *s;
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, "--drop-after", cut, NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=400");
  check_samples (&run, 0);
  fail_unless (run.saw_truncated);
  s = find_reconnect (&run, "connection-lost");
  fail_unless (s != NULL);
  fail_unless_equals_string (gst_structure_get_string (s, "start-selector"),
      "CONTINUATION_TOKEN");
  fail_unless_equals_string (gst_structure_get_string (s, "continuation-token"),
      fixture.number[1]);
  selectors = peer_get_media_selectors (&peer);
  fail_unless (selectors->len >= 2);
  fail_unless (strstr (g_ptr_array_index (selectors, 0), "EARLIEST"));
  fail_unless (strstr (g_ptr_array_index (selectors, 1), fixture.number[1]));
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

/* Cut before any fragment is complete: no token yet, the first request is
 * made again and the demuxer drops the repeated start. */
GST_START_TEST (test_drop_first_fragment)
{
  g_autofree gchar *cut = cut_at (0, 0.6);
  const GstStructure *s;
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, "--drop-after", cut, NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=400");
  check_samples (&run, 0);
  s = find_reconnect (&run, "connection-lost");
  fail_unless (s != NULL);
  fail_unless_equals_string (gst_structure_get_string (s, "start-selector"),
      "EARLIEST");
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

/* Two drops in a row, the second in the session that resumed. */
GST_START_TEST (test_drop_twice)
{
  g_autofree gchar *first = cut_at (1, 0.3);
  /* The second session starts at fragment 1: cut in fragment 3. */
  g_autofree gchar *second = g_strdup_printf ("%" G_GSIZE_FORMAT,
      fixture.offset[3] - fixture.offset[1] + fixture.length[3] / 2);
  KvsPeer peer;
  Run run;
  guint i, lost = 0;

  peer_start (&peer, "--speed", SPEED, "--drop-after", first, "--drop-after",
      second, NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=400");
  check_samples (&run, 0);
  for (i = 0; i < run.reconnects->len; i++)
    lost +=
        !g_strcmp0 (gst_structure_get_string (g_ptr_array_index (run.reconnects,
                                                  i),
                        "reason"),
            "connection-lost");
  fail_unless_equals_int (lost, 2);
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

/* A session that runs out (cleanly) in mid-fragment, as GetMedia sessions
 * do after ~45 min: resumed like a drop. */
GST_START_TEST (test_session_end)
{
  g_autofree gchar *cut = cut_at (3, 0.3);
  const GstStructure *s;
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, "--end-after", cut, NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=400");
  check_samples (&run, 0);
  s = find_reconnect (&run, "session-ended");
  fail_unless (s != NULL);
  fail_unless_equals_string (gst_structure_get_string (s, "continuation-token"),
      fixture.number[2]);
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

/* Selector property string -> first fragment expected. */
static void
check_selector (const gchar *props, guint first)
{
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, NULL);
  run_pipeline (&run, &peer, props);
  check_samples (&run, first);
  run_clear (&run);
  peer_stop (&peer);
}

GST_START_TEST (test_start_fragment_number)
{
  g_autofree gchar *props =
      g_strdup_printf ("idle-timeout=400 "
                       "start-selector=fragment-number start-fragment=%s",
          fixture.number[1]);

  check_selector (props, 2);
}

GST_END_TEST;

GST_START_TEST (test_start_continuation_token)
{
  g_autofree gchar *props = g_strdup_printf ("idle-timeout=400 "
                                             "start-selector=continuation-"
                                             "token continuation-token=%s",
      fixture.number[0]);

  check_selector (props, 1);
}

GST_END_TEST;

GST_START_TEST (test_start_producer_timestamp)
{
  g_autofree gchar *props =
      g_strdup_printf ("idle-timeout=400 "
                       "start-selector=producer-timestamp "
                       "start-timestamp=%" G_GUINT64_FORMAT,
          BASE_MS + 3 * FRAGMENT_MS + 500);

  check_selector (props, 3);
}

GST_END_TEST;

GST_START_TEST (test_start_server_timestamp)
{
  /* Fragment 2 was received 250 ms after it was produced. */
  g_autofree gchar *props =
      g_strdup_printf ("idle-timeout=400 "
                       "start-selector=server-timestamp "
                       "start-timestamp=%" G_GUINT64_FORMAT,
          BASE_MS + 2 * FRAGMENT_MS + SERVER_DELAY_MS + 10);

  check_selector (props, 2);
}

GST_END_TEST;

/* NOW on a stream 3.5 fragments into production: the fragment being
 * produced first (or a later one, on a slow machine), then every sample
 * from there on. */
GST_START_TEST (test_start_now)
{
  KvsPeer peer;
  Run run;
  guint first;

  peer_start (&peer, "--speed", "2", "--live-offset-ms", "3600", NULL);
  run_pipeline (&run, &peer, "start-selector=now idle-timeout=1500");
  fail_unless (run.fragments->len > 0);
  for (first = 0; first < N_FRAGMENTS; first++) {
    if (!g_strcmp0 (g_ptr_array_index (run.fragments, 0),
            fixture.number[first]))
      break;
  }
  fail_unless (first >= 3 && first < N_FRAGMENTS, "first fragment %u", first);
  check_samples (&run, first);
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

/* Exception answers -> element errors naming them. */
static void
check_exception (const gchar *inject, GQuark domain, gint code,
    const gchar *name)
{
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, "--error", inject, NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=400");
  check_error (&run, domain, code, name);
  run_clear (&run);
  peer_stop (&peer);
}

GST_START_TEST (test_error_resource_not_found)
{
  check_exception ("getMedia=ResourceNotFoundException", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, "ResourceNotFoundException");
}

GST_END_TEST;

GST_START_TEST (test_error_not_authorized)
{
  check_exception ("getDataEndpoint=NotAuthorizedException", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_AUTHORIZED, "NotAuthorizedException");
}

GST_END_TEST;

GST_START_TEST (test_error_invalid_argument)
{
  check_exception ("getMedia=InvalidArgumentException", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_READ, "InvalidArgumentException");
}

GST_END_TEST;

/* Retryable: three attempts with backoff, then the error. */
GST_START_TEST (test_error_connection_limit)
{
  check_exception ("getMedia=ConnectionLimitExceededException:5",
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "After 3 attempts: GetMedia failed: ConnectionLimitExceededException");
}

GST_END_TEST;

GST_START_TEST (test_error_client_limit_retried)
{
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, "--error",
      "getMedia=ClientLimitExceededException:1", NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=3000");
  check_samples (&run, 0);
  fail_unless (find_reconnect (&run, "retry") != NULL);
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

GST_START_TEST (test_error_client_limit)
{
  check_exception ("getDataEndpoint=ClientLimitExceededException:5",
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "ClientLimitExceededException");
}

GST_END_TEST;

/* The peer checks the whole SigV4 signature. */
GST_START_TEST (test_error_bad_signature)
{
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, NULL);
  run_pipeline (&run, &peer, "secret-key=not-the-secret");
  check_error (&run, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      "InvalidSignatureException");
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

GST_START_TEST (test_error_missing_start_value)
{
  Run run;

  run_pipeline (&run, NULL, "start-selector=fragment-number");
  check_error (&run, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "start-fragment");
  run_clear (&run);
}

GST_END_TEST;

/* The peer keeps the response open, silent, after the last fragment (a
 * stream Connect stopped feeding): EOS after idle-timeout, long before
 * the peer would give up. */
GST_START_TEST (test_idle_timeout)
{
  KvsPeer peer;
  Run run;

  peer_start (&peer, "--speed", SPEED, "--hold", "60", NULL);
  run_pipeline (&run, &peer, "start-selector=earliest idle-timeout=300");
  check_samples (&run, 0);
  fail_unless (run.eos_after < 20 * GST_SECOND);
  run_clear (&run);
  peer_stop (&peer);
}

GST_END_TEST;

static Suite *
kvssrc_suite (void)
{
  Suite *s = suite_create ("kvssrc");
  TCase *tc = tcase_create ("getmedia");

  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_earliest);
  tcase_add_test (tc, test_drop_mid_fragment);
  tcase_add_test (tc, test_drop_first_fragment);
  tcase_add_test (tc, test_drop_twice);
  tcase_add_test (tc, test_session_end);
  tcase_add_test (tc, test_start_fragment_number);
  tcase_add_test (tc, test_start_continuation_token);
  tcase_add_test (tc, test_start_producer_timestamp);
  tcase_add_test (tc, test_start_server_timestamp);
  tcase_add_test (tc, test_start_now);
  tcase_add_test (tc, test_error_resource_not_found);
  tcase_add_test (tc, test_error_not_authorized);
  tcase_add_test (tc, test_error_invalid_argument);
  tcase_add_test (tc, test_error_connection_limit);
  tcase_add_test (tc, test_error_client_limit_retried);
  tcase_add_test (tc, test_error_client_limit);
  tcase_add_test (tc, test_error_bad_signature);
  tcase_add_test (tc, test_error_missing_start_value);
  tcase_add_test (tc, test_idle_timeout);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  const gchar *builddir = g_getenv ("CALLPIPE_TESTS_BUILDDIR");
  g_autofree gchar *registry =
      g_build_filename (builddir ? builddir : ".", "registry-kvssrc.bin", NULL);
  int ret;

  if (argc < 2
      || !g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr ("SKIP: needs /usr/bin/python3 and the peer script\n");
    return 77;
  }
  peer_script = argv[1];
  /* Only the project's plugins, scanned in this process (see
   * test-kvsdemux.c). */
  g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  g_setenv ("GST_REGISTRY_1_0", registry, TRUE);
  /* The credential chain must not find the machine's. */
  g_setenv ("AWS_CONFIG_FILE", "/nonexistent", TRUE);
  g_setenv ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", TRUE);
  g_unsetenv ("AWS_ENDPOINT_URL");
  g_unsetenv ("AWS_ENDPOINT_URL_KINESIS_VIDEO");

  gst_check_init (&argc, &argv);
  kvs_peer_fixture_write (&fixture);
  ret = gst_check_run_suite (kvssrc_suite (), "kvssrc", __FILE__);
  kvs_peer_fixture_remove (&fixture);
  return ret;
}

/* callpiped killed (SIGKILL) with work half done, then started again on
 * the same data directory: what could be finished is, and the session
 * says what could not.
 *
 * - directory storage, a bot call cut mid-call: the recording's WAV
 *   header (wavenc writes its sizes at EOS) is repaired from the file's
 *   length, the conversation so far becomes the transcript, and the call
 *   reads failed, "interrupted by restart; recording repaired ...";
 * - S3 storage (moto behind s3peer's proxy): a call that ended while S3
 *   hung, killed mid-upload, gets its spooled transcript uploaded at the
 *   next start; a call cut mid-call gets its transcript written and
 *   uploaded too.
 * The daemon, sonicpeer and moto run on 127.0.0.1 with ports picked at
 * run time; every wait is bounded. */
#include "test-client.h"
#include "test-util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define TOKEN "crash-token-7"
#define WAIT_US (60 * G_USEC_PER_SEC)
#define POLL_US (100 * 1000)
#define PEER_KEY "AKIDNOVATEST"
#define PEER_SECRET "novasecret"
#define S3_BUCKET "callpipe-crash"
#define S3_PREFIX "calls"

typedef struct
{
  gchar *dir;
  gchar *data_dir;
  gchar *config;
  GSubprocess *daemon;
  guint port;
  SoupSession *http;
  GSubprocess *peer; /* sonicpeer.py */
  GSubprocess *s3peer; /* s3peer.py: moto and its proxy */
  gchar *moto_url;
  gchar *proxy_url;
  gchar *pipelines_dir; /* the test's own, else NULL */
} Fixture;

typedef CpTestReply Reply;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, cp_test_reply_free)

/* Children must not outlive a test that aborts. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* The first line a child prints. */
static gchar *
first_line (GSubprocess *p)
{
  g_autoptr (GDataInputStream) out =
      g_data_input_stream_new (g_subprocess_get_stdout_pipe (p));

  return g_data_input_stream_read_line (out, NULL, NULL, NULL);
}

static void
start_daemon (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autofree gchar *line = NULL;
  const gchar *p;

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "AWS_ACCESS_KEY_ID", PEER_KEY, TRUE);
  g_subprocess_launcher_setenv (launcher, "AWS_SECRET_ACCESS_KEY", PEER_SECRET,
      TRUE);
  /* The environment's CALLPIPE_PIPELINES_DIR is [pipelines] dir too. */
  if (f->pipelines_dir != NULL)
    g_subprocess_launcher_setenv (launcher, "CALLPIPE_PIPELINES_DIR",
        f->pipelines_dir, TRUE);
  f->daemon = g_subprocess_launcher_spawn (launcher, &error, CALLPIPED_BIN,
      "--port", "0", "--data-dir", f->data_dir, "--config", f->config, NULL);
  g_assert_no_error (error);
  line = first_line (f->daemon);
  g_assert_nonnull (line);
  p = strstr (line, "port ");
  g_assert_nonnull (p);
  f->port = atoi (p + 5);
  g_assert_cmpuint (f->port, >, 0);
}

static void
kill_daemon (Fixture *f)
{
  g_subprocess_send_signal (f->daemon, SIGKILL);
  g_assert_true (g_subprocess_wait (f->daemon, NULL, NULL));
  g_assert_false (g_subprocess_get_if_exited (f->daemon));
  g_clear_object (&f->daemon);
}

static gboolean
start_peer (Fixture *f, guint *port)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
          | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autofree gchar *line = NULL;

  if (SONIC_PEER_PYTHON[0] == '\0')
    return FALSE;
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->peer = g_subprocess_launcher_spawn (launcher, NULL, SONIC_PEER_PYTHON,
      SONIC_PEER_SCRIPT, "--lifetime", "240", NULL);
  if (f->peer == NULL)
    return FALSE;
  line = first_line (f->peer);
  *port = line != NULL ? atoi (line) : 0;
  return *port > 0;
}

static void
make_dirs (Fixture *f)
{
  f->dir = g_dir_make_tmp ("callpiped-crash-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->data_dir = g_build_filename (f->dir, "var", NULL);
  f->config = g_build_filename (f->dir, "callpiped.ini", NULL);
  f->http = soup_session_new_with_options ("timeout", 60, NULL);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  GSubprocess **children[] = {&f->daemon, &f->peer, &f->s3peer};

  for (guint i = 0; i < G_N_ELEMENTS (children); i++) {
    if (*children[i] == NULL)
      continue;
    g_subprocess_force_exit (*children[i]);
    g_subprocess_wait (*children[i], NULL, NULL);
    g_clear_object (children[i]);
  }
  g_clear_object (&f->http);
  cp_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->data_dir);
  g_free (f->config);
  g_free (f->moto_url);
  g_free (f->proxy_url);
  g_free (f->pipelines_dir);
}

/* ---- HTTP ---- */

/* The token goes to callpiped's routes, not to the links it gives. */
static Reply *
http (Fixture *f, const gchar *method, const gchar *path, const gchar *body)
{
  return cp_test_http (f->http, f->port, method, path,
      g_str_has_prefix (path, "http") ? NULL : TOKEN, body);
}

static const gchar *
jstr (Reply *r, const gchar *member)
{
  return cp_test_reply_string (r, member);
}

/* @role's first text in the transcript array @member of @r, or NULL. */
static const gchar *
said (Reply *r, const gchar *role)
{
  JsonArray *t = json_object_get_array_member (json_node_get_object (r->json),
      "transcript");

  for (guint i = 0; i < json_array_get_length (t); i++) {
    JsonObject *e = json_array_get_object_element (t, i);

    if (!g_strcmp0 (json_object_get_string_member (e, "role"), role))
      return json_object_get_string_member (e, "text");
  }
  return NULL;
}

static gchar *
start_call (Fixture *f, const gchar *contact, const gchar *wav)
{
  g_autofree gchar *uri = g_filename_to_uri (wav, NULL, NULL);
  g_autofree gchar *body = g_strdup_printf ("{\"contactId\": \"%s\", "
                                            "\"mediaUri\": \"%s\"}",
      contact, uri);
  g_autoptr (Reply) r = http (f, "POST", "/calls", body);

  g_assert_cmpuint (r->status, ==, 202);
  return g_strdup (jstr (r, "sessionId"));
}

typedef gboolean (*CallCheck) (Reply *r);

/* GET /calls/@id until @check accepts it. */
static Reply *
wait_call (Fixture *f, const gchar *id, CallCheck check, const gchar *what)
{
  g_autofree gchar *path = g_strconcat ("/calls/", id, NULL);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (g_get_monotonic_time () < deadline) {
    Reply *r = http (f, "GET", path, NULL);

    g_assert_cmpuint (r->status, ==, 200);
    if (check (r))
      return r;
    cp_test_reply_free (r);
    g_usleep (POLL_US);
  }
  g_error ("call %s: no %s in time", id, what);
  return NULL;
}

static gboolean
bot_answered (Reply *r)
{
  return !g_strcmp0 (jstr (r, "state"), "running")
      && !g_strcmp0 (said (r, "bot"), "reply 1");
}

static gboolean
is_running (Reply *r)
{
  return !g_strcmp0 (jstr (r, "state"), "running");
}

static gboolean
is_ended (Reply *r)
{
  return !g_strcmp0 (jstr (r, "state"), "ended");
}

/* ---- media ---- */

/* 16 kHz mono: @tone_s of a loud tone (speech to sonicpeer), then
 * silence up to @total_s. */
static gchar *
make_wav (Fixture *f, const gchar *name, guint tone_s, guint total_s)
{
  return cp_test_write_wav (f->dir, name, tone_s, total_s, NULL);
}

typedef struct
{
  guint channels;
  guint rate;
  guint64 frames;
  gsize len;
} WavInfo;

/* A playable WAV: the RIFF size is the file's, the data chunk's size is
 * what follows its header, to the end of the file. */
static void
check_final_wav (const gchar *path, WavInfo *info)
{
  g_autofree gchar *data = NULL;
  const guint8 *d;
  gsize len = 0, off = 12;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  d = (const guint8 *) data;
  info->len = len;
  g_assert_cmpuint (len, >, 44);
  g_assert_cmpmem (d, 4, "RIFF", 4);
  g_assert_cmpmem (d + 8, 4, "WAVE", 4);
  g_assert_cmpuint (GST_READ_UINT32_LE (d + 4), ==, len - 8);
  while (off + 8 <= len) {
    guint32 size = GST_READ_UINT32_LE (d + off + 4);

    if (!memcmp (d + off, "fmt ", 4)) {
      info->channels = GST_READ_UINT16_LE (d + off + 10);
      info->rate = GST_READ_UINT32_LE (d + off + 12);
    } else if (!memcmp (d + off, "data", 4)) {
      g_assert_cmpuint (info->channels, >, 0);
      g_assert_cmpuint (off + 8 + size, ==, len);
      info->frames = size / (2 * info->channels);
      return;
    }
    off += 8 + size + (size & 1);
  }
  g_error ("%s has no data chunk", path);
}

/* ---- directory storage, a bot call ---- */

static void
setup_bot (Fixture *f, gconstpointer data)
{
  g_autofree gchar *config = NULL;
  guint peer_port = 0;

  make_dirs (f);
  if (!start_peer (f, &peer_port))
    return;
  config = g_strdup_printf ("[server]\n"
                            "address = 127.0.0.1\n"
                            "token = " TOKEN "\n"
                            "[bot]\n"
                            "backend = bedrock\n"
                            "region = us-east-1\n"
                            "endpoint = http://127.0.0.1:%u\n",
      peer_port);
  g_assert_true (g_file_set_contents (f->config, config, -1, NULL));
  start_daemon (f);
}

static void
test_killed_mid_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *name = NULL;
  g_autofree gchar *recording = NULL;
  g_autofree gchar *doc_text = NULL;
  g_autoptr (Reply) answered = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (Reply) doc = NULL;
  g_autoptr (Reply) again = NULL;
  g_autofree gchar *path = NULL;
  const gchar *reason;
  WavInfo info = {0}, second = {0};

  if (f->peer == NULL) {
    g_test_skip ("sonicpeer.py needs Debian's python3-h2");
    return;
  }
  /* A call that would last a minute: the bot answers the first second. */
  wav = make_wav (f, "question.wav", 1, 60);
  id = start_call (f, "crash-1", wav);
  answered = wait_call (f, id, bot_answered, "answer from the bot");
  /* Some seconds of the recording reach the disk (filesink writes in
   * 64 KB blocks: 2 s of 8 kHz stereo). */
  g_usleep (4 * G_USEC_PER_SEC);
  kill_daemon (f);

  name = g_strconcat (id, ".wav", NULL);
  recording =
      g_build_filename (f->data_dir, "storage", "recordings", name, NULL);
  start_daemon (f);
  path = g_strconcat ("/calls/", id, NULL);
  call = http (f, "GET", path, NULL);
  g_assert_cmpuint (call->status, ==, 200);
  g_assert_cmpstr (jstr (call, "state"), ==, "failed");
  reason = jstr (call, "reason");
  g_assert_true (g_str_has_prefix (reason,
      "interrupted by restart; recording repaired: "));
  g_assert_nonnull (strstr (reason, " s kept"));
  /* The conversation so far is kept... */
  g_assert_cmpstr (said (call, "caller"), ==, "turn 1");
  g_assert_cmpstr (said (call, "bot"), ==, "reply 1");

  /* ...the recording plays: its header now agrees with the file... */
  check_final_wav (recording, &info);
  g_assert_cmpuint (info.channels, ==, 2);
  g_assert_cmpuint (info.rate, ==, 8000);
  g_assert_cmpuint (info.frames, >=, 8000);
  g_assert_nonnull (strstr (reason, "before the crash may be missing"));
  /* ...and its link serves the repaired file. */
  g_assert_nonnull (jstr (call, "recordingUrl"));
  {
    g_autoptr (Reply) media =
        http (f, "GET", jstr (call, "recordingUrl"), NULL);
    g_autofree gchar *bytes = NULL;
    gsize len = 0;

    g_assert_cmpuint (media->status, ==, 200);
    g_assert_true (g_file_get_contents (recording, &bytes, &len, NULL));
    g_assert_cmpuint (g_bytes_get_size (media->body), ==, len);
    g_assert_cmpmem (g_bytes_get_data (media->body, NULL), len, bytes, len);
  }

  /* ...and the transcript was written. */
  g_assert_nonnull (jstr (call, "transcriptUrl"));
  doc = http (f, "GET", jstr (call, "transcriptUrl"), NULL);
  g_assert_cmpuint (doc->status, ==, 200);
  g_assert_cmpstr (jstr (doc, "sessionId"), ==, id);
  g_assert_cmpstr (jstr (doc, "state"), ==, "failed");
  g_assert_cmpstr (jstr (doc, "reason"), ==, reason);
  g_assert_cmpstr (said (doc, "bot"), ==, "reply 1");

  /* Another start finds nothing left to do and changes nothing. */
  kill_daemon (f);
  start_daemon (f);
  again = http (f, "GET", path, NULL);
  g_assert_cmpstr (jstr (again, "reason"), ==, reason);
  check_final_wav (recording, &second);
  g_assert_cmpuint (second.len, ==, info.len);
}

/* ---- S3 storage ---- */

#define QUICK_PIPELINE                                                    \
  "# A call without recording: the caller's media played in real time.\n" \
  "uridecodebin uri=${MEDIA_URI} ! audioconvert ! fakesink sync=true\n"

/* Runs s3check.py (boto3, straight to moto) with @args. */
static gboolean
s3check (Fixture *f, const gchar *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  gint status;

  g_ptr_array_add (argv, (gpointer) S3_PYTHON);
  g_ptr_array_add (argv, (gpointer) S3CHECK_SCRIPT);
  g_ptr_array_add (argv, f->moto_url);
  for (; *args != NULL; args++)
    g_ptr_array_add (argv, (gpointer) *args);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv->pdata, NULL,
      G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
      NULL, &status, &error));
  g_assert_no_error (error);
  return g_spawn_check_wait_status (status, NULL);
}

/* s3peer's proxy: @rules (JSON) replace its fault rules. */
static void
proxy_faults (Fixture *f, const gchar *rules)
{
  g_autofree gchar *url = g_strconcat (f->proxy_url, "/__faults", NULL);
  g_autoptr (Reply) r = http (f, "POST", url, rules);

  g_assert_cmpuint (r->status, ==, 204);
}

/* moto behind s3peer's proxy, [storage] on the proxy, calls on a pipeline
 * that records nothing (pipelines dir of the test's own). */
static void
setup_s3 (Fixture *f, gconstpointer data)
{
  const gchar *mkbucket[] = {"mkbucket", S3_BUCKET, NULL};
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
          | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autofree gchar *line = NULL;
  g_autofree gchar *upload = NULL;
  g_autofree gchar *upload_src = NULL;
  g_autofree gchar *quick = NULL;
  g_autofree gchar *config = NULL;
  g_autofree gchar *text = NULL;
  gint moto_port = 0, proxy_port = 0;

  make_dirs (f);
  if (!g_file_test (S3_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    return;
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->s3peer = g_subprocess_launcher_spawn (launcher, &error, S3_PYTHON,
      S3PEER_SCRIPT, NULL);
  g_assert_no_error (error);
  line = first_line (f->s3peer);
  if (line == NULL || sscanf (line, "%d %d", &moto_port, &proxy_port) != 2) {
    g_subprocess_force_exit (f->s3peer);
    g_clear_object (&f->s3peer);
    return;
  }
  f->moto_url = g_strdup_printf ("http://127.0.0.1:%d", moto_port);
  f->proxy_url = g_strdup_printf ("http://127.0.0.1:%d", proxy_port);
  g_assert_true (s3check (f, mkbucket));

  f->pipelines_dir = g_build_filename (f->dir, "pipelines", NULL);
  g_assert_cmpint (g_mkdir (f->pipelines_dir, 0700), ==, 0);
  upload_src = g_build_filename (g_getenv ("CALLPIPE_PIPELINES_DIR"),
      "storage-upload.pipeline", NULL);
  g_assert_true (g_file_get_contents (upload_src, &text, NULL, NULL));
  upload = g_build_filename (f->pipelines_dir, "storage-upload.pipeline", NULL);
  g_assert_true (g_file_set_contents (upload, text, -1, NULL));
  quick = g_build_filename (f->pipelines_dir, "quick.pipeline", NULL);
  g_assert_true (g_file_set_contents (quick, QUICK_PIPELINE, -1, NULL));
  config = g_strdup_printf ("[server]\n"
                            "address = 127.0.0.1\n"
                            "token = " TOKEN "\n"
                            "[storage]\n"
                            "uri = s3://" S3_BUCKET "/" S3_PREFIX "\n"
                            "endpoint = %s\n"
                            "[pipelines]\n"
                            "call = quick\n",
      f->proxy_url);
  g_assert_true (g_file_set_contents (f->config, config, -1, NULL));
  start_daemon (f);
}

static gboolean
spooled (Fixture *f, const gchar *id)
{
  g_autofree gchar *name = g_strconcat (id, ".json", NULL);
  g_autofree gchar *path =
      g_build_filename (f->data_dir, "spool", "transcripts", name, NULL);

  return g_file_test (path, G_FILE_TEST_IS_REGULAR);
}

/* The transcript object in the bucket, read straight from moto. */
static JsonNode *
s3_transcript (Fixture *f, const gchar *id)
{
  g_autofree gchar *key =
      g_strconcat (S3_PREFIX "/transcripts/", id, ".json", NULL);
  g_autofree gchar *file = g_build_filename (f->dir, "object.json", NULL);
  g_autofree gchar *text = NULL;
  const gchar *get[] = {"get", S3_BUCKET, key, file, NULL};

  if (!s3check (f, get))
    return NULL;
  g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
  return json_from_string (text, NULL);
}

static void
test_killed_mid_upload (Fixture *f, gconstpointer data)
{
  g_autofree gchar *short_wav = NULL;
  g_autofree gchar *long_wav = NULL;
  g_autofree gchar *ended_id = NULL;
  g_autofree gchar *cut_id = NULL;
  g_autofree gchar *ended_path = NULL;
  g_autofree gchar *cut_path = NULL;
  g_autoptr (Reply) ended = NULL;
  g_autoptr (Reply) cut = NULL;
  g_autoptr (Reply) running = NULL;
  g_autoptr (Reply) doc = NULL;
  g_autoptr (JsonNode) object = NULL;
  g_autoptr (JsonNode) cut_object = NULL;
  gint64 deadline;

  if (f->s3peer == NULL) {
    g_test_skip ("s3peer.py needs moto and boto3 for " S3_PYTHON);
    return;
  }
  /* S3 hangs: every upload waits in the proxy. */
  proxy_faults (f, "[{\"delay_ms\": 600000}]");
  short_wav = make_wav (f, "short.wav", 0, 1);
  long_wav = make_wav (f, "long.wav", 0, 60);
  ended_id = start_call (f, "upload-1", short_wav);
  cut_id = start_call (f, "cut-1", long_wav);
  ended = wait_call (f, ended_id, is_ended, "end");
  running = wait_call (f, cut_id, is_running, "start");
  /* The first call's transcript is written, its upload hangs. */
  deadline = g_get_monotonic_time () + WAIT_US;
  while (!spooled (f, ended_id) && g_get_monotonic_time () < deadline)
    g_usleep (POLL_US);
  g_assert_true (spooled (f, ended_id));
  g_usleep (G_USEC_PER_SEC);
  g_clear_pointer (&ended, cp_test_reply_free);
  ended_path = g_strconcat ("/calls/", ended_id, NULL);
  ended = http (f, "GET", ended_path, NULL);
  g_assert_null (jstr (ended, "transcriptUrl"));
  kill_daemon (f);
  g_assert_null (s3_transcript (f, ended_id));

  /* S3 answers again; the next start finishes both. */
  proxy_faults (f, "[]");
  start_daemon (f);
  g_clear_pointer (&ended, cp_test_reply_free);
  ended = http (f, "GET", ended_path, NULL);
  g_assert_cmpstr (jstr (ended, "state"), ==, "ended");
  g_assert_nonnull (jstr (ended, "transcriptUrl"));
  g_assert_true (
      g_str_has_prefix (jstr (ended, "transcriptUrl"), f->proxy_url));
  doc = http (f, "GET", jstr (ended, "transcriptUrl"), NULL);
  g_assert_cmpuint (doc->status, ==, 200);
  object = s3_transcript (f, ended_id);
  g_assert_nonnull (object);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (object),
                       "sessionId"),
      ==, ended_id);

  cut_path = g_strconcat ("/calls/", cut_id, NULL);
  cut = http (f, "GET", cut_path, NULL);
  g_assert_cmpstr (jstr (cut, "state"), ==, "failed");
  /* quick.pipeline records nothing: nothing else to report. */
  g_assert_cmpstr (jstr (cut, "reason"), ==, "interrupted by restart");
  g_assert_nonnull (jstr (cut, "transcriptUrl"));
  cut_object = s3_transcript (f, cut_id);
  g_assert_nonnull (cut_object);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (
                                                      cut_object),
                       "state"),
      ==, "failed");
}

int
main (int argc, char **argv)
{
  cp_test_sanitizer_env_for_children ();
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/callpiped/crash/killed-mid-call", Fixture, NULL, setup_bot,
      test_killed_mid_call, teardown);
  g_test_add ("/callpiped/crash/killed-mid-upload", Fixture, NULL, setup_s3,
      test_killed_mid_upload, teardown);
  return g_test_run ();
}

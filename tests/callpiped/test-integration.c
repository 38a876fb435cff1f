/* Integration tests: the built callpiped on a port it picks, a temporary
 * data directory, real calls through the media-record pipeline, and the
 * callpipe CLI against it. Waits are bounded; the daemon is killed in
 * teardown whatever happened. */
#include "test-client.h"
#include "test-util.h"

#include <gio/gio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <string.h>

#define TOKEN "test-token-123"
#define WAIT_US (30 * G_USEC_PER_SEC)
#define POLL_US (50 * 1000)
#define LONG_CALL_SECONDS 60

#define PEER_KEY "AKIDNOVATEST"
#define PEER_SECRET "novasecret"

typedef struct
{
  gchar *dir;
  gchar *data_dir;
  gchar *config;
  GSubprocess *daemon;
  guint port;
  SoupSession *http;
  GSubprocess *peer; /* sonicpeer.py for the bot tests, else NULL */
  guint peer_port;
  GSubprocess *s3peer; /* s3peer.py (moto) for the S3 tests, else NULL */
  gchar *moto_url;
  gboolean moto_in_env; /* AWS_ENDPOINT_URL_S3, else [storage] endpoint */
} Fixture;

typedef CpTestReply Reply;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, cp_test_reply_free)

/* ---- the daemon ---- */

/* A failed assertion aborts the test without teardown: the daemon must not
 * outlive it (it would also hold the test's stderr open). */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
start_daemon (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  const gchar *p;

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* The bot reaches sonicpeer with these through the credential chain. */
  g_subprocess_launcher_setenv (launcher, "AWS_ACCESS_KEY_ID", PEER_KEY, TRUE);
  g_subprocess_launcher_setenv (launcher, "AWS_SECRET_ACCESS_KEY", PEER_SECRET,
      TRUE);
  /* S3 storage on moto: s3sink, s3src and the presigned links go there. */
  if (f->moto_in_env)
    g_subprocess_launcher_setenv (launcher, "AWS_ENDPOINT_URL_S3", f->moto_url,
        TRUE);
  /* With no configuration at all, only the address comes from the
   * environment: tests listen on 127.0.0.1. */
  if (f->config == NULL)
    g_subprocess_launcher_setenv (launcher, "CALLPIPE_SERVER_ADDRESS",
        "127.0.0.1", TRUE);
  f->daemon = g_subprocess_launcher_spawn (launcher, &error, CALLPIPED_BIN,
      "--port", "0", "--data-dir", f->data_dir, f->config ? "--config" : NULL,
      f->config, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->daemon));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  p = strstr (line, "port ");
  g_assert_nonnull (p);
  f->port = atoi (p + 5);
  g_assert_cmpuint (f->port, >, 0);
}

/* GLib reaps the child on its worker thread; the identifier goes away
 * once it has exited. */
static gboolean
wait_exit (GSubprocess *p)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (g_get_monotonic_time () < deadline) {
    if (g_subprocess_get_identifier (p) == NULL)
      return TRUE;
    g_usleep (POLL_US);
  }
  return FALSE;
}

static void
stop_daemon (Fixture *f, gint signum)
{
  if (f->daemon == NULL)
    return;
  g_subprocess_send_signal (f->daemon, signum);
  g_subprocess_wait (f->daemon, NULL, NULL);
  g_clear_object (&f->daemon);
}

static void
write_config (Fixture *f, const gchar *extra)
{
  g_autofree gchar *text = g_strdup_printf ("[server]\n"
                                            "address = 127.0.0.1\n"
                                            "token = " TOKEN "\n"
                                            "max-body-bytes = 8192\n"
                                            "drain-timeout = 20\n"
                                            "%s"
                                            "[pipelines]\n"
                                            "call = media-record\n",
      extra);

  g_assert_true (g_file_set_contents (f->config, text, -1, NULL));
}

static void
setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("callpiped-it-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->data_dir = g_build_filename (f->dir, "var", NULL);
  f->config = g_build_filename (f->dir, "callpiped.ini", NULL);
  write_config (f, "");
  f->http = soup_session_new_with_options ("timeout", 30, NULL);
  start_daemon (f);
}

/* callpiped as the README starts it: no configuration file, so the
 * default bot (novasonic backend=local) and directory storage. */
static void
setup_defaults (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("callpiped-it-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->data_dir = g_build_filename (f->dir, "var", NULL);
  f->http = soup_session_new_with_options ("timeout", 60, NULL);
  start_daemon (f);
}

/* sonicpeer.py, the local Nova Sonic peer, with @extra arguments; FALSE
 * when Debian's python3-h2 is missing. */
static gboolean
start_peer (Fixture *f, const gchar *const *extra)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
          | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;

  if (SONIC_PEER_PYTHON[0] == '\0')
    return FALSE;
  g_ptr_array_add (argv, (gpointer) SONIC_PEER_PYTHON);
  g_ptr_array_add (argv, (gpointer) SONIC_PEER_SCRIPT);
  g_ptr_array_add (argv, (gpointer) "--lifetime");
  g_ptr_array_add (argv, (gpointer) "240");
  for (; extra != NULL && *extra != NULL; extra++)
    g_ptr_array_add (argv, (gpointer) *extra);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->peer = g_subprocess_launcher_spawnv (launcher,
      (const gchar *const *) argv->pdata, &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->peer));
  line = g_data_input_stream_read_line (out, NULL, NULL, NULL);
  if (line == NULL || atoi (line) <= 0) {
    g_subprocess_force_exit (f->peer);
    g_clear_object (&f->peer);
    return FALSE;
  }
  f->peer_port = atoi (line);
  return TRUE;
}

static void
setup_bot (Fixture *f, gconstpointer data)
{
  const gchar *const *peer_args = data;
  g_autofree gchar *config = NULL;

  f->dir = g_dir_make_tmp ("callpiped-it-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->data_dir = g_build_filename (f->dir, "var", NULL);
  f->config = g_build_filename (f->dir, "callpiped.ini", NULL);
  f->http = soup_session_new_with_options ("timeout", 60, NULL);
  if (!start_peer (f, peer_args))
    return;
  config = g_strdup_printf ("[server]\n"
                            "address = 127.0.0.1\n"
                            "token = " TOKEN "\n"
                            "drain-timeout = 20\n"
                            "[turn]\n"
                            "max-audio-seconds = 5\n"
                            "[bot]\n"
                            "backend = bedrock\n"
                            "region = us-east-1\n"
                            "endpoint = http://127.0.0.1:%u\n",
      f->peer_port);
  g_assert_true (g_file_set_contents (f->config, config, -1, NULL));
  start_daemon (f);
}

#define S3_BUCKET "callpipe-it"
#define S3_PREFIX "calls/2026"

/* Runs s3check.py (boto3, straight to moto) with @args; FALSE with
 * its stderr in @err when it fails. */
static gboolean
s3check (Fixture *f, const gchar *const *args, gchar **err)
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
      G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, err, &status, &error));
  g_assert_no_error (error);
  return g_spawn_check_wait_status (status, NULL);
}

/* S3 storage on moto (s3peer.py, the default python3 with moto and
 * boto3), the bucket made by the test. @data: "record" runs the stock
 * media-record pipeline with the endpoint in [storage] endpoint, "bot"
 * the bot on sonicpeer.py with the endpoint in AWS_ENDPOINT_URL_S3. Nothing starts
 * (the test skips) without moto or sonicpeer. */
static void
setup_s3 (Fixture *f, gconstpointer data)
{
  const gchar *mode = data;
  const gchar *mkbucket[] = {"mkbucket", S3_BUCKET, NULL};
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
          | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *pipeline = NULL;
  g_autofree gchar *config = NULL;

  f->dir = g_dir_make_tmp ("callpiped-it-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->data_dir = g_build_filename (f->dir, "var", NULL);
  f->config = g_build_filename (f->dir, "callpiped.ini", NULL);
  f->http = soup_session_new_with_options ("timeout", 60, NULL);
  if (!g_file_test (S3_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    return;
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->s3peer = g_subprocess_launcher_spawn (launcher, &error, S3_PYTHON,
      S3PEER_SCRIPT, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->s3peer));
  line = g_data_input_stream_read_line (out, NULL, NULL, NULL);
  if (line == NULL || atoi (line) <= 0) {
    g_subprocess_force_exit (f->s3peer);
    g_clear_object (&f->s3peer);
    return;
  }
  f->moto_url = g_strdup_printf ("http://127.0.0.1:%d", atoi (line));
  if (!s3check (f, mkbucket, &err))
    g_error ("cannot create the bucket: %s", err);
  if (!strcmp (mode, "bot")) {
    if (!start_peer (f, NULL))
      return;
    pipeline = g_strdup_printf ("[bot]\n"
                                "backend = bedrock\n"
                                "region = us-east-1\n"
                                "endpoint = http://127.0.0.1:%u\n",
        f->peer_port);
    f->moto_in_env = TRUE;
  } else {
    pipeline = g_strdup_printf ("endpoint = %s\n"
                                "[pipelines]\n"
                                "call = media-record\n",
        f->moto_url);
  }
  config = g_strdup_printf ("[server]\n"
                            "address = 127.0.0.1\n"
                            "token = " TOKEN "\n"
                            "drain-timeout = 20\n"
                            "[storage]\n"
                            "uri = s3://" S3_BUCKET "/" S3_PREFIX "\n"
                            "%s",
      pipeline);
  g_assert_true (g_file_set_contents (f->config, config, -1, NULL));
  start_daemon (f);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  stop_daemon (f, SIGKILL);
  if (f->peer != NULL) {
    g_subprocess_force_exit (f->peer);
    g_subprocess_wait (f->peer, NULL, NULL);
    g_clear_object (&f->peer);
  }
  if (f->s3peer != NULL) {
    g_subprocess_force_exit (f->s3peer);
    g_subprocess_wait (f->s3peer, NULL, NULL);
    g_clear_object (&f->s3peer);
  }
  g_free (f->moto_url);
  g_clear_object (&f->http);
  cp_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->data_dir);
  g_free (f->config);
}

/* ---- HTTP ---- */

static Reply *
http_full (Fixture *f, const gchar *method, const gchar *path,
    const gchar *token, const gchar *body)
{
  return cp_test_http (f->http, f->port, method, path, token, body);
}

static Reply *
http (Fixture *f, const gchar *method, const gchar *path, const gchar *body)
{
  return http_full (f, method, path, TOKEN, body);
}

static const gchar *
jstr (Reply *r, const gchar *member)
{
  return cp_test_reply_string (r, member);
}

static void
assert_error (Reply *r, guint status, const gchar *code, const gchar *needle)
{
  JsonObject *e;

  g_assert_cmpuint (r->status, ==, status);
  g_assert_nonnull (r->json);
  e = json_object_get_object_member (json_node_get_object (r->json), "error");
  g_assert_nonnull (e);
  g_assert_cmpstr (json_object_get_string_member (e, "code"), ==, code);
  if (needle != NULL
      && strstr (json_object_get_string_member (e, "message"), needle) == NULL)
    g_error ("error message '%s' does not mention '%s'",
        json_object_get_string_member (e, "message"), needle);
}

/* libsoup always sends a Content-Length for a known body, so a chunked
 * request goes out over a plain socket. */
static guint
raw_status (Fixture *f, const gchar *request)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autofree gchar *line = NULL;

  conn = g_socket_client_connect_to_host (client, "127.0.0.1", f->port, NULL,
      &error);
  g_assert_no_error (error);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (
                                                G_IO_STREAM (conn)),
      request, strlen (request), NULL, NULL, &error));
  g_assert_no_error (error);
  in = g_data_input_stream_new (
      g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (line, "HTTP/1.1 "));
  return atoi (line + 9);
}

/* ---- media ---- */

/* A 16 kHz mono sine WAV: the pipeline resamples it to 8 kHz. */
static gchar *
make_wav (Fixture *f, const gchar *name, guint seconds)
{
  return cp_test_write_wav (f->dir, name, seconds, seconds, NULL);
}

typedef struct
{
  guint channels;
  guint rate;
  guint64 frames;
} WavInfo;

/* Checks the RIFF and data sizes agree with the bytes: a WAV whose header
 * was never finalized fails here. */
static void
parse_wav (const guint8 *d, gsize len, WavInfo *info)
{
  gsize off = 12;
  gboolean have_fmt = FALSE, have_data = FALSE;

  g_assert_cmpuint (len, >=, 44);
  g_assert_cmpmem (d, 4, "RIFF", 4);
  g_assert_cmpmem (d + 8, 4, "WAVE", 4);
  g_assert_cmpuint (GST_READ_UINT32_LE (d + 4), ==, len - 8);
  while (off + 8 <= len) {
    guint32 size = GST_READ_UINT32_LE (d + off + 4);

    if (!memcmp (d + off, "fmt ", 4)) {
      g_assert_cmpuint (GST_READ_UINT16_LE (d + off + 8), ==, 1);
      info->channels = GST_READ_UINT16_LE (d + off + 10);
      info->rate = GST_READ_UINT32_LE (d + off + 12);
      g_assert_cmpuint (GST_READ_UINT16_LE (d + off + 22), ==, 16);
      have_fmt = TRUE;
    } else if (!memcmp (d + off, "data", 4)) {
      g_assert_true (have_fmt);
      g_assert_cmpuint (off + 8 + size, <=, len);
      info->frames = size / (2 * info->channels);
      have_data = TRUE;
    }
    off += 8 + size + (size & 1);
  }
  g_assert_true (have_fmt && have_data);
}

static void
parse_wav_file (const gchar *path, WavInfo *info)
{
  g_autofree gchar *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  parse_wav ((const guint8 *) data, len, info);
}

/* The bot pipeline records stereo; the stock fallback mono. */
static guint
channels_for (Reply *call)
{
  return g_strcmp0 (jstr (call, "pipeline"), "media-record") == 0 ? 1 : 2;
}

/* ---- calls ---- */

static gchar *
start_call (Fixture *f, const gchar *body)
{
  g_autoptr (Reply) r = http (f, "POST", "/calls", body);

  if (r->status != 202)
    g_error ("POST /calls: %u %.*s", r->status,
        (int) g_bytes_get_size (r->body),
        (const gchar *) g_bytes_get_data (r->body, NULL));
  g_assert_cmpstr (jstr (r, "status"), ==, "started");
  g_assert_true (g_uuid_string_is_valid (jstr (r, "sessionId")));
  return g_strdup (jstr (r, "sessionId"));
}

static Reply *
wait_state (Fixture *f, const gchar *id, const gchar *const *states)
{
  g_autofree gchar *path = g_strdup_printf ("/calls/%s", id);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (g_get_monotonic_time () < deadline) {
    Reply *r = http (f, "GET", path, NULL);

    g_assert_cmpuint (r->status, ==, 200);
    if (g_strv_contains (states, jstr (r, "state")))
      return r;
    cp_test_reply_free (r);
    g_usleep (POLL_US);
  }
  g_error ("call %s did not reach the expected state in time", id);
  return NULL;
}

static const gchar *const final_states[] = {"ended", "failed", NULL};
static const gchar *const running_states[] = {"running", "ended", "failed",
    NULL};

static gchar *
media_body (const gchar *contact, const gchar *wav)
{
  g_autofree gchar *uri = g_filename_to_uri (wav, NULL, NULL);

  return g_strdup_printf ("{\"contactId\": \"%s\", \"mediaUri\": \"%s\"}",
      contact, uri);
}

static void
check_recording_link (Fixture *f, Reply *call, guint64 min_frames,
    guint64 max_frames)
{
  const gchar *url = jstr (call, "recordingUrl");
  g_autoptr (Reply) media = NULL;
  g_autoptr (Reply) tampered = NULL;
  g_autofree gchar *bad = NULL;
  WavInfo info = {0};
  gsize len;
  const guint8 *d;

  g_assert_nonnull (url);
  /* signed links need no bearer token */
  media = http_full (f, "GET", url, NULL, NULL);
  g_assert_cmpuint (media->status, ==, 200);
  g_assert_cmpstr (media->content_type, ==, "audio/wav");
  d = g_bytes_get_data (media->body, &len);
  parse_wav (d, len, &info);
  g_assert_cmpuint (info.rate, ==, 8000);
  g_assert_cmpuint (info.channels, ==, channels_for (call));
  g_assert_cmpuint (info.frames, >=, min_frames);
  g_assert_cmpuint (info.frames, <=, max_frames);

  bad = g_strdup (url);
  bad[strlen (bad) - 1] = bad[strlen (bad) - 1] == '0' ? '1' : '0';
  tampered = http_full (f, "GET", bad, NULL, NULL);
  assert_error (tampered, 403, "forbidden", "signature");
}

/* A 16 kHz mono WAV: @tone_s of a loud 440 Hz tone (speech to sonicpeer),
 * then @silence_s of silence (the pause that ends the caller's turn). */
static gchar *
make_speech_wav (Fixture *f, const gchar *name, guint tone_s, guint silence_s,
    gsize *out_len)
{
  return cp_test_write_wav (f->dir, name, tone_s, tone_s + silence_s, out_len);
}

/* The samples of a 16-bit WAV's data chunk. */
static const gint16 *
wav_samples (const guint8 *d, gsize len, guint64 *n)
{
  gsize off = 12;

  while (off + 8 <= len) {
    guint32 size = GST_READ_UINT32_LE (d + off + 4);

    if (!memcmp (d + off, "data", 4)) {
      *n = MIN (size, len - off - 8) / 2;
      return (const gint16 *) (gconstpointer) (d + off + 8);
    }
    off += 8 + size + (size & 1);
  }
  g_assert_not_reached ();
  return NULL;
}

typedef struct
{
  gint peak; /* loudest sample */
  guint64 peer_samples; /* samples of sonicpeer's reply (value 1001) */
} ChannelStats;

static void
channel_stats (const gint16 *s, guint64 n, guint channels, guint ch,
    ChannelStats *st)
{
  guint64 i;

  memset (st, 0, sizeof (*st));
  for (i = ch; i < n; i += channels) {
    gint16 v = GINT16_FROM_LE (s[i]);

    st->peak = MAX (st->peak, ABS (v));
    if (v >= 995 && v <= 1007)
      st->peer_samples++;
  }
}

static JsonArray *
jarray (Reply *r, const gchar *member)
{
  return json_object_get_array_member (json_node_get_object (r->json), member);
}

/* @role's text at its first transcript entry, or NULL. */
static const gchar *
transcript_text (JsonArray *transcript, const gchar *role)
{
  guint i;

  for (i = 0; i < json_array_get_length (transcript); i++) {
    JsonObject *e = json_array_get_object_element (transcript, i);

    if (!g_strcmp0 (json_object_get_string_member (e, "role"), role))
      return json_object_get_string_member (e, "text");
  }
  return NULL;
}

/* The stereo recording: caller (the tone) left, bot (sonicpeer's reply,
 * samples of 1001) right, and nothing of either on the other side. */
static void
check_bot_recording (Fixture *f, Reply *call, guint64 min_reply_samples)
{
  g_autoptr (Reply) media =
      http_full (f, "GET", jstr (call, "recordingUrl"), NULL, NULL);
  WavInfo info = {0};
  ChannelStats left, right;
  const gint16 *pcm;
  guint64 n;
  gsize len;
  const guint8 *d;

  g_assert_cmpuint (media->status, ==, 200);
  d = g_bytes_get_data (media->body, &len);
  parse_wav (d, len, &info);
  g_assert_cmpuint (info.channels, ==, 2);
  g_assert_cmpuint (info.rate, ==, 8000);
  pcm = wav_samples (d, len, &n);
  channel_stats (pcm, n, 2, 0, &left);
  channel_stats (pcm, n, 2, 1, &right);
  g_assert_cmpint (left.peak, >, 6000);
  g_assert_cmpuint (left.peer_samples, <, 100);
  g_assert_cmpuint (right.peer_samples, >=, min_reply_samples);
  g_assert_cmpint (right.peak, <, 1100);
}

static gboolean
skip_without_peer (Fixture *f)
{
  if (f->peer != NULL)
    return FALSE;
  g_test_skip ("sonicpeer.py needs Debian's python3-h2");
  return TRUE;
}

/* ---- tests ---- */

static void
test_health_auth_routes (Fixture *f, gconstpointer data)
{
  g_autoptr (Reply) health = http_full (f, "GET", "/health", NULL, NULL);
  g_autoptr (Reply) noauth = http_full (f, "GET", "/calls", NULL, NULL);
  g_autoptr (Reply) wrong = http_full (f, "GET", "/calls", "nope", NULL);
  g_autoptr (Reply) list = http (f, "GET", "/calls", NULL);
  g_autoptr (Reply) metrics = http (f, "GET", "/metrics", NULL);
  g_autoptr (Reply) nope = http (f, "GET", "/nope", NULL);
  g_autoptr (Reply) put = http (f, "PUT", "/calls", "{}");
  g_autoptr (Reply) unknown =
      http (f, "GET", "/calls/3f0a8a8e-0000-4000-8000-000000000000", NULL);
  g_autoptr (Reply) media =
      http_full (f, "GET", "/media/recordings/x.wav", NULL, NULL);
  g_autofree gchar *mtext = NULL;
  JsonObject *o;

  g_assert_cmpuint (health->status, ==, 200);
  o = json_node_get_object (health->json);
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "ok");
  g_assert_cmpint (json_object_get_int_member (o, "activeSessions"), ==, 0);
  g_assert_false (json_object_get_boolean_member (o, "draining"));

  assert_error (noauth, 401, "unauthorized", NULL);
  assert_error (wrong, 401, "unauthorized", NULL);
  g_assert_cmpuint (list->status, ==, 200);
  g_assert_cmpuint (metrics->status, ==, 200);
  mtext = g_strndup (g_bytes_get_data (metrics->body, NULL),
      g_bytes_get_size (metrics->body));
  g_assert_nonnull (strstr (mtext,
      "callpipe_sessions_active{kind=\"call\"} "
      "0\n"));
  g_assert_nonnull (strstr (mtext,
      "# TYPE callpipe_session_duration_seconds"
      " histogram\n"));
  assert_error (nope, 404, "not_found", NULL);
  assert_error (put, 405, "method_not_allowed", NULL);
  assert_error (unknown, 404, "not_found", NULL);
  assert_error (media, 403, "forbidden", NULL);
}

static void
test_bad_events (Fixture *f, gconstpointer data)
{
  g_autoptr (Reply) malformed = http (f, "POST", "/calls", "{\"contactId\"");
  g_autoptr (Reply) no_id = http (f, "POST", "/calls",
      "{\"Details\": {\"ContactData\": {\"Channel\": \"VOICE\"}}}");
  g_autoptr (Reply) bad_type = http (f, "POST", "/calls",
      "{\"contactId\": 42, \"mediaUri\": \"file:///x.wav\"}");
  g_autoptr (Reply) hostile = http (f, "POST", "/calls",
      "{\"contactId\": \"c\", \"mediaUri\": "
      "\"file:///x.wav ! filesink location=/tmp/pwned\"}");
  g_autoptr (Reply) no_media =
      http (f, "POST", "/calls", "{\"contactId\": \"c\"}");
  g_autofree gchar *huge = g_strnfill (9000, 'x');
  g_autofree gchar *big_body =
      g_strdup_printf ("{\"contactId\": \"%s\"}", huge);
  g_autoptr (Reply) big = http (f, "POST", "/calls", big_body);
  g_autoptr (Reply) kvs = http (f, "POST", "/calls",
      "{\"contactId\": \"c\", "
      "\"streamArn\": \"arn:aws:kinesisvideo:us-east-1:1:stream/s/1\"}");
  const gchar *needed[] = {"kvssrc", "kvsdemux", "novasonic"};
  gsize i;

  assert_error (malformed, 400, "malformed_event", NULL);
  assert_error (no_id, 400, "missing_field", "Details.ContactData.ContactId");
  assert_error (bad_type, 400, "invalid_field", "contactId");
  assert_error (hostile, 400, "invalid_field", "mediaUri");
  assert_error (no_media, 400, "missing_field", "mediaUri");
  assert_error (big, 413, "payload_too_large", NULL);
  g_assert_cmpuint (raw_status (f,
                        "POST /calls HTTP/1.1\r\n"
                        "Host: 127.0.0.1\r\nAuthorization: Bearer " TOKEN "\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"
                        "5\r\n{\"a\":\r\n0\r\n\r\n"),
      ==, 411);

  /* A KVS call runs connect-bot; until its elements are built the answer
   * names the first one missing. */
  for (i = 0; i < G_N_ELEMENTS (needed); i++) {
    GstElementFactory *ef = gst_element_factory_find (needed[i]);

    if (ef == NULL) {
      assert_error (kvs, 503, "pipeline_unavailable", needed[i]);
      return;
    }
    gst_object_unref (ef);
  }
  g_assert_cmpuint (kvs->status, ==, 202);
}

static void
test_flat_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = make_wav (f, "one-second.wav", 1);
  g_autofree gchar *body = media_body ("flat-1", wav);
  g_autofree gchar *id = start_call (f, body);
  g_autoptr (Reply) call = wait_state (f, id, final_states);
  g_autoptr (Reply) list = NULL;
  g_autoptr (Reply) metrics = NULL;
  g_autofree gchar *mtext = NULL;
  JsonArray *calls;

  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "reason"), ==, "end of stream");
  g_assert_cmpstr (jstr (call, "contactId"), ==, "flat-1");
  /* 1 s at 8 kHz, give or take the resampler's edges */
  check_recording_link (f, call, 7900, 8100);

  list = http (f, "GET", "/calls", NULL);
  calls =
      json_object_get_array_member (json_node_get_object (list->json), "calls");
  g_assert_cmpuint (json_array_get_length (calls), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (
                       json_array_get_object_element (calls, 0), "sessionId"),
      ==, id);

  metrics = http (f, "GET", "/metrics", NULL);
  mtext = g_strndup (g_bytes_get_data (metrics->body, NULL),
      g_bytes_get_size (metrics->body));
  g_assert_nonnull (
      strstr (mtext, "callpipe_sessions_started_total{kind=\"call\"} 1\n"));
  g_assert_nonnull (
      strstr (mtext, "callpipe_sessions_ended_total{kind=\"call\"} 1\n"));
  g_assert_nonnull (strstr (mtext,
      "callpipe_session_duration_seconds_count{kind=\"call\"} 1\n"));
}

static void
test_connect_event_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = make_wav (f, "two-seconds.wav", 2);
  g_autofree gchar *uri = g_filename_to_uri (wav, NULL, NULL);
  g_autofree gchar *body =
      g_strdup_printf ("{\"Name\": "
                       "\"ContactFlowEvent\", \"Details\": {\"ContactData\": {"
                       "\"Attributes\": {\"language\": \"en-US\"}, "
                       "\"Channel\": \"VOICE\", "
                       "\"ContactId\": "
                       "\"5ca32fbb-8d47-4d4b-9d8f-0f6a2b3c4d5e\", "
                       "\"InitiationMethod\": \"INBOUND\", \"MediaStreams\": "
                       "{\"Customer\": "
                       "{\"Audio\": {\"StartFragmentNumber\": "
                       "\"91343852333181432392682062622220590765191907586\", "
                       "\"StartTimestamp\": \"1565781909613\", \"StreamARN\": "
                       "\"arn:aws:kinesisvideo:eu-west-2:111111111111:stream/"
                       "instance-contact-5ca32fbb/1565272947806\"}}}}, "
                       "\"Parameters\": "
                       "{\"mediaUri\": \"%s\"}}}",
          uri);
  g_autofree gchar *id = start_call (f, body);
  g_autoptr (Reply) call = wait_state (f, id, final_states);
  JsonObject *attrs;

  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "contactId"), ==,
      "5ca32fbb-8d47-4d4b-9d8f-0f6a2b3c4d5e");
  attrs = json_object_get_object_member (json_node_get_object (call->json),
      "attributes");
  g_assert_cmpstr (json_object_get_string_member (attrs, "language"), ==,
      "en-US");
  check_recording_link (f, call, 15900, 16100);
}

static void
test_hangup (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = make_wav (f, "long.wav", LONG_CALL_SECONDS);
  g_autofree gchar *body = media_body ("hangup-1", wav);
  g_autofree gchar *id = start_call (f, body);
  g_autofree gchar *path = g_strdup_printf ("/calls/%s", id);
  g_autoptr (Reply) running = wait_state (f, id, running_states);
  g_autoptr (Reply) del = NULL;
  g_autoptr (Reply) again = NULL;
  g_autoptr (Reply) call = NULL;

  g_assert_cmpstr (jstr (running, "state"), ==, "running");
  del = http (f, "DELETE", path, NULL);
  g_assert_cmpuint (del->status, ==, 202);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "reason"), ==, "hangup");
  /* finalized, and cut well before the media's end */
  check_recording_link (f, call, 1, 8000 * (LONG_CALL_SECONDS - 10));
  again = http (f, "DELETE", path, NULL);
  g_assert_cmpuint (again->status, ==, 200);
}

static void
test_sigterm_drains (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = make_wav (f, "long.wav", LONG_CALL_SECONDS);
  g_autofree gchar *body = media_body ("drain-1", wav);
  g_autofree gchar *id = start_call (f, body);
  g_autoptr (Reply) running = wait_state (f, id, running_states);
  g_autoptr (Reply) call = NULL;
  g_autofree gchar *file = NULL;
  g_autofree gchar *name = g_strconcat (id, ".wav", NULL);
  WavInfo info = {0};

  g_assert_cmpstr (jstr (running, "state"), ==, "running");
  g_usleep (G_USEC_PER_SEC / 2);
  g_subprocess_send_signal (f->daemon, SIGTERM);
  g_assert_true (wait_exit (f->daemon));
  g_assert_true (g_subprocess_get_if_exited (f->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (f->daemon), ==, 0);
  g_clear_object (&f->daemon);

  file = g_build_filename (f->data_dir, "storage", "recordings", name, NULL);
  parse_wav_file (file, &info);
  g_assert_cmpuint (info.frames, >, 0);
  g_assert_cmpuint (info.frames, <, 8000 * (LONG_CALL_SECONDS - 10));

  /* after a restart the call is reported as drained, not interrupted */
  start_daemon (f);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "reason"), ==, "shutdown");
}

static void
test_restart_after_kill (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = make_wav (f, "long.wav", LONG_CALL_SECONDS);
  g_autofree gchar *body = media_body ("kill-1", wav);
  g_autofree gchar *id = start_call (f, body);
  g_autoptr (Reply) running = wait_state (f, id, running_states);
  g_autoptr (Reply) call = NULL;

  g_assert_cmpstr (jstr (running, "state"), ==, "running");
  stop_daemon (f, SIGKILL);
  start_daemon (f);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "failed");
  /* The reason goes on with what became of the recording (nothing of
   * this one reached the disk: filesink's buffer). */
  g_assert_true (
      g_str_has_prefix (jstr (call, "reason"), "interrupted by restart"));
  g_assert_null (jstr (call, "recordingUrl"));
}

static void
test_cli_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = make_wav (f, "cli.wav", 1);
  g_autofree gchar *server = g_strdup_printf ("http://127.0.0.1:%u", f->port);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) cli = NULL;
  g_autofree gchar *out = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (Reply) call = NULL;
  const gchar *sessions_line;

  cli = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, CALLPIPE_BIN,
      "call", "--media", wav, "--server", server, "--token", TOKEN, "--wait",
      NULL);
  g_assert_no_error (error);
  g_assert_true (
      g_subprocess_communicate_utf8 (cli, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (cli));
  g_assert_cmpint (g_subprocess_get_exit_status (cli), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  g_assert_true (g_uuid_string_is_valid (lines[0]));
  g_assert_true (g_str_has_prefix (lines[1], "ended: end of stream"));
  call = wait_state (f, lines[0], final_states);
  check_recording_link (f, call, 7900, 8100);

  /* callpipe sessions lists it, as a table */
  g_clear_object (&cli);
  g_clear_pointer (&out, g_free);
  cli = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, CALLPIPE_BIN,
      "sessions", "--server", server, "--token", TOKEN, NULL);
  g_assert_no_error (error);
  g_assert_true (
      g_subprocess_communicate_utf8 (cli, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (cli), ==, 0);
  g_assert_true (g_str_has_prefix (out, "SESSION "));
  sessions_line = strstr (out, lines[0]);
  g_assert_nonnull (sessions_line);
  g_assert_nonnull (strstr (sessions_line, " ended "));
  g_assert_nonnull (strstr (sessions_line, " media-record "));

  /* without the token: the server's 401, exit status 1 */
  g_clear_object (&cli);
  cli = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE
          | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
      &error, CALLPIPE_BIN, "sessions", "--server", server, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait (cli, NULL, &error));
  g_assert_cmpint (g_subprocess_get_exit_status (cli), ==, 1);
}

/* A bot call end to end: mediaUri → novasonic (bedrock) → sonicpeer's
 * scripted answer; transcript, stereo recording and transcript JSON. */
static void
test_bot_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *id = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (Reply) doc = NULL;
  JsonArray *transcript;

  if (skip_without_peer (f))
    return;
  wav = make_speech_wav (f, "question.wav", 1, 2, NULL);
  body = media_body ("bot-1", wav);
  id = start_call (f, body);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "reason"), ==, "end of stream");
  g_assert_cmpstr (jstr (call, "pipeline"), ==, "connect-bot-media");
  transcript = jarray (call, "transcript");
  g_assert_cmpstr (transcript_text (transcript, "caller"), ==, "turn 1");
  g_assert_cmpstr (transcript_text (transcript, "bot"), ==, "reply 1");
  g_assert_cmpuint (json_array_get_length (jarray (call, "intents")), ==, 0);
  /* sonicpeer answers with 1 s of audio at 8 kHz */
  check_bot_recording (f, call, 7000);

  g_assert_nonnull (jstr (call, "transcriptUrl"));
  doc = http_full (f, "GET", jstr (call, "transcriptUrl"), NULL, NULL);
  g_assert_cmpuint (doc->status, ==, 200);
  g_assert_cmpstr (jstr (doc, "sessionId"), ==, id);
  g_assert_cmpstr (jstr (doc, "contactId"), ==, "bot-1");
  g_assert_cmpstr (transcript_text (jarray (doc, "transcript"), "bot"), ==,
      "reply 1");
}

/* The bot hands over: transfer_to_agent ends the call with that reason
 * after the bot's answer, long before the caller's media runs out. */
static void
test_bot_transfer (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *id = NULL;
  g_autoptr (Reply) call = NULL;
  JsonObject *intent;

  if (skip_without_peer (f))
    return;
  wav = make_speech_wav (f, "human.wav", 1, 40, NULL);
  body = media_body ("bot-2", wav);
  id = start_call (f, body);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "reason"), ==, "transfer");
  g_assert_cmpfloat (json_object_get_double_member (json_node_get_object (
                                                        call->json),
                         "duration"),
      <, 20);
  g_assert_cmpuint (json_array_get_length (jarray (call, "intents")), ==, 1);
  intent = json_array_get_object_element (jarray (call, "intents"), 0);
  g_assert_cmpstr (json_object_get_string_member (intent, "intent"), ==,
      "transfer");
  g_assert_cmpstr (json_object_get_string_member (intent, "reason"), ==,
      "caller asked");
  check_bot_recording (f, call, 7000);
}

static Reply *
post_turn (Fixture *f, const gchar *session, const gchar *wav_path)
{
  g_autofree gchar *data = NULL;
  g_autofree gchar *b64 = NULL;
  g_autofree gchar *body = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (wav_path, &data, &len, NULL));
  b64 = g_base64_encode ((const guchar *) data, len);
  body = g_strdup_printf ("{\"sessionId\": \"%s\", \"audioBase64\": "
                          "\"%s\"}",
      session, b64);
  return http (f, "POST", "/turn", body);
}

static void
check_turn_audio (Fixture *f, Reply *turn)
{
  g_autoptr (Reply) media = NULL;
  WavInfo info = {0};
  ChannelStats st;
  const gint16 *pcm;
  guint64 n;
  gsize len;
  const guint8 *d;

  g_assert_nonnull (jstr (turn, "responseAudioUrl"));
  media = http_full (f, "GET", jstr (turn, "responseAudioUrl"), NULL, NULL);
  g_assert_cmpuint (media->status, ==, 200);
  d = g_bytes_get_data (media->body, &len);
  parse_wav (d, len, &info);
  g_assert_cmpuint (info.channels, ==, 1);
  g_assert_cmpuint (info.rate, ==, 8000);
  pcm = wav_samples (d, len, &n);
  channel_stats (pcm, n, 1, 0, &st);
  g_assert_cmpuint (st.peer_samples, >=, 7000);
}

static void
test_turn (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autofree gchar *long_wav = NULL;
  g_autofree gchar *long_b64 = NULL;
  g_autofree gchar *long_body = NULL;
  g_autofree gchar *long_data = NULL;
  gsize long_len = 0;
  g_autoptr (Reply) first = NULL;
  g_autoptr (Reply) second = NULL;
  g_autoptr (Reply) bad_b64 = NULL;
  g_autoptr (Reply) not_wav = NULL;
  g_autoptr (Reply) no_audio = NULL;
  g_autoptr (Reply) bad_id = NULL;
  g_autoptr (Reply) malformed = NULL;
  g_autoptr (Reply) too_long = NULL;
  g_autoptr (Reply) get = NULL;

  if (skip_without_peer (f))
    return;
  wav = make_speech_wav (f, "turn.wav", 1, 1, NULL);
  first = post_turn (f, "contact-1", wav);
  g_assert_cmpuint (first->status, ==, 200);
  g_assert_cmpstr (jstr (first, "sessionId"), ==, "contact-1");
  g_assert_cmpstr (jstr (first, "intent"), ==, "continue");
  g_assert_cmpstr (jstr (first, "transcript"), ==, "turn 1");
  g_assert_cmpstr (jstr (first, "reply"), ==, "reply 1");
  check_turn_audio (f, first);
  /* the next turn of the same session runs with the first as context */
  second = post_turn (f, "contact-1", wav);
  g_assert_cmpuint (second->status, ==, 200);
  g_assert_cmpstr (jstr (second, "reply"), ==, "reply 1");
  g_assert_cmpstr (jstr (second, "turnId"), !=, jstr (first, "turnId"));

  bad_b64 = http (f, "POST", "/turn",
      "{\"sessionId\": \"c\", \"audioBase64\": \"UklGRg=!\"}");
  assert_error (bad_b64, 400, "invalid_field", "audioBase64");
  not_wav = http (f, "POST", "/turn",
      "{\"sessionId\": \"c\", \"audioBase64\": \"aGVsbG8gd29ybGQh\"}");
  assert_error (not_wav, 400, "invalid_audio", "WAV");
  no_audio = http (f, "POST", "/turn", "{\"sessionId\": \"c\"}");
  assert_error (no_audio, 400, "missing_field", "audioBase64");
  bad_id = http (f, "POST", "/turn",
      "{\"sessionId\": \"../x\", \"audioS3Key\": \"a.wav\"}");
  assert_error (bad_id, 400, "invalid_field", "sessionId");
  malformed = http (f, "POST", "/turn", "[1, 2");
  assert_error (malformed, 400, "malformed_body", NULL);
  long_wav = make_speech_wav (f, "long-turn.wav", 1, 7, &long_len);
  g_assert_true (g_file_get_contents (long_wav, &long_data, NULL, NULL));
  long_b64 = g_base64_encode ((const guchar *) long_data, long_len);
  long_body = g_strdup_printf ("{\"sessionId\": \"c\", \"audioBase64\": "
                               "\"%s\"}",
      long_b64);
  too_long = http (f, "POST", "/turn", long_body);
  assert_error (too_long, 400, "audio_too_long", NULL);
  get = http (f, "GET", "/turn", NULL);
  assert_error (get, 405, "method_not_allowed", NULL);
}

/* A turn that asks for a human comes back as intent: transfer. */
static void
test_turn_transfer (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autoptr (Reply) turn = NULL;

  if (skip_without_peer (f))
    return;
  wav = make_speech_wav (f, "agent.wav", 1, 1, NULL);
  turn = post_turn (f, "contact-2", wav);
  g_assert_cmpuint (turn->status, ==, 200);
  g_assert_cmpstr (jstr (turn, "intent"), ==, "transfer");
  g_assert_cmpstr (jstr (turn, "reply"), ==, "reply 1");
  check_turn_audio (f, turn);
}

/* The README's sample call on the defaults: callpipe call --say speaks
 * the question with ttssrc, the local bot greets, recognizes it and
 * answers, all offline; the recording is stereo, caller left, bot
 * right. */
static void
test_default_sample_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *server = g_strdup_printf ("http://127.0.0.1:%u", f->port);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) cli = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *path = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (Reply) media = NULL;
  JsonArray *transcript;
  ChannelStats left, right;
  WavInfo info = {0};
  const gint16 *pcm;
  const gchar *bot, *caller;
  guint64 n;
  gsize len;
  const guint8 *d;

  cli = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, CALLPIPE_BIN,
      "call", "--say", "Where is my order?", "--server", server, "--wait",
      NULL);
  g_assert_no_error (error);
  g_assert_true (
      g_subprocess_communicate_utf8 (cli, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (cli));
  g_assert_cmpint (g_subprocess_get_exit_status (cli), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  g_assert_true (g_uuid_string_is_valid (lines[0]));
  g_assert_true (g_str_has_prefix (lines[1], "ended: end of stream"));
  g_assert_nonnull (strstr (out, "\nrecording: http://"));

  path = g_strdup_printf ("/calls/%s", lines[0]);
  call = http_full (f, "GET", path, NULL, NULL);
  g_assert_cmpuint (call->status, ==, 200);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "pipeline"), ==, "connect-bot-media");
  transcript = jarray (call, "transcript");
  bot = transcript_text (transcript, "bot");
  caller = transcript_text (transcript, "caller");
  g_assert_nonnull (bot);
  g_assert_true (g_str_has_prefix (bot, "Hello, thank you for calling"));
  g_assert_nonnull (caller);
  g_assert_nonnull (strstr (caller, "order"));
  g_assert_nonnull (jstr (call, "transcriptUrl"));

  media = http_full (f, "GET", jstr (call, "recordingUrl"), NULL, NULL);
  g_assert_cmpuint (media->status, ==, 200);
  d = g_bytes_get_data (media->body, &len);
  parse_wav (d, len, &info);
  g_assert_cmpuint (info.channels, ==, 2);
  g_assert_cmpuint (info.rate, ==, 8000);
  pcm = wav_samples (d, len, &n);
  channel_stats (pcm, n, 2, 0, &left);
  channel_stats (pcm, n, 2, 1, &right);
  g_assert_cmpint (left.peak, >, 1000);
  g_assert_cmpint (right.peak, >, 1000);
}

/* ---- S3 storage ---- */

static gboolean
skip_without_s3 (Fixture *f, gboolean need_sonic)
{
  if (f->s3peer == NULL) {
    g_test_skip ("s3peer.py needs moto and boto3 for " S3_PYTHON);
    return TRUE;
  }
  if (need_sonic && f->peer == NULL) {
    g_test_skip ("sonicpeer.py needs Debian's python3-h2");
    return TRUE;
  }
  return FALSE;
}

/* The object @kind/@id@suffix under the prefix, read back with boto3.
 * The transcript goes up after the call has ended, so this waits for
 * it. */
static gchar *
s3_object (Fixture *f, const gchar *kind, const gchar *id, const gchar *suffix,
    gsize *len)
{
  g_autofree gchar *key =
      g_strconcat (S3_PREFIX "/", kind, "/", id, suffix, NULL);
  g_autofree gchar *file = g_build_filename (f->dir, "s3-object", NULL);
  const gchar *get[] = {"get", S3_BUCKET, key, file, NULL};
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  gchar *data = NULL;

  while (!s3check (f, get, NULL)) {
    if (g_get_monotonic_time () > deadline)
      g_error ("s3://" S3_BUCKET "/%s did not appear in time", key);
    g_usleep (10 * POLL_US);
  }
  g_assert_true (g_file_get_contents (file, &data, len, NULL));
  return data;
}

/* With S3 storage the transcript goes up after the call has ended, and
 * transcriptUrl appears once it is there. */
static Reply *
wait_transcript_url (Fixture *f, const gchar *id)
{
  g_autofree gchar *path = g_strdup_printf ("/calls/%s", id);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (g_get_monotonic_time () < deadline) {
    Reply *r = http (f, "GET", path, NULL);

    g_assert_cmpuint (r->status, ==, 200);
    if (jstr (r, "transcriptUrl") != NULL)
      return r;
    cp_test_reply_free (r);
    g_usleep (POLL_US);
  }
  g_error ("call %s got no transcriptUrl in time", id);
  return NULL;
}

/* recordingUrl is presigned for the S3 endpoint itself. */
static void
check_presigned (Fixture *f, const gchar *url)
{
  g_assert_nonnull (url);
  g_assert_true (g_str_has_prefix (url, f->moto_url));
  g_assert_nonnull (strstr (url, "/" S3_BUCKET "/" S3_PREFIX "/"));
  g_assert_nonnull (strstr (url, "X-Amz-Signature="));
}

/* media-record with S3 storage: s3sink writes the recording with a valid
 * WAV header (the first part is kept until EOS for wavenc's rewrite), the
 * presigned link serves it, the transcript is uploaded. */
static void
test_s3_record (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *object = NULL;
  g_autofree gchar *doc_text = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (Reply) media = NULL;
  g_autoptr (Reply) linked = NULL;
  g_autoptr (Reply) doc = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root;
  WavInfo info = {0};
  gsize len;

  if (skip_without_s3 (f, FALSE))
    return;
  wav = make_wav (f, "s3.wav", 1);
  body = media_body ("s3-1", wav);
  id = start_call (f, body);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "pipeline"), ==, "media-record");

  object = s3_object (f, "recordings", id, ".wav", &len);
  parse_wav ((const guint8 *) object, len, &info);
  g_assert_cmpuint (info.channels, ==, 1);
  g_assert_cmpuint (info.rate, ==, 8000);
  g_assert_cmpuint (info.frames, >=, 7900);
  g_assert_cmpuint (info.frames, <=, 8100);

  check_presigned (f, jstr (call, "recordingUrl"));
  media = http_full (f, "GET", jstr (call, "recordingUrl"), NULL, NULL);
  g_assert_cmpuint (media->status, ==, 200);
  g_assert_true (g_bytes_get_size (media->body) == len);
  g_assert_cmpmem (g_bytes_get_data (media->body, NULL), len, object, len);

  linked = wait_transcript_url (f, id);
  check_presigned (f, jstr (linked, "transcriptUrl"));
  doc = http_full (f, "GET", jstr (linked, "transcriptUrl"), NULL, NULL);
  g_assert_cmpuint (doc->status, ==, 200);
  doc_text = s3_object (f, "transcripts", id, ".json", &len);
  g_assert_cmpmem (g_bytes_get_data (doc->body, NULL),
      g_bytes_get_size (doc->body), doc_text, len);
  g_assert_true (json_parser_load_from_data (parser, doc_text, len, NULL));
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (root, "sessionId"), ==, id);
}

/* A bot call with S3 storage: the stereo recording and the transcript
 * land in the bucket and the presigned links serve them. */
static void
test_s3_bot_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *wav = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *object = NULL;
  g_autofree gchar *doc_text = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (Reply) linked = NULL;
  g_autoptr (Reply) doc = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root;
  WavInfo info = {0};
  gsize len;

  if (skip_without_s3 (f, TRUE))
    return;
  wav = make_speech_wav (f, "question.wav", 1, 2, NULL);
  body = media_body ("s3-bot-1", wav);
  id = start_call (f, body);
  call = wait_state (f, id, final_states);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "pipeline"), ==, "connect-bot-media");
  g_assert_cmpstr (transcript_text (jarray (call, "transcript"), "bot"), ==,
      "reply 1");

  object = s3_object (f, "recordings", id, ".wav", &len);
  parse_wav ((const guint8 *) object, len, &info);
  g_assert_cmpuint (info.channels, ==, 2);
  check_presigned (f, jstr (call, "recordingUrl"));
  check_bot_recording (f, call, 7000);

  linked = wait_transcript_url (f, id);
  doc_text = s3_object (f, "transcripts", id, ".json", &len);
  g_assert_true (json_parser_load_from_data (parser, doc_text, len, NULL));
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (transcript_text (json_object_get_array_member (root,
                                        "transcript"),
                       "caller"),
      ==, "turn 1");
  check_presigned (f, jstr (linked, "transcriptUrl"));
  doc = http_full (f, "GET", jstr (linked, "transcriptUrl"), NULL, NULL);
  g_assert_cmpuint (doc->status, ==, 200);
  g_assert_cmpmem (g_bytes_get_data (doc->body, NULL),
      g_bytes_get_size (doc->body), doc_text, len);
}

static const gchar *const transfer_peer[] = {"--tool", "transfer_to_agent",
    NULL};

int
main (int argc, char **argv)
{
  cp_test_sanitizer_env_for_children ();
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func)                                                   \
  g_test_add ("/callpiped/integration/" path, Fixture, NULL, setup, func, \
      teardown)
  ADD ("health-auth-routes", test_health_auth_routes);
  ADD ("bad-events", test_bad_events);
  ADD ("flat-call", test_flat_call);
  ADD ("connect-event-call", test_connect_event_call);
  ADD ("hangup", test_hangup);
  ADD ("sigterm-drains", test_sigterm_drains);
  ADD ("restart-after-kill", test_restart_after_kill);
  ADD ("cli-call", test_cli_call);
#define ADD_BOT(path, func, peer_args)                                       \
  g_test_add ("/callpiped/integration/" path, Fixture, peer_args, setup_bot, \
      func, teardown)
  ADD_BOT ("bot-call", test_bot_call, NULL);
  ADD_BOT ("bot-transfer", test_bot_transfer, transfer_peer);
  ADD_BOT ("turn", test_turn, NULL);
  ADD_BOT ("turn-transfer", test_turn_transfer, transfer_peer);
  g_test_add ("/callpiped/integration/default-sample-call", Fixture, NULL,
      setup_defaults, test_default_sample_call, teardown);
#define ADD_S3(path, func, mode)                                             \
  g_test_add ("/callpiped/integration/" path, Fixture, mode, setup_s3, func, \
      teardown)
  ADD_S3 ("s3-record", test_s3_record, "record");
  ADD_S3 ("s3-bot-call", test_s3_bot_call, "bot");
  return g_test_run ();
}

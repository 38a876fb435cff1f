/* What the GET /sonic tests share. */
#include "sonic-harness.h"
#include "test-util.h"

#include <gst/gst.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define PEER_KEY "AKIDNOVATEST"
#define PEER_SECRET "novasecret"
#define HTTP_TIMEOUT_S 30

/* A failed assertion aborts without teardown: children must not outlive
 * the test. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* The first line a child prints: its port. */
static guint
read_port (GSubprocess *p, const gchar *after)
{
  g_autoptr (GDataInputStream) out =
      g_data_input_stream_new (g_subprocess_get_stdout_pipe (p));
  g_autofree gchar *line =
      g_data_input_stream_read_line (out, NULL, NULL, NULL);
  const gchar *s;

  if (line == NULL)
    return 0;
  s = after != NULL ? strstr (line, after) : line;
  if (s == NULL)
    return 0;
  return atoi (s + (after != NULL ? strlen (after) : 0));
}

static gboolean
start_peer (SonicDaemon *d)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
          | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autofree gchar *reply_ms =
      g_strdup_printf ("%u", d->reply_ms > 0 ? d->reply_ms : 1000);

  if (SONIC_PEER_PYTHON[0] == '\0')
    return FALSE;
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  d->peer = g_subprocess_launcher_spawn (launcher, NULL, SONIC_PEER_PYTHON,
      SONIC_PEER_SCRIPT, "--lifetime", "240", "--reply-ms", reply_ms, NULL);
  if (d->peer == NULL)
    return FALSE;
  d->peer_port = read_port (d->peer, NULL);
  return d->peer_port > 0;
}

gboolean
sonic_daemon_start (SonicDaemon *d)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autofree gchar *config = NULL;

  cp_test_sanitizer_env_for_children ();
  d->dir = g_dir_make_tmp ("callpiped-sonic-XXXXXX", &error);
  g_assert_no_error (error);
  d->data_dir = g_build_filename (d->dir, "var", NULL);
  d->config = g_build_filename (d->dir, "callpiped.ini", NULL);
  d->http = soup_session_new_with_options ("timeout", HTTP_TIMEOUT_S, NULL);
  if (!start_peer (d))
    return FALSE;
  config = g_strdup_printf ("[server]\n"
                            "address = 127.0.0.1\n"
                            "token = " SONIC_TEST_TOKEN "\n"
                            "drain-timeout = 10\n"
                            "%s"
                            "[bot]\n"
                            "backend = bedrock\n"
                            "region = us-east-1\n"
                            "endpoint = http://127.0.0.1:%u\n",
      d->server_extra != NULL ? d->server_extra : "", d->peer_port);
  g_assert_true (g_file_set_contents (d->config, config, -1, NULL));

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* The bot reaches sonicpeer with these through the credential chain. */
  g_subprocess_launcher_setenv (launcher, "AWS_ACCESS_KEY_ID", PEER_KEY, TRUE);
  g_subprocess_launcher_setenv (launcher, "AWS_SECRET_ACCESS_KEY", PEER_SECRET,
      TRUE);
  d->daemon = g_subprocess_launcher_spawn (launcher, &error, CALLPIPED_BIN,
      "--port", "0", "--data-dir", d->data_dir, "--config", d->config, NULL);
  g_assert_no_error (error);
  d->port = read_port (d->daemon, "port ");
  g_assert_cmpuint (d->port, >, 0);
  return TRUE;
}

/* The daemon's exit status once it exited, -1 when a signal killed it. */
gint
sonic_daemon_wait_exit (SonicDaemon *d)
{
  gint status;

  g_assert_true (g_subprocess_wait (d->daemon, NULL, NULL));
  status = g_subprocess_get_if_exited (d->daemon)
      ? g_subprocess_get_exit_status (d->daemon)
      : -1;
  g_clear_object (&d->daemon);
  return status;
}

void
sonic_daemon_stop (SonicDaemon *d)
{
  if (d->daemon != NULL) {
    g_subprocess_force_exit (d->daemon);
    sonic_daemon_wait_exit (d);
  }
  if (d->peer != NULL) {
    g_subprocess_force_exit (d->peer);
    g_subprocess_wait (d->peer, NULL, NULL);
    g_clear_object (&d->peer);
  }
  g_clear_object (&d->http);
  if (d->dir != NULL)
    cp_test_remove_tree (d->dir);
  g_free (d->dir);
  g_free (d->data_dir);
  g_free (d->config);
  memset (d, 0, sizeof (*d));
}

gchar *
sonic_daemon_get (SonicDaemon *d, const gchar *path, guint *status)
{
  g_autofree gchar *url =
      g_strdup_printf ("http://127.0.0.1:%u%s", d->port, path);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = NULL;

  soup_message_headers_replace (soup_message_get_request_headers (msg),
      "Authorization", "Bearer " SONIC_TEST_TOKEN);
  body = soup_session_send_and_read (d->http, msg, NULL, &error);
  g_assert_no_error (error);
  if (status != NULL)
    *status = soup_message_get_status (msg);
  return g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* The value of one series of GET /metrics, e.g.
 * callpipe_browser_stalled_total or name{label="x"}. */
gdouble
sonic_daemon_metric (SonicDaemon *d, const gchar *series)
{
  g_autofree gchar *text = sonic_daemon_get (d, "/metrics", NULL);
  g_autofree gchar *needle = g_strconcat ("\n", series, " ", NULL);
  const gchar *at = strstr (text, needle);

  if (at == NULL)
    g_error ("GET /metrics has no %s:\n%s", series, text);
  return g_ascii_strtod (at + strlen (needle), NULL);
}

/* @text spoken by flite (the project's ttssrc) as 16 kHz S16LE mono,
 * followed by @silence_ms of silence so that a listener hears the end of
 * the turn. */
GBytes *
sonic_speech_pcm (const gchar *text, guint silence_ms)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline =
      gst_parse_launch ("ttssrc name=tts "
                        "! audioconvert ! audioresample "
                        "! audio/x-raw,format=S16LE,rate=16000,channels=1 "
                        "! appsink name=out sync=false",
          &error);
  g_autoptr (GstElement) tts = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autoptr (GstBus) bus = NULL;
  g_autoptr (GstMessage) done = NULL;
  GByteArray *pcm = g_byte_array_new ();
  GstSample *sample;

  g_assert_no_error (error);
  tts = gst_bin_get_by_name (GST_BIN (pipeline), "tts");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  g_object_set (tts, "text", text, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  for (;;) {
    GstMapInfo map;

    g_signal_emit_by_name (sink, "pull-sample", &sample);
    if (sample == NULL)
      break;
    g_assert_true (
        gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ));
    g_byte_array_append (pcm, map.data, map.size);
    gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
    gst_sample_unref (sample);
  }
  bus = gst_element_get_bus (pipeline);
  done = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull (done);
  g_assert_cmpint (GST_MESSAGE_TYPE (done), ==, GST_MESSAGE_EOS);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_assert_cmpuint (pcm->len, >, 16000);
  g_byte_array_set_size (pcm, pcm->len + silence_ms * 32);
  memset (pcm->data + pcm->len - silence_ms * 32, 0, silence_ms * 32);
  return g_byte_array_free_to_bytes (pcm);
}

static void
put_le (guint8 *p, guint32 v, guint n)
{
  guint i;

  for (i = 0; i < n; i++)
    p[i] = (v >> (8 * i)) & 0xff;
}

void
sonic_write_wav (const gchar *path, GBytes *pcm)
{
  gsize len = g_bytes_get_size (pcm);
  g_autofree guint8 *file = g_malloc (44 + len);

  memcpy (file, "RIFF", 4);
  put_le (file + 4, 36 + len, 4);
  memcpy (file + 8, "WAVEfmt ", 8);
  put_le (file + 16, 16, 4);
  put_le (file + 20, 1, 2); /* PCM */
  put_le (file + 22, 1, 2); /* mono */
  put_le (file + 24, 16000, 4);
  put_le (file + 28, 32000, 4);
  put_le (file + 32, 2, 2);
  put_le (file + 34, 16, 2);
  memcpy (file + 36, "data", 4);
  put_le (file + 40, len, 4);
  memcpy (file + 44, g_bytes_get_data (pcm, NULL), len);
  g_assert_true (
      g_file_set_contents (path, (const gchar *) file, 44 + len, NULL));
}

static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs the default main context until @done says so or @seconds pass. */
gboolean
sonic_wait (gboolean (*done) (gpointer), gpointer data, guint seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  guint tick_id = g_timeout_add (50, tick, NULL);

  while (!done (data) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick_id);
  return done (data);
}

/* GTest of SonicSession's sending side against sonicpeer.py, which checks
 * every chunk signature and the event order and records the audio: a
 * batch of frames handed over in one call arrives as one audioInput event
 * per frame, each signed in the chain, the audio whole and in order. */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sonicsession.h"

#define RATE 16000
#define FRAME_BYTES (RATE * 32 / 1000 * 2)
#define WAIT_US (30 * G_USEC_PER_SEC)

typedef struct
{
  GPid pid;
  gint stdin_fd;
  guint port;
  gchar *dir;
} Peer;

static gboolean
peer_start (Peer *peer)
{
  const gchar *argv[] = {SONIC_PEER_PYTHON, SONIC_PEER_SCRIPT, "--record", NULL,
      NULL};
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOChannel) out = NULL;
  g_autofree gchar *line = NULL;
  gint stdout_fd;

  if (SONIC_PEER_PYTHON[0] == '\0'
      || !g_file_test (SONIC_PEER_PYTHON, G_FILE_TEST_IS_EXECUTABLE))
    return FALSE;
  peer->dir = g_dir_make_tmp ("sonicsession-XXXXXX", &error);
  g_assert_no_error (error);
  argv[3] = peer->dir;
  g_assert_true (g_spawn_async_with_pipes (NULL, (gchar **) argv, NULL,
      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &peer->pid, &peer->stdin_fd,
      &stdout_fd, NULL, &error));
  out = g_io_channel_unix_new (stdout_fd);
  g_io_channel_set_close_on_unref (out, TRUE);
  g_assert_cmpint (g_io_channel_read_line (out, &line, NULL, NULL, NULL), ==,
      G_IO_STATUS_NORMAL);
  peer->port = (guint) g_ascii_strtoull (line, NULL, 10);
  g_assert_cmpuint (peer->port, >, 0);
  return TRUE;
}

static gchar *
peer_file (Peer *peer, const gchar *name, gsize *len)
{
  g_autofree gchar *path = g_build_filename (peer->dir, name, NULL);
  gchar *contents = NULL;

  g_file_get_contents (path, &contents, len, NULL);
  return contents;
}

static void
peer_stop (Peer *peer)
{
  g_autoptr (GDir) d = g_dir_open (peer->dir, 0, NULL);
  const gchar *name;

  close (peer->stdin_fd);
  waitpid (peer->pid, NULL, 0);
  g_spawn_close_pid (peer->pid);
  while (d && (name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (peer->dir, name, NULL);

    g_unlink (path);
  }
  g_rmdir (peer->dir);
  g_free (peer->dir);
}

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean closed;
  GError *error;
  guint exceptions;
} Events;

static void
on_event (SonicSession *session, const SonicOutputEvent *event,
    gpointer user_data)
{
  Events *ev = user_data;

  g_mutex_lock (&ev->lock);
  if (event->kind == SONIC_OUT_EXCEPTION)
    ev->exceptions++;
  g_mutex_unlock (&ev->lock);
}

static void
on_closed (SonicSession *session, const GError *error, gpointer user_data)
{
  Events *ev = user_data;

  g_mutex_lock (&ev->lock);
  ev->closed = TRUE;
  ev->error = error ? g_error_copy (error) : NULL;
  g_cond_broadcast (&ev->cond);
  g_mutex_unlock (&ev->lock);
}

static const SonicSessionCallbacks callbacks = {on_event, on_closed};

/* 3.5 frames in one call: four audioInput events (the last one short),
 * then the teardown, all verified by the peer. */
static void
test_audio_frames_batch (void)
{
  g_autoptr (SonicConfig) config = sonic_config_new ();
  g_autoptr (CpAwsCredentials) creds =
      cp_aws_credentials_new ("AKIDNOVATEST", "novasecret", NULL);
  g_autoptr (SonicSession) session = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *url = NULL, *events = NULL, *pcm_got = NULL;
  g_autofree gchar *errors = NULL;
  g_autofree guint8 *pcm = NULL;
  CpHttpOptions options = {.connect_timeout_ms = 10000};
  gsize len = FRAME_BYTES * 7 / 2, got_len = 0, i;
  gint64 deadline;
  Events ev = {0};
  Peer peer;

  if (!peer_start (&peer)) {
    g_test_skip ("sonicpeer.py did not start (needs python3-h2)");
    return;
  }
  g_mutex_init (&ev.lock);
  g_cond_init (&ev.cond);
  pcm = g_malloc (len);
  for (i = 0; i < len; i += 2) {
    pcm[i] = (guint8) (i / 2);
    pcm[i + 1] = (guint8) (i / 512 + 1);
  }
  config->model_id = g_strdup ("amazon.nova-2-sonic-v1:0");
  config->system_prompt = g_strdup ("You are a test.");
  url = g_strdup_printf ("http://127.0.0.1:%u", peer.port);
  session = sonic_session_open (url, &options, "us-east-1", creds, config,
      g_get_real_time () / G_USEC_PER_SEC, &callbacks, &ev, &error);
  g_assert_no_error (error);
  g_assert_true (sonic_session_start_audio (session, RATE, &error));
  g_assert_no_error (error);
  g_assert_true (
      sonic_session_send_audio_frames (session, pcm, len, FRAME_BYTES, &error));
  g_assert_no_error (error);
  g_assert_true (sonic_session_finish (session, &error));
  g_assert_no_error (error);

  deadline = g_get_monotonic_time () + WAIT_US;
  g_mutex_lock (&ev.lock);
  while (!ev.closed && g_cond_wait_until (&ev.cond, &ev.lock, deadline))
    ;
  g_mutex_unlock (&ev.lock);
  g_assert_true (ev.closed);
  g_assert_no_error (ev.error);
  g_assert_cmpuint (ev.exceptions, ==, 0);
  sonic_session_detach (session);

  errors = peer_file (&peer, "errors", NULL);
  g_assert_null (errors);
  events = peer_file (&peer, "stream-1.events", NULL);
  g_assert_cmpstr (events, ==,
      "sessionStart\npromptStart\n"
      "contentStart SYSTEM TEXT\ntextInput\ncontentEnd\n"
      "contentStart USER AUDIO\n"
      "audioInput\naudioInput\naudioInput\naudioInput\n"
      "contentEnd\npromptEnd\nsessionEnd\nend-frame\n");
  pcm_got = peer_file (&peer, "stream-1.pcm", &got_len);
  g_assert_cmpmem (pcm_got, got_len, pcm, len);

  g_clear_error (&ev.error);
  g_mutex_clear (&ev.lock);
  g_cond_clear (&ev.cond);
  g_clear_pointer (&session, sonic_session_unref);
  peer_stop (&peer);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/novasonic/session/audio-frames-batch",
      test_audio_frames_batch);
  return g_test_run ();
}

/* The GetMedia test peer (kvs-getmedia-peer.py) and the fixture it
 * serves, for the kvssrc and kvs-inspect tests (see kvs-peer.h). */
#include "kvs-peer.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void
kvs_peer_fixture_write (KvsPeerFixture *fixture)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  g_autoptr (GString) index = g_string_new (NULL);
  KvsFixtureState st = {0, 0};
  gint fd;
  guint i;

  for (i = 0; i < KVS_PEER_FRAGMENTS; i++) {
    KvsFixtureFragment f = {0};
    guint64 ts = KVS_PEER_BASE_MS + i * KVS_PEER_FRAGMENT_MS;

    fixture->number[i] =
        g_strdup_printf ("91343852333181432392682062607743920146159169%03u", i);
    f.number = fixture->number[i];
    f.contact_id = "5b1c-contact";
    f.timecode_ms = ts;
    f.from_blocks = f.to_blocks = KVS_PEER_BLOCKS;
    f.block_samples = KVS_PEER_BLOCK_SAMPLES;
    f.tags_before = i % 2 == 0;
    fixture->offset[i] = s->len;
    kvs_fixture_write_fragment (s, &f, &st);
    fixture->length[i] = s->len - fixture->offset[i];
    /* The fixture's continuation token is the fragment number, as KVS
     * writes it. */
    g_string_append_printf (index,
        "%s\t%s\t%" G_GUINT64_FORMAT "\t%" G_GUINT64_FORMAT
        "\t%u\t%" G_GSIZE_FORMAT "\t%" G_GSIZE_FORMAT "\n",
        f.number, f.number, ts, ts + KVS_PEER_SERVER_DELAY_MS,
        KVS_PEER_FRAGMENT_MS, fixture->offset[i], fixture->length[i]);
  }
  fd = g_file_open_tmp ("kvssrc-XXXXXX.mkv", &fixture->mkv, NULL);
  close (fd);
  fd = g_file_open_tmp ("kvssrc-XXXXXX.idx", &fixture->index, NULL);
  close (fd);
  g_assert_true (g_file_set_contents (fixture->mkv, (const gchar *) s->data,
      s->len, NULL));
  g_assert_true (g_file_set_contents (fixture->index, index->str, -1, NULL));
}

void
kvs_peer_fixture_remove (KvsPeerFixture *fixture)
{
  guint i;

  g_unlink (fixture->mkv);
  g_unlink (fixture->index);
  g_free (fixture->mkv);
  g_free (fixture->index);
  for (i = 0; i < KVS_PEER_FRAGMENTS; i++)
    g_free (fixture->number[i]);
}

/* ---- the peer process ---- */

void
kvs_peer_start (KvsPeer *peer, const gchar *script,
    const KvsPeerFixture *fixture, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  const gchar *arg;
  gchar line[32] = {0};
  gint out_fd, fd;
  gsize n = 0;
  va_list args;

  fd = g_file_open_tmp ("kvssrc-peer-XXXXXX.log", &peer->log, NULL);
  close (fd);
  g_ptr_array_add (argv, (gpointer) "/usr/bin/python3");
  g_ptr_array_add (argv, (gpointer) script);
  g_ptr_array_add (argv, (gpointer) "--fixture");
  g_ptr_array_add (argv, fixture->mkv);
  g_ptr_array_add (argv, (gpointer) "--index");
  g_ptr_array_add (argv, fixture->index);
  g_ptr_array_add (argv, (gpointer) "--log");
  g_ptr_array_add (argv, peer->log);
  g_ptr_array_add (argv, (gpointer) "--access-key");
  g_ptr_array_add (argv, (gpointer) KVS_PEER_ACCESS_KEY);
  g_ptr_array_add (argv, (gpointer) "--secret-key");
  g_ptr_array_add (argv, (gpointer) KVS_PEER_SECRET_KEY);
  va_start (args, fixture);
  while ((arg = va_arg (args, const gchar *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_async_with_pipes (NULL, (gchar **) argv->pdata, NULL,
          G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &peer->pid, &peer->stdin_fd,
          &out_fd, NULL, &error))
    g_error ("cannot start the peer: %s", error->message);
  /* The port, one line; the peer is up once it is written. */
  while (n < sizeof (line) - 1 && strchr (line, '\n') == NULL) {
    GPollFD pfd = {out_fd, G_IO_IN, 0};
    gssize r;

    if (g_poll (&pfd, 1, 20000) != 1)
      g_error ("the peer did not start");
    r = read (out_fd, line + n, sizeof (line) - 1 - n);
    if (r <= 0)
      g_error ("the peer exited");
    n += r;
  }
  close (out_fd);
  peer->port = (guint) g_ascii_strtoull (line, NULL, 10);
  g_assert_cmpuint (peer->port, >, 0);
}

void
kvs_peer_stop (KvsPeer *peer)
{
  gint status = 0;
  guint i;

  close (peer->stdin_fd);
  for (i = 0; i < 100 && waitpid (peer->pid, &status, WNOHANG) == 0; i++)
    g_usleep (50 * 1000);
  if (i == 100) {
    kill (peer->pid, SIGKILL);
    waitpid (peer->pid, &status, 0);
  }
  g_spawn_close_pid (peer->pid);
  g_unlink (peer->log);
  g_free (peer->log);
}

GPtrArray *
kvs_peer_get_media_selectors (KvsPeer *peer)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  guint i;

  g_assert_true (g_file_get_contents (peer->log, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (i = 0; lines[i] != NULL; i++) {
    if (strstr (lines[i], "\"path\": \"/getMedia\"") == NULL)
      continue;
    if (strstr (lines[i], "\"auth\": \"ok\"") == NULL)
      g_error ("request refused: %s", lines[i]);
    g_ptr_array_add (out, g_strdup (strstr (lines[i], "StartSelector")));
  }
  return out;
}

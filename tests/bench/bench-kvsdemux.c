/* kvsdemux against matroskademux on the same Connect-shaped GetMedia bytes
 * (kvs-fixture.c: 1.024 s fragments, two 8 kHz S16LE tracks, Connect's
 * tags). For each call length, writes the stream to a file fragment by
 * fragment (a 4-hour call is ~480 MB: never held in memory), then runs
 * `gst-launch-1.0 filesrc ! <demuxer> ! fakesink` per demuxer in a child
 * process (fakesink async=false: one streaming thread feeds both pads, so
 * the first sink must not block it waiting for the second to preroll; no
 * queues, whose threads would be measured too) and prints one table: wall seconds, MB/s, realtime factor and
 * the child's peak RSS. A run over the timeout is killed and shown as
 * "> N s (timed out)". See tests/bench/README.md. */
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kvs-fixture.h"

#define BLOCKS 16
#define BLOCK_SAMPLES 512
#define FRAGMENT_MS (BLOCKS * BLOCK_SAMPLES * 1000 / KVS_FIXTURE_RATE)
#define BASE_MS G_GUINT64_CONSTANT (1726677688724)

typedef struct
{
  gdouble seconds;
  glong max_rss_kb;
  gboolean timed_out;
  gboolean failed;
} Result;

static gchar *
write_call (const gchar *dir, guint minutes, guint64 *size)
{
  gchar *path = g_strdup_printf ("%s/kvs-call-%umin.mkv", dir, minutes);
  guint n = (minutes * 60000 + FRAGMENT_MS - 1) / FRAGMENT_MS;
  GByteArray *buf = g_byte_array_new ();
  KvsFixtureState st = {0, 0};
  FILE *f = fopen (path, "wb");
  guint i;

  if (f == NULL)
    g_error ("cannot write %s", path);
  *size = 0;
  for (i = 0; i < n; i++) {
    g_autofree gchar *number =
        g_strdup_printf ("9134385233318143239268206260774392014615916%04u",
            i % 10000);
    KvsFixtureFragment spec = {number, "5b1c-contact",
        BASE_MS + (guint64) i * FRAGMENT_MS, BLOCKS, BLOCKS, BLOCK_SAMPLES, 0,
        FALSE, i == 0, NULL, 0};

    g_byte_array_set_size (buf, 0);
    kvs_fixture_write_fragment (buf, &spec, &st);
    if (fwrite (buf->data, 1, buf->len, f) != buf->len)
      g_error ("short write to %s", path);
    *size += buf->len;
  }
  if (fclose (f) != 0)
    g_error ("cannot write %s", path);
  g_byte_array_unref (buf);
  return path;
}

static Result
run_child (const gchar *pipeline, guint timeout_s)
{
  g_auto (GStrv) argv = NULL;
  g_autoptr (GError) error = NULL;
  Result r = {0};
  struct rusage ru;
  gint64 start, deadline;
  gint status = 0;
  GPid pid;

  if (!g_shell_parse_argv (pipeline, NULL, &argv, &error)
      || !g_spawn_async (NULL, argv, NULL,
          G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD
              | G_SPAWN_STDOUT_TO_DEV_NULL,
          NULL, NULL, &pid, &error))
    g_error ("cannot run %s: %s", pipeline, error->message);
  start = g_get_monotonic_time ();
  deadline = start + (gint64) timeout_s * G_USEC_PER_SEC;
  while (wait4 (pid, &status, WNOHANG, &ru) == 0) {
    if (g_get_monotonic_time () >= deadline) {
      kill (pid, SIGKILL);
      wait4 (pid, &status, 0, &ru);
      r.timed_out = TRUE;
      break;
    }
    g_usleep (5000);
  }
  r.seconds = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  r.max_rss_kb = ru.ru_maxrss;
  r.failed = !r.timed_out && (!WIFEXITED (status) || WEXITSTATUS (status));
  g_spawn_close_pid (pid);
  return r;
}

static void
print_result (const Result *r, guint64 size, guint minutes, guint timeout_s)
{
  if (r->timed_out) {
    g_autofree gchar *t = g_strdup_printf ("> %u s (timed out)", timeout_s);

    printf (" | %-18s | %8s | %9s | %8s", t, "-", "-", "-");
  } else if (r->failed) {
    printf (" | %-18s | %8s | %9s | %8s", "failed", "-", "-", "-");
  } else {
    printf (" | %16.2f s | %8.1f | %8.0fx | %5.0f MB", r->seconds,
        size / 1e6 / r->seconds, minutes * 60.0 / r->seconds,
        r->max_rss_kb / 1024.0);
  }
}

int
main (int argc, char **argv)
{
  guint timeout_s = 120;
  const gchar *dir = g_get_tmp_dir ();
  g_autofree gchar *durations = g_strdup ("10,20,60,240");
  gboolean keep = FALSE;
  GOptionEntry entries[] = {
      {"timeout", 't', 0, G_OPTION_ARG_INT, &timeout_s,
          "Kill a demuxer run after this many seconds (default 120)", "S"},
      {"minutes", 'm', 0, G_OPTION_ARG_STRING, &durations,
          "Call lengths in minutes (default 10,20,60,240)", "LIST"},
      {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir,
          "Where the generated streams go (default: the temp dir)", "DIR"},
      {"keep", 'k', 0, G_OPTION_ARG_NONE, &keep, "Keep the generated streams",
          NULL},
      {NULL},
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) list = NULL;
  guint i;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "bench-kvsdemux: %s\n", error->message);
    return 2;
  }
  list = g_strsplit (durations, ",", -1);

  printf ("| call | MB | kvsdemux: time | MB/s | realtime | peak RSS "
          "| matroskademux: time | MB/s | realtime | peak RSS |\n");
  printf ("|---|---|---|---|---|---|---|---|---|---|\n");
  for (i = 0; list[i] != NULL; i++) {
    guint minutes = (guint) g_ascii_strtoull (list[i], NULL, 10);
    g_autofree gchar *path = NULL;
    g_autofree gchar *kvs = NULL;
    g_autofree gchar *mkv = NULL;
    guint64 size;
    Result r;

    if (minutes == 0)
      continue;
    path = write_call (dir, minutes, &size);
    kvs = g_strdup_printf ("gst-launch-1.0 -q filesrc location=%s "
                           "blocksize=65536 ! kvsdemux name=d d.from_customer "
                           "! fakesink sync=false async=false "
                           "d.to_customer ! fakesink sync=false async=false",
        path);
    mkv = g_strdup_printf ("gst-launch-1.0 -q filesrc location=%s "
                           "blocksize=65536 ! matroskademux name=d d.audio_0 ! "
                           "fakesink sync=false async=false "
                           "d.audio_1 ! fakesink sync=false async=false",
        path);
    printf ("| %u min | %.0f", minutes, size / 1e6);
    fflush (stdout);
    r = run_child (kvs, timeout_s);
    print_result (&r, size, minutes, timeout_s);
    fflush (stdout);
    r = run_child (mkv, timeout_s);
    print_result (&r, size, minutes, timeout_s);
    printf (" |\n");
    fflush (stdout);
    if (!keep)
      g_unlink (path);
  }
  return 0;
}

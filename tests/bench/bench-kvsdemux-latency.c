/* The latency kvsdemux adds, per latency-mode: for each audio block, the
 * stream time from the arrival of its last byte (with the chunk holding
 * it) to the push of its buffer,
 * p50 and p99, on a minute of Connect-shaped GetMedia bytes (kvs-fixture.c)
 * arriving as the GetMedia peer sends them (512-byte chunks, each fragment
 * spread over its 1.024 s). The arrival clock is simulated, so the run takes
 * a fraction of a second; the demuxer's own processing time is added as
 * measured. Two layouts: ContactId after the Cluster (the 2024 Connect dump)
 * and before it (yacchi/ebml's captures). Prints one table.
 *
 * Usage: bench-kvsdemux-latency (GST_PLUGIN_PATH pointing at the build's
 * plugins directory). */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <string.h>

#include "kvs-fixture.h"
#include "kvsfragment.h"

#define FRAGMENTS 60
#define BLOCKS 16
#define BLOCK_SAMPLES 512
#define FRAGMENT_MS (BLOCKS * BLOCK_SAMPLES * 1000 / KVS_FIXTURE_RATE)
#define CHUNK 512

typedef struct
{
  GArray *arrival[2]; /* per track: stream time its blocks' last byte came */
  guint next[2];
  GArray *latency; /* gdouble ms */
  GstClockTime now; /* arrival of the last byte pushed */
  gint64 push_start; /* wall clock at that push */
} Run;

static Run *current;

/* Stream time at which byte @pos of the stream arrives. */
static GstClockTime
arrival_time (const gsize *frag_end, gsize pos)
{
  guint i = 0;
  gsize start;

  while (pos >= frag_end[i])
    i++;
  start = i == 0 ? 0 : frag_end[i - 1];
  return i * FRAGMENT_MS * GST_MSECOND
      + gst_util_uint64_scale (pos + 1 - start, FRAGMENT_MS * GST_MSECOND,
          frag_end[i] - start);
}

/* Where each audio block ends, fed to the parser byte by byte. */
static void
block_arrivals (GByteArray *s, const gsize *frag_end, Run *run)
{
  g_autoptr (KvsParser) p = kvs_parser_new ();
  gsize pos = 0, consumed;
  KvsEvent *ev;

  kvs_parser_set_incremental (p, TRUE);
  while (pos < s->len) {
    gsize n = MIN (kvs_parser_get_needed (p), s->len - pos);

    g_assert (kvs_parser_parse (p, s->data + pos, n, &consumed, NULL));
    pos += consumed;
    while ((ev = kvs_parser_pop_event (p)) != NULL) {
      if (ev->type == KVS_EVENT_BLOCK) {
        /* The demuxer gets the block's last byte with its chunk. */
        gsize chunk_end = MIN ((pos - 1) / CHUNK * CHUNK + CHUNK, s->len);
        GstClockTime t = arrival_time (frag_end, chunk_end - 1);

        g_array_append_val (run->arrival[ev->block->track_number - 1], t);
      }
      kvs_event_free (ev);
    }
  }
}

static GstFlowReturn
collect (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  guint track = GPOINTER_TO_UINT (gst_pad_get_element_private (pad));
  GstClockTime now = current->now
      + (g_get_monotonic_time () - current->push_start) * GST_USECOND;

  if (!GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_GAP)) {
    GstClockTime arrived = g_array_index (current->arrival[track], GstClockTime,
        current->next[track]++);
    gdouble ms = (now - arrived) / (gdouble) GST_MSECOND;

    g_array_append_val (current->latency, ms);
  }
  gst_buffer_unref (buf);
  return GST_FLOW_OK;
}

static void
pad_added (GstElement *demux, GstPad *pad, gpointer data)
{
  GstPad *sink = gst_pad_new (NULL, GST_PAD_SINK);
  guint track = !strcmp (GST_PAD_NAME (pad), "from_customer") ? 0 : 1;

  gst_pad_set_element_private (sink, GUINT_TO_POINTER (track));
  gst_pad_set_chain_function (sink, collect);
  gst_pad_set_active (sink, TRUE);
  g_object_set_data_full (G_OBJECT (pad), "bench-sink", sink, gst_object_unref);
  g_assert (gst_pad_link (pad, sink) == GST_PAD_LINK_OK);
}

static gint
compare_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return x < y ? -1 : x > y;
}

static void
run_case (const gchar *mode, gboolean tags_before)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  KvsFixtureState st = {0, 0};
  gsize frag_end[FRAGMENTS];
  GstHarness *h;
  Run run = {{0}};
  gsize pos = 0;
  guint i, n;
  gdouble p50, p99, max;

  for (i = 0; i < FRAGMENTS; i++) {
    g_autofree gchar *number = g_strdup_printf ("91343852333%04u", i);
    KvsFixtureFragment spec = {number, "5b1c-contact",
        G_GUINT64_CONSTANT (1726677688724) + (guint64) i * FRAGMENT_MS, BLOCKS,
        BLOCKS, BLOCK_SAMPLES, 0, FALSE, tags_before, NULL, 0};

    kvs_fixture_write_fragment (s, &spec, &st);
    frag_end[i] = s->len;
  }
  for (i = 0; i < 2; i++)
    run.arrival[i] = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  run.latency = g_array_new (FALSE, FALSE, sizeof (gdouble));
  block_arrivals (s, frag_end, &run);
  current = &run;

  h = gst_harness_new_with_padnames ("kvsdemux", "sink", NULL);
  gst_util_set_object_arg (G_OBJECT (h->element), "latency-mode", mode);
  g_signal_connect (h->element, "pad-added", G_CALLBACK (pad_added), NULL);
  gst_harness_set_src_caps_str (h, "video/x-matroska");
  while (pos < s->len) {
    gsize len = MIN (CHUNK, s->len - pos);

    run.now = arrival_time (frag_end, pos + len - 1);
    run.push_start = g_get_monotonic_time ();
    g_assert (gst_harness_push (h, gst_buffer_new_memdup (s->data + pos, len))
        == GST_FLOW_OK);
    pos += len;
  }
  gst_harness_teardown (h);

  n = run.latency->len;
  g_array_sort (run.latency, compare_double);
  p50 = g_array_index (run.latency, gdouble, n / 2);
  p99 = g_array_index (run.latency, gdouble, n * 99 / 100);
  max = g_array_index (run.latency, gdouble, n - 1);
  g_print ("| %-8s | ContactId %-6s | %5u | %9.3f | %9.3f | %9.3f |\n", mode,
      tags_before ? "before" : "after", n, p50, p99, max);
  for (i = 0; i < 2; i++)
    g_array_unref (run.arrival[i]);
  g_array_unref (run.latency);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_print ("| latency-mode | layout | blocks | p50 ms | p99 ms | max ms |\n");
  g_print ("|---|---|---|---|---|---|\n");
  run_case ("fragment", FALSE);
  run_case ("block", FALSE);
  run_case ("fragment", TRUE);
  run_case ("block", TRUE);
  return 0;
}

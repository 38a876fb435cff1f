/* GstCheck tests of kvsdemux: Connect-shaped streams from kvs-fixture.c,
 * checked sample by sample on both pads, pushed in random-sized chunks;
 * contacts, gaps, resume after a reconnect, in-band errors, hostile input
 * and the conformance captures, in both latency modes; blocks pushed
 * before their fragment ends, the LATENCY query, live running time. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>

#include "kvs-fixture.h"

#define RATE KVS_FIXTURE_RATE

typedef struct
{
  GstPad *pad;
  GArray *samples; /* gint16, silence included */
  GstClockTime next_pts;
  guint bad_timestamps;
  guint n_gap_events;
  GstClockTime gap_pts;
  GstClockTime gap_duration;
  gboolean eos;
  GstCaps *caps;
  GstClockTime segment_base;
} Collector;

/* The latency-mode of the test case running ("fragment" or "block"). */
static const gchar *latency_mode = "fragment";

static gboolean
block_mode (void)
{
  return !strcmp (latency_mode, "block");
}

typedef struct
{
  GstHarness *h;
  GstBus *bus;
  Collector from;
  Collector to;
  GPtrArray *messages; /* every bus message, in order */
  guint n_pads;
  gboolean no_more_pads;
} Ctx;

static GstFlowReturn
collector_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  Collector *c = gst_pad_get_element_private (pad);
  GstMapInfo map;
  guint n;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  n = map.size / 2;
  g_array_append_vals (c->samples, map.data, n);
  gst_buffer_unmap (buf, &map);
  if (GST_BUFFER_PTS (buf) != c->next_pts
      || GST_BUFFER_DURATION (buf)
          != gst_util_uint64_scale_int (c->samples->len, GST_SECOND, RATE)
              - c->next_pts)
    c->bad_timestamps++;
  c->next_pts = gst_util_uint64_scale_int (c->samples->len, GST_SECOND, RATE);
  gst_buffer_unref (buf);
  return GST_FLOW_OK;
}

static gboolean
collector_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  Collector *c = gst_pad_get_element_private (pad);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_GAP: {
      GstClockTime pts, duration;
      guint64 n;

      gst_event_parse_gap (event, &pts, &duration);
      if (pts != c->next_pts)
        c->bad_timestamps++;
      c->n_gap_events++;
      c->gap_pts = pts;
      c->gap_duration = duration;
      /* Counted as silence, so positions stay comparable. */
      n = gst_util_uint64_scale_round (duration, RATE, GST_SECOND);
      g_array_set_size (c->samples, c->samples->len + n);
      c->next_pts =
          gst_util_uint64_scale_int (c->samples->len, GST_SECOND, RATE);
      break;
    }
    case GST_EVENT_CAPS: {
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      gst_caps_replace (&c->caps, caps);
      break;
    }
    case GST_EVENT_SEGMENT: {
      const GstSegment *segment;

      gst_event_parse_segment (event, &segment);
      c->segment_base = segment->base;
      break;
    }
    case GST_EVENT_EOS:
      c->eos = TRUE;
      break;
    default:
      break;
  }
  gst_event_unref (event);
  return TRUE;
}

static void
pad_added_cb (GstElement *element, GstPad *pad, Ctx *ctx)
{
  const gchar *name = GST_PAD_NAME (pad);
  Collector *c;

  if (!strcmp (name, "from_customer"))
    c = &ctx->from;
  else if (!strcmp (name, "to_customer"))
    c = &ctx->to;
  else
    fail ("unexpected pad %s", name);
  ctx->n_pads++;
  c->pad = gst_pad_new (name, GST_PAD_SINK);
  gst_pad_set_element_private (c->pad, c);
  gst_pad_set_chain_function (c->pad, collector_chain);
  gst_pad_set_event_function (c->pad, collector_event);
  gst_pad_set_active (c->pad, TRUE);
  fail_unless_equals_int (gst_pad_link (pad, c->pad), GST_PAD_LINK_OK);
}

static void
no_more_pads_cb (GstElement *element, Ctx *ctx)
{
  ctx->no_more_pads = TRUE;
}

static void
ctx_init_with_caps (Ctx *ctx, const gchar *caps)
{
  GstSegment segment;

  memset (ctx, 0, sizeof (*ctx));
  ctx->messages =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_message_unref);
  ctx->from.samples = g_array_new (FALSE, TRUE, sizeof (gint16));
  ctx->to.samples = g_array_new (FALSE, TRUE, sizeof (gint16));
  ctx->h = gst_harness_new_with_padnames ("kvsdemux", "sink", NULL);
  ctx->bus = gst_bus_new ();
  gst_element_set_bus (ctx->h->element, ctx->bus);
  g_signal_connect (ctx->h->element, "pad-added", G_CALLBACK (pad_added_cb),
      ctx);
  g_signal_connect (ctx->h->element, "no-more-pads",
      G_CALLBACK (no_more_pads_cb), ctx);
  gst_util_set_object_arg (G_OBJECT (ctx->h->element), "latency-mode",
      latency_mode);
  gst_harness_play (ctx->h);
  if (caps != NULL) {
    gst_harness_set_src_caps_str (ctx->h, caps);
    return;
  }
  /* What filesrc sends: a BYTES segment and no caps. */
  gst_harness_push_event (ctx->h, gst_event_new_stream_start ("kvs-test"));
  gst_segment_init (&segment, GST_FORMAT_BYTES);
  gst_harness_push_event (ctx->h, gst_event_new_segment (&segment));
}

static void
ctx_init (Ctx *ctx)
{
  ctx_init_with_caps (ctx, NULL);
}

static void
collector_clear (Collector *c)
{
  g_array_unref (c->samples);
  gst_clear_caps (&c->caps);
  gst_clear_object (&c->pad);
}

static void
ctx_clear (Ctx *ctx)
{
  gst_harness_teardown (ctx->h);
  g_ptr_array_unref (ctx->messages);
  gst_bus_set_flushing (ctx->bus, TRUE);
  gst_object_unref (ctx->bus);
  collector_clear (&ctx->from);
  collector_clear (&ctx->to);
}

/* Pushes @s in pieces of random size, many of them a single byte. */
static GstFlowReturn
push_chunks (Ctx *ctx, const guint8 *data, gsize len, guint32 seed,
    guint max_chunk)
{
  GRand *rand = g_rand_new_with_seed (seed);
  GstFlowReturn ret = GST_FLOW_OK;
  gsize pos = 0;

  while (pos < len && ret == GST_FLOW_OK) {
    gsize n = g_rand_int_range (rand, 0, 4) == 0
        ? 1
        : (gsize) g_rand_int_range (rand, 1, max_chunk + 1);

    n = MIN (n, len - pos);
    ret = gst_harness_push (ctx->h, gst_buffer_new_memdup (data + pos, n));
    pos += n;
  }
  g_rand_free (rand);
  return ret;
}

static void
push_eos (Ctx *ctx)
{
  gst_harness_push_event (ctx->h, gst_event_new_eos ());
}

static void
drain_bus (Ctx *ctx)
{
  GstMessage *m;

  while ((m = gst_bus_pop (ctx->bus)) != NULL)
    g_ptr_array_add (ctx->messages, m);
}

/* The fragment messages posted so far, in order. */
static GPtrArray *
fragment_messages (Ctx *ctx)
{
  GPtrArray *msgs =
      g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  guint i;

  drain_bus (ctx);
  for (i = 0; i < ctx->messages->len; i++) {
    GstMessage *m = g_ptr_array_index (ctx->messages, i);
    const GstStructure *s = gst_message_get_structure (m);

    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT
        && gst_structure_has_name (s, "kvs-fragment"))
      g_ptr_array_add (msgs, gst_structure_copy (s));
  }
  return msgs;
}

/* The first message of @type posted so far (borrowed), or NULL. */
static GstMessage *
pop_message (Ctx *ctx, GstMessageType type)
{
  guint i;

  drain_bus (ctx);
  for (i = 0; i < ctx->messages->len; i++) {
    GstMessage *m = g_ptr_array_index (ctx->messages, i);

    if (GST_MESSAGE_TYPE (m) == type)
      return m;
  }
  return NULL;
}

/* Expected output: the fixture pattern from @first for @n samples. */
static void
expect_pattern (GArray *expected, gboolean from, guint64 first, guint n)
{
  guint i;

  for (i = 0; i < n; i++) {
    gint16 v = kvs_fixture_sample (from, first + i);

    g_array_append_val (expected, v);
  }
}

static void
expect_silence (GArray *expected, guint n)
{
  g_array_set_size (expected, expected->len + n);
}

static void
assert_samples (Collector *c, GArray *expected)
{
  guint i;

  fail_unless_equals_int (c->samples->len, expected->len);
  for (i = 0; i < expected->len; i++) {
    if (g_array_index (c->samples, gint16, i)
        != g_array_index (expected, gint16, i))
      fail ("sample %u of %s: %d, expected %d", i, GST_PAD_NAME (c->pad),
          g_array_index (c->samples, gint16, i),
          g_array_index (expected, gint16, i));
  }
  fail_unless_equals_int (c->bad_timestamps, 0);
}

static void
assert_connect_caps (Collector *c)
{
  GstCaps *want =
      gst_caps_from_string ("audio/x-raw, format=S16LE, "
                            "layout=interleaved, channels=1, rate=8000");

  fail_unless (c->caps != NULL);
  fail_unless (gst_caps_is_equal (c->caps, want), "caps %" GST_PTR_FORMAT,
      c->caps);
  gst_caps_unref (want);
}

/* A stream of @n fragments of 16 blocks of 512 samples (1024 ms), one
 * timecode after the other, both directions. */
static GByteArray *
make_stream (KvsFixtureFragment *specs, guint n)
{
  GByteArray *out = g_byte_array_new ();
  KvsFixtureState st = {0, 0};
  guint i;

  for (i = 0; i < n; i++)
    kvs_fixture_write_fragment (out, &specs[i], &st);
  return out;
}

static KvsFixtureFragment
fragment (const gchar *number, const gchar *contact, guint index)
{
  KvsFixtureFragment f = {number, contact,
      1726677688724 + 1024 * (guint64) index, 16, 16, 512, 0, FALSE,
      index % 2 == 0, NULL, 0};

  return f;
}

static void
run_basic (guint32 seed, guint max_chunk)
{
  KvsFixtureFragment specs[3] = {fragment ("101", "c-1", 0),
      fragment ("102", "c-1", 1), fragment ("103", "c-1", 2)};
  g_autoptr (GByteArray) s = NULL;
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GArray) to = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GPtrArray) msgs = NULL;
  Ctx ctx;

  specs[1].swap_tracks = TRUE;
  s = make_stream (specs, 3);
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, seed, max_chunk),
      GST_FLOW_OK);
  push_eos (&ctx);

  fail_unless_equals_int (ctx.n_pads, 2);
  fail_unless (ctx.no_more_pads);
  assert_connect_caps (&ctx.from);
  assert_connect_caps (&ctx.to);
  expect_pattern (from, TRUE, 0, 3 * 8192);
  expect_pattern (to, FALSE, 0, 3 * 8192);
  assert_samples (&ctx.from, from);
  assert_samples (&ctx.to, to);
  fail_unless (ctx.from.eos && ctx.to.eos);
  fail_unless_equals_int (ctx.from.n_gap_events, 0);

  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, 3);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           2),
                                 "fragment-number"),
      "103");
  ctx_clear (&ctx);
}

GST_START_TEST (test_basic_random_chunks)
{
  run_basic (1, 3000);
  run_basic (2, 17);
}

GST_END_TEST;

GST_START_TEST (test_one_byte_pushes)
{
  run_basic (3, 1);
}

GST_END_TEST;

GST_START_TEST (test_fragment_message)
{
  KvsFixtureFragment specs[1] = {fragment ("91343852333181432392682062607743"
                                           "920146159169392",
      "0f3c-contact", 0)};
  g_autoptr (GByteArray) s = make_stream (specs, 1);
  g_autoptr (GPtrArray) msgs = NULL;
  const GstStructure *m, *tags;
  guint64 v;
  Ctx ctx;

  ctx_init_with_caps (&ctx, "video/x-matroska");
  fail_unless_equals_int (gst_harness_push (ctx.h,
                              gst_buffer_new_memdup (s->data, s->len)),
      GST_FLOW_OK);
  /* Complete at its continuation token, before EOS or a next fragment. */
  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, 1);
  m = g_ptr_array_index (msgs, 0);
  fail_unless_equals_string (gst_structure_get_string (m, "fragment-number"),
      "91343852333181432392682062607743920146159169392");
  fail_unless_equals_string (gst_structure_get_string (m, "continuation-token"),
      "91343852333181432392682062607743920146159169392");
  fail_unless_equals_string (gst_structure_get_string (m, "contact-id"),
      "0f3c-contact");
  fail_unless (gst_structure_get_uint64 (m, "producer-timestamp", &v));
  fail_unless_equals_uint64 (v, 1726677688724);
  fail_unless (gst_structure_get_uint64 (m, "server-timestamp", &v));
  fail_unless_equals_uint64 (v, 1726677688974);
  fail_unless (gst_structure_get_uint64 (m, "millis-behind-now", &v));
  fail_unless_equals_uint64 (v, 1124);
  tags = gst_value_get_structure (gst_structure_get_value (m, "tags"));
  fail_unless_equals_string (gst_structure_get_string (tags, "MimeType"),
      "audio/L16;rate=8000;channels=1;");
  fail_unless_equals_int (ctx.from.samples->len, 8192);
  ctx_clear (&ctx);
}

GST_END_TEST;

/* Short final blocks (96 samples, 12 ms): the next fragment's timecode
 * follows the real length, and nothing is padded. */
GST_START_TEST (test_short_blocks)
{
  KvsFixtureFragment specs[2] = {fragment ("1", "c", 0),
      fragment ("2", "c", 0)};
  g_autoptr (GByteArray) s = NULL;
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GArray) to = g_array_new (FALSE, TRUE, sizeof (gint16));
  Ctx ctx;

  specs[0].last_block_samples = 96;
  specs[1].timecode_ms = specs[0].timecode_ms + 15 * 64 + 12;
  specs[1].block_samples = 96;
  s = make_stream (specs, 2);
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 7, 300),
      GST_FLOW_OK);
  push_eos (&ctx);
  expect_pattern (from, TRUE, 0, 15 * 512 + 96 + 16 * 96);
  expect_pattern (to, FALSE, 0, 15 * 512 + 96 + 16 * 96);
  assert_samples (&ctx.from, from);
  assert_samples (&ctx.to, to);
  ctx_clear (&ctx);
}

GST_END_TEST;

static void
run_missing_direction (gboolean fill)
{
  KvsFixtureFragment specs[3] = {fragment ("1", "c", 0), fragment ("2", "c", 1),
      fragment ("3", "c", 2)};
  g_autoptr (GByteArray) s = NULL;
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GArray) to = g_array_new (FALSE, TRUE, sizeof (gint16));
  Ctx ctx;

  specs[1].to_blocks = 0;
  s = make_stream (specs, 3);
  ctx_init (&ctx);
  g_object_set (ctx.h->element, "fill-gaps", fill, NULL);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 11, 5000),
      GST_FLOW_OK);
  push_eos (&ctx);
  expect_pattern (from, TRUE, 0, 3 * 8192);
  expect_pattern (to, FALSE, 0, 8192);
  expect_silence (to, 8192);
  expect_pattern (to, FALSE, 8192, 8192);
  assert_samples (&ctx.from, from);
  assert_samples (&ctx.to, to);
  if (fill) {
    fail_unless_equals_int (ctx.to.n_gap_events, 0);
  } else {
    fail_unless_equals_int (ctx.to.n_gap_events, 1);
    fail_unless_equals_uint64 (ctx.to.gap_pts, 1024 * GST_MSECOND);
    fail_unless_equals_uint64 (ctx.to.gap_duration, 1024 * GST_MSECOND);
  }
  ctx_clear (&ctx);
}

GST_START_TEST (test_missing_direction_filled)
{
  run_missing_direction (TRUE);
}

GST_END_TEST;

GST_START_TEST (test_missing_direction_gap_events)
{
  run_missing_direction (FALSE);
}

GST_END_TEST;

/* to_customer starts 256 ms after from_customer inside one fragment. */
GST_START_TEST (test_late_direction)
{
  KvsFixtureFragment specs[2] = {fragment ("1", "c", 0),
      fragment ("2", "c", 1)};
  g_autoptr (GByteArray) s = g_byte_array_new ();
  g_autoptr (GArray) to = g_array_new (FALSE, TRUE, sizeof (gint16));
  KvsFixtureState st = {0, 0};
  KvsFixtureFragment late;
  Ctx ctx;

  kvs_fixture_write_fragment (s, &specs[0], &st);
  late = specs[1];
  late.from_blocks = 0;
  late.timecode_ms += 256;
  late.to_blocks = 12;
  kvs_fixture_write_fragment (s, &late, &st);

  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 5, 999),
      GST_FLOW_OK);
  push_eos (&ctx);
  expect_pattern (to, FALSE, 0, 8192);
  expect_silence (to, 2048);
  expect_pattern (to, FALSE, 8192, 12 * 512);
  assert_samples (&ctx.to, to);
  /* from_customer has no block in fragment 2: levelled with to_customer. */
  fail_unless_equals_int (ctx.from.samples->len, 8192 + 8192);
  ctx_clear (&ctx);
}

GST_END_TEST;

GST_START_TEST (test_contact_change_eos)
{
  KvsFixtureFragment specs[4] = {fragment ("1", "contact-a", 0),
      fragment ("2", NULL, 1), fragment ("3", "contact-b", 2),
      fragment ("4", "contact-b", 3)};
  g_autoptr (GByteArray) s = make_stream (specs, 4);
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GPtrArray) msgs = NULL;
  Ctx ctx;

  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 13, 4000),
      GST_FLOW_EOS);
  /* Fragment 2 has no ContactId: contact-a carries over. */
  expect_pattern (from, TRUE, 0, 2 * 8192);
  assert_samples (&ctx.from, from);
  fail_unless (ctx.from.eos && ctx.to.eos);
  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, 3);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           1),
                                 "contact-id"),
      "contact-a");
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           2),
                                 "contact-id"),
      "contact-b");
  ctx_clear (&ctx);
}

GST_END_TEST;

GST_START_TEST (test_contact_id_filter)
{
  KvsFixtureFragment specs[5] = {fragment ("1", "contact-a", 0),
      fragment ("2", "contact-b", 1), fragment ("3", "contact-b", 2),
      fragment ("4", "contact-c", 3), fragment ("5", "contact-b", 4)};
  g_autoptr (GByteArray) s = make_stream (specs, 5);
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  Ctx ctx;

  ctx_init (&ctx);
  g_object_set (ctx.h->element, "contact-id", "contact-b", NULL);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 17, 4000),
      GST_FLOW_EOS);
  /* Fragment 2 (contact-b, tag after its audio) waits for its tag in both
   * modes: contact-b was not confirmed yet. Fragment 4 (contact-c, tag
   * after its audio) is held in fragment mode; block mode takes it for
   * contact-b's until its tag, which ends the stream: it leaks. */
  expect_pattern (from, TRUE, 8192, (block_mode () ? 3 : 2) * 8192);
  assert_samples (&ctx.from, from);
  fail_unless (ctx.from.eos);
  ctx_clear (&ctx);
}

GST_END_TEST;

GST_START_TEST (test_no_stop_on_contact_change)
{
  KvsFixtureFragment specs[3] = {fragment ("1", "contact-a", 0),
      fragment ("2", "contact-b", 1), fragment ("3", "contact-a", 2)};
  g_autoptr (GByteArray) s = make_stream (specs, 3);
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  Ctx ctx;

  ctx_init (&ctx);
  g_object_set (ctx.h->element, "stop-on-contact-change", FALSE, NULL);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 19, 4000),
      GST_FLOW_OK);
  push_eos (&ctx);
  expect_pattern (from, TRUE, 0, 3 * 8192);
  assert_samples (&ctx.from, from);
  ctx_clear (&ctx);
}

GST_END_TEST;

static gboolean
message_names (GstMessage *m, const gchar *text)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *debug = NULL;

  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR)
    gst_message_parse_error (m, &err, &debug);
  else
    gst_message_parse_warning (m, &err, &debug);
  GST_INFO ("message: %s (%s)", err->message, debug);
  return strstr (err->message, text) != NULL;
}

GST_START_TEST (test_inband_error)
{
  KvsFixtureFragment specs[3] = {fragment ("1", "c", 0), fragment ("2", "c", 1),
      fragment ("3", "c", 1)};
  g_autoptr (GByteArray) s = NULL;
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GPtrArray) msgs = NULL;
  GstMessage *m;
  guint64 id;
  Ctx ctx;

  specs[1].error_code = "FRAGMENT_NOT_FOUND";
  specs[1].error_id = 4000;
  s = make_stream (specs, 3);
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 23, 800),
      GST_FLOW_OK);
  push_eos (&ctx);
  m = pop_message (&ctx, GST_MESSAGE_WARNING);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "FRAGMENT_NOT_FOUND"));
  fail_unless (message_names (m, "4000"));
  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, 3);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           1),
                                 "error-code"),
      "FRAGMENT_NOT_FOUND");
  fail_unless (
      gst_structure_get_uint64 (g_ptr_array_index (msgs, 1), "error-id", &id));
  fail_unless_equals_uint64 (id, 4000);
  expect_pattern (from, TRUE, 0, 2 * 8192);
  assert_samples (&ctx.from, from);
  ctx_clear (&ctx);

  /* KMS errors (4500-4506) stop the pipeline. */
  g_clear_pointer (&s, g_byte_array_unref);
  specs[1].error_code = "KMS_ACCESS_DENIED";
  specs[1].error_id = 4501;
  s = make_stream (specs, 3);
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 23, 800),
      GST_FLOW_ERROR);
  m = pop_message (&ctx, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "KMS_ACCESS_DENIED"));
  ctx_clear (&ctx);
}

GST_END_TEST;

/* A reconnect re-sends fragment 2 from its start after the first session
 * died in the middle of one of its blocks: the demuxer must neither lose
 * nor duplicate samples. */
GST_START_TEST (test_resume_after_reconnect)
{
  KvsFixtureFragment specs[3] = {fragment ("1", "c", 0), fragment ("2", "c", 1),
      fragment ("3", "c", 2)};
  g_autoptr (GByteArray) s = g_byte_array_new ();
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GArray) to = g_array_new (FALSE, TRUE, sizeof (gint16));
  KvsFixtureState st = {0, 0};
  guint f2_start, f2_end, cut;
  GstBuffer *buf;
  Ctx ctx;

  kvs_fixture_write_fragment (s, &specs[0], &st);
  f2_start = s->len;
  kvs_fixture_write_fragment (s, &specs[1], &st);
  f2_end = s->len;
  kvs_fixture_write_fragment (s, &specs[2], &st);
  /* Inside a block, past from_customer's 9th and to_customer's 8th. */
  cut = f2_start + (f2_end - f2_start) * 55 / 100 + 1;

  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, cut, 29, 700),
      GST_FLOW_OK);
  /* Fragment 2's ContactId trails its audio: in fragment mode it waits
   * whole, in block mode its first blocks are out before the cut. */
  if (block_mode ())
    fail_unless (ctx.from.samples->len > 8192 + 4 * 512);
  else
    fail_unless_equals_int (ctx.from.samples->len, 8192);
  buf = gst_buffer_new_memdup (s->data + f2_start, f2_end - f2_start);
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  fail_unless_equals_int (gst_harness_push (ctx.h, buf), GST_FLOW_OK);
  fail_unless_equals_int (push_chunks (&ctx, s->data + f2_end, s->len - f2_end,
                              31, 700),
      GST_FLOW_OK);
  push_eos (&ctx);

  expect_pattern (from, TRUE, 0, 3 * 8192);
  expect_pattern (to, FALSE, 0, 3 * 8192);
  assert_samples (&ctx.from, from);
  assert_samples (&ctx.to, to);
  ctx_clear (&ctx);
}

GST_END_TEST;

static GstMessage *
push_hostile (Ctx *ctx, GByteArray *s, GstFlowReturn expected)
{
  fail_unless_equals_int (gst_harness_push (ctx->h,
                              gst_buffer_new_memdup (s->data, s->len)),
      expected);
  return pop_message (ctx, GST_MESSAGE_ERROR);
}

GST_START_TEST (test_hostile_input)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  KvsFixtureFragment specs[1] = {fragment ("1", "c", 0)};
  KvsFixtureState st = {0, 0};
  GstMessage *m;
  Ctx ctx;

  /* Garbage. */
  ctx_init (&ctx);
  g_byte_array_append (s, (const guint8 *) "ID3\x04garbage-not-mkv", 19);
  m = push_hostile (&ctx, s, GST_FLOW_ERROR);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "not an MKV stream"));
  ctx_clear (&ctx);

  /* A 100 MiB audio block: refused on its header, nothing buffered. */
  ctx_init (&ctx);
  g_byte_array_set_size (s, 0);
  kvs_fixture_write_fragment (s, &specs[0], &st);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF", 5);
  g_byte_array_append (s,
      (const guint8 *) "\x16\x54\xAE\x6B\x8B\xAE\x89"
                       "\xD7\x81\x01\x83\x81\x02\x86\x81\x41",
      16);
  g_byte_array_append (s, (const guint8 *) "\x1F\x43\xB6\x75\xFF", 5);
  kvs_fixture_put_id (s, 0xA3);
  kvs_fixture_put_size (s, 100 * 1024 * 1024);
  g_byte_array_append (s, (const guint8 *) "\x81\0\0\x80", 4);
  m = push_hostile (&ctx, s, GST_FLOW_ERROR);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "SimpleBlock"));
  fail_unless_equals_int (ctx.from.samples->len, 8192);
  ctx_clear (&ctx);

  /* A vint of length 0. */
  ctx_init (&ctx);
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF\x00\x00", 7);
  m = push_hostile (&ctx, s, GST_FLOW_ERROR);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "vint"));
  ctx_clear (&ctx);

  /* Truncated in the middle of a block: a warning, the rest pushed. */
  ctx_init (&ctx);
  g_byte_array_set_size (s, 0);
  st.from_pos = st.to_pos = 0;
  kvs_fixture_write_fragment (s, &specs[0], &st);
  g_byte_array_set_size (s, s->len / 2);
  fail_unless_equals_int (gst_harness_push (ctx.h,
                              gst_buffer_new_memdup (s->data, s->len)),
      GST_FLOW_OK);
  push_eos (&ctx);
  m = pop_message (&ctx, GST_MESSAGE_WARNING);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "truncated"));
  fail_unless (ctx.from.samples->len > 0);
  fail_unless (ctx.from.eos);
  ctx_clear (&ctx);
}

GST_END_TEST;

typedef struct
{
  const gchar *file;
  guint n_messages;
  const gchar *first_number;
  const gchar *last_number;
  const gchar *last_token;
  guint from_samples; /* G_MAXUINT: no from_customer pad */
  guint to_samples;
  gboolean warning;
} ElementCase;

/* Sample counts: the blocks' payloads, plus silence where the producer's
 * timecodes leave a hole of more than 20 ms (the fixtures' fragments are
 * 1024 ms apart but hold a few ms of audio) or a track has no block in a
 * fragment. Video-only captures give no pad. */
static const ElementCase element_cases[] = {
    {"kvsparser_output_get_media.mkv", 5,
        "91343852333181432392682062607743920146159169392",
        "91343852333181432412489103236310005892133364608",
        "91343852333181432412489103236310005892133364608", G_MAXUINT, G_MAXUINT,
        FALSE},
    {"kvsparser_output_get_media_sparse_fragments.mkv", 3,
        "91343852333181432392682062607743920146159169392",
        "91343852333181432412489103236310005892133364608",
        "91343852333181432412489103236310005892133364608", G_MAXUINT, G_MAXUINT,
        FALSE},
    {"kvsparser_output-get-media-equal-timecode.mkv", 2,
        "91343852338381417542203754135250098963782391502",
        "91343852338381422498915671433912930725530893291", NULL, G_MAXUINT,
        G_MAXUINT, TRUE},
    {"kvsparser_test_mixed_tags.mkv", 10,
        "91343852333713038908964877623801423530396737899",
        "91343852333713038953530719038075113645398559869",
        "91343852333713038953530719038075113645398559869", G_MAXUINT, G_MAXUINT,
        FALSE},
    {"kvsparser_empty-mkv-with-tags.mkv", 1,
        "91343852338378294813695855977007281634605393997",
        "91343852338378294813695855977007281634605393997", NULL, G_MAXUINT,
        G_MAXUINT, FALSE},
    {"kvsparser_test_tags_empty_cluster.mkv", 1, NULL, NULL, NULL, G_MAXUINT,
        G_MAXUINT, FALSE},
    {"kvsparser_clusters.mkv", 1, NULL, NULL, NULL, G_MAXUINT, G_MAXUINT,
        FALSE},
    {"connect-shaped/connect_real_shape.mkv", 1, "connect-real-0",
        "connect-real-0",
        "0000000000000000000000000000000000000000000000000000000000000000", 24,
        24, FALSE},
    {"connect-shaped/track_order_swapped.mkv", 1, "swapped-0", "swapped-0",
        "0000000000000000000000000000000000000000000000000000000000000000", 16,
        24, FALSE},
    /* Contact ...02 for two fragments, then ...03: EOS at the third. */
    {"connect-shaped/stream_reuse.mkv", 3, "reuse-b-0", "reuse-c-0",
        "0000000000000000000000000000000000000000000000000000000000000000",
        8192 + 12, 8192 + 12, FALSE},
    /* from_customer only, fragments at 0, 1024, 2048 and 3072 ms. */
    {"connect-shaped/multi_segment.mkv", 4,
        "91343852333181000000000000000000000000000000001",
        "91343852333181000000000000000000000000000000004",
        "0000000000000000000000000000000000000000000000000000000000000000",
        3 * 8192 + 32, 3 * 8192 + 32, FALSE},
};

GST_START_TEST (test_conformance)
{
  const ElementCase *c = &element_cases[__i__];
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autofree gchar *path = NULL;
  g_autofree gchar *contents = NULL;
  g_autoptr (GPtrArray) msgs = NULL;
  gsize len, pos;
  GstMessage *m;
  Ctx ctx;

  if (shared == NULL) {
    GST_WARNING ("skipped: CALLPIPE_SHARED_DIR is not set");
    return;
  }
  path = g_build_filename (shared, "conformance", "kvs", c->file, NULL);
  if (!g_file_get_contents (path, &contents, &len, NULL)) {
    GST_WARNING ("skipped: %s is missing", path);
    return;
  }

  ctx_init (&ctx);
  /* As filesrc reads it: 4096-byte buffers, no caps. */
  for (pos = 0; pos < len; pos += 4096) {
    GstFlowReturn ret = gst_harness_push (ctx.h,
        gst_buffer_new_memdup (contents + pos, MIN (4096, len - pos)));

    if (ret == GST_FLOW_EOS)
      break;
    fail_unless_equals_int (ret, GST_FLOW_OK);
  }
  push_eos (&ctx);

  m = pop_message (&ctx, GST_MESSAGE_ERROR);
  fail_unless (m == NULL, "%s: error", c->file);
  m = pop_message (&ctx, GST_MESSAGE_WARNING);
  fail_unless_equals_int (m != NULL, c->warning);
  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, c->n_messages);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           0),
                                 "fragment-number"),
      c->first_number);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           msgs->len - 1),
                                 "fragment-number"),
      c->last_number);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           msgs->len - 1),
                                 "continuation-token"),
      c->last_token);
  if (c->from_samples == G_MAXUINT) {
    fail_unless_equals_int (ctx.n_pads, 0);
  } else {
    fail_unless_equals_int (ctx.n_pads, 2);
    assert_connect_caps (&ctx.from);
    fail_unless_equals_int (ctx.from.samples->len, c->from_samples);
    fail_unless_equals_int (ctx.to.samples->len, c->to_samples);
    fail_unless_equals_int (ctx.from.bad_timestamps, 0);
    fail_unless_equals_int (ctx.to.bad_timestamps, 0);
  }
  ctx_clear (&ctx);
}

GST_END_TEST;

/* connect_real_shape: the payload bytes come out as they are, little-endian
 * (0x41 0x42 -> 0x4241), on the track named AUDIO_FROM_CUSTOMER. */
GST_START_TEST (test_conformance_payload)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autofree gchar *path = NULL;
  g_autofree gchar *contents = NULL;
  gsize len;
  Ctx ctx;

  if (shared == NULL)
    return;
  path = g_build_filename (shared, "conformance", "kvs", "connect-shaped",
      "connect_real_shape.mkv", NULL);
  if (!g_file_get_contents (path, &contents, &len, NULL))
    return;
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, (const guint8 *) contents, len, 37,
                              50),
      GST_FLOW_OK);
  push_eos (&ctx);
  fail_unless_equals_int (g_array_index (ctx.from.samples, gint16, 0), 0x4241);
  fail_unless_equals_int (g_array_index (ctx.to.samples, gint16, 0), 0x5251);
  fail_unless_equals_int (g_array_index (ctx.from.samples, gint16, 12), 0x6261);
  ctx_clear (&ctx);
}

GST_END_TEST;

static gsize
find_from (GByteArray *s, gsize from, const gchar *needle)
{
  gsize i, n = strlen (needle);

  for (i = from; i + n <= s->len; i++) {
    if (!memcmp (s->data + i, needle, n))
      return i;
  }
  fail ("'%s' not found", needle);
  return 0;
}

/* Fragment 1 (ContactId before its Cluster) pushed up to the tags that
 * close it: all its blocks are out. Fragment 2 (ContactId after its
 * audio) pushed up to that tag: block mode has pushed its blocks, fragment
 * mode still holds them. Ordering only, no timing. */
GST_START_TEST (test_blocks_before_fragment_end)
{
  KvsFixtureFragment specs[2] = {fragment ("1", "c", 0),
      fragment ("2", "c", 1)};
  g_autoptr (GByteArray) s = make_stream (specs, 2);
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GArray) to = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GPtrArray) msgs = NULL;
  gsize tail1 = find_from (s, 0, "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW");
  gsize f2 = find_from (s, tail1, "\x1A\x45\xDF\xA3");
  gsize contact2 = find_from (s, f2, "ContactId");
  Ctx ctx;

  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, tail1, 41, 300),
      GST_FLOW_OK);
  fail_unless_equals_int (ctx.from.samples->len, 8192);
  fail_unless_equals_int (ctx.to.samples->len, 8192);
  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, 0);

  fail_unless_equals_int (push_chunks (&ctx, s->data + tail1, contact2 - tail1,
                              43, 300),
      GST_FLOW_OK);
  fail_unless_equals_int (ctx.from.samples->len, block_mode () ? 16384 : 8192);
  fail_unless_equals_int (ctx.to.samples->len, block_mode () ? 16384 : 8192);

  fail_unless_equals_int (push_chunks (&ctx, s->data + contact2,
                              s->len - contact2, 47, 300),
      GST_FLOW_OK);
  push_eos (&ctx);
  expect_pattern (from, TRUE, 0, 2 * 8192);
  expect_pattern (to, FALSE, 0, 2 * 8192);
  assert_samples (&ctx.from, from);
  assert_samples (&ctx.to, to);
  ctx_clear (&ctx);
}

GST_END_TEST;

static GstClockTime
query_min_latency (Ctx *ctx)
{
  GstPad *pad = gst_element_get_static_pad (ctx->h->element, "from_customer");
  GstQuery *q = gst_query_new_latency ();
  GstClockTime min, max;
  gboolean live;

  fail_unless (pad != NULL);
  fail_unless (gst_pad_query (pad, q));
  gst_query_parse_latency (q, &live, &min, &max);
  fail_unless (live);
  gst_query_unref (q);
  gst_object_unref (pad);
  return min;
}

static guint
count_messages (Ctx *ctx, GstMessageType type)
{
  guint i, n = 0;

  drain_bus (ctx);
  for (i = 0; i < ctx->messages->len; i++)
    n += GST_MESSAGE_TYPE (g_ptr_array_index (ctx->messages, i)) == type;
  return n;
}

/* Upstream's 10 ms plus what the demuxer holds: a 64 ms block; a 1024 ms
 * fragment once fragment mode has had to hold one while audio flowed,
 * announced with a LATENCY message. */
static void
run_latency (gboolean tags_before, GstClockTime expected)
{
  KvsFixtureFragment specs[3] = {fragment ("1", "c", 0), fragment ("2", "c", 1),
      fragment ("3", "c", 2)};
  g_autoptr (GByteArray) s = NULL;
  g_autoptr (GByteArray) head = NULL;
  guint latency_messages;
  Ctx ctx;

  specs[1].tags_before = tags_before;
  head = make_stream (specs, 1);
  s = make_stream (specs, 3);
  ctx_init (&ctx);
  gst_harness_set_upstream_latency (ctx.h, 10 * GST_MSECOND);
  fail_unless_equals_int (push_chunks (&ctx, s->data, head->len, 53, 900),
      GST_FLOW_OK);
  fail_unless_equals_uint64 (query_min_latency (&ctx), 74 * GST_MSECOND);
  latency_messages = count_messages (&ctx, GST_MESSAGE_LATENCY);
  fail_unless (latency_messages >= 1);
  fail_unless_equals_int (push_chunks (&ctx, s->data + head->len,
                              s->len - head->len, 59, 900),
      GST_FLOW_OK);
  fail_unless_equals_uint64 (query_min_latency (&ctx), expected);
  fail_unless_equals_int (count_messages (&ctx, GST_MESSAGE_LATENCY)
          > latency_messages,
      expected != 74 * GST_MSECOND);
  ctx_clear (&ctx);
}

GST_START_TEST (test_latency_query)
{
  run_latency (FALSE,
      block_mode () ? 74 * GST_MSECOND : (10 + 1024) * GST_MSECOND);
  /* ContactId before the audio: nothing is ever held. */
  run_latency (TRUE, 74 * GST_MSECOND);
}

GST_END_TEST;

/* Behind a live source, the segment starts at the running time the audio
 * first went out (5 s on the test clock); PTS still count from 0. */
GST_START_TEST (test_live_running_time)
{
  KvsFixtureFragment specs[2] = {fragment ("1", "c", 0),
      fragment ("2", "c", 1)};
  g_autoptr (GByteArray) s = make_stream (specs, 2);
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  Ctx ctx;

  ctx_init (&ctx);
  fail_unless (gst_harness_set_time (ctx.h, 5 * GST_SECOND));
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 61, 2000),
      GST_FLOW_OK);
  push_eos (&ctx);
  fail_unless_equals_uint64 (ctx.from.segment_base, 5 * GST_SECOND);
  fail_unless_equals_uint64 (ctx.to.segment_base, 5 * GST_SECOND);
  expect_pattern (from, TRUE, 0, 2 * 8192);
  assert_samples (&ctx.from, from);
  ctx_clear (&ctx);

  /* At 0 (as in every other test), the segment starts at 0. */
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 61, 2000),
      GST_FLOW_OK);
  fail_unless_equals_uint64 (ctx.from.segment_base, 0);
  ctx_clear (&ctx);
}

GST_END_TEST;

/* kvssrc ending before any byte (idle timeout on a silent stream). */
GST_START_TEST (test_empty_stream)
{
  GstMessage *m;
  Ctx ctx;

  ctx_init (&ctx);
  push_eos (&ctx);
  m = pop_message (&ctx, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  fail_unless (message_names (m, "the stream ended before any media arrived"));
  ctx_clear (&ctx);
}

GST_END_TEST;

/* Contact a, a again (tag after its audio), then b with its tag after its
 * audio: fragment mode holds b's fragment until its tag and drops it;
 * block mode takes it for a's and pushes it (the documented leak) before
 * the tag ends the stream. */
GST_START_TEST (test_contact_change_trailing_tag)
{
  KvsFixtureFragment specs[4] = {fragment ("1", "contact-a", 0),
      fragment ("2", "contact-a", 1), fragment ("3", "contact-b", 2),
      fragment ("4", "contact-b", 3)};
  g_autoptr (GByteArray) s = NULL;
  g_autoptr (GArray) from = g_array_new (FALSE, TRUE, sizeof (gint16));
  g_autoptr (GPtrArray) msgs = NULL;
  Ctx ctx;

  specs[2].tags_before = FALSE;
  s = make_stream (specs, 4);
  ctx_init (&ctx);
  fail_unless_equals_int (push_chunks (&ctx, s->data, s->len, 67, 3000),
      GST_FLOW_EOS);
  expect_pattern (from, TRUE, 0, (block_mode () ? 3 : 2) * 8192);
  assert_samples (&ctx.from, from);
  fail_unless (ctx.from.eos && ctx.to.eos);
  msgs = fragment_messages (&ctx);
  fail_unless_equals_int (msgs->len, 3);
  fail_unless_equals_string (gst_structure_get_string (g_ptr_array_index (msgs,
                                                           2),
                                 "contact-id"),
      "contact-b");
  ctx_clear (&ctx);
}

GST_END_TEST;

static void
use_fragment_mode (void)
{
  latency_mode = "fragment";
}

static void
use_block_mode (void)
{
  latency_mode = "block";
}

static TCase *
mode_tcase (const gchar *name, void (*setup) (void))
{
  TCase *tc = tcase_create (name);

  tcase_add_checked_fixture (tc, setup, NULL);
  tcase_add_test (tc, test_basic_random_chunks);
  tcase_add_test (tc, test_one_byte_pushes);
  tcase_add_test (tc, test_fragment_message);
  tcase_add_test (tc, test_short_blocks);
  tcase_add_test (tc, test_missing_direction_filled);
  tcase_add_test (tc, test_missing_direction_gap_events);
  tcase_add_test (tc, test_late_direction);
  tcase_add_test (tc, test_contact_change_eos);
  tcase_add_test (tc, test_contact_id_filter);
  tcase_add_test (tc, test_no_stop_on_contact_change);
  tcase_add_test (tc, test_contact_change_trailing_tag);
  tcase_add_test (tc, test_inband_error);
  tcase_add_test (tc, test_resume_after_reconnect);
  tcase_add_test (tc, test_hostile_input);
  tcase_add_test (tc, test_blocks_before_fragment_end);
  tcase_add_test (tc, test_latency_query);
  tcase_add_test (tc, test_live_running_time);
  tcase_add_test (tc, test_empty_stream);
  tcase_add_loop_test (tc, test_conformance, 0, G_N_ELEMENTS (element_cases));
  tcase_add_test (tc, test_conformance_payload);
  return tc;
}

static Suite *
kvsdemux_suite (void)
{
  Suite *s = suite_create ("kvsdemux");

  suite_add_tcase (s, mode_tcase ("fragment", use_fragment_mode));
  suite_add_tcase (s, mode_tcase ("block", use_block_mode));
  return s;
}

int
main (int argc, char **argv)
{
  const gchar *builddir = g_getenv ("CALLPIPE_TESTS_BUILDDIR");
  g_autofree gchar *registry = g_build_filename (builddir ? builddir : ".",
      "registry-kvsdemux.bin", NULL);

  /* Only the project's plugins, scanned in this process: the forked
   * scanner cannot load plugins built with AddressSanitizer, and system
   * plugins would bring their own leaks into the leak check. */
  g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  g_setenv ("GST_REGISTRY_1_0", registry, TRUE);

  gst_check_init (&argc, &argv);
  return gst_check_run_suite (kvsdemux_suite (), "kvsdemux", __FILE__);
}

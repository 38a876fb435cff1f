/* GstCheck tests of the callinterleave element: the caller left, the bot
 * right, aligned by running time, nothing lost. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/audio/audio.h>

#include <glib/gstdio.h>
#include <string.h>

#define RATE 8000
#define MONO_8K \
  "audio/x-raw,format=S16LE,layout=interleaved,channels=1,rate=8000"
#define MS(ms) ((GstClockTime) (ms) *GST_MSECOND)
#define SAMPLES(ms) ((ms) *RATE / 1000)
#define BOT_VALUE 1000

typedef struct
{
  GstHarness *caller;
  GstHarness *bot;
  GstElement *element;
  GstBus *bus;
  /* the recording pulled so far */
  GArray *left;
  GArray *right;
} Fixture;

static void
fixture_init (Fixture *f, gboolean with_bot)
{
  f->caller = gst_harness_new_with_padnames ("callinterleave", "caller", "src");
  f->element = f->caller->element;
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->element, f->bus);
  gst_harness_set_src_caps_str (f->caller, MONO_8K);
  if (with_bot) {
    f->bot = gst_harness_new_with_element (f->element, "bot", NULL);
    gst_harness_set_src_caps_str (f->bot, MONO_8K);
  }
  f->left = g_array_new (FALSE, FALSE, sizeof (gint16));
  f->right = g_array_new (FALSE, FALSE, sizeof (gint16));
}

static void
fixture_clear (Fixture *f)
{
  gst_element_set_bus (f->element, NULL);
  gst_object_unref (f->bus);
  if (f->bot)
    gst_harness_teardown (f->bot);
  gst_harness_teardown (f->caller);
  g_array_unref (f->left);
  g_array_unref (f->right);
}

/* The caller's sample i: never 0, so a lost or moved sample shows. */
static gint16
caller_value (gsize i)
{
  return (gint16) (1 + i % 997);
}

static GstBuffer *
mono_buffer (gsize first, gsize n, gint16 value, GstClockTime pts)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, n * 2, NULL);
  GstMapInfo map;
  gint16 *d;
  gsize i;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  d = (gint16 *) map.data;
  for (i = 0; i < n; i++)
    d[i] = value ? value : caller_value (first + i);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (n, GST_SECOND, RATE);
  return buf;
}

/* Caller samples [first, first + n) at their own time (+ @shift). */
static GstFlowReturn
push_caller (Fixture *f, gsize first, gsize n, GstClockTime shift)
{
  return gst_harness_push (f->caller,
      mono_buffer (first, n, 0,
          gst_util_uint64_scale (first, GST_SECOND, RATE) + shift));
}

static GstFlowReturn
push_bot (Fixture *f, GstClockTime pts, gsize n)
{
  return gst_harness_push (f->bot, mono_buffer (0, n, BOT_VALUE, pts));
}

/* Pulls every buffer out so far; checks they are contiguous stereo. */
static void
pull (Fixture *f)
{
  GstBuffer *buf;

  while ((buf = gst_harness_try_pull (f->caller)) != NULL) {
    GstMapInfo map;
    const gint16 *s;
    gsize i, frames;

    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (buf), f->left->len);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf),
        gst_util_uint64_scale_round (f->left->len, GST_SECOND, RATE));
    gst_buffer_map (buf, &map, GST_MAP_READ);
    s = (const gint16 *) map.data;
    frames = map.size / 4;
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (buf),
        f->left->len + frames);
    for (i = 0; i < frames; i++) {
      g_array_append_val (f->left, s[2 * i]);
      g_array_append_val (f->right, s[2 * i + 1]);
    }
    gst_buffer_unmap (buf, &map);
    gst_buffer_unref (buf);
  }
}

static void
send_eos (GstHarness *h)
{
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
}

/* Pulls until EOS. */
static void
pull_to_eos (Fixture *f)
{
  GstEvent *event;

  pull (f);
  while ((event = gst_harness_try_pull_event (f->caller)) != NULL) {
    gboolean eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;

    gst_event_unref (event);
    if (eos) {
      pull (f);
      return;
    }
  }
  fail ("no EOS");
}

static gboolean
has_eos (Fixture *f)
{
  GstEvent *event;
  gboolean eos = FALSE;

  while ((event = gst_harness_try_pull_event (f->caller)) != NULL) {
    eos |= GST_EVENT_TYPE (event) == GST_EVENT_EOS;
    gst_event_unref (event);
  }
  return eos;
}

/* Left: the caller's samples [0, n) in order, silence where noted. */
static void
check_left_is_caller (Fixture *f, gsize from, gsize to, gsize first)
{
  gsize i;

  for (i = from; i < to; i++)
    fail_unless (g_array_index (f->left, gint16, i)
            == caller_value (first + i - from),
        "left[%" G_GSIZE_FORMAT "] is %d, not %d", i,
        g_array_index (f->left, gint16, i), caller_value (first + i - from));
}

static void
check_range (GArray *channel, gsize from, gsize to, gint16 value)
{
  gsize i;

  fail_unless (to <= channel->len, "%" G_GSIZE_FORMAT " > %u", to,
      channel->len);
  for (i = from; i < to; i++)
    fail_unless_equals_int (g_array_index (channel, gint16, i), value);
}

static gsize
count_value (GArray *channel, gint16 value)
{
  gsize i, n = 0;

  for (i = 0; i < channel->len; i++)
    n += g_array_index (channel, gint16, i) == value;
  return n;
}

static GstMessage *
pop_message (Fixture *f, GstMessageType type)
{
  return gst_bus_pop_filtered (f->bus, type);
}

GST_START_TEST (test_caps)
{
  Fixture f = {0};
  GstAudioInfo info;
  GstCaps *caps;

  fixture_init (&f, TRUE);
  fail_unless_equals_int (push_caller (&f, 0, SAMPLES (100), 0), GST_FLOW_OK);
  caps = gst_pad_get_current_caps (f.caller->sinkpad);
  fail_unless (caps != NULL);
  fail_unless (gst_audio_info_from_caps (&info, caps));
  fail_unless_equals_int (GST_AUDIO_INFO_CHANNELS (&info), 2);
  fail_unless_equals_int (GST_AUDIO_INFO_RATE (&info), RATE);
  fail_unless_equals_int (GST_AUDIO_INFO_FORMAT (&info),
      GST_AUDIO_FORMAT_S16LE);
  fail_unless_equals_int (info.position[0],
      GST_AUDIO_CHANNEL_POSITION_FRONT_LEFT);
  fail_unless_equals_int (info.position[1],
      GST_AUDIO_CHANNEL_POSITION_FRONT_RIGHT);
  gst_caps_unref (caps);

  /* The bot pad asks for the caller's rate. */
  caps = gst_pad_peer_query_caps (f.bot->srcpad, NULL);
  fail_unless (gst_caps_is_fixed (caps) || gst_caps_get_size (caps) == 1);
  {
    gint rate = 0;

    fail_unless (gst_structure_get_int (gst_caps_get_structure (caps, 0),
        "rate", &rate));
    fail_unless_equals_int (rate, RATE);
  }
  gst_caps_unref (caps);
  fixture_clear (&f);
}

GST_END_TEST;

/* The bot's reply lands at its running time, the caller's audio is
 * untouched, and both pads' EOS end the recording. */
GST_START_TEST (test_aligned)
{
  Fixture f = {0};
  gsize i;

  fixture_init (&f, TRUE);
  /* Held until the caller's timeline reaches it. */
  fail_unless_equals_int (push_bot (&f, MS (200), SAMPLES (300)), GST_FLOW_OK);
  pull (&f);
  fail_unless_equals_int (f.left->len, 0);
  for (i = 0; i < 10; i++)
    fail_unless_equals_int (push_caller (&f, i * SAMPLES (100), SAMPLES (100),
                                0),
        GST_FLOW_OK);
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (1000));
  check_left_is_caller (&f, 0, SAMPLES (1000), 0);
  check_range (f.right, 0, SAMPLES (200), 0);
  check_range (f.right, SAMPLES (200), SAMPLES (500), BOT_VALUE);
  check_range (f.right, SAMPLES (500), SAMPLES (1000), 0);

  send_eos (f.caller);
  fail_if (has_eos (&f), "EOS before the bot ended");
  send_eos (f.bot);
  pull_to_eos (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (1000));
  fixture_clear (&f);
}

GST_END_TEST;

/* Bot audio that arrives after its moment was written is placed at the
 * next unwritten sample: all of it is in the recording. */
GST_START_TEST (test_late_bot)
{
  Fixture f = {0};
  gsize i;

  fixture_init (&f, TRUE);
  for (i = 0; i < 5; i++)
    push_caller (&f, i * SAMPLES (100), SAMPLES (100), 0);
  push_bot (&f, MS (100), SAMPLES (100));
  /* A second reply that overlaps the first follows it. */
  push_bot (&f, MS (150), SAMPLES (100));
  for (i = 5; i < 10; i++)
    push_caller (&f, i * SAMPLES (100), SAMPLES (100), 0);
  pull (&f);
  check_left_is_caller (&f, 0, SAMPLES (1000), 0);
  check_range (f.right, 0, SAMPLES (500), 0);
  check_range (f.right, SAMPLES (500), SAMPLES (700), BOT_VALUE);
  check_range (f.right, SAMPLES (700), SAMPLES (1000), 0);
  fixture_clear (&f);
}

GST_END_TEST;

/* The bot keeps talking after the caller hung up: written against
 * silence, then EOS. */
GST_START_TEST (test_bot_after_caller_eos)
{
  Fixture f = {0};
  gsize i;

  fixture_init (&f, TRUE);
  for (i = 0; i < 3; i++)
    push_caller (&f, i * SAMPLES (100), SAMPLES (100), 0);
  send_eos (f.caller);
  fail_unless_equals_int (push_bot (&f, MS (350), SAMPLES (200)), GST_FLOW_OK);
  fail_unless_equals_int (push_bot (&f, MS (550), SAMPLES (100)), GST_FLOW_OK);
  send_eos (f.bot);
  pull_to_eos (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (650));
  check_left_is_caller (&f, 0, SAMPLES (300), 0);
  check_range (f.left, SAMPLES (300), SAMPLES (650), 0);
  check_range (f.right, 0, SAMPLES (350), 0);
  check_range (f.right, SAMPLES (350), SAMPLES (650), BOT_VALUE);
  /* After EOS, more bot audio is refused. */
  fail_unless_equals_int (push_bot (&f, MS (600), SAMPLES (10)), GST_FLOW_EOS);
  fixture_clear (&f);
}

GST_END_TEST;

/* Bot audio before the caller's first buffer (a greeting) starts the
 * recording's right channel at its time relative to the caller. */
GST_START_TEST (test_bot_first)
{
  Fixture f = {0};

  fixture_init (&f, TRUE);
  push_bot (&f, MS (0), SAMPLES (100));
  push_caller (&f, 0, SAMPLES (100), MS (50));
  push_caller (&f, SAMPLES (100), SAMPLES (100), MS (50));
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (200));
  check_left_is_caller (&f, 0, SAMPLES (200), 0);
  /* 50 ms before the caller's start: placed at its start. */
  check_range (f.right, 0, SAMPLES (100), BOT_VALUE);
  check_range (f.right, SAMPLES (100), SAMPLES (200), 0);
  fixture_clear (&f);
}

GST_END_TEST;

/* A hole in the caller's audio is silence on the left, with the bot's
 * audio at its time; one longer than max-gap is closed up, with a
 * warning. */
GST_START_TEST (test_caller_gaps)
{
  Fixture f = {0};
  GstMessage *msg;

  fixture_init (&f, TRUE);
  g_object_set (f.element, "max-gap", (guint64) GST_SECOND, NULL);
  push_caller (&f, 0, SAMPLES (100), 0);
  push_bot (&f, MS (150), SAMPLES (50));
  /* 200 ms missing */
  push_caller (&f, SAMPLES (100), SAMPLES (100), MS (200));
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (400));
  check_left_is_caller (&f, 0, SAMPLES (100), 0);
  check_range (f.left, SAMPLES (100), SAMPLES (300), 0);
  check_left_is_caller (&f, SAMPLES (300), SAMPLES (400), SAMPLES (100));
  check_range (f.right, SAMPLES (150), SAMPLES (200), BOT_VALUE);
  fail_unless_equals_int (count_value (f.right, BOT_VALUE), SAMPLES (50));
  fail_if (pop_message (&f, GST_MESSAGE_WARNING) != NULL);

  /* 5 s missing: closed up */
  push_caller (&f, SAMPLES (200), SAMPLES (100), MS (5200));
  push_caller (&f, SAMPLES (300), SAMPLES (100), MS (5200));
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (600));
  check_left_is_caller (&f, SAMPLES (400), SAMPLES (600), SAMPLES (200));
  msg = pop_message (&f, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning for the closed hole");
  gst_message_unref (msg);
  fixture_clear (&f);
}

GST_END_TEST;

/* The caller's audio stalls while the bot talks: past max-backlog the bot
 * is written against silence, with a warning, and the caller's late audio
 * is appended, not dropped. */
GST_START_TEST (test_backlog)
{
  Fixture f = {0};
  GstMessage *msg;

  fixture_init (&f, TRUE);
  g_object_set (f.element, "max-backlog", (guint64) GST_SECOND, NULL);
  push_caller (&f, 0, SAMPLES (100), 0);
  fail_unless_equals_int (push_bot (&f, MS (100), SAMPLES (800)), GST_FLOW_OK);
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (100));
  fail_unless_equals_int (push_bot (&f, MS (900), SAMPLES (700)), GST_FLOW_OK);
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (1600));
  check_range (f.left, SAMPLES (100), SAMPLES (1600), 0);
  check_range (f.right, SAMPLES (100), SAMPLES (1600), BOT_VALUE);
  msg = pop_message (&f, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning for the stalled caller");
  gst_message_unref (msg);

  /* The caller resumes with its own (old) timestamps. */
  push_caller (&f, SAMPLES (100), SAMPLES (100), 0);
  push_caller (&f, SAMPLES (200), SAMPLES (100), 0);
  pull (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (1800));
  check_left_is_caller (&f, SAMPLES (1600), SAMPLES (1800), SAMPLES (100));
  fixture_clear (&f);
}

GST_END_TEST;

/* Without a bot pad linked, the caller's EOS ends the recording. */
GST_START_TEST (test_unlinked_bot)
{
  Fixture f = {0};

  fixture_init (&f, FALSE);
  push_caller (&f, 0, SAMPLES (100), 0);
  push_caller (&f, SAMPLES (100), SAMPLES (100), 0);
  send_eos (f.caller);
  pull_to_eos (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (200));
  check_left_is_caller (&f, 0, SAMPLES (200), 0);
  check_range (f.right, 0, SAMPLES (200), 0);
  fixture_clear (&f);
}

GST_END_TEST;

/* A bot at another rate is refused with an error naming the fix. */
GST_START_TEST (test_rate_mismatch)
{
  Fixture f = {0};
  GstMessage *msg;
  GError *error = NULL;
  gchar *debug = NULL;
  GstCaps *caps;

  fixture_init (&f, FALSE);
  push_caller (&f, 0, SAMPLES (100), 0);
  f.bot = gst_harness_new_with_element (f.element, "bot", NULL);
  caps = gst_caps_from_string ("audio/x-raw,format=S16LE,layout=interleaved,"
                               "channels=1,rate=16000");
  fail_unless (
      gst_pad_push_event (f.bot->srcpad, gst_event_new_stream_start ("bot")));
  gst_pad_push_event (f.bot->srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  msg = pop_message (&f, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &error, &debug);
  gst_message_unref (msg);
  fail_unless (strstr (debug, "16000 Hz") && strstr (debug, "audioresample"),
      "%s", debug);
  g_error_free (error);
  g_free (debug);
  fixture_clear (&f);
}

GST_END_TEST;

/* Garbage timestamps (none at all) and odd sizes: contiguous, no crash. */
GST_START_TEST (test_untimed)
{
  Fixture f = {0};
  GstBuffer *buf;

  fixture_init (&f, TRUE);
  buf = mono_buffer (0, SAMPLES (100), 0, GST_CLOCK_TIME_NONE);
  fail_unless_equals_int (gst_harness_push (f.caller, buf), GST_FLOW_OK);
  buf = mono_buffer (0, 1, BOT_VALUE, GST_CLOCK_TIME_NONE);
  gst_buffer_set_size (buf, 1);
  fail_unless_equals_int (gst_harness_push (f.bot, buf), GST_FLOW_OK);
  fail_unless_equals_int (push_bot (&f, GST_CLOCK_TIME_NONE, SAMPLES (50)),
      GST_FLOW_OK);
  buf = mono_buffer (SAMPLES (100), SAMPLES (100), 0, GST_CLOCK_TIME_NONE);
  fail_unless_equals_int (gst_harness_push (f.caller, buf), GST_FLOW_OK);
  send_eos (f.caller);
  send_eos (f.bot);
  pull_to_eos (&f);
  fail_unless_equals_int (f.left->len, SAMPLES (200));
  check_left_is_caller (&f, 0, SAMPLES (200), 0);
  fail_unless_equals_int (count_value (f.right, BOT_VALUE), SAMPLES (50));
  fixture_clear (&f);
}

GST_END_TEST;

/* The README's launch line: a valid stereo WAV of the caller's length. */
GST_START_TEST (test_launch_line)
{
  g_autofree gchar *dir = g_dir_make_tmp ("callinterleave-XXXXXX", NULL);
  g_autofree gchar *path = g_build_filename (dir, "call.wav", NULL);
  g_autofree gchar *desc =
      g_strdup_printf ("callinterleave name=rec ! "
                       "wavenc ! filesink location=%s "
                       "audiotestsrc num-buffers=100 ! "
                       "audio/x-raw,format=S16LE,rate=8000,channels=1 ! "
                       "rec.caller "
                       "audiotestsrc num-buffers=50 freq=880 ! "
                       "audio/x-raw,format=S16LE,rate=8000,channels=1 ! "
                       "rec.bot",
          path);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstMessage *msg;
  gchar *wav = NULL;
  gsize len = 0;
  guint32 data_size;

  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline), 10 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  fail_unless (g_file_get_contents (path, &wav, &len, NULL));
  fail_unless (len >= 44 && memcmp (wav + 36, "data", 4) == 0);
  /* PCM, 2 channels, 8000 Hz; 100 buffers of 1024 samples, 4 bytes a
   * frame */
  fail_unless_equals_int (GST_READ_UINT16_LE (wav + 20), 1);
  fail_unless_equals_int (GST_READ_UINT16_LE (wav + 22), 2);
  fail_unless_equals_int (GST_READ_UINT32_LE (wav + 24), 8000);
  data_size = GST_READ_UINT32_LE (wav + 40);
  fail_unless_equals_int (data_size, 100 * 1024 * 4);
  fail_unless (len >= 44 + data_size);
  g_free (wav);
  g_unlink (path);
  g_rmdir (dir);
}

GST_END_TEST;

static Suite *
callinterleave_suite (void)
{
  Suite *s = suite_create ("callinterleave");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_aligned);
  tcase_add_test (tc, test_late_bot);
  tcase_add_test (tc, test_bot_after_caller_eos);
  tcase_add_test (tc, test_bot_first);
  tcase_add_test (tc, test_caller_gaps);
  tcase_add_test (tc, test_backlog);
  tcase_add_test (tc, test_unlinked_bot);
  tcase_add_test (tc, test_rate_mismatch);
  tcase_add_test (tc, test_untimed);
  tcase_add_test (tc, test_launch_line);
  return s;
}

GST_CHECK_MAIN (callinterleave);

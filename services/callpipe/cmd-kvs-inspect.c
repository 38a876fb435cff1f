/* callpipe kvs-inspect — what a KVS GetMedia capture or a live stream
 * holds: its fragments (number, timestamps, contact, continuation token,
 * lag), the audio tracks kvsdemux exposes and how long each is. Runs
 * filesrc (or kvssrc, with --stream-arn) ! kvsdemux with a fakesink per
 * pad and prints the element's kvs-fragment messages. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include <gst/gst.h>
#include <stdio.h>
#include <string.h>

typedef struct
{
  gchar *pad_name;
  gchar *caps; /* written on the streaming thread, read */
  GstClockTime end; /* once the pipeline has stopped */
} Track;

typedef struct
{
  GMutex lock;
  GstElement *pipeline;
  GPtrArray *tracks; /* Track, in pad-added order, under lock */
  guint n_fragments;
  guint max_fragments; /* 0: no limit */
  gboolean failed;
} Inspect;

static void
track_free (Track *t)
{
  g_free (t->pad_name);
  g_free (t->caps);
  g_free (t);
}

static GstPadProbeReturn
watch_track (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Track *t = user_data;

  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);

    if (GST_BUFFER_PTS_IS_VALID (buf) && GST_BUFFER_DURATION_IS_VALID (buf))
      t->end = GST_BUFFER_PTS (buf) + GST_BUFFER_DURATION (buf);
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info))
      == GST_EVENT_CAPS) {
    GstCaps *caps;

    gst_event_parse_caps (GST_PAD_PROBE_INFO_EVENT (info), &caps);
    g_free (t->caps);
    t->caps = gst_caps_to_string (caps);
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info))
      == GST_EVENT_GAP) {
    GstClockTime pts, duration;

    gst_event_parse_gap (GST_PAD_PROBE_INFO_EVENT (info), &pts, &duration);
    if (GST_CLOCK_TIME_IS_VALID (duration))
      t->end = pts + duration;
  }
  return GST_PAD_PROBE_OK;
}

static void
pad_added (GstElement *demux, GstPad *pad, Inspect *in)
{
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  Track *t = g_new0 (Track, 1);
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstPad *sinkpad;

  t->pad_name = gst_pad_get_name (pad);
  t->caps = caps ? gst_caps_to_string (caps) : g_strdup ("(none)");
  gst_clear_caps (&caps);
  g_mutex_lock (&in->lock);
  g_ptr_array_add (in->tracks, t);
  g_mutex_unlock (&in->lock);
  gst_pad_add_probe (pad,
      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      watch_track, t, NULL);

  g_object_set (sink, "sync", FALSE, NULL);
  gst_bin_add (GST_BIN (in->pipeline), sink);
  gst_element_sync_state_with_parent (sink);
  sinkpad = gst_element_get_static_pad (sink, "sink");
  gst_pad_link (pad, sinkpad);
  gst_object_unref (sinkpad);
}

/* A stream without audio tracks gives kvsdemux no pad and the pipeline no
 * sink to post EOS: the end of the input is seen on the demuxer's sink. */
static GstPadProbeReturn
watch_eos (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstElement *demux = GST_PAD_PARENT (pad);

  if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS
      && demux->numsrcpads == 0)
    gst_element_post_message (demux,
        gst_message_new_application (GST_OBJECT (demux),
            gst_structure_new_empty ("kvs-inspect-eos")));
  return GST_PAD_PROBE_OK;
}

static gchar *
format_ms (const GstStructure *s, const gchar *field)
{
  guint64 ms;
  g_autoptr (GDateTime) dt = NULL;
  g_autofree gchar *date = NULL;

  if (!gst_structure_get_uint64 (s, field, &ms))
    return g_strdup ("-");
  dt = g_date_time_new_from_unix_utc ((gint64) (ms / 1000));
  if (dt == NULL)
    return g_strdup_printf ("%" G_GUINT64_FORMAT, ms);
  date = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
  return g_strdup_printf ("%s.%03uZ (%" G_GUINT64_FORMAT ")", date,
      (guint) (ms % 1000), ms);
}

static void
print_fragment (Inspect *in, const GstStructure *s)
{
  g_autofree gchar *producer = format_ms (s, "producer-timestamp");
  g_autofree gchar *server = format_ms (s, "server-timestamp");
  const gchar *error = gst_structure_get_string (s, "error-code");
  gboolean truncated = FALSE;
  guint64 behind;

  if (in->max_fragments > 0 && in->n_fragments >= in->max_fragments)
    return;
  gst_structure_get_boolean (s, "truncated", &truncated);
  printf ("fragment %u\n", ++in->n_fragments);
  printf ("  number             %s\n",
      GST_STR_NULL (gst_structure_get_string (s, "fragment-number")));
  printf ("  producer-timestamp %s\n", producer);
  printf ("  server-timestamp   %s\n", server);
  printf ("  contact-id         %s\n",
      GST_STR_NULL (gst_structure_get_string (s, "contact-id")));
  printf ("  continuation-token %s\n",
      GST_STR_NULL (gst_structure_get_string (s, "continuation-token")));
  if (gst_structure_get_uint64 (s, "millis-behind-now", &behind))
    printf ("  millis-behind-now  %" G_GUINT64_FORMAT "\n", behind);
  else
    printf ("  millis-behind-now  -\n");
  if (error)
    printf ("  error              %s\n", error);
  if (truncated)
    printf ("  truncated          yes\n");
}

/* Returns TRUE when the run is over. */
static gboolean
handle_message (Inspect *in, GstMessage *msg, const gchar *file)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *debug = NULL;
  const GstStructure *s = gst_message_get_structure (msg);

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:
      if (!gst_structure_has_name (s, "kvs-fragment"))
        return FALSE;
      print_fragment (in, s);
      return in->max_fragments > 0 && in->n_fragments >= in->max_fragments;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &err, &debug);
      fprintf (stderr, "callpipe kvs-inspect: %s: warning: %s\n", file,
          err->message);
      return FALSE;
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &err, &debug);
      if (!in->failed)
        fprintf (stderr, "callpipe kvs-inspect: %s: %s\n", file, err->message);
      in->failed = TRUE;
      return TRUE;
    case GST_MESSAGE_EOS:
      return TRUE;
    case GST_MESSAGE_APPLICATION:
      return gst_structure_has_name (s, "kvs-inspect-eos");
    default:
      return FALSE;
  }
}

/* Called once the pipeline has stopped: no probe runs any more. */
static void
print_tracks (Inspect *in)
{
  guint i;

  printf ("tracks\n");
  if (in->tracks->len == 0)
    printf ("  (no audio track)\n");
  for (i = 0; i < in->tracks->len; i++) {
    const Track *t = g_ptr_array_index (in->tracks, i);

    printf ("  %-14s %s\n", t->pad_name, t->caps);
    printf ("  %-14s duration %" GST_TIME_FORMAT "\n", "",
        GST_TIME_ARGS (t->end));
  }
}

/* Runs @src ! kvsdemux and prints what goes through; @label names the
 * input in messages. Takes @src. */
static int
inspect (GstElement *src, const gchar *label, guint max_fragments)
{
  Inspect in = {0};
  GstElement *demux;
  GstBus *bus;
  GstPad *sinkpad;
  GstMessage *msg;
  gboolean done = FALSE;

  demux = gst_element_factory_make ("kvsdemux", NULL);
  if (demux == NULL) {
    fprintf (stderr,
        "callpipe kvs-inspect: the kvsdemux element is not "
        "available (GST_PLUGIN_PATH?)\n");
    gst_object_unref (src);
    return 1;
  }

  g_mutex_init (&in.lock);
  in.tracks = g_ptr_array_new_with_free_func ((GDestroyNotify) track_free);
  in.max_fragments = max_fragments;
  in.pipeline = gst_pipeline_new ("kvs-inspect");
  /* Every contact the input holds, not just the first. */
  g_object_set (demux, "stop-on-contact-change", FALSE, NULL);
  gst_bin_add_many (GST_BIN (in.pipeline), src, demux, NULL);
  gst_element_link (src, demux);
  g_signal_connect (demux, "pad-added", G_CALLBACK (pad_added), &in);
  sinkpad = gst_element_get_static_pad (demux, "sink");
  gst_pad_add_probe (sinkpad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, watch_eos,
      NULL, NULL);
  gst_object_unref (sinkpad);

  bus = gst_pipeline_get_bus (GST_PIPELINE (in.pipeline));
  gst_element_set_state (in.pipeline, GST_STATE_PLAYING);
  while (!done) {
    msg = gst_bus_timed_pop (bus, GST_CLOCK_TIME_NONE);
    done = handle_message (&in, msg, label);
    gst_message_unref (msg);
  }
  /* Stopping waits for the streaming thread, so whatever it posted while
   * draining the last fragment is on the bus now. */
  gst_element_set_state (in.pipeline, GST_STATE_READY);
  while ((msg = gst_bus_pop (bus)) != NULL) {
    handle_message (&in, msg, label);
    gst_message_unref (msg);
  }
  if (!in.failed)
    print_tracks (&in);
  gst_element_set_state (in.pipeline, GST_STATE_NULL);

  gst_object_unref (bus);
  gst_object_unref (in.pipeline);
  g_ptr_array_unref (in.tracks);
  g_mutex_clear (&in.lock);
  return in.failed ? 1 : 0;
}

static int
inspect_file (const gchar *file)
{
  GstElement *src;

  if (!g_file_test (file, G_FILE_TEST_IS_REGULAR)) {
    fprintf (stderr, "callpipe kvs-inspect: %s: no such file\n", file);
    return 1;
  }
  src = gst_element_factory_make ("filesrc", NULL);
  if (src == NULL) {
    fprintf (stderr,
        "callpipe kvs-inspect: the filesrc element is not "
        "available\n");
    return 1;
  }
  g_object_set (src, "location", file, NULL);
  return inspect (src, file, 0);
}

typedef struct
{
  gchar *stream_arn;
  gchar *region;
  gchar *endpoint;
  gchar *start_selector;
  gchar *start_fragment;
  gchar *continuation_token;
  gint64 start_timestamp;
  gint idle_timeout;
  gint max_fragments;
} StreamOptions;

static gboolean
set_start_selector (GstElement *src, const gchar *nick)
{
  GParamSpec *pspec =
      g_object_class_find_property (G_OBJECT_GET_CLASS (src), "start-selector");
  GEnumValue *value =
      g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (pspec)->enum_class, nick);

  if (value == NULL)
    return FALSE;
  g_object_set (src, "start-selector", value->value, NULL);
  return TRUE;
}

/* kvssrc with the options; credentials come from the AWS SDK chain. */
static int
inspect_stream (const StreamOptions *o)
{
  GstElement *src = gst_element_factory_make ("kvssrc", NULL);

  if (src == NULL) {
    fprintf (stderr,
        "callpipe kvs-inspect: the kvssrc element is not "
        "available (GST_PLUGIN_PATH?)\n");
    return 1;
  }
  g_object_set (src, "stream-arn", o->stream_arn, "region", o->region,
      "endpoint", o->endpoint, "start-fragment", o->start_fragment,
      "continuation-token", o->continuation_token, NULL);
  if (o->start_timestamp > 0)
    g_object_set (src, "start-timestamp", (guint64) o->start_timestamp, NULL);
  if (o->idle_timeout >= 0)
    g_object_set (src, "idle-timeout", (guint) o->idle_timeout, NULL);
  if (o->start_selector && !set_start_selector (src, o->start_selector)) {
    fprintf (stderr,
        "callpipe kvs-inspect: unknown start selector '%s' "
        "(now, earliest, fragment-number, producer-timestamp, "
        "server-timestamp, continuation-token)\n",
        o->start_selector);
    gst_object_unref (src);
    return 2;
  }
  return inspect (src, o->stream_arn, (guint) MAX (o->max_fragments, 0));
}

#define USAGE                                                  \
  "usage: callpipe kvs-inspect FILE\n"                         \
  "       callpipe kvs-inspect --stream-arn ARN [--region R] " \
  "[--endpoint URL]\n"                                         \
  "           [--start-selector S] [--start-fragment N] "      \
  "[--start-timestamp MS]\n"                                   \
  "           [--continuation-token T] [--idle-timeout MS] "   \
  "[--max-fragments N]\n"

int
cp_cli_cmd_kvs_inspect (int argc, char **argv)
{
  StreamOptions o = {0};
  GOptionEntry entries[] = {
      {"stream-arn", 0, 0, G_OPTION_ARG_STRING, &o.stream_arn,
          "Read this Kinesis video stream live (kvssrc) instead of a file",
          "ARN"},
      {"region", 0, 0, G_OPTION_ARG_STRING, &o.region,
          "AWS region (default: AWS_REGION, the profile)", "R"},
      {"endpoint", 0, 0, G_OPTION_ARG_STRING, &o.endpoint,
          "Kinesis Video Streams endpoint URL", "URL"},
      {"start-selector", 0, 0, G_OPTION_ARG_STRING, &o.start_selector,
          "now (default), earliest, fragment-number, producer-timestamp, "
          "server-timestamp or continuation-token",
          "S"},
      {"start-fragment", 0, 0, G_OPTION_ARG_STRING, &o.start_fragment,
          "Start after this fragment number (fragment-number)", "N"},
      {"start-timestamp", 0, 0, G_OPTION_ARG_INT64, &o.start_timestamp,
          "Start at this time, ms since the epoch (*-timestamp)", "MS"},
      {"continuation-token", 0, 0, G_OPTION_ARG_STRING, &o.continuation_token,
          "Start at this continuation token", "T"},
      {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &o.idle_timeout,
          "End when the stream has sent nothing for this long (ms)", "MS"},
      {"max-fragments", 0, 0, G_OPTION_ARG_INT, &o.max_fragments,
          "Stop after this many fragments (default: until the stream ends)",
          "N"},
      {NULL},
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("FILE");
  g_autoptr (GError) error = NULL;
  int ret;

  o.idle_timeout = -1;
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx,
      "Prints the fragments of a Kinesis Video Streams GetMedia capture or "
      "live stream\n(number, timestamps, contact, continuation token, "
      "millis-behind-now) and the\naudio tracks kvsdemux finds in it (pad, "
      "caps, duration).");
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "callpipe kvs-inspect: %s\n" USAGE, error->message);
    ret = 2;
  } else if (o.stream_arn ? argc != 1 : argc != 2) {
    fprintf (stderr, USAGE);
    ret = 2;
  } else {
    gst_init (NULL, NULL);
    ret = o.stream_arn ? inspect_stream (&o) : inspect_file (argv[1]);
  }
  g_free (o.stream_arn);
  g_free (o.region);
  g_free (o.endpoint);
  g_free (o.start_selector);
  g_free (o.start_fragment);
  g_free (o.continuation_token);
  return ret;
}

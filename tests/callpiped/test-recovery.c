/* What start-up recovery is made of: WAV recordings whose header a crash
 * left unfinished (cp_storage_repair_wav, checked against GStreamer's own
 * wavenc and wavparse), the calls whose transcript never reached storage
 * and the transcript document (cp-store). */
#include "cp-storage.h"
#include "cp-store.h"
#include "test-util.h"

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* What wavenc writes before EOS: sizes it rewrites at EOS. */
#define PLACEHOLDER_RIFF 0x7fff0024
#define PLACEHOLDER_DATA 0x7fff0000

typedef struct
{
  gchar *dir;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("callpiped-recovery-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  cp_test_remove_tree (f->dir);
  g_free (f->dir);
}

static void
put_le (GByteArray *a, guint32 v, guint n)
{
  guint8 b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};

  g_byte_array_append (a, b, n);
}

static guint32
get_le32 (const guint8 *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32) p[3] << 24);
}

/* A 16-bit PCM WAV head; with @tags, a LIST chunk before the data. */
static GByteArray *
wav_head (guint channels, guint rate, guint32 riff, guint32 data_size,
    gboolean tags)
{
  GByteArray *a = g_byte_array_new ();

  g_byte_array_append (a, (const guint8 *) "RIFF", 4);
  put_le (a, riff, 4);
  g_byte_array_append (a, (const guint8 *) "WAVEfmt ", 8);
  put_le (a, 16, 4);
  put_le (a, 1, 2);
  put_le (a, channels, 2);
  put_le (a, rate, 4);
  put_le (a, rate * 2 * channels, 4);
  put_le (a, 2 * channels, 2);
  put_le (a, 16, 2);
  if (tags) {
    g_byte_array_append (a, (const guint8 *) "LIST", 4);
    put_le (a, 16, 4);
    g_byte_array_append (a, (const guint8 *) "INFOISFT", 8);
    put_le (a, 4, 4);
    g_byte_array_append (a, (const guint8 *) "cp1", 4);
  }
  g_byte_array_append (a, (const guint8 *) "data", 4);
  put_le (a, data_size, 4);
  return a;
}

/* @head followed by @n bytes of samples (a counting pattern). */
static gchar *
write_wav (Fixture *f, const gchar *name, GByteArray *head, gsize n)
{
  gchar *path = g_build_filename (f->dir, name, NULL);
  gsize i;

  for (i = 0; i < n; i++) {
    guint8 b = i & 0xff;

    g_byte_array_append (head, &b, 1);
  }
  g_assert_true (
      g_file_set_contents (path, (const gchar *) head->data, head->len, NULL));
  g_byte_array_unref (head);
  return path;
}

static GBytes *
read_bytes (const gchar *path)
{
  gchar *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_bytes_new_take (data, len);
}

/* The header agrees with the file: RIFF size, and the data chunk (at
 * @data_at) runs to the end. */
static void
assert_final (const gchar *path, gsize data_at, gsize data_len)
{
  g_autoptr (GBytes) b = read_bytes (path);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (b, &len);

  g_assert_cmpuint (len, ==, data_at + data_len);
  g_assert_cmpuint (get_le32 (d + 4), ==, len - 8);
  g_assert_cmpmem (d + data_at - 8, 4, "data", 4);
  g_assert_cmpuint (get_le32 (d + data_at - 4), ==, data_len);
  for (gsize i = 0; i < data_len; i++)
    g_assert_cmpuint (d[data_at + i], ==, i & 0xff);
}

static void
test_repair_placeholder (Fixture *f, gconstpointer data)
{
  g_autofree gchar *path = write_wav (f, "a.wav",
      wav_head (2, 8000, PLACEHOLDER_RIFF, PLACEHOLDER_DATA, FALSE), 8000);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) repaired = NULL;
  g_autoptr (GBytes) again = NULL;
  CpStorageWav wav;
  gboolean ok;

  g_assert_true (cp_storage_check_wav (path, &wav, &error));
  g_assert_no_error (error);
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_REPAIRED);

  ok = cp_storage_repair_wav (path, &wav, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_REPAIRED);
  g_assert_cmpuint (wav.rate, ==, 8000);
  g_assert_cmpuint (wav.frames, ==, 2000);
  g_assert_cmpuint (wav.cut_bytes, ==, 0);
  assert_final (path, 44, 8000);

  /* Repaired is final: a second start leaves it alone. */
  repaired = read_bytes (path);
  g_assert_true (cp_storage_check_wav (path, &wav, &error));
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_COMPLETE);
  g_assert_cmpuint (wav.frames, ==, 2000);
  g_assert_true (cp_storage_repair_wav (path, &wav, &error));
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_COMPLETE);
  again = read_bytes (path);
  g_assert_true (g_bytes_equal (repaired, again));
}

/* The crash came mid-frame: the partial frame goes. */
static void
test_repair_partial_frame (Fixture *f, gconstpointer data)
{
  g_autofree gchar *path = write_wav (f, "b.wav",
      wav_head (2, 8000, PLACEHOLDER_RIFF, PLACEHOLDER_DATA, FALSE), 8003);
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;
  gboolean ok;

  ok = cp_storage_repair_wav (path, &wav, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpuint (wav.frames, ==, 2000);
  g_assert_cmpuint (wav.cut_bytes, ==, 3);
  assert_final (path, 44, 8000);
}

/* Chunks before the data (tags) are kept; the data chunk is found after
 * them. */
static void
test_repair_after_tags (Fixture *f, gconstpointer data)
{
  g_autofree gchar *path = write_wav (f, "c.wav",
      wav_head (1, 16000, PLACEHOLDER_RIFF, PLACEHOLDER_DATA, TRUE), 3200);
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;
  gboolean ok;

  ok = cp_storage_repair_wav (path, &wav, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpuint (wav.rate, ==, 16000);
  g_assert_cmpuint (wav.frames, ==, 1600);
  assert_final (path, 44 + 24, 3200);
}

/* Only the header was written: a valid WAV of no samples. */
static void
test_repair_empty (Fixture *f, gconstpointer data)
{
  g_autofree gchar *path = write_wav (f, "d.wav",
      wav_head (2, 8000, PLACEHOLDER_RIFF, PLACEHOLDER_DATA, FALSE), 0);
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;

  g_assert_true (cp_storage_repair_wav (path, &wav, &error));
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_REPAIRED);
  g_assert_cmpuint (wav.frames, ==, 0);
  assert_final (path, 44, 0);
}

/* A finished file, with a chunk after the data as wavenc may append at
 * EOS, is not touched. */
static void
test_complete_untouched (Fixture *f, gconstpointer data)
{
  GByteArray *head = wav_head (1, 8000, 36 + 400 + 12, 400, FALSE);
  g_autofree gchar *path = NULL;
  g_autoptr (GBytes) before = NULL;
  g_autoptr (GBytes) after = NULL;
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;
  gboolean ok;
  guint8 trailer[12] = {'s', 'm', 'p', 'l', 4, 0, 0, 0, 0, 0, 0, 0};
  gsize len = 0;

  path = write_wav (f, "e.wav", head, 400);
  before = read_bytes (path);
  /* append the trailing chunk */
  {
    GByteArray *all = g_byte_array_new ();
    const guint8 *d = g_bytes_get_data (before, &len);

    g_byte_array_append (all, d, len);
    g_byte_array_append (all, trailer, sizeof (trailer));
    g_assert_true (
        g_file_set_contents (path, (const gchar *) all->data, all->len, NULL));
    g_byte_array_unref (all);
  }
  g_clear_pointer (&before, g_bytes_unref);
  before = read_bytes (path);
  ok = cp_storage_repair_wav (path, &wav, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_COMPLETE);
  g_assert_cmpuint (wav.frames, ==, 200);
  after = read_bytes (path);
  g_assert_true (g_bytes_equal (before, after));
}

static void
assert_refused (Fixture *f, const gchar *name, const guint8 *data, gsize len,
    const gchar *needle)
{
  g_autofree gchar *path = g_build_filename (f->dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) after = NULL;
  CpStorageWav wav;

  g_assert_true (g_file_set_contents (path, (const gchar *) data, len, NULL));
  g_assert_false (cp_storage_repair_wav (path, &wav, &error));
  g_assert_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("'%s' does not mention '%s'", error->message, needle);
  /* What is not understood is left as it was. */
  after = read_bytes (path);
  g_assert_cmpmem (g_bytes_get_data (after, NULL), g_bytes_get_size (after),
      data, len);
}

static void
test_not_repairable (Fixture *f, gconstpointer data)
{
  g_autoptr (GByteArray) head =
      wav_head (2, 8000, PLACEHOLDER_RIFF, PLACEHOLDER_DATA, FALSE);
  g_autoptr (GByteArray) no_align =
      wav_head (2, 8000, PLACEHOLDER_RIFF, PLACEHOLDER_DATA, FALSE);
  g_autofree gchar *missing = g_build_filename (f->dir, "none.wav", NULL);
  g_autoptr (GError) error = NULL;
  CpStorageWav wav;

  assert_refused (f, "empty.wav", (const guint8 *) "", 0, "0 bytes");
  assert_refused (f, "text.wav", (const guint8 *) "not a wave file at all", 22,
      "no WAV header");
  /* cut inside the fmt chunk */
  assert_refused (f, "short.wav", head->data, 30, "no WAV header");
  /* a data chunk before any fmt */
  assert_refused (f, "nofmt.wav",
      (const guint8 *) "RIFF\x24\0\xff\x7fWAVEdata\0\0\xff\x7f", 20,
      "no WAV header");
  /* block align 0 cannot be cut into frames */
  no_align->data[32] = no_align->data[33] = 0;
  assert_refused (f, "align.wav", no_align->data, no_align->len,
      "no WAV header");

  g_assert_false (cp_storage_repair_wav (missing, &wav, &error));
  g_assert_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_NOT_FOUND);
}

static gsize
file_size (const gchar *path)
{
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (gsize) st.st_size : 0;
}

/* wavenc's own output, stopped without EOS as a crash stops it, is
 * repaired into a file wavparse reads to the last sample. */
static void
test_repair_wavenc (Fixture *f, gconstpointer data)
{
  g_autofree gchar *path = g_build_filename (f->dir, "wavenc.wav", NULL);
  g_autofree gchar *launch = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) writer = NULL;
  g_autoptr (GstElement) reader = NULL;
  g_autoptr (GstElement) src = NULL;
  g_autoptr (GstElement) sink = NULL;
  GstSample *sample;
  CpStorageWav wav;
  gboolean ok;
  gsize pcm = 0;
  gint64 deadline;
  guint i;

  launch = g_strdup_printf ("appsrc name=src format=time "
                            "caps=audio/x-raw,format=S16LE,rate=8000,"
                            "channels=2,layout=interleaved "
                            "! wavenc ! filesink location=%s buffer-mode=2",
      path);
  writer = gst_parse_launch (launch, &error);
  g_assert_no_error (error);
  src = gst_bin_get_by_name (GST_BIN (writer), "src");
  g_assert_cmpint (gst_element_set_state (writer, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  for (i = 0; i < 10; i++) {
    GstBuffer *buf = gst_buffer_new_allocate (NULL, 3200, NULL);
    GstFlowReturn ret;

    gst_buffer_memset (buf, 0, i, 3200);
    GST_BUFFER_PTS (buf) = i * 100 * GST_MSECOND;
    GST_BUFFER_DURATION (buf) = 100 * GST_MSECOND;
    g_signal_emit_by_name (src, "push-buffer", buf, &ret);
    gst_buffer_unref (buf);
    g_assert_cmpint (ret, ==, GST_FLOW_OK);
  }
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (file_size (path) < 44 + 32000 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  /* No EOS: the header keeps wavenc's placeholders. */
  gst_element_set_state (writer, GST_STATE_NULL);
  g_assert_cmpuint (file_size (path), ==, 44 + 32000);

  ok = cp_storage_repair_wav (path, &wav, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpint (wav.state, ==, CP_STORAGE_WAV_REPAIRED);
  g_assert_cmpuint (wav.frames, ==, 8000);

  g_clear_pointer (&launch, g_free);
  launch = g_strdup_printf ("filesrc location=%s ! wavparse "
                            "! appsink name=sink sync=false",
      path);
  reader = gst_parse_launch (launch, &error);
  g_assert_no_error (error);
  sink = gst_bin_get_by_name (GST_BIN (reader), "sink");
  g_assert_cmpint (gst_element_set_state (reader, GST_STATE_PLAYING), !=,
      GST_STATE_CHANGE_FAILURE);
  for (;;) {
    g_signal_emit_by_name (sink, "pull-sample", &sample);
    if (sample == NULL)
      break;
    pcm += gst_buffer_get_size (gst_sample_get_buffer (sample));
    gst_sample_unref (sample);
  }
  gst_element_set_state (reader, GST_STATE_NULL);
  g_assert_cmpuint (pcm, ==, 32000);
}

/* ---- cp-store ---- */

static void
insert (CpStore *store, const gchar *id, const gchar *kind, const gchar *state,
    const gchar *transcript, gint64 started)
{
  g_autoptr (GError) error = NULL;
  CpSessionRecord r = {0};

  r.id = (gchar *) id;
  r.kind = (gchar *) kind;
  r.state = (gchar *) state;
  r.started_at = started;
  g_assert_true (cp_store_insert (store, &r, &error));
  g_assert_no_error (error);
  r.transcript_path = (gchar *) transcript;
  g_assert_true (cp_store_update (store, &r, &error));
  g_assert_no_error (error);
}

static void
test_untranscribed (Fixture *f, gconstpointer data)
{
  g_autofree gchar *db = g_build_filename (f->dir, "callpiped.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CpStore) store = cp_store_open (db, &error);
  g_autoptr (GPtrArray) rows = NULL;

  g_assert_no_error (error);
  insert (store, "ended-old", "call", "ended", NULL, 1000);
  insert (store, "failed", "call", "failed", NULL, 3000);
  insert (store, "ended-new", "call", "ended", NULL, 4000);
  insert (store, "stored", "call", "ended", "/s/transcripts/stored.json", 5000);
  insert (store, "live", "call", "running", NULL, 6000);
  insert (store, "turn", "turn", "ended", NULL, 7000);
  insert (store, "browser", "browser", "ended", NULL, 8000);

  rows = cp_store_list_untranscribed (store, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 3);
  g_assert_cmpstr (((CpSessionRecord *) rows->pdata[0])->id, ==, "ended-new");
  g_assert_cmpstr (((CpSessionRecord *) rows->pdata[1])->id, ==, "failed");
  g_assert_cmpstr (((CpSessionRecord *) rows->pdata[2])->id, ==, "ended-old");
  g_clear_pointer (&rows, g_ptr_array_unref);
  rows = cp_store_list_untranscribed (store, 1, &error);
  g_assert_cmpuint (rows->len, ==, 1);
}

static JsonObject *
parse_object (const gchar *text, JsonParser *parser)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_transcript_document (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonParser) empty_parser = json_parser_new ();
  g_autofree gchar *doc = NULL;
  g_autofree gchar *empty = NULL;
  CpSessionRecord r = {0};
  JsonObject *o;
  JsonArray *t;

  r.id = (gchar *) "c1";
  r.contact_id = (gchar *) "contact-1";
  r.state = (gchar *) "failed";
  r.reason = (gchar *) "interrupted by restart";
  r.started_at = 10 * G_USEC_PER_SEC;
  r.ended_at = (gint64) 22500 * 1000;
  r.conversation_json = (gchar *) "{\"transcript\":[{\"role\":\"caller\","
                                  "\"text\":\"hello\",\"offset\":1.5}],"
                                  "\"intents\":[{\"intent\":\"end\","
                                  "\"reason\":\"bye\",\"offset\":2}]}";
  doc = cp_session_record_transcript (&r);
  o = parse_object (doc, parser);
  g_assert_cmpstr (json_object_get_string_member (o, "sessionId"), ==, "c1");
  g_assert_cmpstr (json_object_get_string_member (o, "contactId"), ==,
      "contact-1");
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "failed");
  g_assert_cmpstr (json_object_get_string_member (o, "reason"), ==,
      "interrupted by restart");
  g_assert_cmpfloat (json_object_get_double_member (o, "duration"), ==, 12.5);
  t = json_object_get_array_member (o, "transcript");
  g_assert_cmpuint (json_array_get_length (t), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (
                       json_array_get_object_element (t, 0), "text"),
      ==, "hello");
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (o, "intents")),
      ==, 1);

  /* Before the bot said anything: empty lists. */
  r.conversation_json = NULL;
  empty = cp_session_record_transcript (&r);
  o = parse_object (empty, empty_parser);
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (o, "transcript")),
      ==, 0);
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (o, "intents")),
      ==, 0);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) \
  g_test_add ("/callpiped/recovery/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("repair-placeholder", test_repair_placeholder);
  ADD ("repair-partial-frame", test_repair_partial_frame);
  ADD ("repair-after-tags", test_repair_after_tags);
  ADD ("repair-empty", test_repair_empty);
  ADD ("complete-untouched", test_complete_untouched);
  ADD ("not-repairable", test_not_repairable);
  ADD ("repair-wavenc", test_repair_wavenc);
  ADD ("untranscribed", test_untranscribed);
  ADD ("transcript-document", test_transcript_document);
#undef ADD
  return g_test_run ();
}

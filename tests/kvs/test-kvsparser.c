/* Unit tests of the KVS GetMedia parser (plugins/kvs/kvsfragment.c), no
 * GStreamer: EBML primitives, Connect-shaped streams split at every byte,
 * the conformance captures, and hostile input. */
#include "ebml.h"
#include "kvsfragment.h"
#include "kvs-fixture.h"

#include <string.h>

/* Feeds @data to a parser in pieces of @chunk bytes (0: all at once), the
 * way kvsdemux's adapter does, and collects the fragments. */
static GPtrArray *
parse_all (const guint8 *data, gsize len, gsize chunk, GError **error)
{
  g_autoptr (KvsParser) p = kvs_parser_new ();
  g_autoptr (GByteArray) pending = g_byte_array_new ();
  GPtrArray *frags =
      g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_fragment_free);
  gsize pos = 0;
  gboolean ok = TRUE;
  KvsFragment *f;

  while (ok && pos < len) {
    gsize n = chunk ? MIN (chunk, len - pos) : len - pos;

    g_byte_array_append (pending, data + pos, n);
    pos += n;
    while (ok && pending->len >= kvs_parser_get_needed (p)) {
      gsize consumed = 0;

      ok = kvs_parser_parse (p, pending->data, pending->len, &consumed, error);
      g_byte_array_remove_range (pending, 0, consumed);
      if (consumed == 0)
        break;
    }
  }
  if (ok)
    ok = kvs_parser_finish (p, pending->len, error);
  while ((f = kvs_parser_pop_fragment (p)) != NULL)
    g_ptr_array_add (frags, f);
  if (!ok)
    g_clear_pointer (&frags, g_ptr_array_unref);
  return frags;
}

static void
test_vint (void)
{
  static const guint8 unknown1[] = {0xFF};
  static const guint8 unknown8[] = {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
      0xFF};
  static const guint8 two[] = {0x40, 0x02};
  static const guint8 zero[] = {0x00, 0x01};
  static const guint8 id5[] = {0x08, 0x00, 0x00, 0x00, 0x01};
  guint64 v;
  guint32 id;
  guint n;

  g_assert_cmpint (kvs_ebml_read_size (unknown1, 1, &v, &n), ==, KVS_EBML_OK);
  g_assert_cmpuint (v, ==, KVS_EBML_SIZE_UNKNOWN);
  g_assert_cmpint (kvs_ebml_read_size (unknown8, 8, &v, &n), ==, KVS_EBML_OK);
  g_assert_cmpuint (v, ==, KVS_EBML_SIZE_UNKNOWN);
  g_assert_cmpuint (n, ==, 8);
  g_assert_cmpint (kvs_ebml_read_size (unknown8, 7, &v, &n), ==,
      KVS_EBML_NEED_MORE);
  g_assert_cmpint (kvs_ebml_read_size (two, 2, &v, &n), ==, KVS_EBML_OK);
  g_assert_cmpuint (v, ==, 2);
  g_assert_cmpuint (n, ==, 2);
  /* A first byte of 0 would announce a vint longer than 8 bytes. */
  g_assert_cmpint (kvs_ebml_read_size (zero, 2, &v, &n), ==, KVS_EBML_INVALID);
  g_assert_cmpint (kvs_ebml_read_id (id5, 5, &id, &n), ==, KVS_EBML_INVALID);
  g_assert_cmpint (kvs_ebml_read_id (unknown8 + 1, 4, &id, &n), ==,
      KVS_EBML_OK);
  g_assert_cmphex (id, ==, 0xFF);
}

static void
test_timestamp (void)
{
  guint64 ms;

  g_assert_true (kvs_parse_timestamp_ms ("1726677688.724", &ms));
  g_assert_cmpuint (ms, ==, G_GUINT64_CONSTANT (1726677688724));
  g_assert_true (kvs_parse_timestamp_ms ("1109909.253", &ms));
  g_assert_cmpuint (ms, ==, 1109909253);
  g_assert_true (kvs_parse_timestamp_ms ("5", &ms));
  g_assert_cmpuint (ms, ==, 5000);
  g_assert_true (kvs_parse_timestamp_ms ("1.5", &ms));
  g_assert_cmpuint (ms, ==, 1500);
  g_assert_true (kvs_parse_timestamp_ms ("1.0001", &ms));
  g_assert_cmpuint (ms, ==, 1001);
  g_assert_false (kvs_parse_timestamp_ms ("", &ms));
  g_assert_false (kvs_parse_timestamp_ms ("12a", &ms));
  g_assert_false (kvs_parse_timestamp_ms ("-1.0", &ms));
  g_assert_false (kvs_parse_timestamp_ms ("99999999999999999999999", &ms));
}

static GByteArray *
two_fragment_stream (void)
{
  GByteArray *out = g_byte_array_new ();
  KvsFixtureState st = {0, 0};
  KvsFixtureFragment f1 = {"1001", "contact-a", 1700000000000, 3, 3, 8, 0,
      FALSE, TRUE, NULL, 0};
  KvsFixtureFragment f2 = {"1002", NULL, 1700000000003, 2, 1, 8, 16, TRUE,
      FALSE, NULL, 0};

  kvs_fixture_write_fragment (out, &f1, &st);
  kvs_fixture_write_fragment (out, &f2, &st);
  return out;
}

static void
check_two_fragments (GPtrArray *frags)
{
  const KvsFragment *f;
  const KvsTrack *t;
  const KvsBlock *b;

  g_assert_nonnull (frags);
  g_assert_cmpuint (frags->len, ==, 2);
  f = g_ptr_array_index (frags, 0);
  g_assert_cmpstr (f->fragment_number, ==, "1001");
  g_assert_cmpstr (f->continuation_token, ==, "1001");
  g_assert_cmpstr (f->contact_id, ==, "contact-a");
  g_assert_cmpstr (f->mime_type, ==, "audio/L16;rate=8000;channels=1;");
  g_assert_cmpuint (f->producer_timestamp_ms, ==, 1700000000000);
  g_assert_cmpuint (f->server_timestamp_ms, ==, 1700000000250);
  g_assert_cmpuint (f->millis_behind_now, ==, 103);
  g_assert_false (f->truncated);
  g_assert_cmpuint (f->tracks->len, ==, 2);
  t = kvs_fragment_find_track (f, 1);
  g_assert_cmpstr (t->name, ==, "AUDIO_FROM_CUSTOMER");
  g_assert_cmpstr (t->codec_id, ==, "A_AAC");
  g_assert_true (kvs_track_is_audio (t));
  g_assert_cmpuint (f->blocks->len, ==, 6);
  b = g_ptr_array_index (f->blocks, 2);
  g_assert_cmpuint (b->track_number, ==, 1);
  g_assert_cmpint (b->timecode, ==, 1700000000001);
  g_assert_cmpuint (b->pts_ns, ==, G_GUINT64_CONSTANT (1700000000001000000));
  g_assert_cmpuint (g_bytes_get_size (b->payload), ==, 16);
  g_assert_cmpint (((const gint16 *) g_bytes_get_data (b->payload, NULL))[0],
      ==, kvs_fixture_sample (TRUE, 8));

  f = g_ptr_array_index (frags, 1);
  g_assert_cmpstr (f->fragment_number, ==, "1002");
  g_assert_null (f->contact_id);
  t = kvs_fragment_find_track (f, 1);
  g_assert_cmpstr (t->name, ==, "AUDIO_TO_CUSTOMER");
  g_assert_cmpuint (f->blocks->len, ==, 3);
  b = g_ptr_array_index (f->blocks, 1);
  g_assert_cmpuint (b->track_number, ==, 1);
  g_assert_cmpuint (g_bytes_get_size (b->payload), ==, 32);
  g_assert_cmpint (((const gint16 *) g_bytes_get_data (b->payload, NULL))[0],
      ==, kvs_fixture_sample (FALSE, 24));
}

static void
test_fixture_every_split (void)
{
  g_autoptr (GByteArray) s = two_fragment_stream ();
  gsize chunk;

  for (chunk = 0; chunk <= 64; chunk++) {
    g_autoptr (GError) err = NULL;
    g_autoptr (GPtrArray) frags = parse_all (s->data, s->len, chunk, &err);

    g_assert_no_error (err);
    check_two_fragments (frags);
  }
}

/* The first document's tags end with the continuation token: it is
 * complete before any byte of the next one arrives. */
static void
test_fragment_closes_at_token (void)
{
  g_autoptr (GByteArray) s = two_fragment_stream ();
  g_autoptr (KvsParser) p = kvs_parser_new ();
  g_autoptr (GError) err = NULL;
  g_autoptr (KvsFragment) f = NULL;
  gsize consumed, first_len = 0, i;

  /* The second EBML header: the first whose offset is not 0. */
  for (i = 1; i + 4 <= s->len; i++) {
    if (!memcmp (s->data + i, "\x1A\x45\xDF\xA3", 4)) {
      first_len = i;
      break;
    }
  }
  g_assert_cmpuint (first_len, >, 0);
  g_assert_true (kvs_parser_parse (p, s->data, first_len, &consumed, &err));
  g_assert_cmpuint (consumed, ==, first_len);
  f = kvs_parser_pop_fragment (p);
  g_assert_nonnull (f);
  g_assert_cmpstr (f->fragment_number, ==, "1001");
}

static void
test_discont_truncates (void)
{
  g_autoptr (GByteArray) s = two_fragment_stream ();
  g_autoptr (KvsParser) p = kvs_parser_new ();
  g_autoptr (GError) err = NULL;
  g_autoptr (KvsFragment) f = NULL;
  gsize consumed;

  /* Up to the middle of the Cluster of the first fragment. */
  g_assert_true (kvs_parser_parse (p, s->data, 800, &consumed, &err));
  g_assert_null (kvs_parser_pop_fragment (p));
  kvs_parser_discont (p);
  f = kvs_parser_pop_fragment (p);
  g_assert_nonnull (f);
  g_assert_true (f->truncated);
  g_assert_cmpstr (f->fragment_number, ==, "1001");
  g_assert_cmpuint (f->blocks->len, <, 6);
}

/* Parses @data in incremental mode in pieces of @chunk bytes and rebuilds
 * the fragments from the events: each BLOCK goes into the fragment whose
 * FRAGMENT event follows it. Checks the order of the events on the way. */
static GPtrArray *
parse_all_incremental (const guint8 *data, gsize len, gsize chunk)
{
  g_autoptr (KvsParser) p = kvs_parser_new ();
  g_autoptr (GByteArray) pending = g_byte_array_new ();
  g_autoptr (GPtrArray) blocks = g_ptr_array_new ();
  GPtrArray *frags =
      g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_fragment_free);
  gboolean in_cluster = FALSE;
  gsize pos = 0, consumed;
  KvsEvent *ev;

  kvs_parser_set_incremental (p, TRUE);
  while (pos <= len) {
    gsize n = chunk ? MIN (chunk, len - pos) : len - pos;

    g_byte_array_append (pending, data + pos, n);
    pos += n;
    if (pos == len)
      pos++;
    while (pending->len >= kvs_parser_get_needed (p)) {
      g_assert_true (
          kvs_parser_parse (p, pending->data, pending->len, &consumed, NULL));
      g_byte_array_remove_range (pending, 0, consumed);
      if (consumed == 0)
        break;
    }
  }
  g_assert_true (kvs_parser_finish (p, pending->len, NULL));
  g_assert_null (kvs_parser_pop_fragment (p));
  while ((ev = kvs_parser_pop_event (p)) != NULL) {
    switch (ev->type) {
      case KVS_EVENT_CLUSTER:
        g_assert_cmpuint (ev->tracks->len, ==, 2);
        in_cluster = TRUE;
        break;
      case KVS_EVENT_BLOCK:
        g_assert_true (in_cluster);
        g_ptr_array_add (blocks, g_steal_pointer (&ev->block));
        break;
      case KVS_EVENT_FRAGMENT:
        g_assert_cmpuint (ev->fragment->blocks->len, ==, 0);
        while (blocks->len > 0)
          g_ptr_array_add (ev->fragment->blocks,
              g_ptr_array_steal_index (blocks, 0));
        g_ptr_array_add (frags, g_steal_pointer (&ev->fragment));
        in_cluster = FALSE;
        break;
      case KVS_EVENT_TAG:
        g_assert_nonnull (ev->tag->name);
        break;
    }
    kvs_event_free (ev);
  }
  g_assert_cmpuint (blocks->len, ==, 0);
  return frags;
}

static void
test_incremental_every_split (void)
{
  g_autoptr (GByteArray) s = two_fragment_stream ();
  gsize chunk;

  for (chunk = 0; chunk <= 64; chunk++) {
    g_autoptr (GPtrArray) frags =
        parse_all_incremental (s->data, s->len, chunk);

    check_two_fragments (frags);
  }
}

static gsize
find_bytes (GByteArray *s, const gchar *needle)
{
  gsize i, n = strlen (needle);

  for (i = 0; i + n <= s->len; i++) {
    if (!memcmp (s->data + i, needle, n))
      return i;
  }
  g_assert_not_reached ();
}

/* Fed one byte at a time, every block of the first fragment is handed out
 * before the tags that end its document arrive, and the ContactId tag
 * written before the Cluster before its first block. */
static void
test_incremental_blocks_early (void)
{
  g_autoptr (GByteArray) s = two_fragment_stream ();
  g_autoptr (KvsParser) p = kvs_parser_new ();
  gsize tail = find_bytes (s, "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW");
  gsize pos = 0, consumed, fragment_at = 0;
  guint n_blocks = 0;
  gboolean contact_first = FALSE;
  KvsEvent *ev;

  kvs_parser_set_incremental (p, TRUE);
  while (fragment_at == 0 && pos < s->len) {
    gsize start = pos;

    while (pos - start < kvs_parser_get_needed (p))
      pos++;
    g_assert_true (
        kvs_parser_parse (p, s->data + start, pos - start, &consumed, NULL));
    pos = start + consumed;
    while ((ev = kvs_parser_pop_event (p)) != NULL) {
      if (ev->type == KVS_EVENT_TAG && !strcmp (ev->tag->name, "ContactId"))
        contact_first |= n_blocks == 0;
      if (ev->type == KVS_EVENT_BLOCK) {
        g_assert_cmpuint (pos, <, tail);
        n_blocks++;
      }
      if (ev->type == KVS_EVENT_FRAGMENT)
        fragment_at = pos;
      kvs_event_free (ev);
    }
  }
  g_assert_cmpuint (n_blocks, ==, 6);
  g_assert_true (contact_first);
  g_assert_cmpuint (fragment_at, >, tail);
}

static gchar *
conformance_path (const gchar *name)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  gchar *path;

  if (shared == NULL) {
    g_test_skip ("CALLPIPE_SHARED_DIR is not set: no conformance data");
    return NULL;
  }
  path = g_build_filename (shared, "conformance", "kvs", name, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_test_skip_printf ("%s is missing", path);
    g_clear_pointer (&path, g_free);
  }
  return path;
}

typedef struct
{
  const gchar *file;
  guint n_fragments;
  /* The first and last fragment, from an independent EBML walk. */
  const gchar *first_number;
  const gchar *last_number;
  const gchar *last_token;
  guint64 first_producer_ms;
  guint64 first_millis_behind;
  guint n_tracks;
  guint first_blocks; /* all tracks, video included */
  guint audio_blocks; /* in the whole file */
  gboolean truncated;
} ConformanceCase;

static const ConformanceCase conformance_cases[] = {
    {"kvsparser_output_get_media.mkv", 5,
        "91343852333181432392682062607743920146159169392",
        "91343852333181432412489103236310005892133364608",
        "91343852333181432412489103236310005892133364608", 1511852108513, 15858,
        1, 60, 0, FALSE},
    {"kvsparser_output_get_media_sparse_fragments.mkv", 3,
        "91343852333181432392682062607743920146159169392",
        "91343852333181432412489103236310005892133364608",
        "91343852333181432412489103236310005892133364608", 1511852108513, 15858,
        1, 60, 0, FALSE},
    {"kvsparser_output-get-media-equal-timecode.mkv", 2,
        "91343852338381417542203754135250098963782391502",
        "91343852338381422498915671433912930725530893291", NULL, 1518814932515,
        909335, 1, 120, 0, TRUE},
    {"kvsparser_test_mixed_tags.mkv", 10,
        "91343852333713038908964877623801423530396737899",
        "91343852333713038953530719038075113645398559869",
        "91343852333713038953530719038075113645398559869", 0, 910, 1, 10, 0,
        FALSE},
    {"kvsparser_empty-mkv-with-tags.mkv", 1,
        "91343852338378294813695855977007281634605393997",
        "91343852338378294813695855977007281634605393997", NULL, 1515865326543,
        KVS_NONE, 1, 0, 0, FALSE},
    {"kvsparser_test_tags_empty_cluster.mkv", 1, NULL, NULL, NULL, KVS_NONE,
        KVS_NONE, 0, 0, 0, FALSE},
    {"kvsparser_clusters.mkv", 1, NULL, NULL, NULL, KVS_NONE, KVS_NONE, 1, 444,
        0, FALSE},
    {"connect-shaped/connect_real_shape.mkv", 1, "connect-real-0",
        "connect-real-0",
        "0000000000000000000000000000000000000000000000000000000000000000",
        1000000000000, 0, 2, 4, 4, FALSE},
    {"connect-shaped/track_order_swapped.mkv", 1, "swapped-0", "swapped-0",
        "0000000000000000000000000000000000000000000000000000000000000000",
        1000003600000, 0, 2, 3, 3, FALSE},
    {"connect-shaped/stream_reuse.mkv", 4, "reuse-b-0", "reuse-c-1",
        "0000000000000000000000000000000000000000000000000000000000000000",
        1000000000000, 0, 2, 2, 8, FALSE},
    {"connect-shaped/multi_segment.mkv", 4,
        "91343852333181000000000000000000000000000000001",
        "91343852333181000000000000000000000000000000004",
        "0000000000000000000000000000000000000000000000000000000000000000",
        1000000000000, KVS_NONE, 2, 2, 8, FALSE},
};

static void
test_conformance (gconstpointer data)
{
  const ConformanceCase *c = data;
  g_autofree gchar *path = conformance_path (c->file);
  g_autofree gchar *contents = NULL;
  g_autoptr (GError) err = NULL;
  g_autoptr (GPtrArray) frags = NULL;
  const KvsFragment *first, *last;
  gsize len, chunk;
  guint audio = 0, i;
  gboolean truncated = FALSE;

  if (path == NULL)
    return;
  g_assert_true (g_file_get_contents (path, &contents, &len, &err));

  /* Whole, then in odd-sized pieces, then (small files) byte by byte. */
  for (chunk = 0; chunk <= 1; chunk++) {
    gsize step = chunk == 0 ? 0 : len < 30000 ? 1 : 4093;

    g_clear_pointer (&frags, g_ptr_array_unref);
    g_clear_error (&err);
    frags = parse_all ((const guint8 *) contents, len, step, &err);
    if (c->truncated) {
      g_assert_error (err, KVS_PARSER_ERROR, KVS_PARSER_ERROR_TRUNCATED);
      return;
    }
    g_assert_no_error (err);
    g_assert_cmpuint (frags->len, ==, c->n_fragments);
  }
  first = g_ptr_array_index (frags, 0);
  last = g_ptr_array_index (frags, frags->len - 1);
  g_assert_cmpstr (first->fragment_number, ==, c->first_number);
  g_assert_cmpstr (last->fragment_number, ==, c->last_number);
  g_assert_cmpstr (last->continuation_token, ==, c->last_token);
  g_assert_cmpuint (first->producer_timestamp_ms, ==, c->first_producer_ms);
  g_assert_cmpuint (first->millis_behind_now, ==, c->first_millis_behind);
  g_assert_cmpuint (first->tracks->len, ==, c->n_tracks);
  g_assert_cmpuint (first->n_blocks, ==, c->first_blocks);
  for (i = 0; i < frags->len; i++) {
    const KvsFragment *f = g_ptr_array_index (frags, i);

    audio += f->blocks->len;
    truncated |= f->truncated;
  }
  g_assert_cmpuint (audio, ==, c->audio_blocks);
  g_assert_false (truncated);
}

/* The 5 producer tags of test_mixed_tags sit in Tags elements of their own
 * before Info (first fragment) and after the Cluster (all fragments). */
static void
test_conformance_tags (void)
{
  g_autofree gchar *path = conformance_path ("kvsparser_test_mixed_tags.mkv");
  g_autofree gchar *contents = NULL;
  g_autoptr (GPtrArray) frags = NULL;
  const KvsFragment *f;
  const KvsTag *tag;
  gsize len;

  if (path == NULL)
    return;
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  frags = parse_all ((const guint8 *) contents, len, 0, NULL);
  g_assert_nonnull (frags);
  f = g_ptr_array_index (frags, 0);
  g_assert_cmpuint (f->tags->len, ==, 15);
  tag = g_ptr_array_index (f->tags, 0);
  g_assert_cmpstr (tag->name, ==, "testTag_0");
  g_assert_cmpstr (tag->value, ==, "testTag_0_Value");
  f = g_ptr_array_index (frags, 1);
  g_assert_cmpuint (f->tags->len, ==, 10);
  g_assert_cmpuint (f->server_timestamp_ms, ==, 1537574915478);
  g_assert_cmpuint (f->producer_timestamp_ms, ==, 5000);
  /* Zero-padded strings in the producer SDK's TrackEntry. */
  g_assert_cmpstr (((KvsTrack *) g_ptr_array_index (f->tracks, 0))->name, ==,
      "test track");
}

static void
expect_error (GByteArray *s, gint code)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GPtrArray) frags = parse_all (s->data, s->len, 0, &err);

  g_assert_null (frags);
  g_assert_error (err, KVS_PARSER_ERROR, code);
}

static void
test_hostile (void)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  guint i;

  /* Not MKV at all. */
  g_byte_array_append (s, (const guint8 *) "RIFF\x24\0\0\0WAVEfmt ", 16);
  expect_error (s, KVS_PARSER_ERROR_NOT_EBML);

  /* Nothing at all. */
  g_byte_array_set_size (s, 0);
  expect_error (s, KVS_PARSER_ERROR_NOT_EBML);

  /* A size vint of length 0 (first byte 0x00). */
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\x00\x01", 6);
  expect_error (s, KVS_PARSER_ERROR_MALFORMED);

  /* An audio SimpleBlock claiming 100 MiB: refused on its header. */
  g_byte_array_set_size (s, 0);
  {
    KvsFixtureState st = {0, 0};
    KvsFixtureFragment f = {"1", "c", 0, 1, 1, 8, 0, FALSE, FALSE, NULL, 0};

    kvs_fixture_write_fragment (s, &f, &st);
  }
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF", 5);
  g_byte_array_append (s, (const guint8 *) "\x16\x54\xAE\x6B\x8B", 5);
  g_byte_array_append (s,
      (const guint8 *) "\xAE\x89\xD7\x81\x01\x83\x81\x02"
                       "\x86\x81\x41",
      11);
  g_byte_array_append (s, (const guint8 *) "\x1F\x43\xB6\x75\xFF", 5);
  kvs_fixture_put_id (s, KVS_EBML_ID_SIMPLEBLOCK);
  kvs_fixture_put_size (s, 100 * 1024 * 1024);
  g_byte_array_append (s, (const guint8 *) "\x81\0\0\x80", 4);
  expect_error (s, KVS_PARSER_ERROR_TOO_LARGE);

  /* A Tags element claiming 2^50 bytes. */
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF", 5);
  kvs_fixture_put_id (s, KVS_EBML_ID_TAGS);
  kvs_fixture_put_size (s, G_GUINT64_CONSTANT (1) << 50);
  expect_error (s, KVS_PARSER_ERROR_TOO_LARGE);

  /* SimpleTags nested 40 deep. */
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF", 5);
  kvs_fixture_put_id (s, KVS_EBML_ID_TAGS);
  kvs_fixture_put_size (s, 4 + 2 + 40 * 4 + 1);
  kvs_fixture_put_id (s, KVS_EBML_ID_TAG);
  kvs_fixture_put_size (s, 2 + 40 * 4 + 1);
  for (i = 0; i < 40; i++) {
    kvs_fixture_put_id (s, KVS_EBML_ID_SIMPLETAG);
    kvs_fixture_put_size (s, (39 - i) * 4 + 1);
  }
  g_byte_array_append (s, (const guint8 *) "\xEC\x80", 1);
  expect_error (s, KVS_PARSER_ERROR_MALFORMED);

  /* An unknown size where only Segment and Cluster may have one. */
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF", 5);
  g_byte_array_append (s, (const guint8 *) "\x12\x54\xC3\x67\xFF", 5);
  expect_error (s, KVS_PARSER_ERROR_MALFORMED);

  /* A child that overflows its known-size parent. */
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_append (s, (const guint8 *) "\x18\x53\x80\x67\xFF", 5);
  g_byte_array_append (s, (const guint8 *) "\x15\x49\xA9\x66\x84", 5);
  g_byte_array_append (s, (const guint8 *) "\x2A\xD7\xB1\x88\0\0\0\0", 8);
  expect_error (s, KVS_PARSER_ERROR_MALFORMED);

  /* Cut inside a known-size element. */
  g_byte_array_set_size (s, 0);
  kvs_fixture_put_ebml_header (s);
  g_byte_array_set_size (s, s->len - 3);
  expect_error (s, KVS_PARSER_ERROR_TRUNCATED);
}

int
main (int argc, char **argv)
{
  gsize i;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/kvs/parser/vint", test_vint);
  g_test_add_func ("/kvs/parser/timestamp", test_timestamp);
  g_test_add_func ("/kvs/parser/every-split", test_fixture_every_split);
  g_test_add_func ("/kvs/parser/closes-at-token",
      test_fragment_closes_at_token);
  g_test_add_func ("/kvs/parser/discont", test_discont_truncates);
  g_test_add_func ("/kvs/parser/incremental-every-split",
      test_incremental_every_split);
  g_test_add_func ("/kvs/parser/incremental-blocks-early",
      test_incremental_blocks_early);
  g_test_add_func ("/kvs/parser/hostile", test_hostile);
  g_test_add_func ("/kvs/parser/conformance-tags", test_conformance_tags);
  for (i = 0; i < G_N_ELEMENTS (conformance_cases); i++) {
    g_autofree gchar *name = g_strdup_printf ("/kvs/parser/conformance/%s",
        conformance_cases[i].file);

    g_test_add_data_func (name, &conformance_cases[i], test_conformance);
  }
  return g_test_run ();
}

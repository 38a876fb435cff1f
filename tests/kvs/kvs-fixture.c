/* Connect-shaped GetMedia stream writer for the tests (see kvs-fixture.h).
 * The layout follows research/kvs-connect.md: EBML, an unknown-size
 * Segment, Info, Tracks (A_AAC, no Audio element), the AWS tags, an
 * unknown-size Cluster of SimpleBlocks alternating between the tracks,
 * then the Connect tags and MILLIS_BEHIND_NOW/CONTINUATION_TOKEN. */
#include "kvs-fixture.h"

#include <string.h>

#define ID_EBML 0x1A45DFA3
#define ID_DOCTYPE 0x4282
#define ID_DOCTYPEVERSION 0x4287
#define ID_SEGMENT 0x18538067
#define ID_INFO 0x1549A966
#define ID_TIMECODESCALE 0x2AD7B1
#define ID_TRACKS 0x1654AE6B
#define ID_TRACKENTRY 0xAE
#define ID_TRACKNUMBER 0xD7
#define ID_TRACKTYPE 0x83
#define ID_NAME 0x536E
#define ID_CODECID 0x86
#define ID_CODECPRIVATE 0x63A2
#define ID_CLUSTER 0x1F43B675
#define ID_TIMECODE 0xE7
#define ID_POSITION 0xA7
#define ID_SIMPLEBLOCK 0xA3
#define ID_TAGS 0x1254C367
#define ID_TAG 0x7373
#define ID_TARGETS 0x63C0
#define ID_SIMPLETAG 0x67C8
#define ID_TAGNAME 0x45A3
#define ID_TAGSTRING 0x4487
#define ID_VOID 0xEC

/* Distinct per direction and never 0, so silence and swaps show. */
gint16
kvs_fixture_sample (gboolean from_customer, guint64 index)
{
  gint16 v = (gint16) (1 + index % 16000);

  return from_customer ? v : (gint16) -v;
}

void
kvs_fixture_put_id (GByteArray *out, guint32 id)
{
  guint8 b[4];
  guint n = id > 0xFFFFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1;
  guint i;

  for (i = 0; i < n; i++)
    b[i] = (guint8) (id >> (8 * (n - 1 - i)));
  g_byte_array_append (out, b, n);
}

void
kvs_fixture_put_size (GByteArray *out, guint64 size)
{
  guint8 b[8];
  guint n = 1, i;

  while (n < 8 && size >= (G_GUINT64_CONSTANT (1) << (7 * n)) - 1)
    n++;
  for (i = 0; i < n; i++)
    b[i] = (guint8) (size >> (8 * (n - 1 - i)));
  b[0] |= (guint8) (0x80 >> (n - 1));
  g_byte_array_append (out, b, n);
}

static void
put_unknown_size (GByteArray *out)
{
  static const guint8 unknown[8] = {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
      0xFF};

  g_byte_array_append (out, unknown, sizeof (unknown));
}

static void
put_bytes (GByteArray *out, guint32 id, const void *data, gsize len)
{
  kvs_fixture_put_id (out, id);
  kvs_fixture_put_size (out, len);
  g_byte_array_append (out, data, len);
}

static void
put_string (GByteArray *out, guint32 id, const gchar *s)
{
  put_bytes (out, id, s, strlen (s));
}

static void
put_uint (GByteArray *out, guint32 id, guint64 v)
{
  guint8 b[8];
  guint n = 1, i;

  while (n < 8 && (v >> (8 * n)) != 0)
    n++;
  for (i = 0; i < n; i++)
    b[i] = (guint8) (v >> (8 * (n - 1 - i)));
  put_bytes (out, id, b, n);
}

/* Masters get a fixed 8-byte size field, patched when they close. */
static guint
begin_master (GByteArray *out, guint32 id)
{
  static const guint8 placeholder[8] = {0x01};

  kvs_fixture_put_id (out, id);
  g_byte_array_append (out, placeholder, sizeof (placeholder));
  return out->len;
}

static void
end_master (GByteArray *out, guint start)
{
  guint64 size = out->len - start;
  guint i;

  for (i = 0; i < 7; i++)
    out->data[start - 1 - i] = (guint8) (size >> (8 * i));
}

void
kvs_fixture_put_ebml_header (GByteArray *out)
{
  guint m = begin_master (out, ID_EBML);

  put_string (out, ID_DOCTYPE, "matroska");
  put_uint (out, ID_DOCTYPEVERSION, 4);
  end_master (out, m);
}

/* One Tags element holding name/value pairs (NULL-terminated). */
static void
put_tags (GByteArray *out, const gchar *const *pairs)
{
  guint tags = begin_master (out, ID_TAGS);
  guint tag = begin_master (out, ID_TAG);
  guint i;

  put_bytes (out, ID_TARGETS, NULL, 0);
  for (i = 0; pairs[i] != NULL; i += 2) {
    guint st = begin_master (out, ID_SIMPLETAG);

    put_string (out, ID_TAGNAME, pairs[i]);
    put_string (out, ID_TAGSTRING, pairs[i + 1]);
    end_master (out, st);
  }
  end_master (out, tag);
  end_master (out, tags);
}

/* Connect puts each of its tags in a Tags element of its own. */
static void
put_connect_tags (GByteArray *out, const KvsFixtureFragment *spec)
{
  const gchar *instance[] = {"InstanceId",
      "00000000-0000-4000-8000-0000000000aa", NULL};
  const gchar *mime[] = {"MimeType", "audio/L16;rate=8000;channels=1;", NULL};
  const gchar *events[] = {"Events", "[]", NULL};

  if (spec->contact_id) {
    const gchar *contact[] = {"ContactId", spec->contact_id, NULL};

    put_tags (out, contact);
  }
  put_tags (out, instance);
  put_tags (out, mime);
  put_tags (out, events);
}

static void
put_track (GByteArray *out, guint number, const gchar *name)
{
  static const guint8 bogus_asc[2] = {0x11, 0x90};
  guint m = begin_master (out, ID_TRACKENTRY);

  put_uint (out, ID_TRACKNUMBER, number);
  put_uint (out, ID_TRACKTYPE, 2);
  put_string (out, ID_CODECID, "A_AAC");
  put_bytes (out, ID_CODECPRIVATE, bogus_asc, sizeof (bogus_asc));
  put_string (out, ID_NAME, name);
  end_master (out, m);
}

static void
put_block (GByteArray *out, guint track, guint rel_ms, gboolean from,
    guint64 first, guint n)
{
  guint8 *payload = g_malloc (4 + 2 * n);
  guint i;

  payload[0] = (guint8) (0x80 | track);
  payload[1] = (guint8) (rel_ms >> 8);
  payload[2] = (guint8) rel_ms;
  payload[3] = 0x80;
  for (i = 0; i < n; i++) {
    guint16 v = (guint16) kvs_fixture_sample (from, first + i);

    payload[4 + 2 * i] = (guint8) v;
    payload[5 + 2 * i] = (guint8) (v >> 8);
  }
  put_bytes (out, ID_SIMPLEBLOCK, payload, 4 + 2 * n);
  g_free (payload);
}

static guint
block_len (const KvsFixtureFragment *spec, guint i, guint n_blocks)
{
  if (i + 1 == n_blocks && spec->last_block_samples != 0)
    return spec->last_block_samples;
  return spec->block_samples;
}

guint
kvs_fixture_fragment_ms (const KvsFixtureFragment *spec, gboolean from)
{
  guint n = from ? spec->from_blocks : spec->to_blocks;
  guint samples = 0, i;

  for (i = 0; i < n; i++)
    samples += block_len (spec, i, n);
  return samples * 1000 / KVS_FIXTURE_RATE;
}

static void
put_aws_head (GByteArray *out, const KvsFixtureFragment *spec)
{
  g_autofree gchar *ts = g_strdup_printf ("%" G_GUINT64_FORMAT ".%03u",
      spec->timecode_ms / 1000, (guint) (spec->timecode_ms % 1000));
  g_autofree gchar *server = g_strdup_printf ("%" G_GUINT64_FORMAT ".%03u",
      (spec->timecode_ms + 250) / 1000,
      (guint) ((spec->timecode_ms + 250) % 1000));
  g_autofree gchar *id = g_strdup_printf ("%" G_GUINT64_FORMAT, spec->error_id);
  const gchar *head[] = {"AWS_KINESISVIDEO_FRAGMENT_NUMBER", spec->number,
      "AWS_KINESISVIDEO_SERVER_TIMESTAMP", server,
      "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", ts, NULL};
  const gchar *error[] = {"AWS_KINESISVIDEO_FRAGMENT_NUMBER", spec->number,
      "AWS_KINESISVIDEO_ERROR_CODE", spec->error_code,
      "AWS_KINESISVIDEO_ERROR_ID", id, NULL};

  put_tags (out, spec->error_code ? error : head);
}

void
kvs_fixture_write_fragment (GByteArray *out, const KvsFixtureFragment *spec,
    KvsFixtureState *state)
{
  guint from_track = spec->swap_tracks ? 2 : 1;
  guint to_track = spec->swap_tracks ? 1 : 2;
  guint m, i, n;
  guint from_ms = 0, to_ms = 0;
  g_autofree gchar *millis = NULL;

  kvs_fixture_put_ebml_header (out);
  kvs_fixture_put_id (out, ID_SEGMENT);
  put_unknown_size (out);

  m = begin_master (out, ID_INFO);
  put_uint (out, ID_TIMECODESCALE, 1000000);
  end_master (out, m);
  if (spec->error_code) {
    put_aws_head (out, spec);
    return;
  }

  m = begin_master (out, ID_TRACKS);
  if (spec->swap_tracks) {
    put_track (out, to_track, "AUDIO_TO_CUSTOMER");
    put_track (out, from_track, "AUDIO_FROM_CUSTOMER");
  } else {
    put_track (out, from_track, "AUDIO_FROM_CUSTOMER");
    put_track (out, to_track, "AUDIO_TO_CUSTOMER");
  }
  end_master (out, m);
  if (spec->tags_before)
    put_connect_tags (out, spec);
  put_aws_head (out, spec);

  kvs_fixture_put_id (out, ID_CLUSTER);
  put_unknown_size (out);
  put_uint (out, ID_TIMECODE, spec->timecode_ms);
  put_uint (out, ID_POSITION, 0);
  /* A Void inside the Cluster, as some writers leave: never closes it. */
  put_bytes (out, ID_VOID, "\0\0\0", 3);
  n = MAX (spec->from_blocks, spec->to_blocks);
  for (i = 0; i < n; i++) {
    if (i < spec->from_blocks) {
      guint len = block_len (spec, i, spec->from_blocks);

      put_block (out, from_track, from_ms, TRUE, state->from_pos, len);
      state->from_pos += len;
      from_ms += len * 1000 / KVS_FIXTURE_RATE;
    }
    if (i < spec->to_blocks) {
      guint len = block_len (spec, i, spec->to_blocks);

      put_block (out, to_track, to_ms, FALSE, state->to_pos, len);
      state->to_pos += len;
      to_ms += len * 1000 / KVS_FIXTURE_RATE;
    }
  }

  put_connect_tags (out, spec);
  millis = g_strdup_printf ("%u", 100 + from_ms);
  {
    const gchar *tail[] = {"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", millis,
        "AWS_KINESISVIDEO_CONTINUATION_TOKEN", spec->number, NULL};

    put_tags (out, tail);
  }
}

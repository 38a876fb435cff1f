/* libFuzzer target: the KVS GetMedia parser (plugins/kvs/kvsfragment.c)
 * on arbitrary bytes, fed in pieces whose sizes come from the input, with
 * the caller-side buffering kvsdemux does. Two parsers read the same
 * pieces, one handing out whole fragments and one incremental (kvsdemux's
 * mode): every fragment and event is walked, and both must agree on the
 * fragments and, when the input parses, the audio bytes they found. */
#include "kvsfragment.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct
{
  KvsParser *parser;
  GByteArray *pending;
  gboolean ok;
  guint n_fragments;
  gsize audio_bytes;
} Reader;

static void
drain (Reader *r)
{
  KvsFragment *f;
  KvsEvent *ev;

  while ((f = kvs_parser_pop_fragment (r->parser)) != NULL) {
    guint i;
    gsize total = 0;

    for (i = 0; i < f->blocks->len; i++) {
      const KvsBlock *b = g_ptr_array_index (f->blocks, i);

      total += g_bytes_get_size (b->payload);
      kvs_fragment_find_track (f, b->track_number);
    }
    g_assert (total == f->audio_bytes);
    r->n_fragments++;
    r->audio_bytes += total;
    kvs_fragment_free (f);
  }
  while ((ev = kvs_parser_pop_event (r->parser)) != NULL) {
    if (ev->type == KVS_EVENT_BLOCK)
      r->audio_bytes += g_bytes_get_size (ev->block->payload);
    else if (ev->type == KVS_EVENT_FRAGMENT)
      r->n_fragments++;
    kvs_event_free (ev);
  }
}

static void
feed (Reader *r, const uint8_t *data, size_t n)
{
  g_byte_array_append (r->pending, data, n);
  while (r->ok && r->pending->len >= kvs_parser_get_needed (r->parser)) {
    gsize consumed = 0;

    r->ok = kvs_parser_parse (r->parser, r->pending->data, r->pending->len,
        &consumed, NULL);
    g_assert (consumed <= r->pending->len);
    g_byte_array_remove_range (r->pending, 0, consumed);
    drain (r);
    if (consumed == 0)
      break;
  }
  /* The adapter never holds more than one capped element. */
  g_assert (r->pending->len <= KVS_MAX_BLOCK_SIZE + 4096 + 16);
}

static void
discont (Reader *r)
{
  g_byte_array_set_size (r->pending, 0);
  kvs_parser_discont (r->parser);
  drain (r);
}

static void
finish (Reader *r)
{
  if (r->ok)
    kvs_parser_finish (r->parser, r->pending->len, NULL);
  drain (r);
  g_byte_array_unref (r->pending);
  kvs_parser_free (r->parser);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Reader whole = {kvs_parser_new (), g_byte_array_new (), TRUE, 0, 0};
  Reader incremental = {kvs_parser_new (), g_byte_array_new (), TRUE, 0, 0};
  guint32 state;
  size_t pos = 0;
  gboolean ok;

  kvs_parser_set_incremental (incremental.parser, TRUE);
  if (size < 2)
    goto done;
  /* The last two bytes seed the split points, so that a seed file from
   * the conformance data still starts with its EBML header. */
  state = (guint32) data[size - 2] << 8 | data[size - 1];
  size -= 2;

  while (whole.ok && pos < size) {
    size_t n;

    state = state * 1103515245u + 12345u;
    n = 1 + (state >> 16) % 4096;
    if ((state >> 8) % 4 == 0)
      n = 1;
    n = MIN (n, size - pos);
    feed (&whole, data + pos, n);
    feed (&incremental, data + pos, n);
    pos += n;
    g_assert (whole.ok == incremental.ok);
    if (whole.ok && (state >> 4) % 97 == 0) {
      discont (&whole);
      discont (&incremental);
    }
  }

done:
  ok = whole.ok;
  finish (&whole);
  finish (&incremental);
  g_assert (whole.n_fragments == incremental.n_fragments);
  /* After a parse error, the incremental parser has handed out the blocks
   * of the fragment it stopped in; the other never completes it. */
  if (ok)
    g_assert (whole.audio_bytes == incremental.audio_bytes);
  return 0;
}

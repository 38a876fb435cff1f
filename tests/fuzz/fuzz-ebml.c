/* libFuzzer target: the KVS GetMedia parser (plugins/kvs/kvsfragment.c)
 * on arbitrary bytes, fed in pieces whose sizes come from the input, with
 * the caller-side buffering kvsdemux does; every fragment is walked. */
#include "kvsfragment.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
drain_fragments (KvsParser *p)
{
  KvsFragment *f;

  while ((f = kvs_parser_pop_fragment (p)) != NULL) {
    guint i;
    gsize total = 0;

    for (i = 0; i < f->blocks->len; i++) {
      const KvsBlock *b = g_ptr_array_index (f->blocks, i);

      total += g_bytes_get_size (b->payload);
      kvs_fragment_find_track (f, b->track_number);
    }
    g_assert (total == f->audio_bytes);
    kvs_fragment_free (f);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  KvsParser *p = kvs_parser_new ();
  GByteArray *pending = g_byte_array_new ();
  guint32 state;
  size_t pos = 0;
  gboolean ok = TRUE;

  if (size < 2)
    goto done;
  /* The last two bytes seed the split points, so that a seed file from
   * the conformance data still starts with its EBML header. */
  state = (guint32) data[size - 2] << 8 | data[size - 1];
  size -= 2;

  while (ok && pos < size) {
    size_t n;

    state = state * 1103515245u + 12345u;
    n = 1 + (state >> 16) % 4096;
    if ((state >> 8) % 4 == 0)
      n = 1;
    n = MIN (n, size - pos);
    g_byte_array_append (pending, data + pos, n);
    pos += n;
    while (ok && pending->len >= kvs_parser_get_needed (p)) {
      gsize consumed = 0;

      ok = kvs_parser_parse (p, pending->data, pending->len, &consumed, NULL);
      g_assert (consumed <= pending->len);
      g_byte_array_remove_range (pending, 0, consumed);
      drain_fragments (p);
      if (consumed == 0)
        break;
    }
    /* The adapter never holds more than one capped element. */
    g_assert (pending->len <= KVS_MAX_BLOCK_SIZE + 4096 + 16);
    if (ok && (state >> 4) % 97 == 0) {
      g_byte_array_set_size (pending, 0);
      kvs_parser_discont (p);
      drain_fragments (p);
    }
  }
  if (ok)
    kvs_parser_finish (p, pending->len, NULL);
  drain_fragments (p);

done:
  g_byte_array_unref (pending);
  kvs_parser_free (p);
  return 0;
}

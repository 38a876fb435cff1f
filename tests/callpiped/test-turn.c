/* POST /turn's input checks: strict base64 and the WAV header walk, on
 * untrusted bytes. */
#include "cp-turn.h"

#include <string.h>

static guint8 *
wav_header (guint16 format, guint16 channels, guint32 rate, guint16 bits,
    guint32 data_len, gsize *len)
{
  guint8 *b = g_malloc0 (44 + data_len);
  guint32 byte_rate = rate * channels * (bits / 8);

  memcpy (b, "RIFF", 4);
  b[4] = (36 + data_len) & 0xff;
  memcpy (b + 8, "WAVEfmt ", 8);
  b[16] = 16;
  b[20] = format & 0xff;
  b[22] = channels;
  memcpy (b + 24, &rate, 4);
  memcpy (b + 28, &byte_rate, 4);
  b[32] = channels * (bits / 8);
  b[34] = bits;
  memcpy (b + 36, "data", 4);
  memcpy (b + 40, &data_len, 4);
  *len = 44 + data_len;
  return b;
}

static void
test_wav (void)
{
  gsize len;
  g_autofree guint8 *ok = wav_header (1, 1, 8000, 16, 16000, &len);
  g_autofree guint8 *too_long = NULL;
  g_autofree guint8 *alaw = NULL;
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;
  g_autoptr (GError) e4 = NULL;
  gsize i;

  g_assert_true (cp_turn_check_wav (ok, len, 2, NULL));
  too_long = wav_header (1, 1, 8000, 16, 48000, &len);
  g_assert_false (cp_turn_check_wav (too_long, len, 2, &e1));
  g_assert_error (e1, CP_TURN_ERROR, CP_TURN_ERROR_AUDIO_TOO_LONG);
  alaw = wav_header (6, 1, 8000, 8, 800, &len);
  g_assert_false (cp_turn_check_wav (alaw, len, 2, &e2));
  g_assert_error (e2, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_AUDIO);
  g_assert_false (cp_turn_check_wav ((const guint8 *) "RIFF", 4, 2, &e3));
  g_assert_error (e3, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_AUDIO);
  /* every truncation of a good header is refused without reading past it */
  for (i = 12; i < 44; i++) {
    g_autofree guint8 *cut = g_memdup2 (ok, i);

    g_assert_false (cp_turn_check_wav (cut, i, 2, NULL));
  }
  /* a chunk size pointing past the end stops the walk */
  ok[16] = 0xff;
  ok[17] = 0xff;
  g_assert_false (cp_turn_check_wav (ok, 44 + 16000, 2, &e4));
}

static void
test_base64 (void)
{
  const gchar *bad[] = {"", "abc", "ab=c", "a===", "ab!d", "abc=d===", NULL};
  gsize len = 0;
  g_autofree guint8 *ok = cp_turn_decode_base64 ("aGVs\nbG8=", &len, NULL);
  guint i;

  g_assert_nonnull (ok);
  g_assert_cmpmem (ok, len, "hello", 5);
  for (i = 0; bad[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;

    g_assert_null (cp_turn_decode_base64 (bad[i], &len, &error));
    g_assert_error (error, CP_TURN_ERROR, CP_TURN_ERROR_INVALID_FIELD);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/callpiped/turn/wav", test_wav);
  g_test_add_func ("/callpiped/turn/base64", test_base64);
  return g_test_run ();
}

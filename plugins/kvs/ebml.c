/* EBML primitives (RFC 8794): element IDs, sizes and leaf values. */
#include "ebml.h"

#include <string.h>

/* The length of a vint is one more than the leading zero bits of its first
 * byte; 0 means the first byte is zero, which no valid vint has. */
guint
kvs_ebml_vint_length (guint8 first)
{
  guint n = 1;
  guint8 mask = 0x80;

  while (n <= 8 && !(first & mask)) {
    n++;
    mask >>= 1;
  }
  return n > 8 ? 0 : n;
}

KvsEbmlResult
kvs_ebml_read_id (const guint8 *data, gsize len, guint32 *id, guint *id_len)
{
  guint n, i;
  guint32 v;

  if (len < 1)
    return KVS_EBML_NEED_MORE;
  n = kvs_ebml_vint_length (data[0]);
  /* Matroska caps IDs at 4 bytes (EBMLMaxIDLength). */
  if (n == 0 || n > 4)
    return KVS_EBML_INVALID;
  if (len < n)
    return KVS_EBML_NEED_MORE;
  v = data[0];
  for (i = 1; i < n; i++)
    v = (v << 8) | data[i];
  *id = v;
  *id_len = n;
  return KVS_EBML_OK;
}

KvsEbmlResult
kvs_ebml_read_vint (const guint8 *data, gsize len, guint64 *value,
    guint *vint_len)
{
  guint n, i;
  guint64 v;

  if (len < 1)
    return KVS_EBML_NEED_MORE;
  n = kvs_ebml_vint_length (data[0]);
  if (n == 0)
    return KVS_EBML_INVALID;
  if (len < n)
    return KVS_EBML_NEED_MORE;
  v = data[0] & (0xFF >> n);
  for (i = 1; i < n; i++)
    v = (v << 8) | data[i];
  *value = v;
  *vint_len = n;
  return KVS_EBML_OK;
}

KvsEbmlResult
kvs_ebml_read_size (const guint8 *data, gsize len, guint64 *size,
    guint *size_len)
{
  KvsEbmlResult res;
  guint64 v;
  guint n;

  res = kvs_ebml_read_vint (data, len, &v, &n);
  if (res != KVS_EBML_OK)
    return res;
  /* All value bits set is the reserved "unknown size" marker. */
  if (v == (G_GUINT64_CONSTANT (1) << (7 * n)) - 1)
    v = KVS_EBML_SIZE_UNKNOWN;
  *size = v;
  *size_len = n;
  return KVS_EBML_OK;
}

gboolean
kvs_ebml_parse_uint (const guint8 *data, gsize len, guint64 *value)
{
  guint64 v = 0;
  gsize i;

  if (len > 8)
    return FALSE;
  for (i = 0; i < len; i++)
    v = (v << 8) | data[i];
  *value = v;
  return TRUE;
}

gboolean
kvs_ebml_parse_float (const guint8 *data, gsize len, gdouble *value)
{
  guint64 bits;

  if (len == 0) {
    *value = 0.0;
    return TRUE;
  }
  if (len != 4 && len != 8)
    return FALSE;
  kvs_ebml_parse_uint (data, len, &bits);
  if (len == 4) {
    guint32 b32 = (guint32) bits;
    gfloat f;

    memcpy (&f, &b32, sizeof (f));
    *value = f;
  } else {
    memcpy (value, &bits, sizeof (*value));
  }
  return TRUE;
}

/* EBML strings may be zero-padded (the producer SDK pads track names), and
 * tags come from the network: stop at the first NUL, repair bad UTF-8. */
gchar *
kvs_ebml_parse_string (const guint8 *data, gsize len)
{
  const guint8 *nul;

  if (len == 0)
    return g_strdup ("");
  nul = memchr (data, 0, len);
  if (nul != NULL)
    len = nul - data;
  return g_utf8_make_valid ((const gchar *) data, len);
}

/* callpipe — HTTP client library: shared types */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cphttp.h"

#include <string.h>

GQuark
cp_http_error_quark (void)
{
  return g_quark_from_static_string ("cp-http-error-quark");
}

struct _CpHttpHeaders
{
  gatomicrefcount ref;
  /* name, value, name, value, ... */
  GPtrArray *fields;
};

CpHttpHeaders *
cp_http_headers_new (void)
{
  CpHttpHeaders *headers = g_new0 (CpHttpHeaders, 1);

  g_atomic_ref_count_init (&headers->ref);
  headers->fields = g_ptr_array_new_with_free_func (g_free);
  return headers;
}

CpHttpHeaders *
cp_http_headers_ref (CpHttpHeaders *headers)
{
  g_return_val_if_fail (headers != NULL, NULL);
  g_atomic_ref_count_inc (&headers->ref);
  return headers;
}

void
cp_http_headers_unref (CpHttpHeaders *headers)
{
  g_return_if_fail (headers != NULL);
  if (!g_atomic_ref_count_dec (&headers->ref))
    return;
  g_ptr_array_unref (headers->fields);
  g_free (headers);
}

void
cp_http_headers_add_len (CpHttpHeaders *headers, const gchar *name,
    gsize name_len, const gchar *value, gsize value_len)
{
  g_return_if_fail (headers != NULL);
  g_return_if_fail (name != NULL && name_len > 0);
  g_return_if_fail (value != NULL || value_len == 0);

  g_ptr_array_add (headers->fields, g_strndup (name, name_len));
  g_ptr_array_add (headers->fields, g_strndup (value ? value : "", value_len));
}

void
cp_http_headers_add (CpHttpHeaders *headers, const gchar *name,
    const gchar *value)
{
  g_return_if_fail (name != NULL && value != NULL);
  cp_http_headers_add_len (headers, name, strlen (name), value, strlen (value));
}

const gchar *
cp_http_headers_get (const CpHttpHeaders *headers, const gchar *name)
{
  guint i;

  g_return_val_if_fail (headers != NULL && name != NULL, NULL);
  for (i = 0; i + 1 < headers->fields->len; i += 2) {
    if (g_ascii_strcasecmp (g_ptr_array_index (headers->fields, i), name) == 0)
      return g_ptr_array_index (headers->fields, i + 1);
  }
  return NULL;
}

guint
cp_http_headers_size (const CpHttpHeaders *headers)
{
  g_return_val_if_fail (headers != NULL, 0);
  return headers->fields->len / 2;
}

void
cp_http_headers_nth (const CpHttpHeaders *headers, guint index,
    const gchar **name, const gchar **value)
{
  g_return_if_fail (headers != NULL);
  g_return_if_fail (index < headers->fields->len / 2);
  if (name)
    *name = g_ptr_array_index (headers->fields, 2 * index);
  if (value)
    *value = g_ptr_array_index (headers->fields, 2 * index + 1);
}

void
cp_http_headers_clear (CpHttpHeaders *headers)
{
  g_return_if_fail (headers != NULL);
  g_ptr_array_set_size (headers->fields, 0);
}

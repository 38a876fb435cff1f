/* callpipe — AWS Signature Version 4 (header and query signing, S3 rules,
 * aws-chunked payload chains). The rules are described in sigv4.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "sigv4.h"
#include "awscrypto.h"

#include <string.h>

#define EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CHAIN_ALGORITHM "AWS4-HMAC-SHA256-PAYLOAD"

GQuark
cp_aws_sigv4_error_quark (void)
{
  return g_quark_from_static_string ("cp-aws-sigv4-error-quark");
}

/* ---- request description ---- */

static void
header_free (gpointer data)
{
  CpAwsHttpHeader *h = data;

  g_free (h->name);
  g_free (h->value);
  g_free (h);
}

static CpAwsHttpHeader *
header_new (const gchar *name, const gchar *value)
{
  CpAwsHttpHeader *h = g_new (CpAwsHttpHeader, 1);

  h->name = g_strdup (name);
  h->value = g_strdup (value ? value : "");
  return h;
}

static void
query_param_free (gpointer data)
{
  CpAwsQueryParam *q = data;

  g_free (q->key);
  g_free (q->value);
  g_free (q);
}

CpAwsHttpRequest *
cp_aws_http_request_new (const gchar *method, const gchar *path)
{
  CpAwsHttpRequest *req = g_new0 (CpAwsHttpRequest, 1);

  req->method = g_strdup (method);
  req->path = g_strdup (path);
  req->query = g_ptr_array_new_with_free_func (query_param_free);
  req->headers = g_ptr_array_new_with_free_func (header_free);
  return req;
}

void
cp_aws_http_request_free (CpAwsHttpRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->method);
  g_free (request->path);
  g_ptr_array_unref (request->query);
  g_ptr_array_unref (request->headers);
  g_free (request->payload_hash);
  g_free (request);
}

void
cp_aws_http_request_add_header (CpAwsHttpRequest *request, const gchar *name,
    const gchar *value)
{
  g_return_if_fail (request != NULL && name != NULL);
  g_ptr_array_add (request->headers, header_new (name, value));
}

void
cp_aws_http_request_add_query (CpAwsHttpRequest *request, const gchar *key,
    const gchar *value)
{
  CpAwsQueryParam *q;

  g_return_if_fail (request != NULL && key != NULL);
  q = g_new (CpAwsQueryParam, 1);
  q->key = g_strdup (key);
  q->value = g_strdup (value ? value : "");
  g_ptr_array_add (request->query, q);
}

static gint
hex_value (gchar c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes @len bytes of @s; '+' is kept as is, as AWS does. */
static gchar *
percent_decode (const gchar *s, gsize len, GError **error)
{
  GString *out = g_string_sized_new (len);
  gsize i;

  for (i = 0; i < len; i++) {
    gint hi, lo;

    if (s[i] != '%') {
      g_string_append_c (out, s[i]);
      continue;
    }
    hi = i + 1 < len ? hex_value (s[i + 1]) : -1;
    lo = i + 2 < len ? hex_value (s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
          "malformed percent-escape in query string at \"%.*s\"",
          (int) MIN (len - i, 3), s + i);
      g_string_free (out, TRUE);
      return NULL;
    }
    g_string_append_c (out, (gchar) (hi << 4 | lo));
    i += 2;
  }
  return g_string_free (out, FALSE);
}

gboolean
cp_aws_http_request_add_query_string (CpAwsHttpRequest *request,
    const gchar *query, GError **error)
{
  g_auto (GStrv) pairs = NULL;
  g_autoptr (GPtrArray) parsed = NULL;
  guint i;

  g_return_val_if_fail (request != NULL && query != NULL, FALSE);
  parsed = g_ptr_array_new_with_free_func (query_param_free);
  pairs = g_strsplit (query, "&", -1);
  for (i = 0; pairs[i] != NULL; i++) {
    const gchar *eq;
    CpAwsQueryParam *q;
    gchar *key;
    gchar *value;

    if (pairs[i][0] == '\0')
      continue;
    eq = strchr (pairs[i], '=');
    key = percent_decode (pairs[i],
        eq ? (gsize) (eq - pairs[i]) : strlen (pairs[i]), error);
    if (key == NULL)
      return FALSE;
    value = percent_decode (eq ? eq + 1 : "", eq ? strlen (eq + 1) : 0, error);
    if (value == NULL) {
      g_free (key);
      return FALSE;
    }
    q = g_new (CpAwsQueryParam, 1);
    q->key = key;
    q->value = value;
    g_ptr_array_add (parsed, q);
  }
  /* All or nothing: a bad escape leaves the request as it was. */
  for (i = 0; i < parsed->len; i++)
    g_ptr_array_add (request->query, g_ptr_array_index (parsed, i));
  g_ptr_array_set_free_func (parsed, NULL);
  return TRUE;
}

void
cp_aws_http_request_set_payload (CpAwsHttpRequest *request, const void *data,
    gsize len)
{
  g_return_if_fail (request != NULL);
  g_free (request->payload_hash);
  request->payload_hash = cp_aws_sha256_hex (data ? data : "", len);
}

void
cp_aws_http_request_set_payload_hash (CpAwsHttpRequest *request,
    const gchar *payload_hash)
{
  g_return_if_fail (request != NULL);
  g_free (request->payload_hash);
  request->payload_hash = g_strdup (payload_hash);
}

/* ---- helpers ---- */

static gboolean
is_unreserved (guchar c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void
append_uri_encoded (GString *out, const gchar *s, gboolean keep_slash)
{
  const guchar *p;

  for (p = (const guchar *) s; *p != '\0'; p++) {
    if (is_unreserved (*p) || (keep_slash && *p == '/'))
      g_string_append_c (out, (gchar) *p);
    else
      g_string_append_printf (out, "%%%02X", *p);
  }
}

gchar *
cp_aws_uri_encode (const gchar *s, gboolean keep_slash)
{
  GString *out;

  g_return_val_if_fail (s != NULL, NULL);
  out = g_string_sized_new (strlen (s) * 3 / 2 + 1);
  append_uri_encoded (out, s, keep_slash);
  return g_string_free (out, FALSE);
}

gchar *
cp_aws_sigv4_format_time (gint64 unix_seconds)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (unix_seconds);
  gchar *s;

  if (dt == NULL || g_date_time_get_year (dt) < 1000)
    return NULL;
  s = g_date_time_format (dt, "%Y%m%dT%H%M%SZ");
  return s;
}

static gboolean
parse_digits (const gchar *s, guint n, gint *out)
{
  guint i;
  gint v = 0;

  for (i = 0; i < n; i++) {
    if (!g_ascii_isdigit (s[i]))
      return FALSE;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return TRUE;
}

gboolean
cp_aws_sigv4_parse_time (const gchar *amz_date, gint64 *unix_seconds,
    GError **error)
{
  g_autoptr (GDateTime) dt = NULL;
  gint y, mo, d, h, mi, s;

  g_return_val_if_fail (amz_date != NULL && unix_seconds != NULL, FALSE);
  if (strlen (amz_date) != 16 || amz_date[8] != 'T' || amz_date[15] != 'Z'
      || !parse_digits (amz_date, 4, &y) || !parse_digits (amz_date + 4, 2, &mo)
      || !parse_digits (amz_date + 6, 2, &d)
      || !parse_digits (amz_date + 9, 2, &h)
      || !parse_digits (amz_date + 11, 2, &mi)
      || !parse_digits (amz_date + 13, 2, &s)) {
    g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
        "invalid date \"%s\": expected YYYYMMDDTHHMMSSZ, e.g. "
        "20130524T000000Z",
        amz_date);
    return FALSE;
  }
  /* g_date_time_new_utc checks month and day ranges; hour 24 and leap
   * seconds are not SigV4 dates either. */
  if (h > 23 || mi > 59 || s > 59
      || (dt = g_date_time_new_utc (y, mo, d, h, mi, s)) == NULL) {
    g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
        "invalid date \"%s\": no such calendar date or time", amz_date);
    return FALSE;
  }
  *unix_seconds = g_date_time_to_unix (dt);
  return TRUE;
}

/* ---- canonicalization ---- */

static gboolean
is_unsigned_header (const gchar *lower_name)
{
  static const gchar *const never_signed[] = {
      "authorization",
      "x-amz-date",
      "x-amz-security-token",
      "user-agent",
      "expect",
      "transfer-encoding",
      "connection",
      "x-amzn-trace-id",
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (never_signed); i++) {
    if (strcmp (lower_name, never_signed[i]) == 0)
      return TRUE;
  }
  return FALSE;
}

/* Trims, and turns each whitespace run (folded lines included) into one
 * space, as the SigV4 suites require. */
static void
append_canonical_value (GString *out, const gchar *value)
{
  const gchar *p = value;
  gboolean pending_space = FALSE;

  while (g_ascii_isspace (*p))
    p++;
  for (; *p != '\0'; p++) {
    if (g_ascii_isspace (*p)) {
      pending_space = TRUE;
      continue;
    }
    if (pending_space)
      g_string_append_c (out, ' ');
    pending_space = FALSE;
    g_string_append_c (out, *p);
  }
}

typedef struct
{
  gchar *name; /* lower case */
  gchar *value; /* canonical */
  guint order; /* input position: keeps duplicates stable */
} SignedHeader;

static void
signed_header_free (gpointer data)
{
  SignedHeader *h = data;

  g_free (h->name);
  g_free (h->value);
  g_free (h);
}

static void
add_signed_header (GPtrArray *list, const gchar *name, const gchar *value)
{
  SignedHeader *h = g_new (SignedHeader, 1);
  GString *v = g_string_new (NULL);

  h->name = g_ascii_strdown (name, -1);
  append_canonical_value (v, value);
  h->value = g_string_free (v, FALSE);
  h->order = list->len;
  g_ptr_array_add (list, h);
}

static gint
compare_signed_headers (gconstpointer a, gconstpointer b)
{
  const SignedHeader *ha = *(SignedHeader *const *) a;
  const SignedHeader *hb = *(SignedHeader *const *) b;
  gint c = strcmp (ha->name, hb->name);

  if (c != 0)
    return c;
  return ha->order < hb->order ? -1 : ha->order > hb->order;
}

/* Sorts @list and writes the canonical header block and the signed header
 * list, joining repeated names with ','. */
static void
canonicalize_headers (GPtrArray *list, GString *block, GString *names)
{
  guint i;

  g_ptr_array_sort (list, compare_signed_headers);
  for (i = 0; i < list->len; i++) {
    SignedHeader *h = g_ptr_array_index (list, i);

    if (i > 0
        && strcmp (h->name,
               ((SignedHeader *) g_ptr_array_index (list, i - 1))->name)
            == 0) {
      g_string_append_c (block, ',');
      g_string_append (block, h->value);
      continue;
    }
    if (i > 0) {
      g_string_append_c (block, '\n');
      g_string_append_c (names, ';');
    }
    g_string_append_printf (block, "%s:%s", h->name, h->value);
    g_string_append (names, h->name);
  }
  if (list->len > 0)
    g_string_append_c (block, '\n');
}

typedef struct
{
  gchar *key; /* encoded */
  gchar *value; /* encoded */
} EncodedParam;

static void
encoded_param_free (gpointer data)
{
  EncodedParam *p = data;

  g_free (p->key);
  g_free (p->value);
  g_free (p);
}

static void
add_encoded_param (GPtrArray *list, const gchar *key, const gchar *value)
{
  EncodedParam *p = g_new (EncodedParam, 1);

  p->key = cp_aws_uri_encode (key, FALSE);
  p->value = cp_aws_uri_encode (value, FALSE);
  g_ptr_array_add (list, p);
}

static gint
compare_encoded_params (gconstpointer a, gconstpointer b)
{
  const EncodedParam *pa = *(EncodedParam *const *) a;
  const EncodedParam *pb = *(EncodedParam *const *) b;
  gint c = strcmp (pa->key, pb->key);

  return c != 0 ? c : strcmp (pa->value, pb->value);
}

static gchar *
canonical_query (GPtrArray *params)
{
  GString *out = g_string_new (NULL);
  guint i;

  g_ptr_array_sort (params, compare_encoded_params);
  for (i = 0; i < params->len; i++) {
    EncodedParam *p = g_ptr_array_index (params, i);

    g_string_append_printf (out, "%s%s=%s", i ? "&" : "", p->key, p->value);
  }
  return g_string_free (out, FALSE);
}

/* The request's own parameters as sent: URL order, "key" alone when the
 * value is empty (as the SDKs send S3 sub-resources like "?uploads"). */
static gchar *
wire_query (const CpAwsHttpRequest *request, const gchar *auth_query)
{
  GString *out = g_string_new (NULL);
  guint i;

  for (i = 0; i < request->query->len; i++) {
    CpAwsQueryParam *q = g_ptr_array_index (request->query, i);

    if (i > 0)
      g_string_append_c (out, '&');
    append_uri_encoded (out, q->key, FALSE);
    if (q->value[0] != '\0') {
      g_string_append_c (out, '=');
      append_uri_encoded (out, q->value, FALSE);
    }
  }
  if (auth_query != NULL) {
    if (out->len > 0)
      g_string_append_c (out, '&');
    g_string_append (out, auth_query);
  }
  return g_string_free (out, FALSE);
}

/* RFC 3986 dot-segment removal plus the collapse of empty segments that
 * AWS services apply; a trailing '/' survives. */
static gchar *
normalize_path (const gchar *path)
{
  g_auto (GStrv) segments = g_strsplit (path, "/", -1);
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  GString *out = g_string_new ("/");
  gsize len = strlen (path);
  guint i;

  for (i = 0; segments[i] != NULL; i++) {
    const gchar *s = segments[i];

    if (s[0] == '\0' || strcmp (s, ".") == 0)
      continue;
    if (strcmp (s, "..") == 0) {
      if (kept->len > 0)
        g_ptr_array_remove_index (kept, kept->len - 1);
      continue;
    }
    g_ptr_array_add (kept, (gpointer) s);
  }
  for (i = 0; i < kept->len; i++) {
    if (i > 0)
      g_string_append_c (out, '/');
    g_string_append (out, g_ptr_array_index (kept, i));
  }
  if (kept->len > 0 && len > 0 && path[len - 1] == '/')
    g_string_append_c (out, '/');
  return g_string_free (out, FALSE);
}

/* ---- signing ---- */

typedef enum
{
  SIGN_HEADERS,
  SIGN_QUERY,
} SignMode;

static gboolean
is_s3 (const CpAwsSigningParams *params)
{
  return strcmp (params->service, "s3") == 0;
}

static gboolean
check_present (const gchar *value, const gchar *what, GError **error)
{
  if (value != NULL && value[0] != '\0')
    return TRUE;
  g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_MISSING,
      "cannot sign: no %s", what);
  return FALSE;
}

static gboolean
check_params (const CpAwsSigningParams *params, GError **error)
{
  g_return_val_if_fail (params != NULL, FALSE);
  return check_present (params->access_key_id, "access key id", error)
      && check_present (params->secret_access_key, "secret access key", error)
      && check_present (params->region, "region", error)
      && check_present (params->service, "service name", error);
}

static const gchar *
find_header (const CpAwsHttpRequest *request, const gchar *name)
{
  guint i;

  for (i = 0; i < request->headers->len; i++) {
    CpAwsHttpHeader *h = g_ptr_array_index (request->headers, i);

    if (g_ascii_strcasecmp (h->name, name) == 0)
      return h->value;
  }
  return NULL;
}

static gboolean
check_request (const CpAwsHttpRequest *request, GError **error)
{
  g_return_val_if_fail (request != NULL, FALSE);
  if (!check_present (request->method, "HTTP method", error))
    return FALSE;
  if (request->path == NULL || request->path[0] != '/') {
    g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
        "cannot sign: the request path \"%s\" does not start with '/'",
        request->path ? request->path : "");
    return FALSE;
  }
  /* HTTP/2 requests may sign :authority, their Host, under that name. */
  if (find_header (request, "host") == NULL
      && find_header (request, ":authority") == NULL) {
    g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_MISSING,
        "cannot sign: the request has no Host (or HTTP/2 :authority) "
        "header");
    return FALSE;
  }
  return TRUE;
}

static const gchar *
resolve_payload_hash (const CpAwsHttpRequest *request,
    const CpAwsSigningParams *params, SignMode mode)
{
  const gchar *header;

  if (request->payload_hash != NULL)
    return request->payload_hash;
  header = find_header (request, "x-amz-content-sha256");
  if (header != NULL)
    return header;
  if (mode == SIGN_QUERY && is_s3 (params))
    return CP_AWS_UNSIGNED_PAYLOAD;
  return EMPTY_SHA256;
}

static gboolean
sends_content_sha256 (const CpAwsSigningParams *params, const gchar *hash)
{
  return is_s3 (params) || (params->flags & CP_AWS_SIGV4_SIGN_CONTENT_SHA256)
      || g_str_has_prefix (hash, "STREAMING-");
}

static gchar *
canonical_uri (const CpAwsHttpRequest *request,
    const CpAwsSigningParams *params, gchar **wire_path)
{
  g_autofree gchar *normalized = NULL;

  *wire_path = request->path_encoded ? g_strdup (request->path)
                                     : cp_aws_uri_encode (request->path, TRUE);
  if (is_s3 (params))
    return g_strdup (*wire_path);
  if (params->flags & CP_AWS_SIGV4_NO_NORMALIZE_PATH)
    return cp_aws_uri_encode (*wire_path, TRUE);
  normalized = normalize_path (*wire_path);
  return cp_aws_uri_encode (normalized, TRUE);
}

static gchar *
make_scope (const gchar *amz_date, const CpAwsSigningParams *params)
{
  return g_strdup_printf ("%.8s/%s/%s/aws4_request", amz_date, params->region,
      params->service);
}

static void
derive_key (const CpAwsSigningParams *params, const gchar *amz_date,
    guint8 key[CP_AWS_SHA256_LEN])
{
  gchar day[9];

  memcpy (day, amz_date, 8);
  day[8] = '\0';
  cp_aws_derive_signing_key (params->secret_access_key, day, params->region,
      params->service, key);
}

static gchar *
hmac_hex (const guint8 key[CP_AWS_SHA256_LEN], const gchar *text)
{
  guint8 mac[CP_AWS_SHA256_LEN];

  cp_aws_hmac_sha256 (key, CP_AWS_SHA256_LEN, text, strlen (text), mac);
  return cp_aws_hex_encode (mac, sizeof (mac));
}

static gchar *
time_or_error (gint64 time, GError **error)
{
  gchar *amz_date = cp_aws_sigv4_format_time (time);

  if (amz_date == NULL)
    g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
        "cannot sign: signing time %" G_GINT64_FORMAT
        " is outside years 1000-9999",
        time);
  return amz_date;
}

void
cp_aws_sigv4_result_free (CpAwsSigV4Result *result)
{
  if (result == NULL)
    return;
  g_free (result->canonical_request);
  g_free (result->string_to_sign);
  g_free (result->signature);
  g_free (result->signed_headers);
  g_free (result->scope);
  g_free (result->amz_date);
  g_free (result->authorization);
  g_ptr_array_unref (result->headers);
  g_free (result->auth_query);
  g_free (result->path);
  g_free (result->query_string);
  g_free (result);
}

static void
append_auth_param (GString *out, const gchar *key, const gchar *value)
{
  if (out->len > 0)
    g_string_append_c (out, '&');
  g_string_append_printf (out, "%s=", key);
  append_uri_encoded (out, value, FALSE);
}

/* What one signing needs besides the request and the parameters. */
typedef struct
{
  const CpAwsHttpRequest *request;
  const CpAwsSigningParams *params;
  SignMode mode;
  const gchar *token; /* NULL without one */
  gboolean sign_token;
  gboolean add_sha256;
  const gchar *payload_hash;
  gchar *credential; /* "AKID/scope" */
  gchar *expires; /* presign only */
} SignContext;

/* The canonical header block; sets res->signed_headers. */
static gchar *
canonical_headers (const SignContext *sc, CpAwsSigV4Result *res)
{
  g_autoptr (GPtrArray) headers =
      g_ptr_array_new_with_free_func (signed_header_free);
  GString *block = g_string_new (NULL);
  GString *names = g_string_new (NULL);
  guint i;

  for (i = 0; i < sc->request->headers->len; i++) {
    CpAwsHttpHeader *h = g_ptr_array_index (sc->request->headers, i);
    g_autofree gchar *lower = g_ascii_strdown (h->name, -1);

    if (is_unsigned_header (lower)
        || (sc->add_sha256 && strcmp (lower, "x-amz-content-sha256") == 0))
      continue;
    add_signed_header (headers, h->name, h->value);
  }
  if (sc->mode == SIGN_HEADERS) {
    add_signed_header (headers, "x-amz-date", res->amz_date);
    if (sc->sign_token)
      add_signed_header (headers, "x-amz-security-token", sc->token);
    if (sc->add_sha256)
      add_signed_header (headers, "x-amz-content-sha256", sc->payload_hash);
  }
  canonicalize_headers (headers, block, names);
  res->signed_headers = g_string_free (names, FALSE);
  return g_string_free (block, FALSE);
}

static gchar *
canonical_query_of (const SignContext *sc, const CpAwsSigV4Result *res)
{
  g_autoptr (GPtrArray) params =
      g_ptr_array_new_with_free_func (encoded_param_free);
  guint i;

  for (i = 0; i < sc->request->query->len; i++) {
    CpAwsQueryParam *q = g_ptr_array_index (sc->request->query, i);

    add_encoded_param (params, q->key, q->value);
  }
  if (sc->mode == SIGN_QUERY) {
    add_encoded_param (params, "X-Amz-Algorithm", CP_AWS_SIGV4_ALGORITHM);
    add_encoded_param (params, "X-Amz-Credential", sc->credential);
    add_encoded_param (params, "X-Amz-Date", res->amz_date);
    add_encoded_param (params, "X-Amz-Expires", sc->expires);
    add_encoded_param (params, "X-Amz-SignedHeaders", res->signed_headers);
    if (sc->sign_token)
      add_encoded_param (params, "X-Amz-Security-Token", sc->token);
  }
  return canonical_query (params);
}

/* Fills canonical_request, string_to_sign, signature and path. */
static void
compute_signature (const SignContext *sc, CpAwsSigV4Result *res)
{
  g_autofree gchar *headers = canonical_headers (sc, res);
  g_autofree gchar *query = canonical_query_of (sc, res);
  g_autofree gchar *uri = canonical_uri (sc->request, sc->params, &res->path);
  g_autofree gchar *creq_hash = NULL;
  guint8 key[CP_AWS_SHA256_LEN];

  res->canonical_request =
      g_strdup_printf ("%s\n%s\n%s\n%s\n%s\n%s", sc->request->method, uri,
          query, headers, res->signed_headers, sc->payload_hash);
  creq_hash = cp_aws_sha256_hex (res->canonical_request,
      strlen (res->canonical_request));
  res->string_to_sign = g_strdup_printf ("%s\n%s\n%s\n%s",
      CP_AWS_SIGV4_ALGORITHM, res->amz_date, res->scope, creq_hash);
  derive_key (sc->params, res->amz_date, key);
  res->signature = hmac_hex (key, res->string_to_sign);
}

static void
add_auth_headers (const SignContext *sc, CpAwsSigV4Result *res)
{
  res->authorization = g_strdup_printf ("%s Credential=%s, "
                                        "SignedHeaders=%s, Signature=%s",
      CP_AWS_SIGV4_ALGORITHM, sc->credential, res->signed_headers,
      res->signature);
  if (sc->token != NULL)
    g_ptr_array_add (res->headers,
        header_new ("X-Amz-Security-Token", sc->token));
  g_ptr_array_add (res->headers, header_new ("X-Amz-Date", res->amz_date));
  if (sc->add_sha256)
    g_ptr_array_add (res->headers,
        header_new ("x-amz-content-sha256", sc->payload_hash));
  g_ptr_array_add (res->headers,
      header_new ("Authorization", res->authorization));
}

/* In the order aws-c-auth writes them; a token left out of the signature
 * still has to travel. */
static gchar *
auth_query (const SignContext *sc, const CpAwsSigV4Result *res)
{
  GString *q = g_string_new (NULL);

  append_auth_param (q, "X-Amz-Algorithm", CP_AWS_SIGV4_ALGORITHM);
  append_auth_param (q, "X-Amz-Credential", sc->credential);
  append_auth_param (q, "X-Amz-Date", res->amz_date);
  append_auth_param (q, "X-Amz-SignedHeaders", res->signed_headers);
  append_auth_param (q, "X-Amz-Expires", sc->expires);
  if (sc->token != NULL)
    append_auth_param (q, "X-Amz-Security-Token", sc->token);
  append_auth_param (q, "X-Amz-Signature", res->signature);
  return g_string_free (q, FALSE);
}

static gboolean
check_expires (const CpAwsSigningParams *params, GError **error)
{
  if (params->expires >= 1 && params->expires <= CP_AWS_PRESIGN_MAX_EXPIRES)
    return TRUE;
  g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
      "cannot presign: expiry of %" G_GINT64_FORMAT " seconds is outside "
      "1..%d",
      params->expires, CP_AWS_PRESIGN_MAX_EXPIRES);
  return FALSE;
}

static CpAwsSigV4Result *
sign (const CpAwsHttpRequest *request, const CpAwsSigningParams *params,
    SignMode mode, GError **error)
{
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autofree gchar *credential = NULL;
  g_autofree gchar *expires = NULL;
  SignContext sc = {0};

  if (!check_params (params, error) || !check_request (request, error)
      || (mode == SIGN_QUERY && !check_expires (params, error)))
    return NULL;

  res = g_new0 (CpAwsSigV4Result, 1);
  res->headers = g_ptr_array_new_with_free_func (header_free);
  res->amz_date = time_or_error (params->time, error);
  if (res->amz_date == NULL)
    return NULL;
  res->scope = make_scope (res->amz_date, params);

  sc.request = request;
  sc.params = params;
  sc.mode = mode;
  if (params->session_token != NULL && params->session_token[0] != '\0')
    sc.token = params->session_token;
  sc.sign_token =
      sc.token != NULL && !(params->flags & CP_AWS_SIGV4_OMIT_SESSION_TOKEN);
  sc.payload_hash = resolve_payload_hash (request, params, mode);
  sc.add_sha256 =
      mode == SIGN_HEADERS && sends_content_sha256 (params, sc.payload_hash);
  sc.credential = credential =
      g_strdup_printf ("%s/%s", params->access_key_id, res->scope);
  if (mode == SIGN_QUERY)
    sc.expires = expires =
        g_strdup_printf ("%" G_GINT64_FORMAT, params->expires);

  compute_signature (&sc, res);
  if (mode == SIGN_HEADERS)
    add_auth_headers (&sc, res);
  else
    res->auth_query = auth_query (&sc, res);
  res->query_string = wire_query (request, res->auth_query);
  return g_steal_pointer (&res);
}

CpAwsSigV4Result *
cp_aws_sigv4_sign_headers (const CpAwsHttpRequest *request,
    const CpAwsSigningParams *params, GError **error)
{
  return sign (request, params, SIGN_HEADERS, error);
}

CpAwsSigV4Result *
cp_aws_sigv4_presign (const CpAwsHttpRequest *request,
    const CpAwsSigningParams *params, GError **error)
{
  return sign (request, params, SIGN_QUERY, error);
}

/* ---- chained payload signatures ---- */

static gchar *
chain_string_to_sign (const gchar *amz_date, const gchar *scope,
    const gchar *previous, const gchar *headers_hash, const gchar *payload_hash)
{
  return g_strdup_printf ("%s\n%s\n%s\n%s\n%s\n%s", CHAIN_ALGORITHM, amz_date,
      scope, previous, headers_hash, payload_hash);
}

static gboolean
check_signature_hex (const gchar *sig, const gchar *what, GError **error)
{
  guint i;

  if (sig != NULL && strlen (sig) == 2 * CP_AWS_SHA256_LEN) {
    for (i = 0; sig[i] != '\0' && g_ascii_isxdigit (sig[i]); i++)
      ;
    if (sig[i] == '\0')
      return TRUE;
  }
  g_set_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID,
      "cannot sign the payload chain: the %s \"%s\" is not 64 hex digits", what,
      sig ? sig : "");
  return FALSE;
}

struct _CpAwsChunkSigner
{
  guint8 key[CP_AWS_SHA256_LEN];
  gchar *amz_date;
  gchar *scope;
  gchar *previous;
};

CpAwsChunkSigner *
cp_aws_chunk_signer_new (const CpAwsSigningParams *params,
    const gchar *seed_signature, GError **error)
{
  CpAwsChunkSigner *signer;
  gchar *amz_date;

  if (!check_params (params, error)
      || !check_signature_hex (seed_signature, "seed signature", error))
    return NULL;
  amz_date = time_or_error (params->time, error);
  if (amz_date == NULL)
    return NULL;
  signer = g_new0 (CpAwsChunkSigner, 1);
  signer->amz_date = amz_date;
  signer->scope = make_scope (amz_date, params);
  signer->previous = g_ascii_strdown (seed_signature, -1);
  derive_key (params, amz_date, signer->key);
  return signer;
}

void
cp_aws_chunk_signer_free (CpAwsChunkSigner *signer)
{
  if (signer == NULL)
    return;
  memset (signer->key, 0, sizeof (signer->key));
  g_free (signer->amz_date);
  g_free (signer->scope);
  g_free (signer->previous);
  g_free (signer);
}

gchar *
cp_aws_chunk_signer_sign (CpAwsChunkSigner *signer, const void *data, gsize len)
{
  g_autofree gchar *payload_hash = NULL;
  g_autofree gchar *sts = NULL;

  g_return_val_if_fail (signer != NULL, NULL);
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  payload_hash = cp_aws_sha256_hex (data ? data : "", len);
  sts = chain_string_to_sign (signer->amz_date, signer->scope, signer->previous,
      EMPTY_SHA256, payload_hash);
  g_free (signer->previous);
  signer->previous = hmac_hex (signer->key, sts);
  return g_strdup (signer->previous);
}

void
cp_aws_chunk_signer_frame (CpAwsChunkSigner *signer, const void *data,
    gsize len, GByteArray *out)
{
  g_autofree gchar *sig = NULL;
  g_autofree gchar *head = NULL;

  g_return_if_fail (out != NULL);
  sig = cp_aws_chunk_signer_sign (signer, data, len);
  g_return_if_fail (sig != NULL);
  head = g_strdup_printf ("%" G_GSIZE_MODIFIER "x;chunk-signature=%s\r\n", len,
      sig);
  g_byte_array_append (out, (const guint8 *) head, strlen (head));
  if (len > 0)
    g_byte_array_append (out, data, len);
  g_byte_array_append (out, (const guint8 *) "\r\n", 2);
}

static guint64
framed_chunk_length (guint64 len)
{
  guint64 hex_digits = 1;
  guint64 v;

  for (v = len; v >= 16; v >>= 4)
    hex_digits++;
  /* hex(len) ";chunk-signature=" sig "\r\n" data "\r\n" */
  return hex_digits + 17 + 2 * CP_AWS_SHA256_LEN + 2 + len + 2;
}

guint64
cp_aws_chunked_encoded_length (guint64 decoded_length, gsize chunk_size)
{
  guint64 full;
  guint64 rest;
  guint64 total;

  g_return_val_if_fail (chunk_size > 0, 0);
  full = decoded_length / chunk_size;
  rest = decoded_length % chunk_size;
  total = full * framed_chunk_length (chunk_size) + framed_chunk_length (0);
  if (rest > 0)
    total += framed_chunk_length (rest);
  return total;
}

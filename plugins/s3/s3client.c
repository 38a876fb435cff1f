/* callpipe — a small S3 REST client for s3sink and s3src */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "s3client.h"

#include "aws/awsconfig.h"
#include "aws/awscrypto.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "http/cphttprequest.h"

#include <string.h>

/* S3 error and result documents are a few hundred bytes. */
#define MAX_XML_BODY (64 * 1024)

struct _CpS3Client
{
  gchar *scheme;
  gchar *authority; /* host[:port] of the endpoint */
  gchar *base_path; /* endpoint path without slashes, or "" */
  gboolean path_style_set;
  gboolean path_style;
  gboolean endpoint_overridden;
  gchar *region;
  CpAwsCredentialsProvider *credentials;
  CpAwsRetryStrategy *retry;
  CpHttpOptions http_options;
};

GQuark
cp_s3_error_quark (void)
{
  return g_quark_from_static_string ("cp-s3-error-quark");
}

/* ---- locations ---- */

gboolean
cp_s3_location_parse (const gchar *uri, CpS3Location *location, GError **error)
{
  const gchar *rest;
  const gchar *slash;
  const gchar *p;

  memset (location, 0, sizeof (*location));
  if (uri == NULL || !g_str_has_prefix (uri, "s3://"))
    goto invalid;
  rest = uri + strlen ("s3://");
  slash = strchr (rest, '/');
  if (slash == NULL || slash == rest || slash[1] == '\0')
    goto invalid;
  for (p = rest; p < slash; p++) {
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-' && *p != '_')
      goto invalid;
  }
  location->bucket = g_strndup (rest, slash - rest);
  location->key = g_strdup (slash + 1);
  return TRUE;

invalid:
  g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_LOCATION,
      "'%s' is not an S3 location: expected s3://bucket/key",
      uri ? uri : "(null)");
  return FALSE;
}

void
cp_s3_location_clear (CpS3Location *location)
{
  g_clear_pointer (&location->bucket, g_free);
  g_clear_pointer (&location->key, g_free);
}

/* ---- protocol helpers ---- */

gchar *
cp_s3_part_etag (const guint8 md5[CP_S3_MD5_LEN])
{
  g_autofree gchar *hex = cp_aws_hex_encode (md5, CP_S3_MD5_LEN);

  return g_strdup_printf ("\"%s\"", hex);
}

gchar *
cp_s3_multipart_etag (GByteArray *part_md5s)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_MD5);

  g_checksum_update (sum, part_md5s->data, part_md5s->len);
  return g_strdup_printf ("\"%s-%u\"", g_checksum_get_string (sum),
      part_md5s->len / CP_S3_MD5_LEN);
}

guint64
cp_s3_max_object_size (guint64 part_size)
{
  return part_size * CP_S3_MAX_PARTS;
}

gchar *
cp_s3_complete_request_body (GPtrArray *part_etags)
{
  GString *body =
      g_string_new ("<CompleteMultipartUpload "
                    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
  guint i;

  for (i = 0; i < part_etags->len; i++) {
    g_autofree gchar *part =
        g_markup_printf_escaped ("<Part>"
                                 "<PartNumber>%u</PartNumber><ETag>%s</ETag></"
                                 "Part>",
            i + 1, (const gchar *) g_ptr_array_index (part_etags, i));

    g_string_append (body, part);
  }
  g_string_append (body, "</CompleteMultipartUpload>");
  return g_string_free (body, FALSE);
}

typedef struct
{
  const gchar *field;
  gchar *root;
  gchar *value;
  gboolean in_field;
  GString *text;
} XmlParse;

static void
xml_start (GMarkupParseContext *ctx, const gchar *name, const gchar **attrs,
    const gchar **values, gpointer user_data, GError **error)
{
  XmlParse *x = user_data;

  if (x->root == NULL)
    x->root = g_strdup (name);
  else if (x->value == NULL && !x->in_field && strcmp (name, x->field) == 0) {
    x->in_field = TRUE;
    g_string_truncate (x->text, 0);
  }
}

static void
xml_end (GMarkupParseContext *ctx, const gchar *name, gpointer user_data,
    GError **error)
{
  XmlParse *x = user_data;

  if (x->in_field && strcmp (name, x->field) == 0) {
    x->in_field = FALSE;
    x->value = g_strdup (x->text->str);
  }
}

static void
xml_text (GMarkupParseContext *ctx, const gchar *text, gsize len,
    gpointer user_data, GError **error)
{
  XmlParse *x = user_data;

  if (x->in_field)
    g_string_append_len (x->text, text, len);
}

gboolean
cp_s3_xml_parse (const gchar *xml, gsize len, const gchar *field, gchar **root,
    gchar **value, GError **error)
{
  static const GMarkupParser parser = {xml_start, xml_end, xml_text, NULL,
      NULL};
  XmlParse x = {field, NULL, NULL, FALSE, g_string_new (NULL)};
  GMarkupParseContext *ctx;
  gboolean ok;

  /* GMarkup rejects the <?xml?> declaration only when it is not first;
   * S3 always sends it first, which GMarkup accepts. */
  ctx = g_markup_parse_context_new (&parser, G_MARKUP_PREFIX_ERROR_POSITION, &x,
      NULL);
  ok = g_markup_parse_context_parse (ctx, xml, len, error)
      && g_markup_parse_context_end_parse (ctx, error);
  g_markup_parse_context_free (ctx);
  g_string_free (x.text, TRUE);
  if (ok && x.root == NULL) {
    g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_EMPTY,
        "Empty XML document");
    ok = FALSE;
  }
  if (!ok) {
    g_free (x.root);
    g_free (x.value);
    return FALSE;
  }
  if (root)
    *root = x.root;
  else
    g_free (x.root);
  if (value)
    *value = x.value;
  else
    g_free (x.value);
  return TRUE;
}

gboolean
cp_s3_metadata_validate (const gchar *name, const gchar *value, GError **error)
{
  const gchar *p;

  if (name == NULL || *name == '\0')
    goto bad_name;
  for (p = name; *p; p++) {
    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
      goto bad_name;
  }
  for (p = value; *p; p++) {
    if (*p < 0x20 || *p > 0x7e)
      goto bad_value;
  }
  return TRUE;

bad_name:
  g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_ARGUMENT,
      "Metadata name '%s' is not an HTTP header token", name ? name : "");
  return FALSE;
bad_value:
  g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_ARGUMENT,
      "Metadata '%s' has a value that is not printable ASCII", name);
  return FALSE;
}

/* ---- the client ---- */

/* Virtual-hosted style puts the bucket in a DNS name under a wildcard
 * certificate: one label, lower case, no dots. */
static gboolean
bucket_is_host_compatible (const gchar *bucket)
{
  gsize len = strlen (bucket);
  const gchar *p;

  if (len < 3 || len > 63 || bucket[0] == '-' || bucket[len - 1] == '-')
    return FALSE;
  for (p = bucket; *p; p++) {
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
      return FALSE;
  }
  return TRUE;
}

CpS3Client *
cp_s3_client_new (const CpS3ClientConfig *config, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  g_autofree gchar *endpoint = NULL;
  g_autofree gchar *region = NULL;
  CpS3Client *client;
  const gchar *path;
  gint port;

  region = cp_aws_resolve_region (config->region, NULL);
  if (region == NULL)
    region = g_strdup ("us-east-1");
  endpoint = cp_aws_resolve_endpoint_full (config->endpoint, "S3", "s3", region,
      error);
  if (endpoint == NULL)
    return NULL;
  uri = g_uri_parse (endpoint, G_URI_FLAGS_NONE, error);
  if (uri == NULL)
    return NULL;

  client = g_new0 (CpS3Client, 1);
  client->scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  port = g_uri_get_port (uri);
  if (port > 0
      && !((port == 80 && strcmp (client->scheme, "http") == 0)
          || (port == 443 && strcmp (client->scheme, "https") == 0)))
    client->authority = g_strdup_printf ("%s:%d", g_uri_get_host (uri), port);
  else
    client->authority = g_strdup (g_uri_get_host (uri));
  path = g_uri_get_path (uri);
  while (*path == '/')
    path++;
  client->base_path = g_strdup (path);
  while (g_str_has_suffix (client->base_path, "/"))
    client->base_path[strlen (client->base_path) - 1] = '\0';
  client->endpoint_overridden = (config->endpoint && *config->endpoint)
      || cp_aws_getenv ("AWS_ENDPOINT_URL_S3")
      || cp_aws_getenv ("AWS_ENDPOINT_URL");
  client->path_style_set = config->force_path_style_set;
  client->path_style = config->force_path_style;
  client->region = g_steal_pointer (&region);
  client->credentials =
      cp_aws_credentials_provider_new_default (config->access_key,
          config->secret_key, config->session_token, NULL);
  client->retry = cp_aws_retry_strategy_new (config->max_attempts);
  client->http_options.idle_timeout_ms = config->idle_timeout_ms;
  return client;
}

void
cp_s3_client_free (CpS3Client *client)
{
  if (client == NULL)
    return;
  g_free (client->scheme);
  g_free (client->authority);
  g_free (client->base_path);
  g_free (client->region);
  cp_aws_credentials_provider_free (client->credentials);
  cp_aws_retry_strategy_free (client->retry);
  g_free (client);
}

const gchar *
cp_s3_client_get_region (CpS3Client *client)
{
  return client->region;
}

static gboolean
use_path_style (CpS3Client *client, const gchar *bucket)
{
  if (client->path_style_set)
    return client->path_style || !bucket_is_host_compatible (bucket);
  return client->endpoint_overridden || !bucket_is_host_compatible (bucket);
}

/* Host and raw (decoded) path of a bucket or object (@key NULL). */
static void
address (CpS3Client *client, const gchar *bucket, const gchar *key,
    gchar **authority, gchar **path)
{
  const gchar *base = client->base_path;
  const gchar *sep = *base ? "/" : "";

  if (use_path_style (client, bucket)) {
    *authority = g_strdup (client->authority);
    *path = g_strconcat ("/", base, sep, bucket, key ? "/" : "", key, NULL);
  } else {
    *authority = g_strdup_printf ("%s.%s", bucket, client->authority);
    *path = g_strconcat ("/", base, sep, key, NULL);
  }
}

gchar *
cp_s3_client_object_url (CpS3Client *client, const CpS3Location *location)
{
  g_autofree gchar *authority = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *encoded = NULL;

  address (client, location->bucket, location->key, &authority, &path);
  encoded = cp_aws_uri_encode (path, TRUE);
  return g_strdup_printf ("%s://%s%s", client->scheme, authority, encoded);
}

/* ---- requests ---- */

typedef struct
{
  const gchar *operation; /* "UploadPart", for messages */
  const gchar *what; /* " (part 3)" or "", for messages */
  const gchar *method;
  const CpS3Location *location;
  gboolean bucket_only;
  const gchar *query[6]; /* key, value pairs, NULL-terminated */
  CpHttpHeaders *headers; /* signed and sent; may be NULL */
  GBytes *body;
  gsize max_body;
  /* S3 may answer CompleteMultipartUpload with 200 and an <Error> body. */
  gboolean error_in_200;
} S3Call;

typedef struct
{
  guint status;
  CpHttpHeaders *headers;
  GBytes *body;
} S3Response;

static void
s3_response_clear (S3Response *r)
{
  g_clear_pointer (&r->headers, cp_http_headers_unref);
  g_clear_pointer (&r->body, g_bytes_unref);
  r->status = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (S3Response, s3_response_clear)

static gboolean
cancellable_sleep (GCancellable *cancellable, gint64 delay_us, GError **error)
{
  GPollFD pfd;
  gboolean pollable;

  if (delay_us <= 0)
    return !g_cancellable_set_error_if_cancelled (cancellable, error);
  pollable = g_cancellable_make_pollfd (cancellable, &pfd);
  if (pollable) {
    g_poll (&pfd, 1, (gint) ((delay_us + 999) / 1000));
    g_cancellable_release_fd (cancellable);
  } else {
    g_usleep (delay_us);
  }
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

static CpHttpRequest *
build_request (CpS3Client *client, const S3Call *call,
    const gchar *payload_hash, GError **error)
{
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsHttpRequest) sreq = NULL;
  g_autoptr (CpAwsSigV4Result) signed_req = NULL;
  g_autofree gchar *authority = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *url = NULL;
  CpAwsSigningParams params = {0};
  CpHttpRequest *request;
  guint i;

  creds = cp_aws_credentials_provider_get (client->credentials, NULL, error);
  if (creds == NULL)
    return NULL;

  address (client, call->location->bucket,
      call->bucket_only ? NULL : call->location->key, &authority, &path);
  sreq = cp_aws_http_request_new (call->method, path);
  for (i = 0; call->query[i]; i += 2)
    cp_aws_http_request_add_query (sreq, call->query[i], call->query[i + 1]);
  cp_aws_http_request_add_header (sreq, "Host", authority);
  for (i = 0; call->headers && i < cp_http_headers_size (call->headers); i++) {
    const gchar *name, *value;

    cp_http_headers_nth (call->headers, i, &name, &value);
    cp_aws_http_request_add_header (sreq, name, value);
  }
  cp_aws_http_request_set_payload_hash (sreq, payload_hash);

  params.access_key_id = creds->access_key_id;
  params.secret_access_key = creds->secret_access_key;
  params.session_token = creds->session_token;
  params.region = client->region;
  params.service = "s3";
  params.time = g_get_real_time () / G_USEC_PER_SEC;
  signed_req = cp_aws_sigv4_sign_headers (sreq, &params, error);
  if (signed_req == NULL)
    return NULL;

  url = g_strdup_printf ("%s://%s%s%s%s", client->scheme, authority,
      signed_req->path, *signed_req->query_string ? "?" : "",
      signed_req->query_string);
  request = cp_http_request_new (call->method, url);
  cp_http_request_set_options (request, &client->http_options);
  if (call->headers)
    cp_http_request_add_headers (request, call->headers);
  for (i = 0; i < signed_req->headers->len; i++) {
    CpAwsHttpHeader *h = g_ptr_array_index (signed_req->headers, i);

    cp_http_request_add_header (request, h->name, h->value);
  }
  /* No 100-continue round trip: S3 answers a bad request after the body
   * just as well, and the body is in memory to send again. */
  cp_http_request_add_header (request, "Expect", "");
  if (call->body)
    cp_http_request_set_body (request, call->body);
  return request;
}

static void
describe (const S3Call *call, GString *msg)
{
  g_string_append_printf (msg, "%s%s of s3://%s/%s", call->operation,
      call->what ? call->what : "", call->location->bucket,
      call->bucket_only ? "" : call->location->key);
}

/* The error S3 answered with; its code goes to @code_out. */
static GError *
service_error (const S3Call *call, guint status, GBytes *body, gchar **code_out)
{
  gchar *code = NULL;
  g_autofree gchar *message = NULL;
  GString *msg = g_string_new (NULL);
  GError *error;
  gint domain_code = CP_S3_ERROR_SERVICE;
  gsize len = 0;
  const gchar *xml = body ? g_bytes_get_data (body, &len) : NULL;

  if (len > 0) {
    cp_s3_xml_parse (xml, len, "Code", NULL, &code, NULL);
    cp_s3_xml_parse (xml, len, "Message", NULL, &message, NULL);
  }
  if (code == NULL) {
    /* HEAD answers and some proxies carry no body. */
    switch (status) {
      case 404:
        code = g_strdup ("NotFound");
        break;
      case 403:
        code = g_strdup ("Forbidden");
        break;
      case 412:
        code = g_strdup ("PreconditionFailed");
        break;
      default:
        code = g_strdup_printf ("HTTP%u", status);
        break;
    }
  }
  if (status == 404 || strcmp (code, "NoSuchKey") == 0
      || strcmp (code, "NoSuchBucket") == 0
      || strcmp (code, "NoSuchUpload") == 0)
    domain_code = CP_S3_ERROR_NOT_FOUND;
  else if (status == 403)
    domain_code = CP_S3_ERROR_ACCESS_DENIED;
  else if (status == 412)
    domain_code = CP_S3_ERROR_PRECONDITION;

  describe (call, msg);
  g_string_append_printf (msg, " failed: %s (HTTP %u)", code, status);
  if (message && *message)
    g_string_append_printf (msg, ": %s", message);
  *code_out = code;
  error = g_error_new_literal (CP_S3_ERROR, domain_code, msg->str);
  g_string_free (msg, TRUE);
  return error;
}

gchar *
cp_s3_payload_hash (const gchar *scheme, CpHttpHeaders *headers, GBytes *body)
{
  gsize len = 0;
  gconstpointer data = body ? g_bytes_get_data (body, &len) : NULL;

  /* As the AWS SDKs do for S3 uploads over TLS: TLS protects the body on
   * the way and Content-MD5 makes S3 reject a damaged one, so a SHA-256
   * of every part is CPU spent for nothing. Over plain http:// the
   * signature is what protects the body: it stays signed. */
  if (len > 0 && g_ascii_strcasecmp (scheme, "https") == 0 && headers
      && cp_http_headers_get (headers, "Content-MD5"))
    return g_strdup (CP_AWS_UNSIGNED_PAYLOAD);
  return cp_aws_sha256_hex (data ? data : "", len);
}

/* Runs @call until it succeeds, fails for good, or the retry policy says
 * stop. A success is any 2xx (and, with error_in_200, a body that is
 * not an <Error>). */
static gboolean
s3_call (CpS3Client *client, const S3Call *call, S3Response *response,
    GCancellable *cancellable, GError **error)
{
  g_autofree gchar *payload_hash =
      cp_s3_payload_hash (client->scheme, call->headers, call->body);
  CpAwsRetryToken token;

  cp_aws_retry_token_init (&token);
  for (;;) {
    g_autoptr (CpHttpRequest) request = NULL;
    g_autoptr (GError) attempt_error = NULL;
    g_autoptr (GBytes) body = NULL;
    g_autofree gchar *root = NULL;
    g_autofree gchar *code = NULL;
    CpAwsRetryKind kind;
    gint64 delay_us = 0;
    guint status = 0;

    request = build_request (client, call, payload_hash, error);
    if (request == NULL)
      return FALSE;
    body = cp_http_request_fetch (request, call->max_body, cancellable,
        &attempt_error);
    if (body) {
      status = cp_http_request_get_status (request);
      if (status >= 200 && status < 300 && call->error_in_200) {
        gsize len;
        const gchar *xml = g_bytes_get_data (body, &len);

        if (len > 0 && cp_s3_xml_parse (xml, len, "Code", &root, NULL, NULL)
            && strcmp (root, "Error") == 0)
          status = 500;
      }
      if (status >= 200 && status < 300) {
        cp_aws_retry_strategy_record_success (client->retry, &token);
        response->status = status;
        response->headers = cp_http_headers_ref (
            cp_http_request_get_response_headers (request));
        response->body = g_steal_pointer (&body);
        return TRUE;
      }
      attempt_error = service_error (call, status, body, &code);
      kind = cp_aws_retry_classify_response (status, code);
    } else if (g_error_matches (attempt_error, G_IO_ERROR,
                   G_IO_ERROR_CANCELLED)) {
      g_propagate_error (error, g_steal_pointer (&attempt_error));
      return FALSE;
    } else {
      GString *msg = g_string_new (NULL);

      kind = cp_aws_retry_classify_error (attempt_error);
      describe (call, msg);
      g_prefix_error (&attempt_error, "%s failed: ", msg->str);
      g_string_free (msg, TRUE);
    }

    if (!cp_aws_retry_strategy_should_retry (client->retry, &token, kind,
            &delay_us)) {
      if (token.attempts > 1)
        g_prefix_error (&attempt_error, "After %u attempts: ", token.attempts);
      g_propagate_error (error, g_steal_pointer (&attempt_error));
      return FALSE;
    }
    if (!cancellable_sleep (cancellable, delay_us, error))
      return FALSE;
  }
}

/* ---- operations ---- */

static void
compute_md5 (GBytes *body, guint8 md5[CP_S3_MD5_LEN])
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_MD5);
  gsize len = CP_S3_MD5_LEN;
  gsize size;
  gconstpointer data = g_bytes_get_data (body, &size);

  g_checksum_update (sum, data, size);
  g_checksum_get_digest (sum, md5, &len);
}

static CpHttpHeaders *
object_headers (const CpS3ObjectOptions *options)
{
  CpHttpHeaders *headers = cp_http_headers_new ();
  guint i;

  if (options == NULL)
    return headers;
  if (options->content_type && *options->content_type)
    cp_http_headers_add (headers, "Content-Type", options->content_type);
  if (options->storage_class && *options->storage_class)
    cp_http_headers_add (headers, "x-amz-storage-class",
        options->storage_class);
  for (i = 0; options->metadata && i < cp_http_headers_size (options->metadata);
       i++) {
    const gchar *name, *value;
    g_autofree gchar *header = NULL;

    cp_http_headers_nth (options->metadata, i, &name, &value);
    header = g_strconcat ("x-amz-meta-", name, NULL);
    cp_http_headers_add (headers, header, value);
  }
  return headers;
}

static void
add_content_md5 (CpHttpHeaders *headers, const guint8 md5[CP_S3_MD5_LEN])
{
  g_autofree gchar *b64 = g_base64_encode (md5, CP_S3_MD5_LEN);

  cp_http_headers_add (headers, "Content-MD5", b64);
}

/* Under SSE-KMS and SSE-C, S3's ETags are not MD5s of the data. */
static gboolean
etag_is_md5 (CpHttpHeaders *headers)
{
  const gchar *sse =
      cp_http_headers_get (headers, "x-amz-server-side-encryption");

  if (sse && g_str_has_prefix (sse, "aws:kms"))
    return FALSE;
  return cp_http_headers_get (headers,
             "x-amz-server-side-encryption-customer-algorithm")
      == NULL;
}

static gboolean
check_etag (const S3Call *call, CpHttpHeaders *headers, const gchar *etag,
    const gchar *expected, GError **error)
{
  GString *msg;

  if (etag == NULL) {
    msg = g_string_new (NULL);
    describe (call, msg);
    g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_RESPONSE,
        "%s: the answer has no ETag", msg->str);
    g_string_free (msg, TRUE);
    return FALSE;
  }
  if (!etag_is_md5 (headers) || g_ascii_strcasecmp (etag, expected) == 0)
    return TRUE;
  msg = g_string_new (NULL);
  describe (call, msg);
  g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INTEGRITY,
      "%s: S3 stored ETag %s but the data sent gives %s", msg->str, etag,
      expected);
  g_string_free (msg, TRUE);
  return FALSE;
}

static gboolean
parse_result (const S3Call *call, S3Response *r, const gchar *want_root,
    const gchar *field, gchar **value, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *root = NULL;
  gsize len;
  const gchar *xml = g_bytes_get_data (r->body, &len);
  GString *msg;

  /* Only the field matters: S3-compatible stores name the root element
   * differently (moto answers <CompleteMultipartUploadResponse>). */
  if (cp_s3_xml_parse (xml, len, field, &root, value, &local)
      && strcmp (root, "Error") != 0 && *value != NULL && **value != '\0')
    return TRUE;
  g_clear_pointer (value, g_free);
  msg = g_string_new (NULL);
  describe (call, msg);
  g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_RESPONSE,
      "%s: expected <%s> with a <%s>, got %s", msg->str, want_root, field,
      local ? local->message : root);
  g_string_free (msg, TRUE);
  return FALSE;
}

gboolean
cp_s3_client_put_object (CpS3Client *client, const CpS3Location *location,
    GBytes *body, const CpS3ObjectOptions *options, gchar **etag,
    GCancellable *cancellable, GError **error)
{
  g_autoptr (CpHttpHeaders) headers = object_headers (options);
  g_auto (S3Response) r = {0};
  g_autofree gchar *expected = NULL;
  guint8 md5[CP_S3_MD5_LEN];
  S3Call call = {.operation = "PutObject",
      .method = "PUT",
      .location = location,
      .headers = headers,
      .body = body,
      .max_body = MAX_XML_BODY};
  const gchar *got;

  compute_md5 (body, md5);
  add_content_md5 (headers, md5);
  if (!s3_call (client, &call, &r, cancellable, error))
    return FALSE;
  expected = cp_s3_part_etag (md5);
  got = cp_http_headers_get (r.headers, "ETag");
  if (!check_etag (&call, r.headers, got, expected, error))
    return FALSE;
  *etag = g_strdup (got);
  return TRUE;
}

gboolean
cp_s3_client_create_multipart_upload (CpS3Client *client,
    const CpS3Location *location, const CpS3ObjectOptions *options,
    gchar **upload_id, GCancellable *cancellable, GError **error)
{
  g_autoptr (CpHttpHeaders) headers = object_headers (options);
  g_auto (S3Response) r = {0};
  S3Call call = {.operation = "CreateMultipartUpload",
      .method = "POST",
      .location = location,
      .query = {"uploads", "", NULL},
      .headers = headers,
      .max_body = MAX_XML_BODY};

  if (!s3_call (client, &call, &r, cancellable, error))
    return FALSE;
  return parse_result (&call, &r, "InitiateMultipartUploadResult", "UploadId",
      upload_id, error);
}

gboolean
cp_s3_client_upload_part (CpS3Client *client, const CpS3Location *location,
    const gchar *upload_id, guint part_number, GBytes *body,
    const guint8 md5[CP_S3_MD5_LEN], gchar **etag, GCancellable *cancellable,
    GError **error)
{
  g_autoptr (CpHttpHeaders) headers = cp_http_headers_new ();
  g_auto (S3Response) r = {0};
  g_autofree gchar *number = g_strdup_printf ("%u", part_number);
  g_autofree gchar *what = g_strdup_printf (" (part %u)", part_number);
  g_autofree gchar *expected = cp_s3_part_etag (md5);
  S3Call call = {.operation = "UploadPart",
      .what = what,
      .method = "PUT",
      .location = location,
      .query = {"partNumber", number, "uploadId", upload_id},
      .headers = headers,
      .body = body,
      .max_body = MAX_XML_BODY};
  const gchar *got;

  add_content_md5 (headers, md5);
  if (!s3_call (client, &call, &r, cancellable, error))
    return FALSE;
  got = cp_http_headers_get (r.headers, "ETag");
  if (!check_etag (&call, r.headers, got, expected, error))
    return FALSE;
  *etag = g_strdup (got);
  return TRUE;
}

gboolean
cp_s3_client_complete_multipart_upload (CpS3Client *client,
    const CpS3Location *location, const gchar *upload_id, GPtrArray *part_etags,
    GByteArray *part_md5s, gchar **etag, GCancellable *cancellable,
    GError **error)
{
  g_autoptr (CpHttpHeaders) headers = cp_http_headers_new ();
  gchar *xml = cp_s3_complete_request_body (part_etags);
  g_autoptr (GBytes) body = g_bytes_new_take (xml, strlen (xml));
  g_autofree gchar *expected = cp_s3_multipart_etag (part_md5s);
  g_autofree gchar *got = NULL;
  g_auto (S3Response) r = {0};
  S3Call call = {.operation = "CompleteMultipartUpload",
      .method = "POST",
      .location = location,
      .query = {"uploadId", upload_id, NULL},
      .headers = headers,
      .body = body,
      .max_body = MAX_XML_BODY,
      .error_in_200 = TRUE};

  cp_http_headers_add (headers, "Content-Type", "application/xml");
  if (!s3_call (client, &call, &r, cancellable, error))
    return FALSE;
  if (!parse_result (&call, &r, "CompleteMultipartUploadResult", "ETag", &got,
          error))
    return FALSE;
  if (!check_etag (&call, r.headers, got, expected, error))
    return FALSE;
  *etag = g_steal_pointer (&got);
  return TRUE;
}

gboolean
cp_s3_client_abort_multipart_upload (CpS3Client *client,
    const CpS3Location *location, const gchar *upload_id,
    GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_auto (S3Response) r = {0};
  S3Call call = {.operation = "AbortMultipartUpload",
      .method = "DELETE",
      .location = location,
      .query = {"uploadId", upload_id, NULL},
      .max_body = MAX_XML_BODY};

  if (s3_call (client, &call, &r, cancellable, &local))
    return TRUE;
  /* A retried abort whose first answer was lost finds the upload gone. */
  if (g_error_matches (local, CP_S3_ERROR, CP_S3_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
cp_s3_client_head_object (CpS3Client *client, const CpS3Location *location,
    guint64 *size, gchar **etag, GCancellable *cancellable, GError **error)
{
  g_auto (S3Response) r = {0};
  g_autoptr (GError) local = NULL;
  S3Call call = {.operation = "HeadObject",
      .method = "HEAD",
      .location = location,
      .max_body = MAX_XML_BODY};
  const gchar *length;
  guint64 value;

  if (!s3_call (client, &call, &r, cancellable, &local)) {
    g_autoptr (CpHttpHeaders) headers = cp_http_headers_new ();
    g_autoptr (GError) detail = NULL;
    g_auto (S3Response) r2 = {0};
    S3Call get = {.operation = "GetObject",
        .method = "GET",
        .location = location,
        .headers = headers,
        .max_body = MAX_XML_BODY};

    /* A HEAD answer has no body, so no S3 error code; ask for one byte
     * to learn whether the key or the bucket is missing, or why access
     * is denied. */
    if (local->domain == CP_S3_ERROR
        && (local->code == CP_S3_ERROR_NOT_FOUND
            || local->code == CP_S3_ERROR_ACCESS_DENIED)) {
      cp_http_headers_add (headers, "Range", "bytes=0-0");
      if (!s3_call (client, &get, &r2, cancellable, &detail)
          && detail->domain == CP_S3_ERROR)
        g_clear_error (&local), local = g_steal_pointer (&detail);
    }
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  length = cp_http_headers_get (r.headers, "Content-Length");
  if (length == NULL
      || !g_ascii_string_to_unsigned (length, 10, 0, G_MAXUINT64, &value,
          NULL)) {
    g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_RESPONSE,
        "HeadObject of s3://%s/%s: no valid Content-Length", location->bucket,
        location->key);
    return FALSE;
  }
  if (size)
    *size = value;
  if (etag)
    *etag = g_strdup (cp_http_headers_get (r.headers, "ETag"));
  return TRUE;
}

GBytes *
cp_s3_client_get_range (CpS3Client *client, const CpS3Location *location,
    guint64 offset, gsize length, const gchar *if_match,
    GCancellable *cancellable, GError **error)
{
  g_autoptr (CpHttpHeaders) headers = cp_http_headers_new ();
  g_autofree gchar *range = NULL;
  g_autofree gchar *what = NULL;
  g_auto (S3Response) r = {0};
  S3Call call = {.operation = "GetObject",
      .method = "GET",
      .location = location,
      .headers = headers,
      .max_body = MAX (length, MAX_XML_BODY)};

  g_return_val_if_fail (length > 0, NULL);
  range = g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
      offset, offset + length - 1);
  what = g_strdup_printf (" (%s)", range);
  call.what = what;
  cp_http_headers_add (headers, "Range", range);
  if (if_match && *if_match)
    cp_http_headers_add (headers, "If-Match", if_match);
  if (!s3_call (client, &call, &r, cancellable, error))
    return NULL;
  if ((r.status != 206 && !(r.status == 200 && offset == 0))
      || g_bytes_get_size (r.body) != length) {
    g_set_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_RESPONSE,
        "GetObject (%s) of s3://%s/%s: HTTP %u with %" G_GSIZE_FORMAT
        " bytes instead of %" G_GSIZE_FORMAT,
        range, location->bucket, location->key, r.status,
        g_bytes_get_size (r.body), length);
    return NULL;
  }
  return g_steal_pointer (&r.body);
}

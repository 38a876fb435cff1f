/* callpipe — AWS Signature Version 4
 *
 * Signs a description of an HTTP request, either with headers
 * (Authorization, X-Amz-Date, ...) or as a presigned URL (X-Amz-* query
 * parameters). Nothing here does I/O: the caller sends the request with
 * whatever HTTP client it has, adding what the result lists.
 *
 * Typical use (an S3 GET signed with headers):
 *
 *   g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("GET",
 *       "/my key.wav");
 *   cp_aws_http_request_add_header (req, "Host",
 *       "bucket.s3.eu-west-1.amazonaws.com");
 *   CpAwsSigningParams p = {
 *     .access_key_id = creds->access_key_id,
 *     .secret_access_key = creds->secret_access_key,
 *     .session_token = creds->session_token,
 *     .region = "eu-west-1", .service = "s3",
 *     .time = g_get_real_time () / G_USEC_PER_SEC,
 *   };
 *   g_autoptr (CpAwsSigV4Result) res = cp_aws_sigv4_sign_headers (req, &p,
 *       &error);
 *   then send res->path (already URI-encoded) with res->query_string,
 *   the request's headers and every header in res->headers.
 *
 * Rules, as the AWS SDKs apply them:
 * - service "s3": the path is not normalized and is URI-encoded once
 *   (each segment, '/' kept); header signing always sends and signs
 *   x-amz-content-sha256; presigned URLs sign UNSIGNED-PAYLOAD unless a
 *   payload hash is given.
 * - any other service: dot segments and empty segments are removed from
 *   the path (unless CP_AWS_SIGV4_NO_NORMALIZE_PATH) and the path as sent
 *   on the wire is URI-encoded once more ("double encoding").
 * - header names are lower-cased, values trimmed with inner whitespace
 *   runs (line folds included) collapsed to one space; repeated headers
 *   are joined with ',' in the order given; the list is sorted by name.
 * - query keys and values are RFC 3986 encoded, sorted by key then value;
 *   a parameter without a value is signed as "key=".
 * - Authorization, X-Amz-Date, X-Amz-Security-Token (and
 *   x-amz-content-sha256 when the signer adds it) in the request are
 *   ignored and replaced by the signer's; User-Agent, Expect,
 *   Transfer-Encoding, Connection and X-Amzn-Trace-Id are never signed,
 *   because proxies and SDKs rewrite them.
 */
#ifndef CP_AWS_SIGV4_H
#define CP_AWS_SIGV4_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_AWS_SIGV4_ERROR (cp_aws_sigv4_error_quark ())
GQuark cp_aws_sigv4_error_quark (void);

typedef enum
{
  CP_AWS_SIGV4_ERROR_MISSING,   /* a required parameter or header is absent */
  CP_AWS_SIGV4_ERROR_INVALID,   /* a parameter has a value SigV4 cannot use */
} CpAwsSigV4Error;

#define CP_AWS_SIGV4_ALGORITHM          "AWS4-HMAC-SHA256"
#define CP_AWS_UNSIGNED_PAYLOAD         "UNSIGNED-PAYLOAD"
#define CP_AWS_STREAMING_PAYLOAD        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define CP_AWS_STREAMING_EVENTS         "STREAMING-AWS4-HMAC-SHA256-EVENTS"
/* The longest X-Amz-Expires SigV4 accepts (7 days), in seconds. */
#define CP_AWS_PRESIGN_MAX_EXPIRES      604800

/* ---- request description ---- */

typedef struct
{
  gchar *name;
  gchar *value;
} CpAwsHttpHeader;

typedef struct
{
  gchar *key;                   /* decoded */
  gchar *value;                 /* decoded; "" for a key without value */
} CpAwsQueryParam;

typedef struct
{
  gchar *method;                /* "GET", "PUT", ... */
  /* The path, starting with '/'. Raw (decoded, e.g. "/my key+1.wav") when
   * path_encoded is FALSE, else exactly as it goes on the wire. */
  gchar *path;
  gboolean path_encoded;
  GPtrArray *query;             /* of CpAwsQueryParam, in URL order */
  GPtrArray *headers;           /* of CpAwsHttpHeader, in order; needs Host */
  /* Hex SHA-256 of the body, or a literal such as CP_AWS_UNSIGNED_PAYLOAD,
   * CP_AWS_STREAMING_PAYLOAD, CP_AWS_STREAMING_EVENTS. NULL means: the
   * value of an x-amz-content-sha256 header if the request has one, else
   * UNSIGNED-PAYLOAD for an S3 presigned URL, else the empty body's hash. */
  gchar *payload_hash;
} CpAwsHttpRequest;

/* @path is raw (decoded); set path_encoded afterwards for a wire path. */
CpAwsHttpRequest *cp_aws_http_request_new        (const gchar *method,
                                                  const gchar *path);
void              cp_aws_http_request_free       (CpAwsHttpRequest *request);
void              cp_aws_http_request_add_header (CpAwsHttpRequest *request,
                                                  const gchar *name,
                                                  const gchar *value);
/* @value NULL is the same as "". */
void              cp_aws_http_request_add_query  (CpAwsHttpRequest *request,
                                                  const gchar *key,
                                                  const gchar *value);
/* Appends the parameters of an encoded query string ("a=1&b&c=%20"):
 * percent-escapes are decoded, '+' stays a plus sign. Fails on a
 * malformed escape. */
gboolean          cp_aws_http_request_add_query_string
                                                 (CpAwsHttpRequest *request,
                                                  const gchar *query,
                                                  GError **error);
/* Sets payload_hash to the hex SHA-256 of @data. */
void              cp_aws_http_request_set_payload (CpAwsHttpRequest *request,
                                                   const void *data,
                                                   gsize len);
void              cp_aws_http_request_set_payload_hash
                                                 (CpAwsHttpRequest *request,
                                                  const gchar *payload_hash);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsHttpRequest, cp_aws_http_request_free)

/* ---- signing ---- */

typedef enum
{
  CP_AWS_SIGV4_FLAGS_NONE = 0,
  /* Sign the path as given (default rules only; S3 never normalizes). */
  CP_AWS_SIGV4_NO_NORMALIZE_PATH = 1 << 0,
  /* Header signing: send and sign x-amz-content-sha256 (always on for
   * S3 and for the STREAMING-* payload hashes, which need it). */
  CP_AWS_SIGV4_SIGN_CONTENT_SHA256 = 1 << 1,
  /* Leave the session token out of the signature and add it afterwards,
   * for the few services that want it so. */
  CP_AWS_SIGV4_OMIT_SESSION_TOKEN = 1 << 2,
} CpAwsSigV4Flags;

typedef struct
{
  const gchar *access_key_id;
  const gchar *secret_access_key;
  const gchar *session_token;   /* NULL for long-term keys */
  const gchar *region;          /* "us-east-1" */
  const gchar *service;         /* signing name: "s3", "kinesisvideo",
                                 * "transcribe", "bedrock", ... */
  gint64 time;                  /* signing time, unix seconds (UTC) */
  gint64 expires;               /* presign only: X-Amz-Expires, seconds,
                                 * 1 .. CP_AWS_PRESIGN_MAX_EXPIRES */
  CpAwsSigV4Flags flags;
} CpAwsSigningParams;

typedef struct
{
  gchar *canonical_request;
  gchar *string_to_sign;
  gchar *signature;             /* hex; the seed of a chunk/event chain */
  gchar *signed_headers;        /* "host;x-amz-date" */
  gchar *scope;                 /* "20150830/us-east-1/service/aws4_request" */
  gchar *amz_date;              /* "20150830T123600Z" */
  gchar *authorization;         /* header signing; NULL for presigning */
  /* Header signing: the headers to add, in this order (X-Amz-Security-Token,
   * X-Amz-Date, x-amz-content-sha256, Authorization, as present).
   * Presigning: empty. */
  GPtrArray *headers;           /* of CpAwsHttpHeader */
  /* Presigning: the X-Amz-* parameters, encoded, to append after the
   * request's own ones ("X-Amz-Algorithm=...&...&X-Amz-Signature=...").
   * Header signing: NULL. */
  gchar *auth_query;
  /* The path to send (URI-encoded once) and the whole query string to send
   * (the request's parameters encoded, then auth_query; may be ""). */
  gchar *path;
  gchar *query_string;
} CpAwsSigV4Result;

void cp_aws_sigv4_result_free (CpAwsSigV4Result *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsSigV4Result, cp_aws_sigv4_result_free)

/* Signs with an Authorization header. */
CpAwsSigV4Result *cp_aws_sigv4_sign_headers (const CpAwsHttpRequest *request,
                                             const CpAwsSigningParams *params,
                                             GError **error);

/* Signs as a presigned URL; params->expires must be set. The signed
 * headers are Host plus any other signable header of the request. */
CpAwsSigV4Result *cp_aws_sigv4_presign      (const CpAwsHttpRequest *request,
                                             const CpAwsSigningParams *params,
                                             GError **error);

/* ---- helpers ---- */

/* RFC 3986 percent-encoding of everything but A-Z a-z 0-9 - _ . ~ (and
 * '/' when @keep_slash), upper-case hex. */
gchar   *cp_aws_uri_encode          (const gchar *s, gboolean keep_slash);
/* "YYYYMMDDTHHMMSSZ" for unix seconds; NULL if out of range. */
gchar   *cp_aws_sigv4_format_time   (gint64 unix_seconds);
/* Parses "YYYYMMDDTHHMMSSZ" (UTC) strictly. */
gboolean cp_aws_sigv4_parse_time    (const gchar *amz_date,
                                     gint64 *unix_seconds,
                                     GError **error);

/* ---- S3 aws-chunked payload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) ----
 *
 * Sign the request with payload hash CP_AWS_STREAMING_PAYLOAD and the
 * headers Content-Encoding: aws-chunked, X-Amz-Decoded-Content-Length: N
 * and Content-Length: cp_aws_chunked_encoded_length (N, chunk size); the
 * result's signature seeds the chain. Then frame each chunk, and finally
 * an empty one. S3 wants every chunk but the last to be at least 8 KiB. */

typedef struct _CpAwsChunkSigner CpAwsChunkSigner;

CpAwsChunkSigner *cp_aws_chunk_signer_new   (const CpAwsSigningParams *params,
                                             const gchar *seed_signature,
                                             GError **error);
void              cp_aws_chunk_signer_free  (CpAwsChunkSigner *signer);
/* Signs the next chunk (empty = the final one) and advances the chain;
 * returns the hex signature. */
gchar            *cp_aws_chunk_signer_sign  (CpAwsChunkSigner *signer,
                                             const void *data,
                                             gsize len);
/* Signs the next chunk and appends its wire form
 * "hex(len);chunk-signature=<sig>\r\n<data>\r\n" to @out. */
void              cp_aws_chunk_signer_frame (CpAwsChunkSigner *signer,
                                             const void *data,
                                             gsize len,
                                             GByteArray *out);
/* The Content-Length of a @decoded_length body framed in @chunk_size
 * chunks, the final empty chunk included. */
guint64           cp_aws_chunked_encoded_length (guint64 decoded_length,
                                                 gsize chunk_size);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsChunkSigner, cp_aws_chunk_signer_free)

G_END_DECLS

#endif /* CP_AWS_SIGV4_H */

/* callpipe — a small S3 REST client for s3sink and s3src
 *
 * No GStreamer here: the elements keep their glue, this file speaks S3.
 * Every call is blocking on the caller's thread (the elements run them on
 * their worker threads), signs each attempt with SigV4 (service "s3",
 * fresh credentials from the default chain), retries with the SDK
 * "standard" policy (gst/aws/retry.h; one retry quota per client) and is
 * cancellable. A client is thread-safe: several threads may run calls on
 * it at once.
 *
 * Errors: CP_S3_ERROR for answers from the service (the message names the
 * operation, the S3 error code, the HTTP status and the object),
 * CP_HTTP_ERROR for transport failures, G_IO_ERROR_CANCELLED when
 * cancelled.
 */
#ifndef CP_S3_CLIENT_H
#define CP_S3_CLIENT_H

#include <gio/gio.h>

#include "http/cphttp.h"

G_BEGIN_DECLS

#define CP_S3_ERROR (cp_s3_error_quark ())
GQuark cp_s3_error_quark (void);

typedef enum
{
  CP_S3_ERROR_INVALID_LOCATION, /* not s3://bucket/key */
  CP_S3_ERROR_INVALID_ARGUMENT, /* a setting S3 cannot use */
  CP_S3_ERROR_NOT_FOUND,        /* NoSuchKey, NoSuchBucket, NoSuchUpload */
  CP_S3_ERROR_ACCESS_DENIED,    /* AccessDenied, signature errors, 403 */
  CP_S3_ERROR_PRECONDITION,     /* the object changed while being read */
  CP_S3_ERROR_INTEGRITY,        /* an ETag is not the one the data gives */
  CP_S3_ERROR_INVALID_RESPONSE, /* a body S3 would not send */
  CP_S3_ERROR_SERVICE,          /* any other S3 error response */
} CpS3Error;

/* S3's limits for multipart uploads. */
#define CP_S3_MIN_PART_SIZE   (5 * 1024 * 1024)
#define CP_S3_MAX_PART_SIZE   (G_GUINT64_CONSTANT (5) * 1024 * 1024 * 1024)
#define CP_S3_MAX_PARTS       10000
#define CP_S3_MD5_LEN         16

/* ---- locations ---- */

typedef struct
{
  gchar *bucket;
  gchar *key;                   /* raw (not URI-encoded), never empty */
} CpS3Location;

/* Parses "s3://bucket/key"; the key is everything after the first '/'
 * after the bucket, taken literally. */
gboolean cp_s3_location_parse (const gchar *uri, CpS3Location *location,
                               GError **error);
void     cp_s3_location_clear (CpS3Location *location);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CpS3Location, cp_s3_location_clear)

/* ---- the client ---- */

typedef struct
{
  /* NULL: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS's regional
   * endpoint (gst/aws/endpoint.h). */
  const gchar *endpoint;
  /* NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile, else us-east-1. */
  const gchar *region;
  /* Path-style URLs (endpoint/bucket/key) when TRUE, virtual-hosted
   * (bucket.endpoint/key) when FALSE; when unset, path style is used
   * for an overridden endpoint (local peers, S3-compatible stores) and
   * for buckets that cannot be a host name. */
  gboolean force_path_style;
  gboolean force_path_style_set;
  /* Explicit credentials; NULL: the default chain (gst/aws/credentials.h). */
  const gchar *access_key;
  const gchar *secret_key;
  const gchar *session_token;
  /* A request fails when no byte moves for this long; 0: never. */
  guint idle_timeout_ms;
  /* Attempts per request, the first included; 0: the SDK default (3). */
  guint max_attempts;
} CpS3ClientConfig;

typedef struct _CpS3Client CpS3Client;

CpS3Client  *cp_s3_client_new        (const CpS3ClientConfig *config,
                                      GError **error);
void         cp_s3_client_free       (CpS3Client *client);
const gchar *cp_s3_client_get_region (CpS3Client *client);
/* The URL of an object, without any signature (for messages and logs). */
gchar       *cp_s3_client_object_url (CpS3Client *client,
                                      const CpS3Location *location);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpS3Client, cp_s3_client_free)

/* Headers an object is created with: Content-Type, x-amz-storage-class,
 * x-amz-meta-*. NULL for none. */
typedef struct
{
  const gchar *content_type;
  const gchar *storage_class;
  CpHttpHeaders *metadata;      /* name (without x-amz-meta-) → value */
} CpS3ObjectOptions;

/* Returns FALSE (with a CP_S3_ERROR_INVALID_ARGUMENT naming the field)
 * unless @name is a header token and @value printable ASCII, as S3
 * user metadata sent in headers must be. */
gboolean cp_s3_metadata_validate (const gchar *name, const gchar *value,
                                  GError **error);

/* The object's ETag (quoted, as S3 sends it) goes to @etag. The body's
 * MD5 is sent as Content-MD5 and checked against the ETag (except under
 * SSE-KMS or SSE-C, where S3's ETags are not MD5s). */
gboolean cp_s3_client_put_object (CpS3Client *client,
                                  const CpS3Location *location,
                                  GBytes *body,
                                  const CpS3ObjectOptions *options,
                                  gchar **etag,
                                  GCancellable *cancellable,
                                  GError **error);

gboolean cp_s3_client_create_multipart_upload (CpS3Client *client,
                                               const CpS3Location *location,
                                               const CpS3ObjectOptions *options,
                                               gchar **upload_id,
                                               GCancellable *cancellable,
                                               GError **error);

/* @md5 is the part's MD5 (sent as Content-MD5, so S3 rejects a body
 * damaged on the way); the returned ETag is checked against it. */
gboolean cp_s3_client_upload_part (CpS3Client *client,
                                   const CpS3Location *location,
                                   const gchar *upload_id,
                                   guint part_number,
                                   GBytes *body,
                                   const guint8 md5[CP_S3_MD5_LEN],
                                   gchar **etag,
                                   GCancellable *cancellable,
                                   GError **error);

/* @part_etags holds the ETags UploadPart returned for parts 1..n, in
 * order; @part_md5s their binary MD5s (n * CP_S3_MD5_LEN bytes): the
 * completed ETag must be cp_s3_multipart_etag() of them. */
gboolean cp_s3_client_complete_multipart_upload (CpS3Client *client,
                                                 const CpS3Location *location,
                                                 const gchar *upload_id,
                                                 GPtrArray *part_etags,
                                                 GByteArray *part_md5s,
                                                 gchar **etag,
                                                 GCancellable *cancellable,
                                                 GError **error);

gboolean cp_s3_client_abort_multipart_upload (CpS3Client *client,
                                              const CpS3Location *location,
                                              const gchar *upload_id,
                                              GCancellable *cancellable,
                                              GError **error);

/* HeadObject: the size and the ETag (quoted), either may be NULL. */
gboolean cp_s3_client_head_object (CpS3Client *client,
                                   const CpS3Location *location,
                                   guint64 *size,
                                   gchar **etag,
                                   GCancellable *cancellable,
                                   GError **error);

/* GetObject of bytes [offset, offset + length); with @if_match set, a
 * replaced object is CP_S3_ERROR_PRECONDITION. Returns exactly @length
 * bytes (a short answer is an error). */
GBytes  *cp_s3_client_get_range (CpS3Client *client,
                                 const CpS3Location *location,
                                 guint64 offset,
                                 gsize length,
                                 const gchar *if_match,
                                 GCancellable *cancellable,
                                 GError **error);

/* ---- protocol helpers (exposed for the tests) ---- */

/* "\"" hex(MD5(md5_1 || ... || md5_n)) "-n\"" */
gchar   *cp_s3_multipart_etag        (GByteArray *part_md5s);
/* "\"" hex(md5) "\"" */
gchar   *cp_s3_part_etag             (const guint8 md5[CP_S3_MD5_LEN]);
/* The bytes a multipart upload of @part_size parts can hold. */
guint64  cp_s3_max_object_size       (guint64 part_size);
/* An S3 XML document: its root element's name and the text of the first
 * element named @field anywhere below it (NULL if absent). */
gboolean cp_s3_xml_parse             (const gchar *xml, gsize len,
                                      const gchar *field,
                                      gchar **root,
                                      gchar **value,
                                      GError **error);
gchar   *cp_s3_complete_request_body (GPtrArray *part_etags);
/* The x-amz-content-sha256 a request is signed with: UNSIGNED-PAYLOAD for
 * a body sent over https with a Content-MD5 header (what the AWS SDKs
 * send for S3 uploads over TLS), else the hex SHA-256 of the body (of ""
 * when @body is NULL). */
gchar   *cp_s3_payload_hash          (const gchar *scheme,
                                      CpHttpHeaders *headers,
                                      GBytes *body);

G_END_DECLS

#endif /* CP_S3_CLIENT_H */

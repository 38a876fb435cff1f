/* Kinesis Video Streams GetMedia client: GetDataEndpoint, the signed
 * GetMedia request and the service's error answers. No GStreamer here:
 * kvssrc keeps the element glue (threads, buffers, reconnects) and runs
 * the GetMedia request itself, since its body streams for up to 45 min.
 *
 * Requests are signed with SigV4 (service "kinesisvideo") with fresh
 * credentials from the default chain for each attempt. Errors: KVS_CLIENT_ERROR
 * for the service's answers (the message names the exception),
 * CP_AWS_ENDPOINT_ERROR / CP_AWS_CREDENTIALS_ERROR for configuration,
 * CP_HTTP_ERROR for transport failures, G_IO_ERROR_CANCELLED. */
#ifndef KVS_CLIENT_H
#define KVS_CLIENT_H

#include <gio/gio.h>

#include "aws/retry.h"
#include "http/cphttprequest.h"

G_BEGIN_DECLS

#define KVS_CLIENT_ERROR (kvs_client_error_quark ())
GQuark kvs_client_error_quark (void);

/* The exceptions of the GetDataEndpoint and GetMedia models. */
typedef enum
{
  KVS_CLIENT_ERROR_RESOURCE_NOT_FOUND,        /* 404 */
  KVS_CLIENT_ERROR_NOT_AUTHORIZED,            /* 401/403, bad signature */
  KVS_CLIENT_ERROR_CLIENT_LIMIT_EXCEEDED,     /* API call rate */
  KVS_CLIENT_ERROR_CONNECTION_LIMIT_EXCEEDED, /* GetMedia connections */
  KVS_CLIENT_ERROR_INVALID_ARGUMENT,
  KVS_CLIENT_ERROR_INVALID_ENDPOINT,
  KVS_CLIENT_ERROR_SERVICE,                   /* any other error answer */
  KVS_CLIENT_ERROR_INVALID_RESPONSE,          /* a body KVS would not send */
  KVS_CLIENT_ERROR_CONFIG,                    /* settings KVS cannot use */
} KvsClientError;

typedef enum
{
  KVS_START_NOW,
  KVS_START_EARLIEST,
  KVS_START_FRAGMENT_NUMBER,
  KVS_START_PRODUCER_TIMESTAMP,
  KVS_START_SERVER_TIMESTAMP,
  KVS_START_CONTINUATION_TOKEN,
} KvsStartSelectorType;

typedef struct
{
  KvsStartSelectorType type;
  const gchar *after_fragment_number;   /* FRAGMENT_NUMBER */
  guint64 timestamp_ms;                 /* *_TIMESTAMP, ms since the epoch */
  const gchar *continuation_token;      /* CONTINUATION_TOKEN */
} KvsStartSelector;

typedef struct
{
  const gchar *stream_arn;              /* one of stream_arn, stream_name */
  const gchar *stream_name;
  const gchar *region;                  /* NULL: the SDK chain */
  const gchar *endpoint;                /* NULL: the SDK chain */
  const gchar *access_key;              /* NULL: the credential chain */
  const gchar *secret_key;
  const gchar *session_token;
  guint idle_timeout_ms;                /* HTTP: no byte for this long */
} KvsClientConfig;

typedef struct _KvsClient KvsClient;

KvsClient *   kvs_client_new               (const KvsClientConfig * config,
                                            GError ** error);
void          kvs_client_free              (KvsClient * client);
const gchar * kvs_client_get_region        (KvsClient * client);
const gchar * kvs_client_get_endpoint      (KvsClient * client);

/* GetDataEndpoint (APIName GET_MEDIA), retried with the standard policy. */
gchar *       kvs_client_get_data_endpoint (KvsClient * client,
                                            GCancellable * cancellable,
                                            GError ** error);

/* A signed POST <data_endpoint>/getMedia, ready for callbacks and start. */
CpHttpRequest * kvs_client_new_get_media   (KvsClient * client,
                                            const gchar * data_endpoint,
                                            const KvsStartSelector * selector,
                                            GError ** error);

/* The GetMedia request body (public for the tests). */
gchar *       kvs_client_get_media_body    (const gchar * stream_arn,
                                            const gchar * stream_name,
                                            const KvsStartSelector * selector);

/* The error an answer with a non-2xx status carries; its retry class goes
 * to @kind. */
GError *      kvs_client_response_error    (const gchar * operation,
                                            guint status,
                                            CpHttpHeaders * headers,
                                            GBytes * body,
                                            CpAwsRetryKind * kind);
/* The client's retry quota, shared by every attempt it makes. */
CpAwsRetryStrategy * kvs_client_get_retry  (KvsClient * client);

const gchar * kvs_start_selector_type_name (KvsStartSelectorType type);

/* Sleeps @delay_us unless @cancellable fires first (FALSE then). */
gboolean      kvs_client_sleep             (GCancellable * cancellable,
                                            gint64 delay_us,
                                            GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvsClient, kvs_client_free)

G_END_DECLS

#endif /* KVS_CLIENT_H */

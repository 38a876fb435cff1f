/* callpipe — the AWS SDK "standard" retry mode
 *
 * Numbers as botocore's standard mode (botocore/retries/standard.py and
 * quota.py, also the SDKs and Tools Reference Guide, "Retry behavior"):
 *   - at most 3 attempts (the first try and two retries), configurable;
 *   - delay before retry i (1-based) = rand[0,1) * min(2^(i-1) s, 20 s),
 *     i.e. truncated binary exponential backoff with full jitter, base 1 s;
 *   - a retry quota shared by all requests of one client: 500 tokens, a
 *     retry costs 5 (10 after a timeout), a request that succeeds first
 *     time returns 1, one that succeeds after retries returns what its
 *     last retry cost. An empty bucket stops retries (a broken service
 *     is not hammered).
 * Pure logic: the caller sleeps (or arms a timer) for the delay. The
 * random source is injectable so tests are deterministic.
 */
#ifndef CP_AWS_RETRY_H
#define CP_AWS_RETRY_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_AWS_RETRY_DEFAULT_MAX_ATTEMPTS 3
#define CP_AWS_RETRY_BASE_DELAY_US        G_USEC_PER_SEC
#define CP_AWS_RETRY_MAX_BACKOFF_US       (20 * G_USEC_PER_SEC)
#define CP_AWS_RETRY_QUOTA_CAPACITY       500
#define CP_AWS_RETRY_COST                 5
#define CP_AWS_RETRY_TIMEOUT_COST         10
#define CP_AWS_RETRY_NO_RETRY_INCREMENT   1

typedef enum
{
  CP_AWS_RETRY_NONE,        /* success or a permanent failure */
  CP_AWS_RETRY_THROTTLING,  /* throttling error code, HTTP 429 */
  CP_AWS_RETRY_TRANSIENT,   /* 5xx, transient codes, connection errors */
  CP_AWS_RETRY_TIMEOUT,     /* connect/read timeout: costs more quota */
} CpAwsRetryKind;

/* @http_status: the response status; @error_code: the service's error
 * code (S3 <Code>, JSON "__type", or x-amzn-ErrorType), NULL if none.
 * Namespaced ("com.amazon...#ThrottlingException") and suffixed
 * ("ThrottlingException:http://...") forms are understood. */
CpAwsRetryKind cp_aws_retry_classify_response (guint http_status,
                                               const gchar *error_code);

/* Transport failures, in the CP_HTTP_ERROR domain (gst/http) and the
 * G_IO_ERROR and G_RESOLVER_ERROR domains: a timeout (CP_HTTP_ERROR_TIMEOUT,
 * G_IO_ERROR_TIMED_OUT) is TIMEOUT; connect failures, closed or reset
 * connections, protocol errors, HTTP/2 stream resets, unreachable networks
 * and resolver failures are TRANSIENT; anything else (cancelled, TLS,
 * invalid URL or argument, a body over the caller's limit) is NONE. */
CpAwsRetryKind cp_aws_retry_classify_error    (const GError *error);

gboolean cp_aws_retry_is_throttling_code (const gchar *error_code);
gboolean cp_aws_retry_is_transient_code  (const gchar *error_code);

/* Full-jitter delay before retry number @retry (1 for the first retry)
 * for a random value @r in [0, 1). */
gint64 cp_aws_retry_backoff_us (guint retry, gdouble r);

/* Returns a uniformly distributed value in [0, 1). */
typedef gdouble (*CpAwsRandomFunc) (gpointer user_data);

/* One per client, shared by its requests; thread-safe. */
typedef struct _CpAwsRetryStrategy CpAwsRetryStrategy;

/* @max_attempts 0 means CP_AWS_RETRY_DEFAULT_MAX_ATTEMPTS. */
CpAwsRetryStrategy *cp_aws_retry_strategy_new  (guint max_attempts);
void                cp_aws_retry_strategy_free (CpAwsRetryStrategy *strategy);

/* @func NULL restores g_random_double(). Set before sharing. */
void  cp_aws_retry_strategy_set_random (CpAwsRetryStrategy *strategy,
                                        CpAwsRandomFunc func,
                                        gpointer user_data);
guint cp_aws_retry_strategy_get_max_attempts (CpAwsRetryStrategy *strategy);
/* Tokens left in the retry quota. */
guint cp_aws_retry_strategy_get_quota (CpAwsRetryStrategy *strategy);

/* Per-request state, on the caller's stack; init before the first
 * attempt. */
typedef struct
{
  guint attempts;     /* attempts started, the current one included */
  guint last_cost;    /* quota taken by the last retry, 0 = none */
} CpAwsRetryToken;

void cp_aws_retry_token_init (CpAwsRetryToken *token);

/* Call after each failed attempt. Returns TRUE with the delay to wait
 * before the next attempt in @delay_us, or FALSE when the request must
 * fail now: @kind is NONE, attempts are used up, or the quota is empty. */
gboolean cp_aws_retry_strategy_should_retry (CpAwsRetryStrategy *strategy,
                                             CpAwsRetryToken *token,
                                             CpAwsRetryKind kind,
                                             gint64 *delay_us);

/* Call once when the request finally succeeds. */
void cp_aws_retry_strategy_record_success (CpAwsRetryStrategy *strategy,
                                           CpAwsRetryToken *token);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsRetryStrategy, cp_aws_retry_strategy_free)

G_END_DECLS

#endif /* CP_AWS_RETRY_H */

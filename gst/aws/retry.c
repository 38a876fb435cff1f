/* callpipe — the AWS SDK "standard" retry mode (see retry.h) */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "retry.h"

#include "http/cphttp.h"

#include <gio/gio.h>
#include <string.h>

/* botocore/retries/standard.py ThrottlingErrorDetector. */
static const gchar *const throttling_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    NULL,
};

/* botocore's TransientRetryableChecker, plus InternalError which S3 and
 * the other SDKs (Java v2, Go v2) retry. */
static const gchar *const transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalError",
    NULL,
};

struct _CpAwsRetryStrategy
{
  guint max_attempts;
  CpAwsRandomFunc random;
  gpointer random_data;
  GMutex lock;
  guint quota;
};

/* Services send "ns#Code" in JSON "__type" and "Code:http://..." in
 * x-amzn-ErrorType; only the bare code is compared. */
static gboolean
code_in_list (const gchar *error_code, const gchar *const *list)
{
  const gchar *start, *end;
  gsize len;
  guint i;

  if (error_code == NULL)
    return FALSE;
  start = strrchr (error_code, '#');
  start = start ? start + 1 : error_code;
  end = strchr (start, ':');
  len = end ? (gsize) (end - start) : strlen (start);
  for (i = 0; list[i] != NULL; i++) {
    if (strlen (list[i]) == len && strncmp (list[i], start, len) == 0)
      return TRUE;
  }
  return FALSE;
}

gboolean
cp_aws_retry_is_throttling_code (const gchar *error_code)
{
  return code_in_list (error_code, throttling_codes);
}

gboolean
cp_aws_retry_is_transient_code (const gchar *error_code)
{
  return code_in_list (error_code, transient_codes);
}

CpAwsRetryKind
cp_aws_retry_classify_response (guint http_status, const gchar *error_code)
{
  if (cp_aws_retry_is_throttling_code (error_code))
    return CP_AWS_RETRY_THROTTLING;
  if (cp_aws_retry_is_transient_code (error_code))
    return CP_AWS_RETRY_TRANSIENT;
  /* Java v2 treats a bare 429 as throttling, whatever the body says. */
  if (http_status == 429)
    return CP_AWS_RETRY_THROTTLING;
  switch (http_status) {
    case 500:
    case 502:
    case 503:
    case 504:
      return CP_AWS_RETRY_TRANSIENT;
    default:
      return CP_AWS_RETRY_NONE;
  }
}

static CpAwsRetryKind
classify_http_error (gint code)
{
  switch (code) {
    case CP_HTTP_ERROR_TIMEOUT:
      return CP_AWS_RETRY_TIMEOUT;
    case CP_HTTP_ERROR_CONNECT:
    case CP_HTTP_ERROR_CONNECTION_CLOSED:
    case CP_HTTP_ERROR_PROTOCOL:
    case CP_HTTP_ERROR_STREAM_RESET:
      return CP_AWS_RETRY_TRANSIENT;
    default:
      return CP_AWS_RETRY_NONE;
  }
}

CpAwsRetryKind
cp_aws_retry_classify_error (const GError *error)
{
  if (error == NULL)
    return CP_AWS_RETRY_NONE;
  if (error->domain == CP_HTTP_ERROR)
    return classify_http_error (error->code);
  if (error->domain == G_RESOLVER_ERROR)
    return CP_AWS_RETRY_TRANSIENT;
  if (error->domain != G_IO_ERROR)
    return CP_AWS_RETRY_NONE;
  switch (error->code) {
    case G_IO_ERROR_TIMED_OUT:
      return CP_AWS_RETRY_TIMEOUT;
    case G_IO_ERROR_CONNECTION_REFUSED:
    case G_IO_ERROR_CONNECTION_CLOSED: /* also BROKEN_PIPE */
    case G_IO_ERROR_NETWORK_UNREACHABLE:
    case G_IO_ERROR_HOST_NOT_FOUND: /* also HOST_UNREACHABLE */
    case G_IO_ERROR_NOT_CONNECTED:
    case G_IO_ERROR_PARTIAL_INPUT:
      return CP_AWS_RETRY_TRANSIENT;
    default:
      return CP_AWS_RETRY_NONE;
  }
}

gint64
cp_aws_retry_backoff_us (guint retry, gdouble r)
{
  guint exponent = retry > 0 ? retry - 1 : 0;
  gint64 ceiling = CP_AWS_RETRY_MAX_BACKOFF_US;

  /* 2^exponent s passes 20 s from exponent 5 on; stop shifting there so
   * that a large @retry cannot overflow. */
  if (exponent < 5)
    ceiling = MIN (ceiling, CP_AWS_RETRY_BASE_DELAY_US << exponent);
  r = CLAMP (r, 0.0, 1.0);
  return (gint64) (r * (gdouble) ceiling);
}

static gdouble
default_random (gpointer user_data)
{
  return g_random_double ();
}

CpAwsRetryStrategy *
cp_aws_retry_strategy_new (guint max_attempts)
{
  CpAwsRetryStrategy *strategy = g_new0 (CpAwsRetryStrategy, 1);

  strategy->max_attempts =
      max_attempts ? max_attempts : CP_AWS_RETRY_DEFAULT_MAX_ATTEMPTS;
  strategy->random = default_random;
  strategy->quota = CP_AWS_RETRY_QUOTA_CAPACITY;
  g_mutex_init (&strategy->lock);
  return strategy;
}

void
cp_aws_retry_strategy_free (CpAwsRetryStrategy *strategy)
{
  if (strategy == NULL)
    return;
  g_mutex_clear (&strategy->lock);
  g_free (strategy);
}

void
cp_aws_retry_strategy_set_random (CpAwsRetryStrategy *strategy,
    CpAwsRandomFunc func, gpointer user_data)
{
  strategy->random = func ? func : default_random;
  strategy->random_data = func ? user_data : NULL;
}

guint
cp_aws_retry_strategy_get_max_attempts (CpAwsRetryStrategy *strategy)
{
  return strategy->max_attempts;
}

guint
cp_aws_retry_strategy_get_quota (CpAwsRetryStrategy *strategy)
{
  guint quota;

  g_mutex_lock (&strategy->lock);
  quota = strategy->quota;
  g_mutex_unlock (&strategy->lock);
  return quota;
}

void
cp_aws_retry_token_init (CpAwsRetryToken *token)
{
  token->attempts = 1;
  token->last_cost = 0;
}

gboolean
cp_aws_retry_strategy_should_retry (CpAwsRetryStrategy *strategy,
    CpAwsRetryToken *token, CpAwsRetryKind kind, gint64 *delay_us)
{
  guint cost;
  gboolean acquired = FALSE;

  *delay_us = 0;
  if (kind == CP_AWS_RETRY_NONE || token->attempts >= strategy->max_attempts)
    return FALSE;

  cost = kind == CP_AWS_RETRY_TIMEOUT ? CP_AWS_RETRY_TIMEOUT_COST
                                      : CP_AWS_RETRY_COST;
  g_mutex_lock (&strategy->lock);
  if (strategy->quota >= cost) {
    strategy->quota -= cost;
    acquired = TRUE;
  }
  g_mutex_unlock (&strategy->lock);
  if (!acquired)
    return FALSE;

  token->last_cost = cost;
  *delay_us = cp_aws_retry_backoff_us (token->attempts,
      strategy->random (strategy->random_data));
  token->attempts++;
  return TRUE;
}

void
cp_aws_retry_strategy_record_success (CpAwsRetryStrategy *strategy,
    CpAwsRetryToken *token)
{
  guint refund =
      token->last_cost ? token->last_cost : CP_AWS_RETRY_NO_RETRY_INCREMENT;

  g_mutex_lock (&strategy->lock);
  strategy->quota =
      MIN (strategy->quota + refund, (guint) CP_AWS_RETRY_QUOTA_CAPACITY);
  g_mutex_unlock (&strategy->lock);
  token->last_cost = 0;
}

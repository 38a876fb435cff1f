/* Unit tests for the standard retry mode (gst/aws/retry.c). */
#include "aws/retry.h"
#include "http/cphttp.h"

#include <gio/gio.h>

static const gchar *const throttling[] = {
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
};

static void
test_classify_throttling (void)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (throttling); i++) {
    g_assert_true (cp_aws_retry_is_throttling_code (throttling[i]));
    /* A throttling code wins over a status that is not retryable. */
    g_assert_cmpint (cp_aws_retry_classify_response (400, throttling[i]), ==,
        CP_AWS_RETRY_THROTTLING);
  }
  g_assert_cmpint (cp_aws_retry_classify_response (400,
                       "com.amazonaws.kinesisvideo#ThrottlingException"),
      ==, CP_AWS_RETRY_THROTTLING);
  g_assert_cmpint (cp_aws_retry_classify_response (400,
                       "ThrottlingException:http://internal.amazon.com/coral/"),
      ==, CP_AWS_RETRY_THROTTLING);
  g_assert_cmpint (cp_aws_retry_classify_response (429, NULL), ==,
      CP_AWS_RETRY_THROTTLING);
  /* Prefixes and look-alikes are not throttling. */
  g_assert_false (cp_aws_retry_is_throttling_code ("Throttl"));
  g_assert_false (cp_aws_retry_is_throttling_code ("ThrottlingExceptionX"));
  g_assert_false (cp_aws_retry_is_throttling_code ("throttling"));
  g_assert_false (cp_aws_retry_is_throttling_code (NULL));
}

static void
test_classify_transient (void)
{
  static const gchar *const codes[] = {
      "RequestTimeout",
      "RequestTimeoutException",
      "InternalError",
  };
  static const guint statuses[] = {500, 502, 503, 504};
  guint i;

  for (i = 0; i < G_N_ELEMENTS (codes); i++) {
    g_assert_true (cp_aws_retry_is_transient_code (codes[i]));
    g_assert_cmpint (cp_aws_retry_classify_response (400, codes[i]), ==,
        CP_AWS_RETRY_TRANSIENT);
  }
  for (i = 0; i < G_N_ELEMENTS (statuses); i++) {
    g_assert_cmpint (cp_aws_retry_classify_response (statuses[i], NULL), ==,
        CP_AWS_RETRY_TRANSIENT);
  }
}

static void
test_classify_permanent (void)
{
  static const guint statuses[] = {200, 301, 400, 401, 403, 404, 409, 501};
  guint i;

  for (i = 0; i < G_N_ELEMENTS (statuses); i++) {
    g_assert_cmpint (cp_aws_retry_classify_response (statuses[i], NULL), ==,
        CP_AWS_RETRY_NONE);
  }
  g_assert_cmpint (cp_aws_retry_classify_response (403, "AccessDenied"), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (cp_aws_retry_classify_response (400, "ValidationException"),
      ==, CP_AWS_RETRY_NONE);
  g_assert_cmpint (cp_aws_retry_classify_response (404, "NoSuchKey"), ==,
      CP_AWS_RETRY_NONE);
}

static CpAwsRetryKind
classify (GQuark domain, gint code)
{
  g_autoptr (GError) error = g_error_new_literal (domain, code, "test");

  return cp_aws_retry_classify_error (error);
}

static void
test_classify_transport (void)
{
  g_assert_cmpint (classify (G_IO_ERROR, G_IO_ERROR_TIMED_OUT), ==,
      CP_AWS_RETRY_TIMEOUT);
  g_assert_cmpint (classify (G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED), ==,
      CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED), ==,
      CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE), ==,
      CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (G_RESOLVER_ERROR,
                       G_RESOLVER_ERROR_TEMPORARY_FAILURE),
      ==, CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (G_IO_ERROR, G_IO_ERROR_CANCELLED), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (classify (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (classify (G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (cp_aws_retry_classify_error (NULL), ==, CP_AWS_RETRY_NONE);
}

/* The HTTP client's own domain: what s3, kvs and the other clients get
 * back from gst/http. */
static void
test_classify_http (void)
{
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_TIMEOUT), ==,
      CP_AWS_RETRY_TIMEOUT);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECT), ==,
      CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECTION_CLOSED),
      ==, CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_PROTOCOL), ==,
      CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_STREAM_RESET), ==,
      CP_AWS_RETRY_TRANSIENT);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_TLS), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_INVALID_URL), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_TOO_LARGE), ==,
      CP_AWS_RETRY_NONE);
  g_assert_cmpint (classify (CP_HTTP_ERROR, CP_HTTP_ERROR_FAILED), ==,
      CP_AWS_RETRY_NONE);
  /* A code of another domain with the same value is not taken for it. */
  g_assert_cmpint (classify (G_IO_ERROR, CP_HTTP_ERROR_TIMEOUT), ==,
      CP_AWS_RETRY_NONE);
}

/* rand * min(2^(retry-1) s, 20 s). */
static void
test_backoff_bounds (void)
{
  guint retry;

  g_assert_cmpint (cp_aws_retry_backoff_us (1, 0.5), ==, 500000);
  g_assert_cmpint (cp_aws_retry_backoff_us (2, 0.5), ==, 1000000);
  g_assert_cmpint (cp_aws_retry_backoff_us (3, 0.5), ==, 2000000);
  g_assert_cmpint (cp_aws_retry_backoff_us (5, 0.5), ==, 8000000);
  g_assert_cmpint (cp_aws_retry_backoff_us (6, 0.5), ==, 10000000);
  g_assert_cmpint (cp_aws_retry_backoff_us (1000, 0.5), ==, 10000000);
  g_assert_cmpint (cp_aws_retry_backoff_us (G_MAXUINT, 0.5), ==, 10000000);

  for (retry = 1; retry < 64; retry++) {
    gint64 ceiling =
        MIN (G_USEC_PER_SEC << MIN (retry - 1, 5), 20 * G_USEC_PER_SEC);

    g_assert_cmpint (cp_aws_retry_backoff_us (retry, 0.0), ==, 0);
    g_assert_cmpint (cp_aws_retry_backoff_us (retry, 0.999999), <=, ceiling);
    g_assert_cmpint (cp_aws_retry_backoff_us (retry, 0.999999), >,
        ceiling - 100);
  }
}

typedef struct
{
  gdouble value;
  guint calls;
} FixedRandom;

static gdouble
fixed_random (gpointer user_data)
{
  FixedRandom *random = user_data;

  random->calls++;
  return random->value;
}

static void
test_strategy_attempts (void)
{
  g_autoptr (CpAwsRetryStrategy) strategy = cp_aws_retry_strategy_new (0);
  FixedRandom random = {0.5, 0};
  CpAwsRetryToken token;
  gint64 delay;

  cp_aws_retry_strategy_set_random (strategy, fixed_random, &random);
  g_assert_cmpuint (cp_aws_retry_strategy_get_max_attempts (strategy), ==, 3);

  cp_aws_retry_token_init (&token);
  g_assert_true (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_THROTTLING, &delay));
  g_assert_cmpint (delay, ==, 500000);
  g_assert_true (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_TRANSIENT, &delay));
  g_assert_cmpint (delay, ==, 1000000);
  /* Third attempt failed: no fourth. */
  g_assert_false (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_TRANSIENT, &delay));
  g_assert_cmpuint (random.calls, ==, 2);
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==,
      CP_AWS_RETRY_QUOTA_CAPACITY - 2 * CP_AWS_RETRY_COST);

  /* A permanent error is never retried and costs nothing. */
  cp_aws_retry_token_init (&token);
  g_assert_false (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_NONE, &delay));
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==,
      CP_AWS_RETRY_QUOTA_CAPACITY - 2 * CP_AWS_RETRY_COST);
}

static void
test_strategy_max_attempts_configurable (void)
{
  g_autoptr (CpAwsRetryStrategy) strategy = cp_aws_retry_strategy_new (5);
  FixedRandom random = {0.999, 0};
  CpAwsRetryToken token;
  gint64 delay;
  guint retries = 0;

  cp_aws_retry_strategy_set_random (strategy, fixed_random, &random);
  cp_aws_retry_token_init (&token);
  while (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_TRANSIENT, &delay)) {
    retries++;
    g_assert_cmpint (delay, <=, G_USEC_PER_SEC << (retries - 1));
  }
  g_assert_cmpuint (retries, ==, 4);
}

static void
test_strategy_quota (void)
{
  g_autoptr (CpAwsRetryStrategy) strategy = cp_aws_retry_strategy_new (0);
  FixedRandom random = {0.0, 0};
  CpAwsRetryToken token;
  gint64 delay;
  guint granted = 0;

  cp_aws_retry_strategy_set_random (strategy, fixed_random, &random);

  /* A success without retries returns 1 token, capped at the capacity. */
  cp_aws_retry_token_init (&token);
  cp_aws_retry_strategy_record_success (strategy, &token);
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==,
      CP_AWS_RETRY_QUOTA_CAPACITY);

  /* A success after a retry returns what the retry cost. */
  cp_aws_retry_token_init (&token);
  g_assert_true (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_TIMEOUT, &delay));
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==,
      CP_AWS_RETRY_QUOTA_CAPACITY - CP_AWS_RETRY_TIMEOUT_COST);
  cp_aws_retry_strategy_record_success (strategy, &token);
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==,
      CP_AWS_RETRY_QUOTA_CAPACITY);

  /* Timeouts cost 10: 500 tokens pay for exactly 50 retries. */
  for (;;) {
    cp_aws_retry_token_init (&token);
    if (!cp_aws_retry_strategy_should_retry (strategy, &token,
            CP_AWS_RETRY_TIMEOUT, &delay))
      break;
    granted++;
  }
  g_assert_cmpuint (granted, ==, 50);
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==, 0);
  g_assert_cmpint (delay, ==, 0);

  /* Successes refill the bucket one token at a time. */
  for (granted = 0; granted < 5; granted++) {
    cp_aws_retry_token_init (&token);
    cp_aws_retry_strategy_record_success (strategy, &token);
  }
  cp_aws_retry_token_init (&token);
  g_assert_false (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_TIMEOUT, &delay));
  g_assert_true (cp_aws_retry_strategy_should_retry (strategy, &token,
      CP_AWS_RETRY_THROTTLING, &delay));
  g_assert_cmpuint (cp_aws_retry_strategy_get_quota (strategy), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/aws/retry/classify-throttling", test_classify_throttling);
  g_test_add_func ("/aws/retry/classify-transient", test_classify_transient);
  g_test_add_func ("/aws/retry/classify-permanent", test_classify_permanent);
  g_test_add_func ("/aws/retry/classify-transport", test_classify_transport);
  g_test_add_func ("/aws/retry/classify-http", test_classify_http);
  g_test_add_func ("/aws/retry/backoff-bounds", test_backoff_bounds);
  g_test_add_func ("/aws/retry/strategy-attempts", test_strategy_attempts);
  g_test_add_func ("/aws/retry/strategy-max-attempts",
      test_strategy_max_attempts_configurable);
  g_test_add_func ("/aws/retry/strategy-quota", test_strategy_quota);
  return g_test_run ();
}

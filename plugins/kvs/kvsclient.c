/* Kinesis Video Streams GetMedia client (see kvsclient.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "kvsclient.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "aws/awscrypto.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/sigv4.h"

#define SIGNING_NAME "kinesisvideo"
#define SERVICE_ID "KINESIS_VIDEO"
#define HOST_PREFIX "kinesisvideo"
/* GetDataEndpoint answers and error bodies are small. */
#define MAX_SMALL_BODY (64 * 1024)
/* A small call that takes longer than this is stuck. */
#define SMALL_CALL_TIMEOUT_MS 30000

struct _KvsClient
{
  gchar *stream_arn;
  gchar *stream_name;
  gchar *region;
  gchar *endpoint;
  CpAwsCredentialsProvider *credentials;
  CpAwsRetryStrategy *retry;
  guint idle_timeout_ms;
};

GQuark
kvs_client_error_quark (void)
{
  return g_quark_from_static_string ("kvs-client-error-quark");
}

const gchar *
kvs_start_selector_type_name (KvsStartSelectorType type)
{
  switch (type) {
    case KVS_START_NOW:
      return "NOW";
    case KVS_START_EARLIEST:
      return "EARLIEST";
    case KVS_START_FRAGMENT_NUMBER:
      return "FRAGMENT_NUMBER";
    case KVS_START_PRODUCER_TIMESTAMP:
      return "PRODUCER_TIMESTAMP";
    case KVS_START_SERVER_TIMESTAMP:
      return "SERVER_TIMESTAMP";
    case KVS_START_CONTINUATION_TOKEN:
      return "CONTINUATION_TOKEN";
  }
  g_return_val_if_reached ("NOW");
}

KvsClient *
kvs_client_new (const KvsClientConfig *config, GError **error)
{
  g_autoptr (KvsClient) client = g_new0 (KvsClient, 1);

  if ((config->stream_arn == NULL || *config->stream_arn == '\0')
      && (config->stream_name == NULL || *config->stream_name == '\0')) {
    g_set_error_literal (error, KVS_CLIENT_ERROR, KVS_CLIENT_ERROR_CONFIG,
        "neither a stream ARN nor a stream name is set");
    return NULL;
  }
  if (config->stream_arn && *config->stream_arn)
    client->stream_arn = g_strdup (config->stream_arn);
  else
    client->stream_name = g_strdup (config->stream_name);
  client->region = cp_aws_resolve_region (config->region, NULL);
  if (client->region == NULL) {
    g_set_error_literal (error, KVS_CLIENT_ERROR, KVS_CLIENT_ERROR_CONFIG,
        "no AWS region: set the region, AWS_REGION or a profile's region");
    return NULL;
  }
  client->endpoint = cp_aws_resolve_endpoint_full (config->endpoint, SERVICE_ID,
      HOST_PREFIX, client->region, error);
  if (client->endpoint == NULL)
    return NULL;
  client->credentials =
      cp_aws_credentials_provider_new_default (config->access_key,
          config->secret_key, config->session_token, NULL);
  client->retry = cp_aws_retry_strategy_new (0);
  client->idle_timeout_ms = config->idle_timeout_ms;
  return g_steal_pointer (&client);
}

void
kvs_client_free (KvsClient *client)
{
  if (client == NULL)
    return;
  g_free (client->stream_arn);
  g_free (client->stream_name);
  g_free (client->region);
  g_free (client->endpoint);
  if (client->credentials)
    cp_aws_credentials_provider_free (client->credentials);
  if (client->retry)
    cp_aws_retry_strategy_free (client->retry);
  g_free (client);
}

const gchar *
kvs_client_get_region (KvsClient *client)
{
  return client->region;
}

const gchar *
kvs_client_get_endpoint (KvsClient *client)
{
  return client->endpoint;
}

CpAwsRetryStrategy *
kvs_client_get_retry (KvsClient *client)
{
  return client->retry;
}

gboolean
kvs_client_sleep (GCancellable *cancellable, gint64 delay_us, GError **error)
{
  GPollFD pfd;

  if (delay_us > 0 && g_cancellable_make_pollfd (cancellable, &pfd)) {
    g_poll (&pfd, 1, (gint) ((delay_us + 999) / 1000));
    g_cancellable_release_fd (cancellable);
  } else if (delay_us > 0) {
    g_usleep (delay_us);
  }
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* ---- requests ---- */

static void
add_stream (JsonBuilder *b, const gchar *stream_arn, const gchar *stream_name)
{
  if (stream_arn) {
    json_builder_set_member_name (b, "StreamARN");
    json_builder_add_string_value (b, stream_arn);
  } else {
    json_builder_set_member_name (b, "StreamName");
    json_builder_add_string_value (b, stream_name);
  }
}

static gchar *
builder_to_string (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);

  return json_to_string (root, FALSE);
}

gchar *
kvs_client_get_media_body (const gchar *stream_arn, const gchar *stream_name,
    const KvsStartSelector *selector)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  add_stream (b, stream_arn, stream_name);
  json_builder_set_member_name (b, "StartSelector");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "StartSelectorType");
  json_builder_add_string_value (b,
      kvs_start_selector_type_name (selector->type));
  switch (selector->type) {
    case KVS_START_FRAGMENT_NUMBER:
      json_builder_set_member_name (b, "AfterFragmentNumber");
      json_builder_add_string_value (b, selector->after_fragment_number);
      break;
    case KVS_START_PRODUCER_TIMESTAMP:
    case KVS_START_SERVER_TIMESTAMP:
      /* rest-json timestamps are epoch seconds, as a JSON number. */
      json_builder_set_member_name (b, "StartTimestamp");
      json_builder_add_double_value (b, selector->timestamp_ms / 1000.0);
      break;
    case KVS_START_CONTINUATION_TOKEN:
      json_builder_set_member_name (b, "ContinuationToken");
      json_builder_add_string_value (b, selector->continuation_token);
      break;
    default:
      break;
  }
  json_builder_end_object (b);
  json_builder_end_object (b);
  return builder_to_string (b);
}

static gchar *
get_data_endpoint_body (KvsClient *client)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  add_stream (b, client->stream_arn, client->stream_name);
  json_builder_set_member_name (b, "APIName");
  json_builder_add_string_value (b, "GET_MEDIA");
  json_builder_end_object (b);
  return builder_to_string (b);
}

/* A signed JSON POST of @body to @base_url + @path. */
static CpHttpRequest *
new_signed_post (KvsClient *client, const gchar *base_url, const gchar *path,
    const gchar *body, guint timeout_ms, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsHttpRequest) sreq = NULL;
  g_autoptr (CpAwsSigV4Result) signed_req = NULL;
  g_autofree gchar *full_path = NULL;
  g_autofree gchar *authority = NULL;
  g_autofree gchar *url = NULL;
  g_autoptr (GBytes) payload = NULL;
  CpAwsSigningParams params = {0};
  CpHttpOptions options = {0};
  const gchar *base_path;
  CpHttpRequest *request;
  gsize len = strlen (body);
  guint i;

  uri = g_uri_parse (base_url, G_URI_FLAGS_NONE, error);
  if (uri == NULL || g_uri_get_host (uri) == NULL) {
    g_clear_error (error);
    g_set_error (error, KVS_CLIENT_ERROR, KVS_CLIENT_ERROR_CONFIG,
        "invalid endpoint URL '%s'", base_url);
    return NULL;
  }
  creds = cp_aws_credentials_provider_get (client->credentials, NULL, error);
  if (creds == NULL)
    return NULL;

  base_path = g_uri_get_path (uri);
  full_path = g_strconcat (g_str_has_suffix (base_path, "/") ? "" : base_path,
      path, NULL);
  authority = g_uri_get_port (uri) > 0
      ? g_strdup_printf ("%s:%d", g_uri_get_host (uri), g_uri_get_port (uri))
      : g_strdup (g_uri_get_host (uri));
  sreq = cp_aws_http_request_new ("POST", full_path);
  cp_aws_http_request_add_header (sreq, "Host", authority);
  cp_aws_http_request_add_header (sreq, "Content-Type", "application/json");
  cp_aws_http_request_set_payload (sreq, body, len);

  params.access_key_id = creds->access_key_id;
  params.secret_access_key = creds->secret_access_key;
  params.session_token = creds->session_token;
  params.region = client->region;
  params.service = SIGNING_NAME;
  params.time = g_get_real_time () / G_USEC_PER_SEC;
  signed_req = cp_aws_sigv4_sign_headers (sreq, &params, error);
  if (signed_req == NULL)
    return NULL;

  url = g_strdup_printf ("%s://%s%s", g_uri_get_scheme (uri), authority,
      signed_req->path);
  request = cp_http_request_new ("POST", url);
  options.timeout_ms = timeout_ms;
  options.idle_timeout_ms = client->idle_timeout_ms;
  cp_http_request_set_options (request, &options);
  cp_http_request_add_header (request, "Content-Type", "application/json");
  for (i = 0; i < signed_req->headers->len; i++) {
    CpAwsHttpHeader *h = g_ptr_array_index (signed_req->headers, i);

    cp_http_request_add_header (request, h->name, h->value);
  }
  cp_http_request_add_header (request, "Expect", "");
  payload = g_bytes_new (body, len);
  cp_http_request_set_body (request, payload);
  return request;
}

CpHttpRequest *
kvs_client_new_get_media (KvsClient *client, const gchar *data_endpoint,
    const KvsStartSelector *selector, GError **error)
{
  g_autofree gchar *body = kvs_client_get_media_body (client->stream_arn,
      client->stream_name, selector);

  return new_signed_post (client, data_endpoint, "/getMedia", body, 0, error);
}

/* ---- errors ---- */

static const struct
{
  const gchar *code;
  KvsClientError error;
} exceptions[] = {
    {"ResourceNotFoundException", KVS_CLIENT_ERROR_RESOURCE_NOT_FOUND},
    {"NotAuthorizedException", KVS_CLIENT_ERROR_NOT_AUTHORIZED},
    {"AccessDeniedException", KVS_CLIENT_ERROR_NOT_AUTHORIZED},
    {"UnrecognizedClientException", KVS_CLIENT_ERROR_NOT_AUTHORIZED},
    {"InvalidSignatureException", KVS_CLIENT_ERROR_NOT_AUTHORIZED},
    {"MissingAuthenticationTokenException", KVS_CLIENT_ERROR_NOT_AUTHORIZED},
    {"ExpiredTokenException", KVS_CLIENT_ERROR_NOT_AUTHORIZED},
    {"ClientLimitExceededException", KVS_CLIENT_ERROR_CLIENT_LIMIT_EXCEEDED},
    {"ConnectionLimitExceededException",
        KVS_CLIENT_ERROR_CONNECTION_LIMIT_EXCEEDED},
    {"InvalidArgumentException", KVS_CLIENT_ERROR_INVALID_ARGUMENT},
    {"InvalidEndpointException", KVS_CLIENT_ERROR_INVALID_ENDPOINT},
};

/* "ns#Code", "Code:http://..." -> "Code". */
static gchar *
bare_code (const gchar *code)
{
  const gchar *hash = strrchr (code, '#');
  const gchar *start = hash ? hash + 1 : code;
  const gchar *colon = strchr (start, ':');

  return colon ? g_strndup (start, colon - start) : g_strdup (start);
}

static void
parse_error_body (GBytes *body, gchar **code, gchar **message)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  gsize len = 0;
  const gchar *data = body ? g_bytes_get_data (body, &len) : NULL;

  if (len == 0 || !json_parser_load_from_data (parser, data, len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return;
  obj = json_node_get_object (json_parser_get_root (parser));
  if (*code == NULL && json_object_has_member (obj, "__type"))
    *code = g_strdup (
        json_object_get_string_member_with_default (obj, "__type", NULL));
  if (json_object_has_member (obj, "message"))
    *message = g_strdup (
        json_object_get_string_member_with_default (obj, "message", NULL));
  else if (json_object_has_member (obj, "Message"))
    *message = g_strdup (
        json_object_get_string_member_with_default (obj, "Message", NULL));
}

GError *
kvs_client_response_error (const gchar *operation, guint status,
    CpHttpHeaders *headers, GBytes *body, CpAwsRetryKind *kind)
{
  const gchar *header = NULL;
  g_autofree gchar *raw = NULL;
  g_autofree gchar *code = NULL;
  g_autofree gchar *message = NULL;
  KvsClientError domain_code = KVS_CLIENT_ERROR_SERVICE;
  gsize i;

  if (headers) {
    header = cp_http_headers_get (headers, "x-amzn-ErrorType");
    if (header == NULL)
      header = cp_http_headers_get (headers, "x-amz-ErrorType");
  }
  raw = g_strdup (header);
  parse_error_body (body, &raw, &message);
  if (raw && *raw)
    code = bare_code (raw);
  else if (status == 404)
    code = g_strdup ("ResourceNotFoundException");
  else if (status == 401 || status == 403)
    code = g_strdup ("NotAuthorizedException");
  else
    code = g_strdup_printf ("HTTP%u", status);

  for (i = 0; i < G_N_ELEMENTS (exceptions); i++) {
    if (!strcmp (code, exceptions[i].code))
      domain_code = exceptions[i].error;
  }
  /* KVS's own limit exceptions come with a 400; the SDK retries them as
   * throttling, since the limits are per second (calls) or per stream
   * (connections, freed when an older session closes). */
  if (domain_code == KVS_CLIENT_ERROR_CLIENT_LIMIT_EXCEEDED
      || domain_code == KVS_CLIENT_ERROR_CONNECTION_LIMIT_EXCEEDED)
    *kind = CP_AWS_RETRY_THROTTLING;
  else
    *kind = cp_aws_retry_classify_response (status, code);
  return g_error_new (KVS_CLIENT_ERROR, domain_code,
      "%s failed: %s (HTTP %u)%s%s", operation, code, status,
      message && *message ? ": " : "", message ? message : "");
}

/* ---- GetDataEndpoint ---- */

static gchar *
parse_data_endpoint (GBytes *body, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  const gchar *endpoint;
  gsize len = 0;
  const gchar *data = g_bytes_get_data (body, &len);

  if (!json_parser_load_from_data (parser, data, len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    goto invalid;
  obj = json_node_get_object (json_parser_get_root (parser));
  endpoint =
      json_object_get_string_member_with_default (obj, "DataEndpoint", NULL);
  if (endpoint == NULL
      || (!g_str_has_prefix (endpoint, "https://")
          && !g_str_has_prefix (endpoint, "http://")))
    goto invalid;
  return g_strdup (endpoint);

invalid:
  g_set_error_literal (error, KVS_CLIENT_ERROR,
      KVS_CLIENT_ERROR_INVALID_RESPONSE,
      "GetDataEndpoint answered without a DataEndpoint URL");
  return NULL;
}

gchar *
kvs_client_get_data_endpoint (KvsClient *client, GCancellable *cancellable,
    GError **error)
{
  g_autofree gchar *body = get_data_endpoint_body (client);
  CpAwsRetryToken token;

  cp_aws_retry_token_init (&token);
  for (;;) {
    g_autoptr (CpHttpRequest) request = NULL;
    g_autoptr (GError) attempt_error = NULL;
    g_autoptr (GBytes) answer = NULL;
    CpAwsRetryKind kind;
    gint64 delay_us = 0;
    guint status;

    request = new_signed_post (client, client->endpoint, "/getDataEndpoint",
        body, SMALL_CALL_TIMEOUT_MS, error);
    if (request == NULL)
      return NULL;
    answer = cp_http_request_fetch (request, MAX_SMALL_BODY, cancellable,
        &attempt_error);
    if (answer != NULL) {
      status = cp_http_request_get_status (request);
      if (status >= 200 && status < 300) {
        cp_aws_retry_strategy_record_success (client->retry, &token);
        return parse_data_endpoint (answer, error);
      }
      attempt_error = kvs_client_response_error ("GetDataEndpoint", status,
          cp_http_request_get_response_headers (request), answer, &kind);
    } else if (g_error_matches (attempt_error, G_IO_ERROR,
                   G_IO_ERROR_CANCELLED)) {
      g_propagate_error (error, g_steal_pointer (&attempt_error));
      return NULL;
    } else {
      kind = cp_aws_retry_classify_error (attempt_error);
      g_prefix_error (&attempt_error,
          "GetDataEndpoint at %s failed: ", client->endpoint);
    }
    if (!cp_aws_retry_strategy_should_retry (client->retry, &token, kind,
            &delay_us)) {
      if (token.attempts > 1)
        g_prefix_error (&attempt_error, "After %u attempts: ", token.attempts);
      g_propagate_error (error, g_steal_pointer (&attempt_error));
      return NULL;
    }
    if (!kvs_client_sleep (cancellable, delay_us, error))
      return NULL;
  }
}

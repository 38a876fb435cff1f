/* callpipe — AWS credentials and the SDK default provider chain
 * (see credentials.h) */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#define G_LOG_DOMAIN "callpipe-aws"

#include "credentials.h"
#include "awsconfig.h"

#include <string.h>
#include <curl/curl.h>
#include <json-glib/json-glib.h>
#include <openssl/crypto.h>

#define CONTAINER_DEFAULT_BASE "http://169.254.170.2"
#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_DEFAULT_ENDPOINT_IPV6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL_S "21600"

/* An absent metadata service must not stall a pipeline start: botocore
 * gives IMDS 1 s and the container endpoint 2 s. */
#define CONNECT_TIMEOUT_MS 1000
#define IMDS_TIMEOUT_MS 1000
#define CONTAINER_TIMEOUT_MS 2000

/* Credential documents are a few hundred bytes. */
#define MAX_RESPONSE_SIZE (64 * 1024)

GQuark
cp_aws_credentials_error_quark (void)
{
  return g_quark_from_static_string ("cp-aws-credentials-error-quark");
}

typedef enum
{
  SOURCE_CHAIN,
  SOURCE_CONTAINER,
  SOURCE_IMDS,
} Source;

struct _CpAwsCredentialsProvider
{
  gchar *access_key;
  gchar *secret_key;
  gchar *session_token;
  gchar *profile;
  gchar *container_base;
  CpAwsClockFunc clock;
  gpointer clock_data;

  GMutex lock;
  GCond cond;
  CpAwsCredentials *cached;
  Source source; /* where the cached credentials came from */
  gboolean fetching;
  gint64 next_fetch_s; /* no refresh before, while cached are usable */
};

static gchar *
dup_or_null (const gchar *value)
{
  return value != NULL && value[0] != '\0' ? g_strdup (value) : NULL;
}

static void
free_secret (gchar *secret)
{
  if (secret == NULL)
    return;
  OPENSSL_cleanse (secret, strlen (secret));
  g_free (secret);
}

/* A string wiped before it is freed: tokens, keys, credential bodies. */
typedef gchar Secret;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Secret, free_secret)

CpAwsCredentials *
cp_aws_credentials_new (const gchar *access_key_id,
    const gchar *secret_access_key, const gchar *session_token)
{
  CpAwsCredentials *creds = g_new0 (CpAwsCredentials, 1);

  creds->access_key_id = g_strdup (access_key_id);
  creds->secret_access_key = g_strdup (secret_access_key);
  creds->session_token = dup_or_null (session_token);
  creds->source = "explicit";
  return creds;
}

CpAwsCredentials *
cp_aws_credentials_copy (const CpAwsCredentials *creds)
{
  CpAwsCredentials *copy;

  copy = cp_aws_credentials_new (creds->access_key_id, creds->secret_access_key,
      creds->session_token);
  copy->expiration = creds->expiration;
  copy->source = creds->source;
  return copy;
}

void
cp_aws_credentials_free (CpAwsCredentials *creds)
{
  if (creds == NULL)
    return;
  g_free (creds->access_key_id);
  free_secret (creds->secret_access_key);
  free_secret (creds->session_token);
  g_free (creds);
}

static CpAwsCredentials *
credentials_from (const gchar *access_key, const gchar *secret_key,
    const gchar *session_token, const gchar *source)
{
  CpAwsCredentials *creds =
      cp_aws_credentials_new (access_key, secret_key, session_token);

  creds->source = source;
  return creds;
}

/* ---- HTTP (container and instance metadata endpoints) ---- */

typedef struct
{
  GString *body;
  gboolean too_large;
  GCancellable *cancellable;
} Transfer;

static size_t
on_write (char *data, size_t size, size_t nmemb, void *user_data)
{
  Transfer *transfer = user_data;
  gsize len = size * nmemb;

  if (transfer->body->len + len > MAX_RESPONSE_SIZE) {
    transfer->too_large = TRUE;
    return 0;
  }
  g_string_append_len (transfer->body, data, len);
  return len;
}

static size_t
on_read_nothing (char *buffer, size_t size, size_t nitems, void *user_data)
{
  return 0;
}

static int
on_progress (void *user_data, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
  Transfer *transfer = user_data;

  return g_cancellable_is_cancelled (transfer->cancellable) ? 1 : 0;
}

static gpointer
init_curl (gpointer data)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
  return NULL;
}

/* @headers: "Name: value" strings, NULL-terminated. @what names the
 * endpoint in errors; header values (tokens) never appear in them. */
static gchar *
http_fetch (const gchar *what, const gchar *method, const gchar *url,
    const gchar *const *headers, glong timeout_ms, GCancellable *cancellable,
    glong *status, GError **error)
{
  static GOnce curl_once = G_ONCE_INIT;
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *list = NULL;
  Transfer transfer = {NULL, FALSE, cancellable};
  CURL *curl;
  CURLcode res;
  guint i;

  g_once (&curl_once, init_curl, NULL);
  curl = curl_easy_init ();
  if (curl == NULL) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_UNREACHABLE,
        "%s: cannot create a libcurl handle", what);
    return NULL;
  }
  for (i = 0; headers != NULL && headers[i] != NULL; i++)
    list = curl_slist_append (list, headers[i]);
  transfer.body = g_string_new (NULL);

  curl_easy_setopt (curl, CURLOPT_URL, url);
  curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Metadata endpoints are link-local or loopback: never via a proxy. */
  curl_easy_setopt (curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) CONNECT_TIMEOUT_MS);
  curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt (curl, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
  if (g_strcmp0 (method, "PUT") == 0) {
    curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt (curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) 0);
    curl_easy_setopt (curl, CURLOPT_READFUNCTION, on_read_nothing);
  }

  res = curl_easy_perform (curl);
  if (res == CURLE_OK)
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup (curl);
  curl_slist_free_all (list);

  if (res == CURLE_OK)
    return g_string_free (transfer.body, FALSE);

  g_string_free (transfer.body, TRUE);
  if (res == CURLE_ABORTED_BY_CALLBACK) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
        "%s: request cancelled", what);
  } else if (transfer.too_large) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID, "%s: response over %u bytes", what,
        MAX_RESPONSE_SIZE);
  } else {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_UNREACHABLE, "%s: %s %s: %s", what, method,
        url, errbuf[0] ? errbuf : curl_easy_strerror (res));
  }
  return NULL;
}

/* ---- JSON credential documents (container and IMDS) ---- */

static const gchar *
member_string (JsonObject *object, const gchar *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
invalid (GError **error, const gchar *what, const gchar *why)
{
  g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID, "%s: %s", what, why);
  return FALSE;
}

static CpAwsCredentials *
parse_credentials_json (const gchar *what, const gchar *body,
    const gchar *source, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) parse_error = NULL;
  g_autoptr (GDateTime) expiration = NULL;
  JsonObject *object;
  const gchar *code, *access_key, *secret_key, *token, *expires;
  CpAwsCredentials *creds;

  if (!json_parser_load_from_data (parser, body, -1, &parse_error)) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID, "%s: response is not JSON: %s", what,
        parse_error->message);
    return NULL;
  }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    invalid (error, what, "response is not a JSON object");
    return NULL;
  }
  object = json_node_get_object (json_parser_get_root (parser));

  code = member_string (object, "Code");
  if (code != NULL && strcmp (code, "Success") != 0) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID, "%s: answered Code \"%s\"", what,
        code);
    return NULL;
  }
  access_key = member_string (object, "AccessKeyId");
  secret_key = member_string (object, "SecretAccessKey");
  token = member_string (object, "Token");
  expires = member_string (object, "Expiration");
  if (access_key == NULL || access_key[0] == '\0' || secret_key == NULL
      || secret_key[0] == '\0') {
    invalid (error, what, "response lacks AccessKeyId or SecretAccessKey");
    return NULL;
  }
  if (expires != NULL) {
    expiration = g_date_time_new_from_iso8601 (expires, NULL);
    if (expiration == NULL) {
      g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
          CP_AWS_CREDENTIALS_ERROR_INVALID,
          "%s: Expiration \"%s\" is not an ISO 8601 time with a zone", what,
          expires);
      return NULL;
    }
  }

  creds = credentials_from (access_key, secret_key, token, source);
  creds->expiration = expiration ? g_date_time_to_unix (expiration) : 0;
  return creds;
}

/* A header value that a server or a file hands us must not smuggle in
 * another header. */
static gboolean
is_header_safe (const gchar *value)
{
  return strpbrk (value, "\r\n") == NULL;
}

/* ---- container credentials (ECS task role, EKS Pod Identity) ---- */

static gboolean
container_configured (void)
{
  return cp_aws_getenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != NULL
      || cp_aws_getenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI") != NULL;
}

static gboolean
is_loopback_literal (const gchar *host)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (host);

  return address != NULL && g_inet_address_get_is_loopback (address);
}

/* The SDK rule: https to any host; plain http only to loopback or to
 * the ECS and EKS agents, so a token is never sent in clear elsewhere. */
static gboolean
check_full_uri (const gchar *url, GError **error)
{
  static const gchar *const agents[] = {"169.254.170.2", "169.254.170.23",
      "fd00:ec2::23", "localhost", NULL};
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  const gchar *scheme, *host;

  if (uri == NULL || g_uri_get_host (uri) == NULL) {
    return invalid (error, "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "not an absolute URL");
  }
  scheme = g_uri_get_scheme (uri);
  host = g_uri_get_host (uri);
  if (g_ascii_strcasecmp (scheme, "https") == 0)
    return TRUE;
  if (g_ascii_strcasecmp (scheme, "http") != 0) {
    return invalid (error, "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "scheme must be http or https");
  }
  if (g_strv_contains (agents, host) || is_loopback_literal (host))
    return TRUE;
  g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID,
      "AWS_CONTAINER_CREDENTIALS_FULL_URI: http host '%s' is not allowed "
      "(only loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23; use "
      "https for other hosts)",
      host);
  return FALSE;
}

/* The token file wins over the token variable (EKS Pod Identity rotates
 * the file, so it is read on every fetch). */
static gboolean
container_auth_header (gchar **header, GError **error)
{
  const gchar *path = cp_aws_getenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const gchar *value = cp_aws_getenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  g_autofree gchar *contents = NULL;
  g_autoptr (GError) read_error = NULL;

  *header = NULL;
  if (path != NULL) {
    if (!g_file_get_contents (path, &contents, NULL, &read_error)) {
      g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
          CP_AWS_CREDENTIALS_ERROR_INVALID,
          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %s", read_error->message);
      return FALSE;
    }
    value = g_strstrip (contents);
  }
  if (value == NULL)
    return TRUE;
  if (value[0] == '\0' || !is_header_safe (value)) {
    return invalid (error, "container authorization token",
        "empty or contains a line break");
  }
  *header = g_strconcat ("Authorization: ", value, NULL);
  return TRUE;
}

static CpAwsCredentials *
fetch_container (CpAwsCredentialsProvider *provider, GCancellable *cancellable,
    GError **error)
{
  const gchar *relative =
      cp_aws_getenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  g_autofree gchar *url = NULL;
  g_autoptr (Secret) auth = NULL;
  g_autoptr (Secret) body = NULL;
  g_autofree gchar *what = NULL;
  const gchar *headers[] = {"Accept: application/json", NULL, NULL};
  glong status = 0;

  if (relative != NULL) {
    url = g_strconcat (provider->container_base, relative[0] == '/' ? "" : "/",
        relative, NULL);
  } else {
    url = g_strdup (cp_aws_getenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    if (!check_full_uri (url, error))
      return NULL;
  }
  if (!container_auth_header (&auth, error))
    return NULL;
  headers[1] = auth;

  what = g_strdup_printf ("container credentials (%s)", url);
  body = http_fetch (what, "GET", url, headers, CONTAINER_TIMEOUT_MS,
      cancellable, &status, error);
  if (body == NULL)
    return NULL;
  if (status != 200) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_UNREACHABLE, "%s: HTTP status %ld", what,
        status);
    return NULL;
  }
  return parse_credentials_json (what, body, "container", error);
}

/* ---- EC2 instance metadata, IMDSv2 ---- */

static gchar *
imds_endpoint (void)
{
  const gchar *endpoint = cp_aws_getenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  const gchar *mode = cp_aws_getenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
  gsize len;

  if (endpoint == NULL) {
    endpoint = mode != NULL && g_ascii_strcasecmp (mode, "IPv6") == 0
        ? IMDS_DEFAULT_ENDPOINT_IPV6
        : IMDS_DEFAULT_ENDPOINT;
  }
  len = strlen (endpoint);
  while (len > 0 && endpoint[len - 1] == '/')
    len--;
  return g_strndup (endpoint, len);
}

static gboolean
imds_disabled (void)
{
  const gchar *disabled = cp_aws_getenv ("AWS_EC2_METADATA_DISABLED");

  return disabled != NULL && g_ascii_strcasecmp (disabled, "true") == 0;
}

static gchar *
imds_get (const gchar *what, const gchar *url, const gchar *token_header,
    GCancellable *cancellable, glong *status, GError **error)
{
  const gchar *headers[] = {token_header, NULL};

  return http_fetch (what, "GET", url, headers, IMDS_TIMEOUT_MS, cancellable,
      status, error);
}

static CpAwsCredentials *
fetch_imds (GCancellable *cancellable, GError **error)
{
  const gchar *ttl_header[] =
      {"X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL_S, NULL};
  g_autofree gchar *base = imds_endpoint ();
  g_autofree gchar *what = NULL;
  g_autofree gchar *url = NULL;
  g_autoptr (Secret) token = NULL;
  g_autoptr (Secret) token_header = NULL;
  g_autofree gchar *roles = NULL;
  g_autofree gchar *role_url = NULL;
  g_autoptr (Secret) body = NULL;
  g_auto (GStrv) lines = NULL;
  const gchar *role;
  glong status = 0;

  what = g_strdup_printf ("EC2 instance metadata (%s)", base);
  url = g_strconcat (base, "/latest/api/token", NULL);
  token = http_fetch (what, "PUT", url, ttl_header, IMDS_TIMEOUT_MS,
      cancellable, &status, error);
  if (token == NULL)
    return NULL;
  if (status != 200) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_UNREACHABLE,
        "%s: session token request answered HTTP %ld", what, status);
    return NULL;
  }
  g_strstrip (token);
  if (token[0] == '\0' || !is_header_safe (token)) {
    invalid (error, what, "empty or malformed session token");
    return NULL;
  }
  token_header = g_strconcat ("X-aws-ec2-metadata-token: ", token, NULL);

  g_free (url);
  url = g_strconcat (base, "/latest/meta-data/iam/security-credentials/", NULL);
  roles = imds_get (what, url, token_header, cancellable, &status, error);
  if (roles == NULL)
    return NULL;
  if (status == 404) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_NOT_FOUND, "%s: the instance has no IAM role",
        what);
    return NULL;
  }
  if (status != 200) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_UNREACHABLE,
        "%s: role name request answered HTTP %ld", what, status);
    return NULL;
  }
  lines = g_strsplit (roles, "\n", 2);
  role = lines[0] ? g_strstrip (lines[0]) : "";
  if (role[0] == '\0') {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_NOT_FOUND, "%s: the instance has no IAM role",
        what);
    return NULL;
  }

  role_url = g_uri_escape_string (role, NULL, FALSE);
  g_free (url);
  url = g_strconcat (base, "/latest/meta-data/iam/security-credentials/",
      role_url, NULL);
  body = imds_get (what, url, token_header, cancellable, &status, error);
  if (body == NULL)
    return NULL;
  if (status != 200) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_UNREACHABLE,
        "%s: credentials request for role '%s' answered HTTP %ld", what, role,
        status);
    return NULL;
  }
  return parse_credentials_json (what, body, "imds", error);
}

/* ---- static sources ---- */

static gboolean
partial_keys (GError **error, const gchar *where, const gchar *missing)
{
  g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID, "%s: %s is missing", where, missing);
  return FALSE;
}

/* Returns TRUE with *creds NULL when the step has nothing to offer. */
static gboolean
keys_from (const gchar *access_key, const gchar *secret_key, const gchar *token,
    const gchar *where, const gchar *access_name, const gchar *secret_name,
    const gchar *source, CpAwsCredentials **creds, GError **error)
{
  gboolean has_access = access_key != NULL && access_key[0] != '\0';
  gboolean has_secret = secret_key != NULL && secret_key[0] != '\0';

  *creds = NULL;
  if (!has_access && !has_secret)
    return TRUE;
  if (!has_access)
    return partial_keys (error, where, access_name);
  if (!has_secret)
    return partial_keys (error, where, secret_name);
  *creds = credentials_from (access_key, secret_key, token, source);
  return TRUE;
}

/* Profile settings that need a provider callpipe does not have: naming
 * them beats falling through to the instance role unnoticed. */
static const gchar *
unsupported_profile_key (CpAwsConfigFile *file, const gchar *profile)
{
  static const gchar *const keys[] = {"role_arn", "credential_process",
      "sso_session", "sso_start_url", "web_identity_token_file", NULL};
  guint i;

  for (i = 0; keys[i] != NULL; i++) {
    if (cp_aws_config_file_get (file, profile, keys[i]) != NULL)
      return keys[i];
  }
  return NULL;
}

static gboolean
from_profile_file (CpAwsConfigFile *file, const gchar *path,
    const gchar *profile, CpAwsCredentials **creds, GError **error)
{
  g_autofree gchar *where =
      g_strdup_printf ("profile '%s' in %s", profile, path);

  return keys_from (cp_aws_config_file_get (file, profile, "aws_access_key_id"),
      cp_aws_config_file_get (file, profile, "aws_secret_access_key"),
      cp_aws_config_file_get (file, profile, "aws_session_token"), where,
      "aws_access_key_id", "aws_secret_access_key", "profile", creds, error);
}

/* Returns TRUE with *creds NULL when the chain should go on. */
static gboolean
from_profile (const gchar *explicit_profile, CpAwsCredentials **creds,
    GError **error)
{
  const gchar *profile = cp_aws_config_profile_name (explicit_profile);
  g_autofree gchar *cred_path = cp_aws_config_credentials_path ();
  g_autofree gchar *config_path = cp_aws_config_config_path ();
  g_autoptr (CpAwsConfigFile) cred_file = NULL;
  g_autoptr (CpAwsConfigFile) config_file = NULL;
  const gchar *key;

  *creds = NULL;
  cred_file = cp_aws_config_file_load (cred_path,
      CP_AWS_CONFIG_FILE_CREDENTIALS, error);
  if (cred_file == NULL)
    return FALSE;
  config_file =
      cp_aws_config_file_load (config_path, CP_AWS_CONFIG_FILE_CONFIG, error);
  if (config_file == NULL)
    return FALSE;

  if (!from_profile_file (cred_file, cred_path, profile, creds, error))
    return FALSE;
  if (*creds == NULL
      && !from_profile_file (config_file, config_path, profile, creds, error))
    return FALSE;
  if (*creds != NULL)
    return TRUE;

  if ((key = unsupported_profile_key (cred_file, profile)) != NULL
      || (key = unsupported_profile_key (config_file, profile)) != NULL) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_NOT_FOUND,
        "profile '%s' uses %s, which callpipe does not support: give it "
        "aws_access_key_id/aws_secret_access_key, or use the environment, "
        "container or instance credentials",
        profile, key);
    return FALSE;
  }
  if (cp_aws_config_profile_is_named (explicit_profile)
      && !cp_aws_config_file_has_profile (cred_file, profile)
      && !cp_aws_config_file_has_profile (config_file, profile)) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_NOT_FOUND,
        "profile '%s' is in neither %s nor %s", profile, cred_path,
        config_path);
    return FALSE;
  }
  return TRUE;
}

/* ---- the chain ---- */

static CpAwsCredentials *
resolve_chain (CpAwsCredentialsProvider *provider, Source *source,
    GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) imds_error = NULL;
  CpAwsCredentials *creds = NULL;

  *source = SOURCE_CHAIN;
  if (!keys_from (provider->access_key, provider->secret_key,
          provider->session_token, "explicit credentials", "the access key",
          "the secret key", "explicit", &creds, error))
    return NULL;
  if (creds != NULL)
    return creds;

  if (!keys_from (cp_aws_getenv ("AWS_ACCESS_KEY_ID"),
          cp_aws_getenv ("AWS_SECRET_ACCESS_KEY"),
          cp_aws_getenv ("AWS_SESSION_TOKEN"), "environment",
          "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "environment", &creds,
          error))
    return NULL;
  if (creds != NULL)
    return creds;

  if (!from_profile (provider->profile, &creds, error))
    return NULL;
  if (creds != NULL)
    return creds;

  if (container_configured ()) {
    *source = SOURCE_CONTAINER;
    return fetch_container (provider, cancellable, error);
  }

  if (imds_disabled ()) {
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_NOT_FOUND,
        "no AWS credentials: none set explicitly, in the environment, in "
        "profile '%s' or for a container, and AWS_EC2_METADATA_DISABLED is "
        "set",
        cp_aws_config_profile_name (provider->profile));
    return NULL;
  }
  *source = SOURCE_IMDS;
  creds = fetch_imds (cancellable, &imds_error);
  if (creds == NULL) {
    if (imds_error->domain != CP_AWS_CREDENTIALS_ERROR) {
      g_propagate_error (error, g_steal_pointer (&imds_error));
      return NULL;
    }
    g_set_error (error, CP_AWS_CREDENTIALS_ERROR, imds_error->code,
        "no AWS credentials: none set explicitly, in the environment, in "
        "profile '%s' or for a container; %s",
        cp_aws_config_profile_name (provider->profile), imds_error->message);
  }
  return creds;
}

static CpAwsCredentials *
fetch (CpAwsCredentialsProvider *provider, Source *source,
    GCancellable *cancellable, GError **error)
{
  switch (*source) {
    case SOURCE_CONTAINER:
      return fetch_container (provider, cancellable, error);
    case SOURCE_IMDS:
      return fetch_imds (cancellable, error);
    case SOURCE_CHAIN:
    default:
      return resolve_chain (provider, source, cancellable, error);
  }
}

static gint64
default_clock (gpointer user_data)
{
  return g_get_real_time ();
}

CpAwsCredentialsProvider *
cp_aws_credentials_provider_new_default (const gchar *access_key,
    const gchar *secret_key, const gchar *session_token, const gchar *profile)
{
  CpAwsCredentialsProvider *provider = g_new0 (CpAwsCredentialsProvider, 1);

  provider->access_key = dup_or_null (access_key);
  provider->secret_key = dup_or_null (secret_key);
  provider->session_token = dup_or_null (session_token);
  provider->profile = dup_or_null (profile);
  provider->container_base = g_strdup (CONTAINER_DEFAULT_BASE);
  provider->clock = default_clock;
  provider->source = SOURCE_CHAIN;
  g_mutex_init (&provider->lock);
  g_cond_init (&provider->cond);
  return provider;
}

void
cp_aws_credentials_provider_set_clock (CpAwsCredentialsProvider *provider,
    CpAwsClockFunc func, gpointer user_data)
{
  g_mutex_lock (&provider->lock);
  provider->clock = func ? func : default_clock;
  provider->clock_data = func ? user_data : NULL;
  g_mutex_unlock (&provider->lock);
}

void
cp_aws_credentials_provider_set_container_base (CpAwsCredentialsProvider
                                                    *provider,
    const gchar *base_url)
{
  gsize len = strlen (base_url);

  while (len > 0 && base_url[len - 1] == '/')
    len--;
  g_mutex_lock (&provider->lock);
  g_free (provider->container_base);
  provider->container_base = g_strndup (base_url, len);
  g_mutex_unlock (&provider->lock);
}

void
cp_aws_credentials_provider_free (CpAwsCredentialsProvider *provider)
{
  if (provider == NULL)
    return;
  g_free (provider->access_key);
  free_secret (provider->secret_key);
  free_secret (provider->session_token);
  g_free (provider->profile);
  g_free (provider->container_base);
  cp_aws_credentials_free (provider->cached);
  g_mutex_clear (&provider->lock);
  g_cond_clear (&provider->cond);
  g_free (provider);
}

static gint64
now_s (CpAwsCredentialsProvider *provider)
{
  return provider->clock (provider->clock_data) / G_USEC_PER_SEC;
}

static gboolean
is_fresh (const CpAwsCredentials *creds, gint64 now)
{
  return creds->expiration == 0
      || now < creds->expiration - CP_AWS_CREDENTIALS_REFRESH_WINDOW_S;
}

static gboolean
is_usable (const CpAwsCredentials *creds, gint64 now)
{
  return creds->expiration == 0
      || now < creds->expiration - CP_AWS_CREDENTIALS_EXPIRY_MARGIN_S;
}

/* One thread fetches at a time, outside the lock; the others keep
 * getting the cached credentials while those are usable, and wait for
 * the fetch otherwise. */
CpAwsCredentials *
cp_aws_credentials_provider_get (CpAwsCredentialsProvider *provider,
    GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) fetch_error = NULL;
  CpAwsCredentials *fetched, *result;
  Source source;
  gint64 now;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  g_mutex_lock (&provider->lock);
  for (;;) {
    CpAwsCredentials *cached = provider->cached;

    now = now_s (provider);
    if (cached != NULL && is_usable (cached, now)
        && (is_fresh (cached, now) || provider->fetching
            || now < provider->next_fetch_s)) {
      result = cp_aws_credentials_copy (cached);
      g_mutex_unlock (&provider->lock);
      return result;
    }
    if (!provider->fetching)
      break;
    g_cond_wait (&provider->cond, &provider->lock);
  }
  provider->fetching = TRUE;
  source = provider->source;
  g_mutex_unlock (&provider->lock);

  fetched = fetch (provider, &source, cancellable, &fetch_error);

  g_mutex_lock (&provider->lock);
  provider->fetching = FALSE;
  g_cond_broadcast (&provider->cond);
  now = now_s (provider);
  provider->next_fetch_s = now + CP_AWS_CREDENTIALS_RETRY_INTERVAL_S;
  if (fetched != NULL) {
    if (fetched->expiration != 0) {
      g_debug ("AWS credentials from %s, expiring at %" G_GINT64_FORMAT,
          fetched->source, fetched->expiration);
    } else {
      g_debug ("AWS credentials from %s", fetched->source);
    }
    cp_aws_credentials_free (provider->cached);
    provider->cached = fetched;
    provider->source = source;
    result = cp_aws_credentials_copy (fetched);
  } else if (provider->cached != NULL && is_usable (provider->cached, now)) {
    g_debug ("AWS credentials refresh failed, keeping the current ones: %s",
        fetch_error->message);
    result = cp_aws_credentials_copy (provider->cached);
  } else {
    g_propagate_error (error, g_steal_pointer (&fetch_error));
    result = NULL;
  }
  g_mutex_unlock (&provider->lock);
  return result;
}

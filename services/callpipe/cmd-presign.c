/* callpipe presign — a SigV4 presigned GET URL for an S3 object. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include "aws/awsconfig.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/sigv4.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_EXPIRES 3600
#define CMD "callpipe presign"

typedef struct
{
  gchar *bucket;
  gchar *key;
} S3Location;

static void
s3_location_clear (S3Location *loc)
{
  g_free (loc->bucket);
  g_free (loc->key);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (S3Location, s3_location_clear)

static gboolean
parse_s3_url (const gchar *url, S3Location *loc)
{
  const gchar *rest;
  const gchar *slash;
  const gchar *p;

  if (!g_str_has_prefix (url, "s3://"))
    return FALSE;
  rest = url + 5;
  slash = strchr (rest, '/');
  if (slash == NULL || slash == rest || slash[1] == '\0')
    return FALSE;
  for (p = rest; p < slash; p++) {
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-' && *p != '_')
      return FALSE;
  }
  loc->bucket = g_strndup (rest, slash - rest);
  loc->key = g_strdup (slash + 1);
  return TRUE;
}

/* Virtual-hosted style needs a bucket that is one DNS label under the
 * https wildcard certificate: no dots, no upper case. */
static gboolean
bucket_is_virtual_host_compatible (const gchar *bucket)
{
  gsize len = strlen (bucket);
  const gchar *p;

  if (len < 3 || len > 63 || bucket[0] == '-' || bucket[len - 1] == '-')
    return FALSE;
  for (p = bucket; *p != '\0'; p++) {
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
      return FALSE;
  }
  return TRUE;
}

static gboolean
parse_expires (const gchar *text, gint64 *expires)
{
  guint64 v;

  if (text == NULL) {
    *expires = DEFAULT_EXPIRES;
    return TRUE;
  }
  if (!g_ascii_string_to_unsigned (text, 10, 1, CP_AWS_PRESIGN_MAX_EXPIRES, &v,
          NULL)) {
    fprintf (stderr,
        CMD ": invalid --expires '%s': must be a whole number "
            "of seconds from 1 to %d (7 days)\n",
        text, CP_AWS_PRESIGN_MAX_EXPIRES);
    return FALSE;
  }
  *expires = (gint64) v;
  return TRUE;
}

static gboolean
endpoint_is_overridden (const gchar *explicit_endpoint)
{
  return (explicit_endpoint != NULL && explicit_endpoint[0] != '\0')
      || cp_aws_getenv ("AWS_ENDPOINT_URL_S3") != NULL
      || cp_aws_getenv ("AWS_ENDPOINT_URL") != NULL;
}

/* Where the object lives: scheme, host[:port] and the raw path. */
typedef struct
{
  gchar *scheme;
  gchar *authority;
  gchar *path;
} ObjectAddress;

static void
object_address_clear (ObjectAddress *a)
{
  g_free (a->scheme);
  g_free (a->authority);
  g_free (a->path);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ObjectAddress, object_address_clear)

static gboolean
address_object (const gchar *endpoint, gboolean overridden, const gchar *region,
    const S3Location *loc, ObjectAddress *addr, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (endpoint, G_URI_FLAGS_NONE, error);
  const gchar *host;
  const gchar *base_path;
  gint port;

  if (uri == NULL)
    return FALSE;
  addr->scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  host = g_uri_get_host (uri);
  port = g_uri_get_port (uri);
  base_path = g_uri_get_path (uri);
  while (*base_path == '/')
    base_path++;
  /* us-east-1's legacy global host is what the AWS CLI and SDK presigners
   * (and the S3 documentation examples) sign for that region. */
  if (!overridden && strcmp (region, "us-east-1") == 0)
    host = "s3.amazonaws.com";
  if (!overridden && bucket_is_virtual_host_compatible (loc->bucket)) {
    addr->authority = g_strdup_printf ("%s.%s", loc->bucket, host);
    addr->path = g_strconcat ("/", loc->key, NULL);
    return TRUE;
  }
  if (port > 0
      && !((port == 80 && strcmp (addr->scheme, "http") == 0)
          || (port == 443 && strcmp (addr->scheme, "https") == 0)))
    addr->authority = g_strdup_printf ("%s:%d", host, port);
  else
    addr->authority = g_strdup (host);
  addr->path = g_strconcat ("/", base_path, *base_path ? "/" : "", loc->bucket,
      "/", loc->key, NULL);
  return TRUE;
}

int
cp_cli_cmd_presign (int argc, char **argv)
{
  g_autofree gchar *opt_expires = NULL;
  g_autofree gchar *opt_date = NULL;
  g_autofree gchar *opt_region = NULL;
  g_autofree gchar *opt_endpoint = NULL;
  g_autofree gchar *opt_profile = NULL;
  const GOptionEntry entries[] = {{"expires", 0, 0, G_OPTION_ARG_STRING,
                                      &opt_expires,
                                      "Validity in seconds, 1 to 604800 "
                                      "(default 3600)",
                                      "S"},
      {"date", 0, 0, G_OPTION_ARG_STRING, &opt_date,
          "Signing time instead of now, for reproducible URLs",
          "YYYYMMDDTHHMMSSZ"},
      {"region", 0, 0, G_OPTION_ARG_STRING, &opt_region,
          "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile)",
          "R"},
      {"endpoint", 0, 0, G_OPTION_ARG_STRING, &opt_endpoint,
          "S3 endpoint, e.g. http://127.0.0.1:9000 (path-style URLs; default: "
          "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)",
          "URL"},
      {"profile", 0, 0, G_OPTION_ARG_STRING, &opt_profile,
          "Profile of ~/.aws/credentials and ~/.aws/config (default: "
          "AWS_PROFILE, else \"default\")",
          "NAME"},
      {NULL}};
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (S3Location) loc = {0};
  g_auto (ObjectAddress) addr = {0};
  g_autofree gchar *region = NULL;
  g_autofree gchar *endpoint = NULL;
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsHttpRequest) req = NULL;
  g_autoptr (CpAwsSigV4Result) res = NULL;
  CpAwsSigningParams params = {0};

  ctx = g_option_context_new ("s3://BUCKET/KEY");
  g_option_context_set_summary (ctx,
      "Print a presigned GET URL (SigV4 "
      "query signing) for an S3 object.\nCredentials come from the AWS "
      "default chain (environment, profile, container, EC2).");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, CMD ": %s\n", error->message);
    return 2;
  }
  if (argc != 2) {
    fprintf (stderr,
        "usage: " CMD " s3://BUCKET/KEY [--expires S] "
        "[--date YYYYMMDDTHHMMSSZ] [--region R] [--endpoint URL]\n");
    return 2;
  }
  if (!parse_s3_url (argv[1], &loc)) {
    fprintf (stderr,
        CMD ": invalid location '%s': expected s3://BUCKET/KEY "
            "with a bucket name (letters, digits, '.', '-', '_') and a key\n",
        argv[1]);
    return 2;
  }
  if (!parse_expires (opt_expires, &params.expires))
    return 2;
  if (opt_date != NULL) {
    if (!cp_aws_sigv4_parse_time (opt_date, &params.time, &error)) {
      fprintf (stderr, CMD ": --date: %s\n", error->message);
      return 2;
    }
  } else {
    params.time = g_get_real_time () / G_USEC_PER_SEC;
  }
  region = cp_aws_resolve_region (opt_region, opt_profile);
  if (region == NULL) {
    fprintf (stderr, CMD ": no region: use --region or set AWS_REGION\n");
    return 2;
  }
  endpoint =
      cp_aws_resolve_endpoint_full (opt_endpoint, "S3", "s3", region, &error);
  if (endpoint == NULL
      || !address_object (endpoint, endpoint_is_overridden (opt_endpoint),
          region, &loc, &addr, &error)) {
    fprintf (stderr, CMD ": %s\n", error->message);
    return 2;
  }

  provider =
      cp_aws_credentials_provider_new_default (NULL, NULL, NULL, opt_profile);
  creds = cp_aws_credentials_provider_get (provider, NULL, &error);
  if (creds == NULL) {
    fprintf (stderr, CMD ": no AWS credentials: %s\n", error->message);
    return 1;
  }

  req = cp_aws_http_request_new ("GET", addr.path);
  cp_aws_http_request_add_header (req, "Host", addr.authority);
  params.access_key_id = creds->access_key_id;
  params.secret_access_key = creds->secret_access_key;
  params.session_token = creds->session_token;
  params.region = region;
  params.service = "s3";
  res = cp_aws_sigv4_presign (req, &params, &error);
  if (res == NULL) {
    fprintf (stderr, CMD ": %s\n", error->message);
    return 1;
  }
  printf ("%s://%s%s?%s\n", addr.scheme, addr.authority, res->path,
      res->query_string);
  return 0;
}

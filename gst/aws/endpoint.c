/* callpipe — AWS region and endpoint resolution (see endpoint.h) */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#define G_LOG_DOMAIN "callpipe-aws"

#include "endpoint.h"
#include "awsconfig.h"

#include <string.h>

GQuark
cp_aws_endpoint_error_quark (void)
{
  return g_quark_from_static_string ("cp-aws-endpoint-error-quark");
}

static gboolean
is_set (const gchar *value)
{
  return value != NULL && value[0] != '\0';
}

gchar *
cp_aws_resolve_region (const gchar *explicit_region, const gchar *profile)
{
  g_autoptr (CpAwsConfigFile) config = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = NULL;
  const gchar *value;

  if (is_set (explicit_region))
    return g_strdup (explicit_region);
  if ((value = cp_aws_getenv ("AWS_REGION")) != NULL)
    return g_strdup (value);
  if ((value = cp_aws_getenv ("AWS_DEFAULT_REGION")) != NULL)
    return g_strdup (value);

  path = cp_aws_config_config_path ();
  config = cp_aws_config_file_load (path, CP_AWS_CONFIG_FILE_CONFIG, &error);
  if (config == NULL) {
    g_warning ("no region from the AWS config file: %s", error->message);
    return NULL;
  }
  value = cp_aws_config_file_get (config, cp_aws_config_profile_name (profile),
      "region");
  return is_set (value) ? g_strdup (value) : NULL;
}

/* "Kinesis Video", "kinesis-video" and "KINESIS_VIDEO" all name
 * AWS_ENDPOINT_URL_KINESIS_VIDEO. */
static gchar *
service_env_name (const gchar *service_id)
{
  GString *name = g_string_new ("AWS_ENDPOINT_URL_");
  const gchar *p;

  for (p = service_id; *p != '\0'; p++) {
    if (*p == ' ' || *p == '-')
      g_string_append_c (name, '_');
    else
      g_string_append_c (name, g_ascii_toupper (*p));
  }
  return g_string_free (name, FALSE);
}

static gchar *
validate_url (const gchar *url, const gchar *origin, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) parse_error = NULL;
  const gchar *scheme;
  gsize len;

  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &parse_error);
  if (uri == NULL) {
    g_set_error (error, CP_AWS_ENDPOINT_ERROR,
        CP_AWS_ENDPOINT_ERROR_INVALID_URL,
        "endpoint '%s' from %s is not an http:// or https:// URL: %s", url,
        origin, parse_error->message);
    return NULL;
  }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0
      && g_ascii_strcasecmp (scheme, "https") != 0) {
    g_set_error (error, CP_AWS_ENDPOINT_ERROR,
        CP_AWS_ENDPOINT_ERROR_INVALID_URL,
        "endpoint '%s' from %s: scheme must be http:// or https://", url,
        origin);
    return NULL;
  }
  if (!is_set (g_uri_get_host (uri))) {
    g_set_error (error, CP_AWS_ENDPOINT_ERROR,
        CP_AWS_ENDPOINT_ERROR_INVALID_URL, "endpoint '%s' from %s has no host",
        url, origin);
    return NULL;
  }
  if (g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL) {
    g_set_error (error, CP_AWS_ENDPOINT_ERROR,
        CP_AWS_ENDPOINT_ERROR_INVALID_URL,
        "endpoint '%s' from %s must not have a query or fragment", url, origin);
    return NULL;
  }
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    len--;
  return g_strndup (url, len);
}

/* The region becomes part of a host name. */
static gboolean
region_is_dns_label (const gchar *region)
{
  const gchar *p;

  if (region[0] == '-' || region[strlen (region) - 1] == '-'
      || strlen (region) > 63)
    return FALSE;
  for (p = region; *p != '\0'; p++) {
    if (!g_ascii_isalnum (*p) && *p != '-')
      return FALSE;
  }
  return TRUE;
}

gchar *
cp_aws_resolve_endpoint_full (const gchar *explicit_endpoint,
    const gchar *service_id, const gchar *default_host_prefix,
    const gchar *region, GError **error)
{
  g_autofree gchar *env_name = NULL;
  const gchar *value;

  if (is_set (explicit_endpoint))
    return validate_url (explicit_endpoint, "the endpoint setting", error);

  if (is_set (service_id)) {
    env_name = service_env_name (service_id);
    if ((value = cp_aws_getenv (env_name)) != NULL)
      return validate_url (value, env_name, error);
  }
  if ((value = cp_aws_getenv ("AWS_ENDPOINT_URL")) != NULL)
    return validate_url (value, "AWS_ENDPOINT_URL", error);

  if (!is_set (region)) {
    g_set_error (error, CP_AWS_ENDPOINT_ERROR, CP_AWS_ENDPOINT_ERROR_NO_REGION,
        "no endpoint for %s: no region set (region property, AWS_REGION, "
        "AWS_DEFAULT_REGION or the profile's region)",
        default_host_prefix);
    return NULL;
  }
  if (!region_is_dns_label (region)) {
    g_set_error (error, CP_AWS_ENDPOINT_ERROR,
        CP_AWS_ENDPOINT_ERROR_INVALID_REGION,
        "region '%s' is not a valid region name", region);
    return NULL;
  }
  return g_strdup_printf ("https://%s.%s.%s", default_host_prefix, region,
      g_str_has_prefix (region, "cn-") ? "amazonaws.com.cn" : "amazonaws.com");
}

gchar *
cp_aws_resolve_endpoint (const gchar *explicit_endpoint,
    const gchar *service_id, const gchar *default_host_prefix,
    const gchar *region)
{
  g_autoptr (GError) error = NULL;
  gchar *endpoint;

  endpoint = cp_aws_resolve_endpoint_full (explicit_endpoint, service_id,
      default_host_prefix, region, &error);
  if (endpoint == NULL)
    g_warning ("%s", error->message);
  return endpoint;
}

/* callpipe — AWS region and endpoint resolution */
#ifndef CP_AWS_ENDPOINT_H
#define CP_AWS_ENDPOINT_H

#include <glib.h>

G_BEGIN_DECLS

/* @explicit_region, else AWS_REGION, AWS_DEFAULT_REGION, the profile's
 * `region` in the config file (@profile NULL = AWS_PROFILE or "default"),
 * else NULL. */
gchar *cp_aws_resolve_region (const gchar *explicit_region,
                              const gchar *profile);

/* @explicit_endpoint, else AWS_ENDPOINT_URL_<SERVICE_ID> (the SDK's
 * service id upper-cased, spaces and dashes as '_', e.g. "S3",
 * "KINESIS_VIDEO", "TRANSCRIBE_STREAMING", "BEDROCK_RUNTIME"), else
 * AWS_ENDPOINT_URL, else "https://<default_host_prefix>.<region>.amazonaws.com".
 * The result has no trailing '/'. */
gchar *cp_aws_resolve_endpoint (const gchar *explicit_endpoint,
                                const gchar *service_id,
                                const gchar *default_host_prefix,
                                const gchar *region);

#define CP_AWS_ENDPOINT_ERROR (cp_aws_endpoint_error_quark ())
GQuark cp_aws_endpoint_error_quark (void);

typedef enum
{
  CP_AWS_ENDPOINT_ERROR_INVALID_URL,    /* not http(s)://host[:port][/path] */
  CP_AWS_ENDPOINT_ERROR_NO_REGION,      /* default endpoint needs a region */
  CP_AWS_ENDPOINT_ERROR_INVALID_REGION, /* not a DNS label */
} CpAwsEndpointError;

/* As cp_aws_resolve_endpoint(), which returns NULL (with a warning
 * naming the cause) where this sets @error. The default host of the
 * China regions (cn-*) ends in amazonaws.com.cn. */
gchar *cp_aws_resolve_endpoint_full (const gchar *explicit_endpoint,
                                     const gchar *service_id,
                                     const gchar *default_host_prefix,
                                     const gchar *region,
                                     GError **error);

G_END_DECLS

#endif /* CP_AWS_ENDPOINT_H */

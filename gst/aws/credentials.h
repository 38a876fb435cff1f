/* callpipe — AWS credentials and the SDK default provider chain
 *
 * Order (as the AWS SDKs): explicit values; environment
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN);
 * AWS_PROFILE in the shared credentials and config files
 * (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE); container credentials
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]); EC2 IMDSv2.
 * Temporary credentials are refreshed before they expire.
 */
#ifndef CP_AWS_CREDENTIALS_H
#define CP_AWS_CREDENTIALS_H

#include <gio/gio.h>

G_BEGIN_DECLS

#define CP_AWS_CREDENTIALS_ERROR (cp_aws_credentials_error_quark ())
GQuark cp_aws_credentials_error_quark (void);

typedef enum
{
  CP_AWS_CREDENTIALS_ERROR_NOT_FOUND,   /* no provider in the chain had any */
  CP_AWS_CREDENTIALS_ERROR_INVALID,     /* a provider answered garbage */
  CP_AWS_CREDENTIALS_ERROR_UNREACHABLE, /* container/IMDS endpoint failed */
} CpAwsCredentialsError;

typedef struct
{
  gchar *access_key_id;
  gchar *secret_access_key;
  gchar *session_token;         /* NULL unless temporary */
  gint64 expiration;            /* unix seconds, 0 = does not expire */
  const gchar *source;          /* static: "explicit", "environment",
                                 * "profile", "container", "imds" */
} CpAwsCredentials;

CpAwsCredentials *cp_aws_credentials_new  (const gchar *access_key_id,
                                           const gchar *secret_access_key,
                                           const gchar *session_token);
CpAwsCredentials *cp_aws_credentials_copy (const CpAwsCredentials *creds);
void              cp_aws_credentials_free (CpAwsCredentials *creds);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsCredentials, cp_aws_credentials_free)

typedef struct _CpAwsCredentialsProvider CpAwsCredentialsProvider;

/* The default chain. @access_key/@secret_key/@session_token are the
 * explicit values (element properties, CLI flags); NULL skips that step.
 * @profile NULL means AWS_PROFILE, else "default". */
CpAwsCredentialsProvider *
cp_aws_credentials_provider_new_default (const gchar *access_key,
                                         const gchar *secret_key,
                                         const gchar *session_token,
                                         const gchar *profile);

/* Thread-safe; caches and refreshes temporary credentials ahead of
 * expiry. Returns a copy the caller frees. */
CpAwsCredentials *
cp_aws_credentials_provider_get (CpAwsCredentialsProvider *provider,
                                 GCancellable *cancellable,
                                 GError **error);

void cp_aws_credentials_provider_free (CpAwsCredentialsProvider *provider);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsCredentialsProvider,
    cp_aws_credentials_provider_free)

/* Temporary credentials are refreshed once fewer than REFRESH_WINDOW
 * seconds remain (a failed refresh keeps the old ones while they have
 * more than EXPIRY_MARGIN seconds left, and is retried at most every
 * RETRY_INTERVAL seconds); with EXPIRY_MARGIN or less left they are
 * never handed out. */
#define CP_AWS_CREDENTIALS_REFRESH_WINDOW_S   300
#define CP_AWS_CREDENTIALS_EXPIRY_MARGIN_S    60
#define CP_AWS_CREDENTIALS_RETRY_INTERVAL_S   30

/* Returns the wall-clock time in microseconds since the epoch, as
 * g_get_real_time(). */
typedef gint64 (*CpAwsClockFunc) (gpointer user_data);

/* Replaces g_get_real_time() in expiry decisions (tests). @func NULL
 * restores it. Call before the provider is shared. */
void cp_aws_credentials_provider_set_clock (CpAwsCredentialsProvider *provider,
                                            CpAwsClockFunc func,
                                            gpointer user_data);

/* Replaces http://169.254.170.2, the base that
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is appended to (tests). The EC2
 * metadata endpoint is set with AWS_EC2_METADATA_SERVICE_ENDPOINT, as
 * in the SDKs. */
void cp_aws_credentials_provider_set_container_base
    (CpAwsCredentialsProvider *provider, const gchar *base_url);

G_END_DECLS

#endif /* CP_AWS_CREDENTIALS_H */

/* callpipe — small crypto helpers shared by the SigV4 signers
 *
 * SHA-256, HMAC-SHA256, hex encoding and the SigV4 signing-key
 * derivation (kDate → kRegion → kService → kSigning), on OpenSSL.
 */
#ifndef CP_AWS_CRYPTO_H
#define CP_AWS_CRYPTO_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_AWS_SHA256_LEN 32

void   cp_aws_sha256          (const void *data, gsize len,
                               guint8 out[CP_AWS_SHA256_LEN]);
gchar *cp_aws_sha256_hex      (const void *data, gsize len);
void   cp_aws_hmac_sha256     (const void *key, gsize key_len,
                               const void *data, gsize len,
                               guint8 out[CP_AWS_SHA256_LEN]);
gchar *cp_aws_hex_encode      (const guint8 *data, gsize len);
void   cp_aws_derive_signing_key (const gchar *secret_key,
                                  const gchar *date_yyyymmdd,
                                  const gchar *region,
                                  const gchar *service,
                                  guint8 out[CP_AWS_SHA256_LEN]);

G_END_DECLS

#endif /* CP_AWS_CRYPTO_H */

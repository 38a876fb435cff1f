/* callpipe — small crypto helpers shared by the SigV4 signers */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "awscrypto.h"

#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void
cp_aws_sha256 (const void *data, gsize len, guint8 out[CP_AWS_SHA256_LEN])
{
  unsigned int out_len = CP_AWS_SHA256_LEN;

  EVP_Digest (data, len, out, &out_len, EVP_sha256 (), NULL);
}

gchar *
cp_aws_hex_encode (const guint8 *data, gsize len)
{
  static const gchar digits[] = "0123456789abcdef";
  gchar *hex = g_malloc (len * 2 + 1);
  gsize i;

  for (i = 0; i < len; i++) {
    hex[2 * i] = digits[data[i] >> 4];
    hex[2 * i + 1] = digits[data[i] & 0xf];
  }
  hex[len * 2] = '\0';
  return hex;
}

gchar *
cp_aws_sha256_hex (const void *data, gsize len)
{
  guint8 digest[CP_AWS_SHA256_LEN];

  cp_aws_sha256 (data, len, digest);
  return cp_aws_hex_encode (digest, sizeof (digest));
}

void
cp_aws_hmac_sha256 (const void *key, gsize key_len, const void *data, gsize len,
    guint8 out[CP_AWS_SHA256_LEN])
{
  unsigned int out_len = CP_AWS_SHA256_LEN;

  HMAC (EVP_sha256 (), key, (int) key_len, data, len, out, &out_len);
}

void
cp_aws_derive_signing_key (const gchar *secret_key, const gchar *date_yyyymmdd,
    const gchar *region, const gchar *service, guint8 out[CP_AWS_SHA256_LEN])
{
  g_autofree gchar *k_secret = g_strconcat ("AWS4", secret_key, NULL);
  guint8 k_date[CP_AWS_SHA256_LEN];
  guint8 k_region[CP_AWS_SHA256_LEN];
  guint8 k_service[CP_AWS_SHA256_LEN];

  cp_aws_hmac_sha256 (k_secret, strlen (k_secret), date_yyyymmdd,
      strlen (date_yyyymmdd), k_date);
  cp_aws_hmac_sha256 (k_date, sizeof (k_date), region, strlen (region),
      k_region);
  cp_aws_hmac_sha256 (k_region, sizeof (k_region), service, strlen (service),
      k_service);
  cp_aws_hmac_sha256 (k_service, sizeof (k_service), "aws4_request", 12, out);
}

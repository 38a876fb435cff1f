/* callpipe — STREAMING-AWS4-HMAC-SHA256-EVENTS signing chain */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "eventsigner.h"

#include <string.h>
#include <openssl/crypto.h>

#define SIGNATURE_HEX_LEN (2 * CP_AWS_SHA256_LEN)
/* 9999-12-31T23:59:59Z: the last second an amzdate can spell. */
#define MAX_DATE_MS G_GINT64_CONSTANT (253402300799999)

struct _CpAwsEventSigner
{
  gchar *secret_key;
  gchar *region;
  gchar *service;
  gchar prior_signature[SIGNATURE_HEX_LEN + 1];
  /* The signing key and the YYYYMMDD it was derived for. */
  gchar key_date[9];
  guint8 signing_key[CP_AWS_SHA256_LEN];
};

GQuark
cp_aws_event_signer_error_quark (void)
{
  return g_quark_from_static_string ("cp-aws-event-signer-error-quark");
}

CpAwsEventSigner *
cp_aws_event_signer_new (const gchar *secret_key, const gchar *region,
    const gchar *service, const gchar *seed_signature, GError **error)
{
  CpAwsEventSigner *signer;
  gsize i;

  g_return_val_if_fail (secret_key != NULL, NULL);
  g_return_val_if_fail (region != NULL && service != NULL, NULL);
  g_return_val_if_fail (seed_signature != NULL, NULL);

  for (i = 0; seed_signature[i]; i++) {
    if (!g_ascii_isxdigit (seed_signature[i]))
      break;
  }
  if (i != SIGNATURE_HEX_LEN || seed_signature[i] != '\0') {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_INVALID_SEED,
        "Seed signature must be %d hex digits", SIGNATURE_HEX_LEN);
    return NULL;
  }

  signer = g_new0 (CpAwsEventSigner, 1);
  signer->secret_key = g_strdup (secret_key);
  signer->region = g_strdup (region);
  signer->service = g_strdup (service);
  /* SigV4 signatures are lowercase hex, and the string to sign quotes
   * the previous one verbatim. */
  for (i = 0; i < SIGNATURE_HEX_LEN; i++)
    signer->prior_signature[i] = g_ascii_tolower (seed_signature[i]);
  return signer;
}

void
cp_aws_event_signer_free (CpAwsEventSigner *signer)
{
  if (signer == NULL)
    return;
  OPENSSL_cleanse (signer->secret_key, strlen (signer->secret_key));
  g_free (signer->secret_key);
  g_free (signer->region);
  g_free (signer->service);
  OPENSSL_cleanse (signer, sizeof (*signer));
  g_free (signer);
}

const gchar *
cp_aws_event_signer_get_prior_signature (const CpAwsEventSigner *signer)
{
  g_return_val_if_fail (signer != NULL, NULL);

  return signer->prior_signature;
}

static gboolean
format_dates (gint64 date_ms, gchar amz_date[17], gchar date[9], GError **error)
{
  g_autoptr (GDateTime) dt = NULL;
  g_autofree gchar *formatted = NULL;

  if (date_ms < 0 || date_ms > MAX_DATE_MS) {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE,
        "Frame date %" G_GINT64_FORMAT " ms is outside 1970-9999", date_ms);
    return FALSE;
  }
  dt = g_date_time_new_from_unix_utc (date_ms / 1000);
  formatted = g_date_time_format (dt, "%Y%m%dT%H%M%SZ");
  memcpy (amz_date, formatted, 17);
  memcpy (date, formatted, 8);
  date[8] = '\0';
  return TRUE;
}

/* The signature of one frame, chained on the current prior signature;
 * the chain itself does not move. */
static gboolean
compute_signature (CpAwsEventSigner *signer, const guint8 *headers,
    gsize headers_len, const guint8 *payload, gsize payload_len, gint64 date_ms,
    guint8 signature[CP_AWS_SHA256_LEN], GError **error)
{
  g_autofree gchar *headers_hex = NULL;
  g_autofree gchar *payload_hex = NULL;
  g_autofree gchar *string_to_sign = NULL;
  gchar amz_date[17], date[9];

  if (!format_dates (date_ms, amz_date, date, error))
    return FALSE;
  if (strcmp (signer->key_date, date) != 0) {
    cp_aws_derive_signing_key (signer->secret_key, date, signer->region,
        signer->service, signer->signing_key);
    memcpy (signer->key_date, date, sizeof (signer->key_date));
  }

  headers_hex = cp_aws_sha256_hex (headers, headers_len);
  payload_hex = cp_aws_sha256_hex (payload, payload_len);
  string_to_sign = g_strdup_printf ("AWS4-HMAC-SHA256-PAYLOAD\n%s\n"
                                    "%s/%s/%s/aws4_request\n%s\n%s\n%s",
      amz_date, date, signer->region, signer->service, signer->prior_signature,
      headers_hex, payload_hex);
  cp_aws_hmac_sha256 (signer->signing_key, sizeof (signer->signing_key),
      string_to_sign, strlen (string_to_sign), signature);
  return TRUE;
}

static void
advance_chain (CpAwsEventSigner *signer,
    const guint8 signature[CP_AWS_SHA256_LEN])
{
  g_autofree gchar *hex = cp_aws_hex_encode (signature, CP_AWS_SHA256_LEN);

  memcpy (signer->prior_signature, hex, sizeof (signer->prior_signature));
}

gboolean
cp_aws_event_signer_sign (CpAwsEventSigner *signer, const guint8 *headers,
    gsize headers_len, const guint8 *payload, gsize payload_len, gint64 date_ms,
    guint8 signature[CP_AWS_SHA256_LEN], GError **error)
{
  g_return_val_if_fail (signer != NULL && signature != NULL, FALSE);
  g_return_val_if_fail (headers != NULL || headers_len == 0, FALSE);
  g_return_val_if_fail (payload != NULL || payload_len == 0, FALSE);

  if (!compute_signature (signer, headers, headers_len, payload, payload_len,
          date_ms, signature, error))
    return FALSE;
  advance_chain (signer, signature);
  return TRUE;
}

static GByteArray *
encode_date_header (gint64 date_ms)
{
  g_autoptr (CpAwsEventMessage) date_only = cp_aws_event_message_new ();
  GByteArray *out = g_byte_array_new ();

  cp_aws_event_message_set_timestamp (date_only, ":date", date_ms);
  if (!cp_aws_event_message_encode_headers (date_only, out, NULL))
    g_assert_not_reached ();
  return out;
}

GBytes *
cp_aws_event_signer_sign_message (CpAwsEventSigner *signer, GBytes *inner,
    gint64 date_ms, GError **error)
{
  g_autoptr (GByteArray) date_header = NULL;
  g_autoptr (CpAwsEventMessage) outer = NULL;
  g_autoptr (GBytes) signature_bytes = NULL;
  g_autoptr (GBytes) encoded = NULL;
  guint8 signature[CP_AWS_SHA256_LEN];
  const guint8 *payload = NULL;
  gsize payload_len = 0;

  g_return_val_if_fail (signer != NULL, NULL);

  if (inner)
    payload = g_bytes_get_data (inner, &payload_len);
  date_header = encode_date_header (date_ms);
  if (!compute_signature (signer, date_header->data, date_header->len, payload,
          payload_len, date_ms, signature, error))
    return NULL;

  outer = cp_aws_event_message_new ();
  signature_bytes = g_bytes_new (signature, sizeof (signature));
  cp_aws_event_message_set_timestamp (outer, ":date", date_ms);
  cp_aws_event_message_set_bytes (outer, ":chunk-signature", signature_bytes);
  cp_aws_event_message_set_payload (outer, inner);
  encoded = cp_aws_event_message_encode (outer, error);
  if (encoded == NULL)
    return NULL;

  advance_chain (signer, signature);
  return g_steal_pointer (&encoded);
}

GBytes *
cp_aws_event_signer_sign_event (CpAwsEventSigner *signer,
    const CpAwsEventMessage *inner, gint64 date_ms, GError **error)
{
  g_autoptr (GBytes) encoded = NULL;

  g_return_val_if_fail (signer != NULL && inner != NULL, NULL);

  encoded = cp_aws_event_message_encode (inner, error);
  if (encoded == NULL)
    return NULL;
  return cp_aws_event_signer_sign_message (signer, encoded, date_ms, error);
}

gboolean
cp_aws_event_signer_verify (CpAwsEventSigner *signer,
    const CpAwsEventMessage *outer, GError **error)
{
  g_autoptr (GByteArray) date_header = NULL;
  g_autofree gchar *received_hex = NULL;
  guint8 expected[CP_AWS_SHA256_LEN];
  const guint8 *received, *payload;
  gsize received_len, payload_len;
  GBytes *signature_bytes;
  gint64 date_ms;

  g_return_val_if_fail (signer != NULL && outer != NULL, FALSE);

  if (!cp_aws_event_message_get_timestamp (outer, ":date", &date_ms)) {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_MISSING_HEADER,
        "Signed frame has no \":date\" timestamp header");
    return FALSE;
  }
  signature_bytes = cp_aws_event_message_get_bytes (outer, ":chunk-signature");
  if (signature_bytes == NULL) {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_MISSING_HEADER,
        "Signed frame has no \":chunk-signature\" bytes header");
    return FALSE;
  }
  received = g_bytes_get_data (signature_bytes, &received_len);
  if (received_len != CP_AWS_SHA256_LEN) {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH,
        "Frame \":chunk-signature\" is %" G_GSIZE_FORMAT " bytes, not %d",
        received_len, CP_AWS_SHA256_LEN);
    return FALSE;
  }

  payload =
      g_bytes_get_data (cp_aws_event_message_get_payload (outer), &payload_len);
  date_header = encode_date_header (date_ms);
  if (!compute_signature (signer, date_header->data, date_header->len, payload,
          payload_len, date_ms, expected, error))
    return FALSE;
  if (CRYPTO_memcmp (expected, received, CP_AWS_SHA256_LEN) != 0) {
    received_hex = cp_aws_hex_encode (received, received_len);
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH,
        "Frame signature %s does not match the chain after %s", received_hex,
        signer->prior_signature);
    return FALSE;
  }
  advance_chain (signer, expected);
  return TRUE;
}

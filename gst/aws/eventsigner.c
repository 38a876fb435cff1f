/* callpipe — STREAMING-AWS4-HMAC-SHA256-EVENTS signing chain */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "eventsigner.h"

#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SIGNATURE_HEX_LEN (2 * CP_AWS_SHA256_LEN)
/* 9999-12-31T23:59:59Z: the last second an amzdate can spell. */
#define MAX_DATE_MS G_GINT64_CONSTANT (253402300799999)
#define SHA256_BLOCK_LEN 64
/* The outer message's headers, in this order: ":date" (a timestamp:
 * name length, name, type, 8 bytes) and ":chunk-signature" (bytes: name
 * length, name, type, 2-byte length, 32 bytes). */
#define DATE_HEADER_LEN (1 + 5 + 1 + 8)
#define SIGNATURE_HEADER_LEN (1 + 16 + 1 + 2 + CP_AWS_SHA256_LEN)
#define OUTER_HEADERS_LEN (DATE_HEADER_LEN + SIGNATURE_HEADER_LEN)
#define FRAME_HEAD_LEN (CP_AWS_EVENT_STREAM_PRELUDE_LEN + OUTER_HEADERS_LEN)

/* Every frame is hashed three times (headers, payload, the HMAC's two
 * passes): the digest is fetched once and the contexts are reused, and
 * the HMAC's key pads are hashed once per signing key, not per frame. */
struct _CpAwsEventSigner
{
  gchar *secret_key;
  gchar *region;
  gchar *service;
  gchar prior_signature[SIGNATURE_HEX_LEN + 1];
  /* The signing key and the YYYYMMDD it was derived for. */
  gchar key_date[9];
  guint8 signing_key[CP_AWS_SHA256_LEN];
  /* The amzdate of the last frame's second. */
  gint64 amz_second;
  gchar amz_date[17];
  EVP_MD *sha256;
  EVP_MD_CTX *hash; /* scratch */
  EVP_MD_CTX *hmac_inner; /* signing key ^ ipad absorbed */
  EVP_MD_CTX *hmac_outer; /* signing key ^ opad absorbed */
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
  signer->amz_second = -1;
  signer->sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
  signer->hash = EVP_MD_CTX_new ();
  signer->hmac_inner = EVP_MD_CTX_new ();
  signer->hmac_outer = EVP_MD_CTX_new ();
  if (signer->sha256 == NULL || signer->hash == NULL
      || signer->hmac_inner == NULL || signer->hmac_outer == NULL)
    g_error ("OpenSSL has no SHA-256");
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
  /* Freeing a context clears its state (it holds the key pads). */
  EVP_MD_CTX_free (signer->hash);
  EVP_MD_CTX_free (signer->hmac_inner);
  EVP_MD_CTX_free (signer->hmac_outer);
  EVP_MD_free (signer->sha256);
  OPENSSL_cleanse (signer, sizeof (*signer));
  g_free (signer);
}

const gchar *
cp_aws_event_signer_get_prior_signature (const CpAwsEventSigner *signer)
{
  g_return_val_if_fail (signer != NULL, NULL);

  return signer->prior_signature;
}

static void
hex_encode (const guint8 *data, gsize len, gchar *hex)
{
  static const gchar digits[] = "0123456789abcdef";
  gsize i;

  for (i = 0; i < len; i++) {
    hex[2 * i] = digits[data[i] >> 4];
    hex[2 * i + 1] = digits[data[i] & 0xf];
  }
}

/* The amzdate (YYYYMMDDTHHMMSSZ) of @date_ms: formatted once a second. */
static gboolean
format_dates (CpAwsEventSigner *signer, gint64 date_ms, GError **error)
{
  time_t second;
  struct tm tm;

  if (date_ms < 0 || date_ms > MAX_DATE_MS) {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE,
        "Frame date %" G_GINT64_FORMAT " ms is outside 1970-9999", date_ms);
    return FALSE;
  }
  if (date_ms / 1000 == signer->amz_second)
    return TRUE;
  second = (time_t) (date_ms / 1000);
  if (gmtime_r (&second, &tm) == NULL
      || strftime (signer->amz_date, sizeof (signer->amz_date),
             "%Y%m%dT%H%M%SZ", &tm)
          != sizeof (signer->amz_date) - 1) {
    g_set_error (error, CP_AWS_EVENT_SIGNER_ERROR,
        CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE,
        "Frame date %" G_GINT64_FORMAT " ms cannot be formatted", date_ms);
    return FALSE;
  }
  signer->amz_second = date_ms / 1000;
  return TRUE;
}

static void
digest (EVP_MD_CTX *ctx, const EVP_MD *md, const void *data, gsize len,
    guint8 out[CP_AWS_SHA256_LEN])
{
  if (!EVP_DigestInit_ex (ctx, md, NULL) || !EVP_DigestUpdate (ctx, data, len)
      || !EVP_DigestFinal_ex (ctx, out, NULL))
    g_error ("SHA-256 failed");
}

/* HMAC (RFC 2104) with the key's pads absorbed once: a frame's MAC
 * costs the hashing of its string to sign and of one digest. */
static void
set_signing_key (CpAwsEventSigner *signer, const gchar *date)
{
  guint8 ipad[SHA256_BLOCK_LEN], opad[SHA256_BLOCK_LEN];
  guint i;

  cp_aws_derive_signing_key (signer->secret_key, date, signer->region,
      signer->service, signer->signing_key);
  memcpy (signer->key_date, date, sizeof (signer->key_date));
  memset (ipad, 0x36, sizeof (ipad));
  memset (opad, 0x5c, sizeof (opad));
  for (i = 0; i < CP_AWS_SHA256_LEN; i++) {
    ipad[i] ^= signer->signing_key[i];
    opad[i] ^= signer->signing_key[i];
  }
  if (!EVP_DigestInit_ex (signer->hmac_inner, signer->sha256, NULL)
      || !EVP_DigestUpdate (signer->hmac_inner, ipad, sizeof (ipad))
      || !EVP_DigestInit_ex (signer->hmac_outer, signer->sha256, NULL)
      || !EVP_DigestUpdate (signer->hmac_outer, opad, sizeof (opad)))
    g_error ("SHA-256 failed");
  OPENSSL_cleanse (ipad, sizeof (ipad));
  OPENSSL_cleanse (opad, sizeof (opad));
}

static void
mac_update (CpAwsEventSigner *signer, const gchar *text, gsize len)
{
  if (!EVP_DigestUpdate (signer->hash, text, len))
    g_error ("SHA-256 failed");
}

static void
mac_update_str (CpAwsEventSigner *signer, const gchar *text)
{
  mac_update (signer, text, strlen (text));
}

/* The signature of one frame, chained on the current prior signature;
 * the chain itself does not move. The string to sign is hashed piece by
 * piece rather than built. */
static gboolean
compute_signature (CpAwsEventSigner *signer, const guint8 *headers,
    gsize headers_len, const guint8 *payload, gsize payload_len, gint64 date_ms,
    guint8 signature[CP_AWS_SHA256_LEN], GError **error)
{
  guint8 headers_hash[CP_AWS_SHA256_LEN], payload_hash[CP_AWS_SHA256_LEN];
  guint8 inner[CP_AWS_SHA256_LEN];
  gchar hex[SIGNATURE_HEX_LEN];

  if (!format_dates (signer, date_ms, error))
    return FALSE;
  if (memcmp (signer->key_date, signer->amz_date, 8) != 0) {
    gchar date[9];

    memcpy (date, signer->amz_date, 8);
    date[8] = '\0';
    set_signing_key (signer, date);
  }

  digest (signer->hash, signer->sha256, headers, headers_len, headers_hash);
  digest (signer->hash, signer->sha256, payload, payload_len, payload_hash);

  if (!EVP_MD_CTX_copy_ex (signer->hash, signer->hmac_inner))
    g_error ("SHA-256 failed");
  mac_update_str (signer, "AWS4-HMAC-SHA256-PAYLOAD\n");
  mac_update (signer, signer->amz_date, 16);
  mac_update_str (signer, "\n");
  mac_update (signer, signer->amz_date, 8);
  mac_update_str (signer, "/");
  mac_update_str (signer, signer->region);
  mac_update_str (signer, "/");
  mac_update_str (signer, signer->service);
  mac_update_str (signer, "/aws4_request\n");
  mac_update (signer, signer->prior_signature, SIGNATURE_HEX_LEN);
  mac_update_str (signer, "\n");
  hex_encode (headers_hash, sizeof (headers_hash), hex);
  mac_update (signer, hex, sizeof (hex));
  mac_update_str (signer, "\n");
  hex_encode (payload_hash, sizeof (payload_hash), hex);
  mac_update (signer, hex, sizeof (hex));
  if (!EVP_DigestFinal_ex (signer->hash, inner, NULL)
      || !EVP_MD_CTX_copy_ex (signer->hash, signer->hmac_outer)
      || !EVP_DigestUpdate (signer->hash, inner, sizeof (inner))
      || !EVP_DigestFinal_ex (signer->hash, signature, NULL))
    g_error ("SHA-256 failed");
  return TRUE;
}

static void
advance_chain (CpAwsEventSigner *signer,
    const guint8 signature[CP_AWS_SHA256_LEN])
{
  hex_encode (signature, CP_AWS_SHA256_LEN, signer->prior_signature);
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

static void
put_u64 (guint8 *p, guint64 v)
{
  guint i;

  for (i = 0; i < 8; i++)
    p[i] = (guint8) (v >> (56 - 8 * i));
}

/* The ":date" header as the event-stream encoder writes it. */
static void
encode_date_header (gint64 date_ms, guint8 out[DATE_HEADER_LEN])
{
  out[0] = 5;
  memcpy (out + 1, ":date", 5);
  out[6] = CP_AWS_EVENT_HEADER_TIMESTAMP;
  put_u64 (out + 7, (guint64) date_ms);
}

gsize
cp_aws_event_signer_begin_frame (GByteArray *out)
{
  gsize start;

  g_return_val_if_fail (out != NULL, 0);

  start = cp_aws_event_stream_begin_message (out);
  g_byte_array_set_size (out, start + FRAME_HEAD_LEN);
  return start;
}

gboolean
cp_aws_event_signer_end_frame (CpAwsEventSigner *signer, GByteArray *out,
    gsize start, gint64 date_ms, GError **error)
{
  guint8 signature[CP_AWS_SHA256_LEN];
  guint8 *headers;

  g_return_val_if_fail (signer != NULL && out != NULL, FALSE);
  g_return_val_if_fail (start + FRAME_HEAD_LEN <= out->len, FALSE);

  headers = out->data + start + CP_AWS_EVENT_STREAM_PRELUDE_LEN;
  encode_date_header (date_ms, headers);
  if (!compute_signature (signer, headers, DATE_HEADER_LEN,
          out->data + start + FRAME_HEAD_LEN, out->len - start - FRAME_HEAD_LEN,
          date_ms, signature, error)) {
    g_byte_array_set_size (out, start);
    return FALSE;
  }
  headers += DATE_HEADER_LEN;
  headers[0] = 16;
  memcpy (headers + 1, ":chunk-signature", 16);
  headers[17] = CP_AWS_EVENT_HEADER_BYTES;
  headers[18] = 0;
  headers[19] = CP_AWS_SHA256_LEN;
  memcpy (headers + 20, signature, CP_AWS_SHA256_LEN);
  if (!cp_aws_event_stream_end_message (out, start, OUTER_HEADERS_LEN, error))
    return FALSE;
  advance_chain (signer, signature);
  return TRUE;
}

GBytes *
cp_aws_event_signer_sign_message (CpAwsEventSigner *signer, GBytes *inner,
    gint64 date_ms, GError **error)
{
  g_autoptr (GByteArray) out = NULL;
  const guint8 *payload = NULL;
  gsize payload_len = 0, start;

  g_return_val_if_fail (signer != NULL, NULL);

  if (inner)
    payload = g_bytes_get_data (inner, &payload_len);
  out = g_byte_array_sized_new (
      FRAME_HEAD_LEN + payload_len + CP_AWS_EVENT_STREAM_OVERHEAD);
  start = cp_aws_event_signer_begin_frame (out);
  if (payload_len > 0)
    g_byte_array_append (out, payload, payload_len);
  if (!cp_aws_event_signer_end_frame (signer, out, start, date_ms, error))
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

GBytes *
cp_aws_event_signer_sign_event (CpAwsEventSigner *signer,
    const CpAwsEventMessage *inner, gint64 date_ms, GError **error)
{
  g_autoptr (GByteArray) out = NULL;
  gsize start;

  g_return_val_if_fail (signer != NULL && inner != NULL, NULL);

  out = g_byte_array_new ();
  start = cp_aws_event_signer_begin_frame (out);
  if (!cp_aws_event_message_append_encoded (inner, out, error)
      || !cp_aws_event_signer_end_frame (signer, out, start, date_ms, error))
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

gboolean
cp_aws_event_signer_verify (CpAwsEventSigner *signer,
    const CpAwsEventMessage *outer, GError **error)
{
  guint8 date_header[DATE_HEADER_LEN];
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
  encode_date_header (date_ms, date_header);
  if (!compute_signature (signer, date_header, sizeof (date_header), payload,
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

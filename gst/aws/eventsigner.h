/* callpipe — STREAMING-AWS4-HMAC-SHA256-EVENTS signing chain
 *
 * Each event-stream message a client sends on a signed stream is wrapped
 * as the payload of an outer message with the headers ":date" (timestamp)
 * and ":chunk-signature" (32 raw bytes). The signature chains: the string
 * to sign holds the previous signature, starting from the seed (the
 * request's Authorization signature):
 *
 *   AWS4-HMAC-SHA256-PAYLOAD\n
 *   <amzdate>\n
 *   <date>/<region>/<service>/aws4_request\n
 *   <previous signature hex>\n
 *   <hex sha256(encoded :date header)>\n
 *   <hex sha256(payload)>
 *
 * with the signing key derived from each frame's own date. The same
 * object verifies such frames for local test peers. Not thread-safe.
 */
#ifndef CP_AWS_EVENT_SIGNER_H
#define CP_AWS_EVENT_SIGNER_H

#include "awscrypto.h"
#include "eventstream.h"

G_BEGIN_DECLS

#define CP_AWS_EVENT_SIGNER_ERROR (cp_aws_event_signer_error_quark ())

typedef enum {
  CP_AWS_EVENT_SIGNER_ERROR_INVALID_SEED,
  CP_AWS_EVENT_SIGNER_ERROR_INVALID_DATE,
  CP_AWS_EVENT_SIGNER_ERROR_MISSING_HEADER,
  CP_AWS_EVENT_SIGNER_ERROR_SIGNATURE_MISMATCH,
} CpAwsEventSignerError;

typedef struct _CpAwsEventSigner CpAwsEventSigner;

GQuark            cp_aws_event_signer_error_quark (void);

/* @seed_signature: the 64 hex digits of the request's signature. */
CpAwsEventSigner *cp_aws_event_signer_new   (const gchar *secret_key,
                                             const gchar *region,
                                             const gchar *service,
                                             const gchar *seed_signature,
                                             GError **error);
void              cp_aws_event_signer_free  (CpAwsEventSigner *signer);

/* The signature the next frame chains on (lowercase hex). */
const gchar      *cp_aws_event_signer_get_prior_signature
                                           (const CpAwsEventSigner *signer);

/* One link of the chain over raw bytes, as aws-sdk-go's StreamSigner:
 * hashes @headers and @payload, writes the signature and advances. Dates
 * are ms since the epoch; the amzdate line uses whole seconds. */
gboolean  cp_aws_event_signer_sign         (CpAwsEventSigner *signer,
                                            const guint8 *headers,
                                            gsize headers_len,
                                            const guint8 *payload,
                                            gsize payload_len,
                                            gint64 date_ms,
                                            guint8 signature[CP_AWS_SHA256_LEN],
                                            GError **error);

/* Wraps @inner (encoded message bytes; NULL or empty for the end-of-stream
 * frame) in a signed outer message and returns its encoding. */
GBytes   *cp_aws_event_signer_sign_message (CpAwsEventSigner *signer,
                                            GBytes *inner,
                                            gint64 date_ms,
                                            GError **error);
/* Encodes @inner, then as cp_aws_event_signer_sign_message(). */
GBytes   *cp_aws_event_signer_sign_event   (CpAwsEventSigner *signer,
                                            const CpAwsEventMessage *inner,
                                            gint64 date_ms,
                                            GError **error);

/* Signing in place, so that several frames can be built one after the
 * other in one buffer (and sent in one write): begin appends room for the
 * outer prelude and headers to @out and returns the frame's start; the
 * caller appends the inner message's encoding (nothing for the
 * end-of-stream frame); end signs it, fills the outer message in and
 * appends its CRC, giving the bytes cp_aws_event_signer_sign_message()
 * returns, and advances the chain. On error end cuts @out back to @start
 * and the chain stays. */
gsize     cp_aws_event_signer_begin_frame  (GByteArray *out);
gboolean  cp_aws_event_signer_end_frame    (CpAwsEventSigner *signer,
                                            GByteArray *out,
                                            gsize start,
                                            gint64 date_ms,
                                            GError **error);

/* Checks a decoded outer message's ":chunk-signature" against the chain;
 * on success the chain advances, on failure it stays. */
gboolean  cp_aws_event_signer_verify       (CpAwsEventSigner *signer,
                                            const CpAwsEventMessage *outer,
                                            GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpAwsEventSigner, cp_aws_event_signer_free)

G_END_DECLS

#endif /* CP_AWS_EVENT_SIGNER_H */

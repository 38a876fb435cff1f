/* callpiped — POST /turn: one blended-bot turn for Connect contact flows
 *
 * {sessionId, audioS3Key | audioBase64} → the caller's WAV runs through
 * connect-turn → {sessionId, turnId, responseAudioUrl, intent:
 * continue|transfer|end, transcript, reply}. The request is paused
 * (soup_server_message_pause) while the pipeline runs, so the main loop
 * never waits on it; a turn longer than [turn] timeout is stopped.
 *
 * Context: the turns of each sessionId (what the caller said, what the bot
 * answered) are kept in memory for [turn] context-ttl seconds after the
 * last one and handed to the next turn in its system prompt ("the
 * conversation so far"), since every turn is a fresh Nova Sonic stream.
 * One turn per sessionId runs at a time (409 otherwise).
 */
#ifndef CP_TURN_H
#define CP_TURN_H

#include "cp-config.h"
#include "cp-pool.h"
#include "cp-storage.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define CP_TURN_ERROR (cp_turn_error_quark ())

typedef enum
{
  CP_TURN_ERROR_MALFORMED,      /* 400 malformed_body */
  CP_TURN_ERROR_MISSING_FIELD,  /* 400 missing_field */
  CP_TURN_ERROR_INVALID_FIELD,  /* 400 invalid_field */
  CP_TURN_ERROR_INVALID_AUDIO,  /* 400 invalid_audio */
  CP_TURN_ERROR_AUDIO_TOO_LONG, /* 400 audio_too_long */
  CP_TURN_ERROR_NOT_FOUND,      /* 400 audio_not_found */
  CP_TURN_ERROR_BUSY,           /* 409 turn_in_progress */
} CpTurnError;

/* Answers a paused request: sets the status and body; the caller of
 * cp_turns_start() owns how errors look. */
typedef void (*CpTurnRespondFunc) (SoupServerMessage *msg, guint status,
    JsonNode *body, gpointer user_data);

typedef struct _CpTurns CpTurns;

GQuark   cp_turn_error_quark  (void);
CpTurns *cp_turns_new         (const CpConfig *config, CpPool *pool,
                               CpStorage *storage,
                               CpTurnRespondFunc respond,
                               gpointer user_data);
void     cp_turns_free        (CpTurns *turns);
gboolean cp_turns_start       (CpTurns *turns, SoupServerMessage *msg,
                               const gchar *body, gsize len,
                               const gchar *base_url, GError **error);
gboolean cp_turn_check_wav    (const guint8 *data, gsize len,
                               guint max_seconds, GError **error);
guint8  *cp_turn_decode_base64 (const gchar *text, gsize *out_len,
                                GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpTurns, cp_turns_free)

G_END_DECLS

#endif /* CP_TURN_H */

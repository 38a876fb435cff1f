/* callpiped — the session pool
 *
 * Maps session ids (random UUIDs) to live sessions, picks and caches the
 * pipeline factory for each kind of work, mirrors every state change into
 * the store and the metrics, and drains on shutdown. Sessions that reach a
 * final state leave the pool on the next idle; the store keeps them.
 *
 * Kinds: "call" (POST /calls: connect-bot or a mediaUri pipeline; at its
 * end the transcript JSON goes to storage), "turn" (POST /turn:
 * connect-turn) and "upload" (storage-upload: a call's transcript copied
 * to S3; not stored, but drained like the others so shutdown finishes
 * it).
 */
#ifndef CP_POOL_H
#define CP_POOL_H

#include "cp-config.h"
#include "cp-event.h"
#include "cp-metrics.h"
#include "cp-session.h"
#include "cp-storage.h"
#include "cp-store.h"

G_BEGIN_DECLS

#define CP_POOL_ERROR (cp_pool_error_quark ())

typedef enum
{
  CP_POOL_ERROR_DRAINING,       /* shutting down: 503 */
  CP_POOL_ERROR_UNAVAILABLE,    /* elements missing: 503 */
  CP_POOL_ERROR_INTERNAL,       /* pipeline file or store problem: 500 */
} CpPoolError;

typedef struct _CpPool CpPool;

typedef void (*CpPoolDrainedFunc) (gpointer user_data);
/* Called once when a turn's session reaches ended or failed, before the
 * pool lets go of it. */
typedef void (*CpPoolTurnDoneFunc) (CpSession *session, gpointer user_data);

/* One blended-bot turn (POST /turn): where the caller's WAV is read from
 * (a spooled file or a storage object), the prompt file with the conversation so far, and
 * where the reply WAV goes. */
typedef struct
{
  const gchar *conversation_id; /* the Connect sessionId */
  const gchar *audio_source;    /* filesrc, or s3src for S3 storage keys */
  const gchar *audio_location;
  const gchar *prompt_path;
  const gchar *reply_location;
} CpTurnRequest;

GQuark     cp_pool_error_quark  (void);
CpPool    *cp_pool_new          (const CpConfig *config, CpStore *store,
                                 CpStorage *storage, CpMetrics *metrics);
void       cp_pool_free         (CpPool *pool);
void       cp_pool_log_pipelines (CpPool *pool);
CpSession *cp_pool_start_call   (CpPool *pool, const CpCallRequest *req,
                                 GError **error);
/* A bot session that is not a phone call (kind "browser": a /sonic
 * WebSocket) running @pipeline with the session id and the [bot] values. */
CpSession *cp_pool_start_session (CpPool *pool, const gchar *kind,
                                  const gchar *pipeline, GError **error);
CpSession *cp_pool_start_turn   (CpPool *pool, const CpTurnRequest *req,
                                 CpPoolTurnDoneFunc done, gpointer user_data,
                                 GError **error);
CpSession *cp_pool_lookup       (CpPool *pool, const gchar *id);
guint      cp_pool_count_live   (CpPool *pool);
gboolean   cp_pool_is_draining  (CpPool *pool);
void       cp_pool_drain        (CpPool *pool, guint timeout_s,
                                 CpPoolDrainedFunc done, gpointer user_data);

G_END_DECLS

#endif /* CP_POOL_H */

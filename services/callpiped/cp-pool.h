/* callpiped — the session pool
 *
 * Maps session ids (random UUIDs) to live sessions, picks and caches the
 * pipeline factory for each kind of work, mirrors every state change into
 * the store and the metrics, and drains on shutdown. Sessions that reach a
 * final state leave the pool on the next idle; the store keeps them.
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

GQuark     cp_pool_error_quark  (void);
CpPool    *cp_pool_new          (const CpConfig *config, CpStore *store,
                                 CpStorage *storage, CpMetrics *metrics);
void       cp_pool_free         (CpPool *pool);
void       cp_pool_log_pipelines (CpPool *pool);
CpSession *cp_pool_start_call   (CpPool *pool, const CpCallRequest *req,
                                 GError **error);
CpSession *cp_pool_lookup       (CpPool *pool, const gchar *id);
guint      cp_pool_count_live   (CpPool *pool);
gboolean   cp_pool_is_draining  (CpPool *pool);
void       cp_pool_drain        (CpPool *pool, guint timeout_s,
                                 CpPoolDrainedFunc done, gpointer user_data);

G_END_DECLS

#endif /* CP_POOL_H */

/* callpiped — the HTTP API (libsoup 3)
 *
 * Routes: GET /health, GET /metrics, GET|POST /calls, GET|DELETE
 * /calls/{id}, POST /turn, GET /media/<path> (signed links). Every handler
 * answers without blocking the main loop: starting a call answers 202
 * before the pipeline is built; a turn pauses its request until the turn's
 * pipeline is done (cp-turn.h). Bearer auth and the body-size limit are checked in an
 * early handler, before the body is read.
 */
#ifndef CP_SERVER_H
#define CP_SERVER_H

#include "cp-config.h"
#include "cp-metrics.h"
#include "cp-pool.h"
#include "cp-storage.h"
#include "cp-store.h"

G_BEGIN_DECLS

typedef struct _CpServer CpServer;

CpServer *cp_server_new    (const CpConfig *config, CpPool *pool,
                            CpStore *store, CpStorage *storage,
                            CpMetrics *metrics);
void      cp_server_free   (CpServer *server);
gboolean  cp_server_listen (CpServer *server, const gchar *address,
                            guint port, guint *bound_port, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpServer, cp_server_free)

G_END_DECLS

#endif /* CP_SERVER_H */

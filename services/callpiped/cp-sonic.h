/* callpiped — GET /sonic: browser voice sessions over WebSocket
 *
 * Each connection is a session of kind "browser" in the pool running
 * pipelines/browser-bot.pipeline. Binary frames are 16 kHz S16LE mono
 * audio both ways; text frames from the server are JSON events
 * ({"type": "session" | "transcript" | "toolUse" | "transferToAgent" |
 * "endCall" | "bargeIn" | "usage" | "error", ...}). Browsers cannot set
 * headers on a WebSocket, so the API token may come as ?token=<token> or
 * as a "bearer.<token>" entry of Sec-WebSocket-Protocol next to
 * "callpipe.v1". Everything runs on the main loop: audio the appsink
 * produces on a streaming thread is handed over with
 * g_main_context_invoke().
 *
 * Bounds: at most [server] max-browser-sessions connections (503 with
 * Retry-After before the upgrade beyond). Reply audio is handed to the
 * socket only while it takes more; a browser that falls behind loses the
 * oldest reply audio beyond 3 s, and one that takes nothing for [server]
 * browser-stall-timeout seconds is closed (1008) and its session ended.
 * Caller audio more than 5 s ahead of real time is dropped. Drops are
 * counted in the metrics given with cp_sonic_set_metrics().
 */
#ifndef CP_SONIC_H
#define CP_SONIC_H

#include "cp-config.h"
#include "cp-pool.h"

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define CP_SONIC_PATH "/sonic"
#define CP_SONIC_PROTOCOL "callpipe.v1"
#define CP_SONIC_BEARER_PREFIX "bearer."
#define CP_SONIC_PIPELINE "browser-bot"
/* One binary frame: at most 1 s of 16 kHz S16LE audio. */
#define CP_SONIC_MAX_FRAME_BYTES 32000

typedef struct _CpSonic CpSonic;

CpSonic *cp_sonic_new        (const CpConfig *config, CpPool *pool,
                              SoupServer *soup);
void     cp_sonic_set_metrics (CpSonic *sonic, CpMetrics *metrics);
void     cp_sonic_free       (CpSonic *sonic);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSonic, cp_sonic_free)

G_END_DECLS

#endif /* CP_SONIC_H */

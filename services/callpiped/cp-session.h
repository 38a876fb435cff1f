/* callpiped — one session: a pipeline instance and its state machine
 *
 *   starting --PLAYING--> running --stop()--> ending --EOS--> ended
 *       \                    |                   \
 *        \                   +--EOS-----> ended    +--timeout--> failed
 *         +--ERROR / build failure--> failed     (ERROR from any live state)
 *
 * The pipeline is built from its factory in an idle callback, so the HTTP
 * request that created the session is answered before any element exists.
 * The bus watch sits on the main context; every transition calls the
 * owner's callback once, from the main loop.
 */
#ifndef CP_SESSION_H
#define CP_SESSION_H

#include "cp-factory.h"
#include "cp-store.h"

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum
{
  CP_SESSION_STARTING,
  CP_SESSION_RUNNING,
  CP_SESSION_ENDING,
  CP_SESSION_ENDED,
  CP_SESSION_FAILED,
} CpSessionState;

typedef struct _CpSession CpSession;

typedef void (*CpSessionChangedFunc) (CpSession *session, gpointer user_data);

const gchar           *cp_session_state_name     (CpSessionState state);
CpSession             *cp_session_new            (CpSessionRecord *record,
                                                  CpFactory *factory,
                                                  GHashTable *values,
                                                  guint long_call_warning,
                                                  CpSessionChangedFunc changed,
                                                  gpointer user_data);
void                   cp_session_free           (CpSession *session);
void                   cp_session_start          (CpSession *session);
void                   cp_session_stop           (CpSession *session,
                                                  const gchar *reason,
                                                  guint timeout_s);
CpSessionState         cp_session_get_state      (CpSession *session);
gboolean               cp_session_is_live        (CpSession *session);
gboolean               cp_session_pipeline_failed (CpSession *session);
const CpSessionRecord *cp_session_get_record     (CpSession *session);

G_END_DECLS

#endif /* CP_SESSION_H */

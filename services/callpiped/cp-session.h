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
 *
 * The bot's element messages feed the conversation: each FINAL
 * novasonic-transcript (caller or bot) and each novasonic-intent is kept,
 * mirrored as JSON into the record's conversation, and reported through
 * the callback. With @end_on_intent, a transfer or end intent ends the
 * session with the intent as the reason, once the bot's answer to it has
 * been spoken (or after a grace period if it never comes).
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
                                                  gboolean end_on_intent,
                                                  guint stop_timeout,
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
gchar                 *cp_session_get_text       (CpSession *session,
                                                  const gchar *role);
const gchar           *cp_session_get_intent     (CpSession *session);

/* An observer drives a session's pipeline from outside (cp-sonic.c feeds
 * its appsrc from a WebSocket): prepared() runs once the pipeline is built,
 * before it plays; element_message() gets every element message of the
 * bus; changed() follows each state change. All run on the main loop. */
typedef struct
{
  void (*prepared)        (CpSession *session, GstElement *pipeline,
                           gpointer user_data);
  void (*element_message) (CpSession *session, GstMessage *msg,
                           gpointer user_data);
  void (*changed)         (CpSession *session, gpointer user_data);
} CpSessionObserver;

void                   cp_session_set_observer   (CpSession *session,
                                                  const CpSessionObserver *observer,
                                                  gpointer user_data);

G_END_DECLS

#endif /* CP_SESSION_H */

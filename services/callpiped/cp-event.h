/* callpiped — POST /calls bodies
 *
 * Two shapes start a call: the Amazon Connect contact-flow Lambda event as
 * Connect sends it (Details.ContactData...), and the flat form
 * {contactId, streamArn, startFragmentNumber, startTimestamp, mediaUri?}.
 * Both become one CpCallRequest; every error names the offending field.
 */
#ifndef CP_EVENT_H
#define CP_EVENT_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_EVENT_ERROR (cp_event_error_quark ())

typedef enum
{
  CP_EVENT_ERROR_MALFORMED,     /* not JSON, or not an object */
  CP_EVENT_ERROR_INVALID_FIELD, /* wrong type or value */
  CP_EVENT_ERROR_MISSING_FIELD,
} CpEventError;

typedef struct
{
  gchar *contact_id;
  gchar *stream_arn;            /* NULL when the event carries none */
  gchar *start_fragment;        /* NULL: none */
  gint64 start_timestamp;       /* ms since the epoch, -1: none */
  gchar *media_uri;             /* NULL: media comes from KVS */
  gchar *attributes_json;       /* contact attributes, a JSON object */
} CpCallRequest;

GQuark         cp_event_error_quark   (void);
CpCallRequest *cp_call_request_parse  (const gchar *body, gsize len,
                                       GError **error);
void           cp_call_request_free   (CpCallRequest *req);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpCallRequest, cp_call_request_free)

G_END_DECLS

#endif /* CP_EVENT_H */

/* callpipe — Amazon Nova Sonic bidirectional-stream protocol
 *
 * The pieces of InvokeModelWithBidirectionalStream that need no I/O and no
 * GStreamer: the request (path with the model id encoded as a URI label,
 * headers, SigV4 seed signature), the input events' JSON, their wrapping
 * in an event-stream "chunk" message ({"bytes":"<base64 JSON>"}), the
 * parsing of output messages (events, exceptions, errors), the tool files
 * of pipelines/tools and the conversation history replayed when a session
 * is renewed. See research/novasonic.md for the wire facts.
 */
#ifndef SONIC_PROTOCOL_H
#define SONIC_PROTOCOL_H

#include <glib.h>

#include "aws/eventstream.h"
#include "aws/sigv4.h"

G_BEGIN_DECLS

#define SONIC_SIGNING_SERVICE     "bedrock"
#define SONIC_ENDPOINT_SERVICE_ID "BEDROCK_RUNTIME"
#define SONIC_ENDPOINT_PREFIX     "bedrock-runtime"
#define SONIC_CONTENT_TYPE        "application/vnd.amazon.eventstream"
#define SONIC_INTERRUPTED_TEXT    "{ \"interrupted\" : true }"

/* History limits of the Nova 2 chat-history page. */
#define SONIC_HISTORY_MAX_TOTAL   (40 * 1024)
#define SONIC_HISTORY_MAX_MESSAGE 1024

#define SONIC_ERROR (sonic_error_quark ())
GQuark sonic_error_quark (void);

typedef enum {
  SONIC_ERROR_MALFORMED,      /* an output message we cannot understand */
  SONIC_ERROR_EXCEPTION,      /* the service sent an exception or error */
  SONIC_ERROR_TOOL,           /* a tools-dir file is unusable */
  SONIC_ERROR_HTTP,           /* the request was answered with a non-200 */
} SonicError;

typedef enum {
  SONIC_ROLE_UNKNOWN,
  SONIC_ROLE_USER,
  SONIC_ROLE_ASSISTANT,
  SONIC_ROLE_SYSTEM,
  SONIC_ROLE_TOOL,
} SonicRole;

typedef enum {
  SONIC_STAGE_NONE,
  SONIC_STAGE_FINAL,
  SONIC_STAGE_SPECULATIVE,
} SonicStage;

typedef enum {
  SONIC_CONTENT_UNKNOWN,
  SONIC_CONTENT_TEXT,
  SONIC_CONTENT_AUDIO,
  SONIC_CONTENT_TOOL,
} SonicContentType;

const gchar *sonic_role_to_string  (SonicRole role);
const gchar *sonic_stage_to_string (SonicStage stage);

/* ---- configuration ---- */

typedef struct {
  gchar *name;
  gchar *description;
  gchar *input_schema;          /* JSON text of the schema object */
  gchar *instruction;           /* appended to the system prompt; may be NULL */
  gchar *category;              /* may be NULL */
} SonicTool;

void sonic_tool_free (SonicTool *tool);

/* Loads every *.json file of @dir (sorted by name) as a SonicTool; a
 * missing directory is an empty list, a bad file an error naming it. */
GPtrArray *sonic_tools_load_dir  (const gchar *dir, GError **error);
SonicTool *sonic_tool_parse      (const gchar *json, gsize len,
                                  GError **error);

typedef struct {
  gchar *model_id;
  gchar *voice_id;
  gint input_rate;
  gint output_rate;
  gchar *system_prompt;
  GPtrArray *tools;             /* of SonicTool, may be NULL */
  gchar *endpointing;           /* HIGH|MEDIUM|LOW, NULL to leave it out */
  gint max_tokens;
  gdouble temperature;
  gdouble top_p;
} SonicConfig;

SonicConfig *sonic_config_new  (void);
void         sonic_config_free (SonicConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SonicConfig, sonic_config_free)

/* The system prompt with each tool's instruction appended. */
gchar *sonic_config_system_text (const SonicConfig *config);

/* ---- request ---- */

/* "/model/<model id as a URI label>/invoke-with-bidirectional-stream",
 * as sent on the wire. */
gchar *sonic_request_path (const gchar *model_id);

/* Signs the POST for @authority (host[:port]) at @time (unix seconds):
 * content-type and the streaming-events payload hash are signed along
 * with :authority (the HTTP/2 name of host, as the JS SDK signs it). The result's headers are what to send besides content-type;
 * its signature seeds the event chain. */
CpAwsSigV4Result *sonic_sign_request (const gchar *authority,
                                      const gchar *model_id,
                                      const gchar *region,
                                      const gchar *access_key,
                                      const gchar *secret_key,
                                      const gchar *session_token,
                                      gint64 time,
                                      GError **error);

/* ---- input events (compact JSON, transfer full) ---- */

gchar *sonic_event_session_start   (const SonicConfig *config);
gchar *sonic_event_prompt_start    (const SonicConfig *config,
                                    const gchar *prompt_name);
gchar *sonic_event_text_content_start (const gchar *prompt_name,
                                       const gchar *content_name,
                                       SonicRole role,
                                       gboolean interactive);
gchar *sonic_event_text_input      (const gchar *prompt_name,
                                    const gchar *content_name,
                                    const gchar *text);
gchar *sonic_event_audio_content_start (const gchar *prompt_name,
                                        const gchar *content_name,
                                        gint rate);
gchar *sonic_event_audio_input     (const gchar *prompt_name,
                                    const gchar *content_name,
                                    const guint8 *pcm, gsize len);
gchar *sonic_event_tool_content_start (const gchar *prompt_name,
                                       const gchar *content_name,
                                       const gchar *tool_use_id);
gchar *sonic_event_tool_result     (const gchar *prompt_name,
                                    const gchar *content_name,
                                    const gchar *json);
gchar *sonic_event_content_end     (const gchar *prompt_name,
                                    const gchar *content_name);
gchar *sonic_event_prompt_end      (const gchar *prompt_name);
gchar *sonic_event_session_end     (void);

/* The chunk message carrying @json: headers :event-type chunk,
 * :message-type event, :content-type application/json; payload
 * {"bytes":"<base64 json>"}. */
CpAwsEventMessage *sonic_wrap_event (const gchar *json);

/* Appends to @out the encoded chunk message of the audioInput event of
 * @pcm: the bytes of cp_aws_event_message_encode (sonic_wrap_event
 * (sonic_event_audio_input (...))), built where they go, without the
 * intermediate strings and message. @scratch holds the event's JSON and
 * is reused from call to call. Fails (leaving @out as it was) only when
 * @len is over the event-stream payload limit. */
gboolean sonic_append_audio_chunk (GByteArray *out,
                                   GString *scratch,
                                   const gchar *prompt_name,
                                   const gchar *content_name,
                                   const guint8 *pcm, gsize len,
                                   GError **error);

/* ---- output events ---- */

typedef enum {
  SONIC_OUT_UNKNOWN,            /* an event type we do not use */
  SONIC_OUT_COMPLETION_START,
  SONIC_OUT_CONTENT_START,
  SONIC_OUT_TEXT,
  SONIC_OUT_AUDIO,
  SONIC_OUT_TOOL_USE,
  SONIC_OUT_CONTENT_END,
  SONIC_OUT_USAGE,
  SONIC_OUT_COMPLETION_END,
  SONIC_OUT_USER_SPEECH_START,
  SONIC_OUT_USER_SPEECH_END,
  SONIC_OUT_EXCEPTION,          /* exception or error message */
} SonicOutputKind;

typedef struct {
  SonicOutputKind kind;
  gchar *event_name;            /* the JSON key, e.g. "textOutput" */
  gchar *content_id;
  SonicContentType type;
  SonicRole role;
  SonicStage stage;
  gchar *text;                  /* textOutput / toolUse content */
  gboolean interrupted;         /* textOutput {"interrupted": true} */
  GBytes *audio;                /* audioOutput, decoded PCM */
  gchar *tool_name;
  gchar *tool_use_id;
  gchar *stop_reason;
  /* usageEvent */
  gint64 input_tokens;
  gint64 output_tokens;
  gint64 total_tokens;
  /* exceptions: "modelTimeoutException", or an :error-code */
  gchar *exception_type;
  gchar *exception_message;
} SonicOutputEvent;

void sonic_output_event_free (SonicOutputEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SonicOutputEvent, sonic_output_event_free)

/* Parses one decoded response message. Unknown events are
 * SONIC_OUT_UNKNOWN; what is malformed fails with SONIC_ERROR_MALFORMED. */
SonicOutputEvent *sonic_output_event_parse (const CpAwsEventMessage *msg,
                                            GError **error);

/* Whether reconnecting can help: timeouts, throttling, unavailable and
 * internal errors are retryable, validation errors are not. */
gboolean sonic_exception_is_retryable (const gchar *exception_type);

/* ---- history ---- */

typedef struct _SonicHistory SonicHistory;

typedef struct {
  SonicRole role;
  gchar *text;
} SonicHistoryEntry;

SonicHistory *sonic_history_new    (void);
void          sonic_history_free   (SonicHistory *history);
/* Appends a USER or ASSISTANT text, merged with the last entry when the
 * role repeats. Other roles are ignored. */
void          sonic_history_add    (SonicHistory *history, SonicRole role,
                                    const gchar *text);
/* The entries to replay, newest kept: each at most
 * SONIC_HISTORY_MAX_MESSAGE bytes (its end kept), the total at most
 * SONIC_HISTORY_MAX_TOTAL, starting with USER. Array of
 * SonicHistoryEntry, transfer full. */
GPtrArray    *sonic_history_export (const SonicHistory *history);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SonicHistory, sonic_history_free)

G_END_DECLS

#endif /* SONIC_PROTOCOL_H */

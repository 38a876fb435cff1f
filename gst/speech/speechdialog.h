/* Offline dialog engine: a workflow of intents, slots, confirmations and
 * tool calls (one JSON file of pipelines/workflows) turned into replies to
 * the caller's utterances. Text in, text and tool calls out: the caller
 * runs the VAD, the recognizer and the voice. */
#ifndef CP_SPEECH_DIALOG_H
#define CP_SPEECH_DIALOG_H

#include "speech/speechasr.h"

G_BEGIN_DECLS

typedef enum {
  CP_SPEECH_DIALOG_INTENT_CONTINUE,
  CP_SPEECH_DIALOG_INTENT_TRANSFER,   /* transfer_to_agent was called */
  CP_SPEECH_DIALOG_INTENT_END,        /* end_call was called */
} CpSpeechDialogIntent;

typedef enum {
  CP_SPEECH_DIALOG_ROLE_USER,
  CP_SPEECH_DIALOG_ROLE_ASSISTANT,
  CP_SPEECH_DIALOG_ROLE_TOOL,
} CpSpeechDialogRole;

/* What to do after an utterance, the greeting or a tool result. */
typedef struct {
  gchar                *text;         /* to speak; NULL: say nothing */
  gchar                *matched;      /* workflow intent in progress, or NULL */
  gdouble               score;        /* match score of @matched, 0 to 1 */
  gchar                *slot;         /* the slot @text asks for, or NULL */
  gchar                *tool_name;    /* a tool call, or NULL */
  gchar                *tool_use_id;
  gchar                *tool_input;   /* JSON object text */
  gboolean              awaits_result; /* answer with _tool_result() */
  CpSpeechDialogIntent  intent;
  gchar                *reason;       /* for TRANSFER and END */
} CpSpeechDialogReply;

/* One entry of the conversation history. */
typedef struct {
  CpSpeechDialogRole  role;
  gchar              *text;         /* USER, ASSISTANT: words; TOOL: JSON */
  gchar              *intent;       /* USER: the intent matched, or NULL */
  gchar              *tool_name;    /* ASSISTANT tool calls and TOOL */
  gchar              *tool_use_id;
  gchar              *tool_input;   /* ASSISTANT tool calls */
} CpSpeechDialogTurn;

typedef struct _CpSpeechDialogWorkflow CpSpeechDialogWorkflow;
typedef struct _CpSpeechDialog CpSpeechDialog;

CpSpeechDialogWorkflow *cp_speech_dialog_workflow_load
                                          (const gchar          *path,
                                           const gchar          *tools_dir,
                                           CpSpeechModel        *model,
                                           GError              **error);
CpSpeechDialogWorkflow *cp_speech_dialog_workflow_new_from_data
                                          (const gchar          *data,
                                           gsize                 len,
                                           const gchar          *source,
                                           const gchar          *tools_dir,
                                           CpSpeechModel        *model,
                                           GError              **error);
CpSpeechDialogWorkflow *cp_speech_dialog_workflow_ref
                                          (CpSpeechDialogWorkflow *workflow);
void          cp_speech_dialog_workflow_unref
                                          (CpSpeechDialogWorkflow *workflow);
const gchar  *cp_speech_dialog_workflow_get_name
                                          (CpSpeechDialogWorkflow *workflow);
GStrv         cp_speech_dialog_workflow_get_vocabulary
                                          (CpSpeechDialogWorkflow *workflow);
CpSpeechModel *cp_speech_dialog_workflow_get_model
                                          (CpSpeechDialogWorkflow *workflow,
                                           GError              **error);

CpSpeechDialog      *cp_speech_dialog_new (CpSpeechDialogWorkflow *workflow);
void                 cp_speech_dialog_free (CpSpeechDialog       *dialog);

CpSpeechDialogReply *cp_speech_dialog_start
                                          (CpSpeechDialog       *dialog);
CpSpeechDialogReply *cp_speech_dialog_handle_utterance
                                          (CpSpeechDialog       *dialog,
                                           const gchar          *text,
                                           gdouble               confidence);
CpSpeechDialogReply *cp_speech_dialog_tool_result
                                          (CpSpeechDialog       *dialog,
                                           const gchar          *tool_use_id,
                                           const gchar          *json,
                                           GError              **error);

GStrv        cp_speech_dialog_get_phrases (CpSpeechDialog       *dialog);
gchar       *cp_speech_dialog_get_jsgf    (CpSpeechDialog       *dialog);
gboolean     cp_speech_dialog_is_finished (CpSpeechDialog       *dialog);
GPtrArray   *cp_speech_dialog_get_history (CpSpeechDialog       *dialog);

void         cp_speech_dialog_reply_free  (CpSpeechDialogReply  *reply);

const gchar *cp_speech_dialog_intent_to_string (CpSpeechDialogIntent intent);
const gchar *cp_speech_dialog_role_to_string   (CpSpeechDialogRole   role);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechDialogWorkflow,
                               cp_speech_dialog_workflow_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechDialog, cp_speech_dialog_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpeechDialogReply,
                               cp_speech_dialog_reply_free)

G_END_DECLS

#endif /* CP_SPEECH_DIALOG_H */

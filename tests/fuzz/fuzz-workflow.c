/* libFuzzer target for the dialog engine's workflow loader.
 *
 * Whatever loads must also run: the greeting, a few utterances that
 * reach intents, slots, confirmations and tool calls of a typical
 * workflow, a tool result, and the grammar of each state reached. */
#include "speech/speechdialog.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const gchar *const utterances[] = {
    "where is my order",
    "one two three four",
    "yes",
    "no",
    "check my balance",
    "banana",
    "",
    "talk to an agent",
    "goodbye",
};

static void
check_grammar (CpSpeechDialog *dialog)
{
  g_auto (GStrv) phrases = cp_speech_dialog_get_phrases (dialog);
  g_autofree gchar *jsgf = cp_speech_dialog_get_jsgf (dialog);

  g_assert (jsgf == NULL || phrases != NULL);
}

static void
run_dialog (CpSpeechDialogWorkflow *workflow)
{
  g_autoptr (CpSpeechDialog) dialog = cp_speech_dialog_new (workflow);
  guint i;

  cp_speech_dialog_reply_free (cp_speech_dialog_start (dialog));
  for (i = 0; i < G_N_ELEMENTS (utterances); i++) {
    g_autoptr (CpSpeechDialogReply) reply = NULL;
    g_autoptr (CpSpeechDialogReply) result = NULL;

    check_grammar (dialog);
    reply = cp_speech_dialog_handle_utterance (dialog, utterances[i], 1.0);
    if (reply->awaits_result)
      result = cp_speech_dialog_tool_result (dialog, reply->tool_use_id,
          i % 2 ? "{\"status\": \"late\", \"a\": {\"b\": [1, true]}}"
                : "{\"error\": \"none\"}",
          NULL);
  }
  g_assert (cp_speech_dialog_get_history (dialog)->len > 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CpSpeechDialogWorkflow) workflow = NULL;

  workflow = cp_speech_dialog_workflow_new_from_data ((const gchar *) data,
      size, "fuzz.json", NULL, NULL, NULL);
  if (workflow != NULL)
    run_dialog (workflow);
  return 0;
}

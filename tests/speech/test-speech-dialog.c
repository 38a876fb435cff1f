/* Unit tests of the dialog engine on the shipped customer-service workflow
 * and on small workflows written here, ending with flite-spoken audio
 * recognized in the grammar the engine asks for. */
#include "speech/speechdialog.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "speechtestutil.h"

static CpSpeechModel *model;

static gchar *
pipelines_path (const gchar *sub)
{
  const gchar *dir = g_getenv ("CALLPIPE_PIPELINES_DIR");

  g_assert_nonnull (dir);
  return g_build_filename (dir, sub, NULL);
}

static CpSpeechDialogWorkflow *
load_default (CpSpeechModel *check_model)
{
  g_autofree gchar *path = pipelines_path ("workflows/customer-service.json");
  g_autofree gchar *tools = pipelines_path ("tools");
  g_autoptr (GError) error = NULL;
  CpSpeechDialogWorkflow *wf;

  wf = cp_speech_dialog_workflow_load (path, tools, check_model, &error);
  g_assert_no_error (error);
  g_assert_nonnull (wf);
  return wf;
}

static CpSpeechDialogWorkflow *
parse (const gchar *json, const gchar *tools_dir, GError **error)
{
  return cp_speech_dialog_workflow_new_from_data (json, strlen (json),
      "test.json", tools_dir, NULL, error);
}

static CpSpeechDialogReply *
say (CpSpeechDialog *dialog, const gchar *text)
{
  CpSpeechDialogReply *reply;

  reply = cp_speech_dialog_handle_utterance (dialog, text, 1.0);
  g_assert_nonnull (reply);
  g_test_message ("caller: \"%s\" -> [%s %.2f] \"%s\"", text,
      reply->matched ? reply->matched : "-", reply->score,
      reply->text ? reply->text : "");
  return reply;
}

static gboolean
strv_has (GStrv strv, const gchar *s)
{
  return strv != NULL && g_strv_contains ((const gchar *const *) strv, s);
}

static const gchar *
input_reason (const CpSpeechDialogReply *reply)
{
  static gchar reason[256];
  g_autoptr (JsonNode) node = json_from_string (reply->tool_input, NULL);

  g_assert_nonnull (node);
  g_strlcpy (reason,
      json_object_get_string_member (json_node_get_object (node), "reason"),
      sizeof (reason));
  return reason;
}

/* Greeting, order status, its number, the answer, goodbye. */
static void
test_conversation (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) greeting = NULL, ask = NULL, answer = NULL;
  g_autoptr (CpSpeechDialogReply) bye = NULL;
  g_auto (GStrv) top = NULL, digits = NULL;
  GPtrArray *history;
  CpSpeechDialogTurn *turn;

  g_assert_cmpstr (cp_speech_dialog_workflow_get_name (wf), ==,
      "customer-service");
  greeting = cp_speech_dialog_start (d);
  g_assert_nonnull (strstr (greeting->text, "How can I help you"));
  top = cp_speech_dialog_get_phrases (d);
  g_assert_true (strv_has (top, "where is my order"));
  g_assert_true (strv_has (top, "that's all"));
  g_assert_false (strv_has (top, "five"));
  g_assert_null (cp_speech_dialog_get_jsgf (d));

  ask = say (d, "Where is my order?");
  g_assert_cmpstr (ask->matched, ==, "order_status");
  g_assert_cmpstr (ask->slot, ==, "order_number");
  g_assert_nonnull (strstr (ask->text, "order number"));
  g_assert_null (ask->tool_name);
  g_assert_cmpint (ask->intent, ==, CP_SPEECH_DIALOG_INTENT_CONTINUE);
  digits = cp_speech_dialog_get_phrases (d);
  g_assert_true (strv_has (digits, "five"));
  g_assert_true (strv_has (digits, "talk to an agent"));

  answer = say (d, "one two three four five");
  g_assert_cmpstr (answer->matched, ==, "order_status");
  g_assert_null (answer->slot);
  g_assert_nonnull (strstr (answer->text, "Order 1 2 3 4 5 is"));
  g_assert_cmpint (answer->intent, ==, CP_SPEECH_DIALOG_INTENT_CONTINUE);
  g_assert_false (cp_speech_dialog_is_finished (d));

  bye = say (d, "no thank you goodbye");
  g_assert_cmpstr (bye->matched, ==, "goodbye");
  g_assert_cmpstr (bye->tool_name, ==, "end_call");
  g_assert_nonnull (bye->tool_use_id);
  g_assert_false (bye->awaits_result);
  g_assert_cmpint (bye->intent, ==, CP_SPEECH_DIALOG_INTENT_END);
  g_assert_cmpstr (cp_speech_dialog_intent_to_string (bye->intent), ==, "end");
  g_assert_cmpstr (bye->reason, ==, "The caller said goodbye");
  g_assert_cmpstr (input_reason (bye), ==, "The caller said goodbye");
  g_assert_nonnull (strstr (bye->text, "Goodbye"));
  g_assert_true (cp_speech_dialog_is_finished (d));
  g_assert_null (cp_speech_dialog_get_phrases (d));

  /* greeting, then three exchanges of a user and an assistant turn */
  history = cp_speech_dialog_get_history (d);
  g_assert_cmpuint (history->len, ==, 7);
  turn = history->pdata[0];
  g_assert_cmpint (turn->role, ==, CP_SPEECH_DIALOG_ROLE_ASSISTANT);
  g_assert_cmpstr (turn->text, ==, greeting->text);
  turn = history->pdata[3];
  g_assert_cmpstr (cp_speech_dialog_role_to_string (turn->role), ==, "USER");
  g_assert_cmpstr (turn->text, ==, "one two three four five");
  g_assert_cmpstr (turn->intent, ==, "order_status");
  turn = history->pdata[6];
  g_assert_cmpstr (turn->tool_name, ==, "end_call");
  g_assert_cmpstr (turn->tool_use_id, ==, bye->tool_use_id);
}

static void
test_transfer (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) reply = NULL, after = NULL;

  cp_speech_dialog_reply_free (cp_speech_dialog_start (d));
  reply = say (d, "Can I talk to a real person, please?");
  g_assert_cmpstr (reply->matched, ==, "agent");
  g_assert_cmpstr (reply->tool_name, ==, "transfer_to_agent");
  g_assert_cmpint (reply->intent, ==, CP_SPEECH_DIALOG_INTENT_TRANSFER);
  g_assert_cmpstr (reply->reason, ==, "The caller asked for an agent");
  g_assert_nonnull (strstr (reply->text, "transferring you"));
  g_assert_true (cp_speech_dialog_is_finished (d));

  /* Speech after the transfer gets no answer. */
  after = say (d, "hello");
  g_assert_null (after->text);
  g_assert_null (after->tool_name);
}

/* Not understood three times: two reprompts, then the transfer. */
static void
test_fallback (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) r1 = NULL, r2 = NULL, r3 = NULL;

  cp_speech_dialog_reply_free (cp_speech_dialog_start (d));
  r1 = say (d, "what is the weather like in paris");
  g_assert_null (r1->matched);
  g_assert_nonnull (strstr (r1->text, "did not catch that"));
  g_assert_null (r1->tool_name);
  r2 = cp_speech_dialog_handle_utterance (d, "", 0.0);
  g_assert_nonnull (strstr (r2->text, "still did not understand"));
  r3 = say (d, "purple elephants");
  g_assert_cmpstr (r3->tool_name, ==, "transfer_to_agent");
  g_assert_cmpint (r3->intent, ==, CP_SPEECH_DIALOG_INTENT_TRANSFER);
  g_assert_cmpstr (r3->reason, ==, "The caller was not understood");
  g_assert_nonnull (strstr (r3->text, "could not understand"));
}

/* A slot's answer that does not fit is asked again, within the limit. */
static void
test_slot_retries (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) r1 = NULL, r2 = NULL, r3 = NULL;
  g_autoptr (CpSpeechDialogReply) r4 = NULL, r5 = NULL, r6 = NULL;
  g_autoptr (CpSpeechDialogReply) r7 = NULL;
  g_autofree gchar *jsgf = NULL;

  r1 = say (d, "what's my balance");
  g_assert_cmpstr (r1->matched, ==, "balance");
  g_assert_cmpstr (r1->slot, ==, "last_four");
  jsgf = cp_speech_dialog_get_jsgf (d);
  /* exactly four digits */
  g_assert_nonnull (strstr (jsgf,
      "<digits> = <digit> <digit> <digit> "
      "<digit>;"));
  r2 = say (d, "one two");
  g_assert_cmpstr (r2->slot, ==, "last_four");
  g_assert_nonnull (strstr (r2->text, "one digit at a time"));
  r3 = say (d, "four three two one");
  g_assert_nonnull (strstr (r3->text, "ending in 4 3 2 1"));

  /* A new intent in the middle of a slot question takes over. */
  r4 = say (d, "track my order");
  g_assert_cmpstr (r4->slot, ==, "order_number");
  r5 = say (d, "banana");
  g_assert_cmpstr (r5->slot, ==, "order_number");
  r6 = say (d, "seven");
  g_assert_cmpstr (r6->slot, ==, "order_number");
  r7 = say (d, "i don't know");
  g_assert_cmpstr (r7->tool_name, ==, "transfer_to_agent");
  g_assert_cmpstr (r7->reason, ==, "The caller was not understood");
}

static void
test_slot_switch_intent (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) r1 = NULL, r2 = NULL;

  r1 = say (d, "where is my package");
  g_assert_cmpstr (r1->slot, ==, "order_number");
  r2 = say (d, "just let me talk to an agent");
  g_assert_cmpstr (r2->matched, ==, "agent");
  g_assert_cmpint (r2->intent, ==, CP_SPEECH_DIALOG_INTENT_TRANSFER);
}

static void
test_confirmation (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) r1 = NULL, r2 = NULL, r3 = NULL;
  g_autoptr (CpSpeechDialogReply) r4 = NULL, r5 = NULL;
  g_auto (GStrv) phrases = NULL;

  r1 = say (d, "somebody stole my credit card");
  g_assert_cmpstr (r1->matched, ==, "lost_card");
  g_assert_nonnull (strstr (r1->text, "block your card now?"));
  phrases = cp_speech_dialog_get_phrases (d);
  g_assert_true (strv_has (phrases, "yes"));
  g_assert_true (strv_has (phrases, "that's right"));
  r2 = say (d, "hmm maybe");
  g_assert_nonnull (strstr (r2->text, "Please say yes"));
  r3 = say (d, "yes please");
  g_assert_nonnull (strstr (r3->text, "Your card is blocked"));

  r4 = say (d, "I lost my card");
  g_assert_nonnull (strstr (r4->text, "block your card now?"));
  r5 = say (d, "no");
  g_assert_nonnull (strstr (r5->text, "stays active"));
  g_assert_cmpstr (r5->matched, ==, "lost_card");
}

static const gchar *lookup_tool =
    "{\"name\": \"lookup_order\", \"description\": \"Finds an order\","
    " \"input_schema\": {\"type\": \"object\", \"properties\":"
    " {\"order_number\": {\"type\": \"string\"}},"
    " \"required\": [\"order_number\"]}}";

static const gchar *lookup_workflow =
    "{\"name\": \"shop\", \"greeting\": \"Hi.\","
    " \"intents\": [{\"name\": \"order\", \"examples\": [\"where is my "
    "order\"],"
    "   \"slots\": [{\"name\": \"number\", \"type\": \"digits\","
    "     \"question\": \"Which order?\"}],"
    "   \"confirm\": \"Order {number}, right?\","
    "   \"tool\": {\"name\": \"lookup_order\","
    "     \"input\": {\"order_number\": \"{number}\"}},"
    "   \"progress\": \"One moment.\","
    "   \"reply\": \"Order {number} is {result.status}, due "
    "{result.eta.day}.\","
    "   \"failure\": \"Sorry, order {number} was not found.\"}],"
    " \"fallback\": {\"reprompts\": [\"Pardon?\"], \"reply\": \"Bye.\"}}";

static gchar *
make_tools_dir (void)
{
  g_autoptr (GError) error = NULL;
  gchar *dir = g_dir_make_tmp ("dialog-tools-XXXXXX", &error);
  g_autofree gchar *path = NULL;

  g_assert_no_error (error);
  path = g_build_filename (dir, "lookup_order.json", NULL);
  g_assert_true (g_file_set_contents (path, lookup_tool, -1, &error));
  return dir;
}

static void
remove_tools_dir (const gchar *dir)
{
  g_autofree gchar *path = g_build_filename (dir, "lookup_order.json", NULL);

  g_assert_cmpint (g_remove (path), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static CpSpeechDialogReply *
ask_lookup (CpSpeechDialog *d)
{
  CpSpeechDialogReply *reply;

  cp_speech_dialog_reply_free (say (d, "where is my order"));
  cp_speech_dialog_reply_free (say (d, "it is one two three four"));
  reply = say (d, "yes that's right");
  g_assert_cmpstr (reply->tool_name, ==, "lookup_order");
  g_assert_true (reply->awaits_result);
  g_assert_cmpint (reply->intent, ==, CP_SPEECH_DIALOG_INTENT_CONTINUE);
  g_assert_cmpstr (reply->tool_input, ==, "{\"order_number\":\"1234\"}");
  g_assert_cmpstr (reply->text, ==, "One moment.");
  return reply;
}

/* A tool the caller runs: its result's fields go into the reply. */
static void
test_tool_result (void)
{
  g_autofree gchar *dir = make_tools_dir ();
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechDialogWorkflow) wf = parse (lookup_workflow, dir, &error);
  g_autoptr (CpSpeechDialog) d = NULL;
  g_autoptr (CpSpeechDialogReply) call = NULL, waiting = NULL, done = NULL;
  g_autoptr (CpSpeechDialogReply) call2 = NULL, failed = NULL;
  GPtrArray *history;
  CpSpeechDialogTurn *turn;

  g_assert_no_error (error);
  d = cp_speech_dialog_new (wf);
  call = ask_lookup (d);
  waiting = say (d, "hello are you there");
  g_assert_null (waiting->text);

  g_assert_null (cp_speech_dialog_tool_result (d, "no-such-id", "{}", &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW);
  g_assert_nonnull (strstr (error->message, "no-such-id"));
  g_clear_error (&error);
  g_assert_null (cp_speech_dialog_tool_result (d, call->tool_use_id,
      "{\"status\":", &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW);
  g_clear_error (&error);

  done = cp_speech_dialog_tool_result (d, call->tool_use_id,
      "{\"status\": \"delayed\", \"eta\": {\"day\": \"Monday\"}}", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (done->text, ==, "Order 1 2 3 4 is delayed, due Monday.");
  g_assert_cmpstr (done->matched, ==, "order");
  history = cp_speech_dialog_get_history (d);
  turn = history->pdata[history->len - 2];
  g_assert_cmpint (turn->role, ==, CP_SPEECH_DIALOG_ROLE_TOOL);
  g_assert_cmpstr (turn->tool_use_id, ==, call->tool_use_id);

  /* An error result, or one without the fields, gives the failure. */
  call2 = ask_lookup (d);
  g_assert_cmpstr (call2->tool_use_id, !=, call->tool_use_id);
  failed = cp_speech_dialog_tool_result (d, call2->tool_use_id,
      "{\"status\": \"shipped\"}", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (failed->text, ==, "Sorry, order 1 2 3 4 was not found.");
  remove_tools_dir (dir);
}

static void
test_unknown_tool (void)
{
  g_autofree gchar *tools = pipelines_path ("tools");
  g_autoptr (GError) error = NULL;
  const gchar *json =
      "{\"name\": \"w\", \"greeting\": \"Hi.\","
      " \"intents\": [{\"name\": \"refund\", \"examples\": [\"refund\"],"
      "   \"tool\": {\"name\": \"refund_order\"}, \"reply\": \"Done.\","
      "   \"failure\": \"No.\"}],"
      " \"fallback\": {\"reprompts\": [\"Pardon?\"], \"reply\": \"Bye.\"}}";

  g_assert_null (parse (json, tools, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "test.json: $.intents[0].tool"));
  g_assert_nonnull (strstr (error->message, "unknown tool \"refund_order\""));
}

/* Each defect is reported with the file, the JSON path and what is
 * wrong. */
static void
test_malformed (void)
{
  static const struct
  {
    const gchar *json;
    const gchar *expect;
  } cases[] = {
      {"{\n  \"name\": \"w\",\n  \"intents\": [1,,]\n}", "test.json:3:"},
      {"", "$: a workflow must be a JSON object"},
      {"[]", "$: a workflow must be a JSON object"},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": []}",
          "$: \"intents\" must be a non-empty array"},
      {"{\"name\": \"w\", \"greting\": \"Hi\"}", "unknown member \"greting\""},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": [{\"name\": \"a\","
       " \"examples\": [\"x\"], \"reply\": \"{nope}\"}]}",
          "$.intents[0].reply: unknown placeholder {nope}"},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": [{\"name\": \"a\","
       " \"examples\": [\"x\", \"?!\"], \"reply\": \"ok\"}]}",
          "$.intents[0].examples[1]: \"?!\" has no words"},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": [{\"name\": \"a\","
       " \"examples\": [\"x\"], \"reply\": \"ok\", \"slots\": [{\"name\":"
       " \"s\", \"type\": \"date\", \"question\": \"When?\"}]}]}",
          "$.intents[0].slots[0]: slot type \"date\""},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": [{\"name\": \"a\","
       " \"examples\": [\"x\"], \"tool\": {\"name\": \"transfer_to_agent\","
       " \"input\": {}}}]}",
          "$.intents[0].tool: input lacks \"reason\""},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": [{\"name\": \"a\","
       " \"examples\": [\"x\"], \"reply\": \"ok\"}]}",
          "$: missing object \"fallback\""},
      {"{\"name\": \"w\", \"greeting\": \"Hi\", \"intents\": [{\"name\": \"a\","
       " \"examples\": [\"x\"], \"reply\": \"ok\"}], \"fallback\":"
       " {\"reprompts\": [\"?\"], \"reply\": \"bye\", \"max_retries\": 99}}",
          "$.fallback: \"max_retries\" must be between 0 and 10"},
  };
  g_autofree gchar *tools = pipelines_path ("tools");
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GError) error = NULL;

    g_assert_null (parse (cases[i].json, tools, &error));
    g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW);
    g_test_message ("%s", error->message);
    g_assert_true (g_str_has_prefix (error->message, "test.json"));
    g_assert_nonnull (strstr (error->message, cases[i].expect));
  }
}

static const gchar *
match (CpSpeechDialogWorkflow *wf, const gchar *text, gdouble *score)
{
  static gchar name[64];
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialogReply) reply =
      cp_speech_dialog_handle_utterance (d, text, 1.0);

  *score = reply->score;
  g_strlcpy (name, reply->matched ? reply->matched : "", sizeof (name));
  return name;
}

static GPtrArray *
default_examples (void)
{
  g_autofree gchar *path = pipelines_path ("workflows/customer-service.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  GPtrArray *pairs = g_ptr_array_new_with_free_func (g_free);
  JsonArray *intents;
  guint i, j;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  intents = json_object_get_array_member (json_node_get_object (
                                              json_parser_get_root (parser)),
      "intents");
  for (i = 0; i < json_array_get_length (intents); i++) {
    JsonObject *intent = json_array_get_object_element (intents, i);
    JsonArray *examples = json_object_get_array_member (intent, "examples");

    for (j = 0; j < json_array_get_length (examples); j++) {
      g_ptr_array_add (pairs,
          g_strdup (json_object_get_string_member (intent, "name")));
      g_ptr_array_add (pairs,
          g_strdup (json_array_get_string_element (examples, j)));
    }
  }
  return pairs;
}

/* Recognition errors: every example of three words or more with one word
 * dropped, and with one word replaced by a word the workflow does not
 * know, must still find its intent in nine cases out of ten; phrasings
 * that are no example must too. */
static void
test_near_miss (void)
{
  static const gchar *const phrasings[][2] = {
      {"um where's my order at", "order_status"},
      {"I'd like to know my balance please", "balance"},
      {"someone stole my credit card", "lost_card"},
      {"get me a representative", "agent"},
      {"okay bye bye", "goodbye"},
      {"I want to check the status of my delivery", "order_status"},
      {"my card is lost", "lost_card"},
      {"how much is in my account", "balance"},
  };
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (GPtrArray) pairs = default_examples ();
  guint i, w, tried = 0, right = 0;
  gdouble score;

  for (i = 0; i < G_N_ELEMENTS (phrasings); i++)
    g_assert_cmpstr (match (wf, phrasings[i][0], &score), ==, phrasings[i][1]);

  for (i = 0; i < pairs->len; i += 2) {
    const gchar *intent = pairs->pdata[i];
    g_auto (GStrv) words = g_strsplit (pairs->pdata[i + 1], " ", -1);
    guint n = g_strv_length (words);

    if (n < 3)
      continue;
    for (w = 0; w < n; w++) {
      guint variant;

      for (variant = 0; variant < 2; variant++) {
        g_autoptr (GString) text = g_string_new (NULL);
        const gchar *got;
        guint k;

        for (k = 0; k < n; k++) {
          if (k == w && variant == 0)
            continue;
          g_string_append_printf (text, "%s%s", text->len ? " " : "",
              k == w ? "zebra" : words[k]);
        }
        got = match (wf, text->str, &score);
        tried++;
        if (strcmp (got, intent) == 0)
          right++;
        else
          g_test_message ("miss: \"%s\" -> \"%s\" (%.2f), not %s", text->str,
              got, score, intent);
      }
    }
  }
  g_test_message ("near misses: %u of %u matched (%.0f%%)", right, tried,
      100.0 * right / tried);
  g_assert_cmpuint (tried, >=, 100);
  g_assert_cmpfloat ((gdouble) right / tried, >=, 0.9);
}

/* With a model, a word outside the dictionary fails at load time. */
static void
test_dictionary (void)
{
  g_autoptr (GError) error = NULL;
  const gchar *json =
      "{\"name\": \"w\", \"greeting\": \"Hi.\","
      " \"intents\": [{\"name\": \"a\", \"examples\": [\"press 1\","
      "   \"talk to an xqzzyv\"], \"reply\": \"ok\"}],"
      " \"fallback\": {\"reprompts\": [\"Pardon?\"], \"reply\": \"Bye.\"}}";
  CpSpeechDialogWorkflow *wf;

  wf = cp_speech_dialog_workflow_new_from_data (json, strlen (json),
      "test.json", NULL, NULL, &error);
  g_assert_no_error (error);
  cp_speech_dialog_workflow_unref (wf);

  g_assert_null (cp_speech_dialog_workflow_new_from_data (json, strlen (json),
      "test.json", NULL, model, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_test_message ("%s", error->message);
  g_assert_nonnull (
      strstr (error->message, "test.json: $.intents[0].examples[1]: "));
  g_assert_nonnull (strstr (error->message, "xqzzyv"));
}

/* The workflow's grammar-only model refuses the same word with the same
 * message as the load-time check with a full model. */
static void
test_dictionary_model (void)
{
  g_autoptr (GError) error = NULL, expected = NULL;
  const gchar *json =
      "{\"name\": \"w\", \"greeting\": \"Hi.\","
      " \"intents\": [{\"name\": \"a\", \"examples\": [\"press 1\","
      "   \"talk to an xqzzyv\"], \"reply\": \"ok\"}],"
      " \"fallback\": {\"reprompts\": [\"Pardon?\"], \"reply\": \"Bye.\"}}";
  g_autoptr (CpSpeechDialogWorkflow) wf = NULL, ok = NULL;
  g_autoptr (CpSpeechModel) m1 = NULL, m2 = NULL, shared = NULL;
  g_auto (GStrv) vocabulary = NULL;

  g_assert_null (cp_speech_dialog_workflow_new_from_data (json, strlen (json),
      "test.json", NULL, model, &expected));
  wf = cp_speech_dialog_workflow_new_from_data (json, strlen (json),
      "test.json", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (cp_speech_dialog_workflow_get_model (wf, &error));
  g_assert_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR);
  g_test_message ("%s", error->message);
  g_assert_cmpstr (error->message, ==, expected->message);
  g_clear_error (&error);

  /* A good workflow: the shared model of its vocabulary, every time. */
  ok = load_default (NULL);
  m1 = cp_speech_dialog_workflow_get_model (ok, &error);
  g_assert_no_error (error);
  m2 = cp_speech_dialog_workflow_get_model (ok, &error);
  g_assert_no_error (error);
  vocabulary = cp_speech_dialog_workflow_get_vocabulary (ok);
  shared =
      cp_speech_model_get_grammar ((const gchar *const *) vocabulary, &error);
  g_assert_no_error (error);
  g_assert_true (m1 == m2);
  g_assert_true (m1 == shared);
}

static gchar *
recognize_8k (CpSpeechRecognizer *rec, const gchar *sentence)
{
  g_autoptr (GError) error = NULL;
  g_autofree gint16 *speech = NULL, *audio = NULL;
  g_autoptr (GString) text = g_string_new (NULL);
  gsize n_speech, n, off;
  CpSpeechResult *r;

  speech = cp_test_speak (sentence, 8000, &n_speech);
  audio = cp_test_pad (speech, n_speech, 8000, 8000, -60.0, &n);
  for (off = 0; off < n; off += 160) {
    g_assert_true (cp_speech_recognizer_process (rec, audio + off,
        MIN (160, n - off), &error));
  }
  g_assert_true (cp_speech_recognizer_flush (rec, &error));
  while ((r = cp_speech_recognizer_pop_result (rec)) != NULL) {
    if (!r->is_partial && r->text[0] != '\0')
      g_string_append_printf (text, "%s%s", text->len ? " " : "", r->text);
    cp_speech_result_free (r);
  }
  g_test_message ("8 kHz: \"%s\" -> \"%s\"", sentence, text->str);
  return g_strdup (text->str);
}

/* The engine's phrases for a state, as the recognizer's grammar, on
 * telephone-rate speech: the phrase comes back and picks its intent. The
 * digits state's JSGF takes a whole order number. */
static void
grammar_8k (CpSpeechModel *asr_model)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (asr_model);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CpSpeechDialogReply) r1 = NULL, r2 = NULL;
  g_auto (GStrv) phrases = NULL;
  g_autofree gchar *heard = NULL, *number = NULL, *jsgf = NULL;

  rec = cp_speech_recognizer_new (asr_model, 8000, &error);
  g_assert_no_error (error);
  phrases = cp_speech_dialog_get_phrases (d);
  g_assert_true (cp_speech_recognizer_set_phrases (rec,
      (const gchar *const *) phrases, &error));
  g_assert_no_error (error);
  heard = recognize_8k (rec, "Has my order shipped?");
  g_assert_cmpstr (heard, ==, "has my order shipped");
  r1 = say (d, heard);
  g_assert_cmpstr (r1->matched, ==, "order_status");
  g_assert_cmpstr (r1->slot, ==, "order_number");

  jsgf = cp_speech_dialog_get_jsgf (d);
  g_assert_true (cp_speech_recognizer_set_grammar (rec, jsgf, &error));
  g_assert_no_error (error);
  number = recognize_8k (rec, "two zero one nine");
  /* Exactly: sphinxbase's "(NULL)" null-transition tokens are dropped. */
  g_assert_cmpstr (number, ==, "two zero one nine");
  r2 = say (d, number);
  g_assert_nonnull (strstr (r2->text, "Order 2 0 1 9 is"));
}

static void
test_grammar_8k (void)
{
  grammar_8k (model);
}

static CpSpeechModel *
default_grammar_model (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_auto (GStrv) vocabulary = cp_speech_dialog_workflow_get_vocabulary (wf);
  g_autoptr (GError) error = NULL;
  CpSpeechModel *m;

  m = cp_speech_model_new_grammar (NULL, (const gchar *const *) vocabulary,
      &error);
  g_assert_no_error (error);
  return m;
}

/* The same with a grammar-only model of the workflow's vocabulary: it
 * passes the load-time check and hears the same. */
static void
test_grammar_8k_vocabulary_model (void)
{
  g_autoptr (CpSpeechModel) m = default_grammar_model ();

  grammar_8k (m);
}

/* The vocabulary covers every state's grammar: the top state's phrases,
 * a digits slot's JSGF, a confirmation's yes/no phrases. */
static void
test_vocabulary (void)
{
  g_autoptr (CpSpeechDialogWorkflow) wf = load_default (NULL);
  g_autoptr (CpSpeechDialog) d = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechDialog) d2 = cp_speech_dialog_new (wf);
  g_autoptr (CpSpeechModel) m = default_grammar_model ();
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  g_autoptr (CpSpeechDialogReply) r1 = NULL, r2 = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) vocabulary = NULL, top = NULL, confirm = NULL;
  g_autofree gchar *digits = NULL;
  guint i;

  vocabulary = cp_speech_dialog_workflow_get_vocabulary (wf);
  top = cp_speech_dialog_get_phrases (d);
  for (i = 0; top[i] != NULL; i++)
    g_assert_true (strv_has (vocabulary, top[i]));
  g_assert_true (strv_has (vocabulary, "oh"));
  g_assert_true (strv_has (vocabulary, "nine"));
  g_assert_true (strv_has (vocabulary, "that's right"));

  rec = cp_speech_recognizer_new (m, 8000, &error);
  g_assert_no_error (error);
  g_assert_true (cp_speech_recognizer_set_phrases (rec,
      (const gchar *const *) top, &error));
  g_assert_no_error (error);
  r1 = say (d, "where is my order");
  g_assert_cmpstr (r1->slot, ==, "order_number");
  digits = cp_speech_dialog_get_jsgf (d);
  g_assert_true (cp_speech_recognizer_set_grammar (rec, digits, &error));
  g_assert_no_error (error);
  r2 = say (d2, "somebody stole my credit card");
  g_assert_cmpstr (r2->matched, ==, "lost_card");
  confirm = cp_speech_dialog_get_phrases (d2);
  g_assert_true (strv_has (confirm, "that's wrong"));
  g_assert_true (cp_speech_recognizer_set_phrases (rec,
      (const gchar *const *) confirm, &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  gint ret;

  g_test_init (&argc, &argv, NULL);
  model = cp_speech_model_get_default (&error);
  g_assert_no_error (error);

  g_test_add_func ("/speech/dialog/conversation", test_conversation);
  g_test_add_func ("/speech/dialog/transfer", test_transfer);
  g_test_add_func ("/speech/dialog/fallback", test_fallback);
  g_test_add_func ("/speech/dialog/slot-retries", test_slot_retries);
  g_test_add_func ("/speech/dialog/slot-switch-intent",
      test_slot_switch_intent);
  g_test_add_func ("/speech/dialog/confirmation", test_confirmation);
  g_test_add_func ("/speech/dialog/tool-result", test_tool_result);
  g_test_add_func ("/speech/dialog/unknown-tool", test_unknown_tool);
  g_test_add_func ("/speech/dialog/malformed", test_malformed);
  g_test_add_func ("/speech/dialog/near-miss", test_near_miss);
  g_test_add_func ("/speech/dialog/dictionary", test_dictionary);
  g_test_add_func ("/speech/dialog/dictionary-model", test_dictionary_model);
  g_test_add_func ("/speech/dialog/grammar-8k", test_grammar_8k);
  g_test_add_func ("/speech/dialog/grammar-8k-vocabulary-model",
      test_grammar_8k_vocabulary_model);
  g_test_add_func ("/speech/dialog/vocabulary", test_vocabulary);
  ret = g_test_run ();
  cp_speech_model_unref (model);
  return ret;
}

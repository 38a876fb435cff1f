/* Offline dialog engine.
 *
 * A workflow (pipelines/workflows/README.md) is loaded once, checked in
 * full (unknown members, unknown tools, template names, and with a model
 * the recognizer's dictionary) and shared read-only by every conversation.
 *
 * Utterances are matched to intents on normalized tokens: lower case,
 * punctuation dropped, numbers as one token per digit. An example scores
 * the weighted Dice overlap of its tokens with the utterance's, each token
 * weighted by how few intents use it, so that "my" or "i" count for less
 * than "balance"; a keyword found in the utterance lifts its intent above
 * the default threshold. Recognition errors drop or replace a word or two,
 * which costs part of the overlap rather than the match. */
#include "speech/speechdialog.h"

#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#define DEFAULT_THRESHOLD 0.5
#define DEFAULT_MAX_RETRIES 2
#define MAX_RETRIES_LIMIT 10
#define MAX_DIGITS_LIMIT 64
/* Weight of an utterance token no example uses: recognizer noise should
 * dilute a match, not sink it. */
#define UNKNOWN_TOKEN_WEIGHT 0.5
#define KEYWORD_BASE_SCORE 0.6
/* Beyond this many optional digits, a JSGF grammar takes any number. */
#define MAX_OPTIONAL_DIGITS 12

#define TRANSFER_TOOL "transfer_to_agent"
#define END_TOOL "end_call"

typedef enum
{
  SLOT_DIGITS,
  SLOT_YES_NO,
  SLOT_TEXT,
} SlotType;

typedef enum
{
  ANSWER_NONE,
  ANSWER_YES,
  ANSWER_NO,
} Answer;

typedef enum
{
  STATE_TOP,
  STATE_SLOT,
  STATE_CONFIRM,
  STATE_TOOL,
  STATE_DONE,
} State;

typedef struct
{
  GPtrArray *tokens; /* unique normalized tokens */
  gchar *asr; /* the phrase as the recognizer spells it */
  gchar *path; /* JSON path, for errors */
  gdouble weight;
} Pattern;

typedef struct
{
  gchar *name;
  SlotType type;
  guint min_digits;
  guint max_digits;
  gchar *question;
  gchar *reprompt;
} Slot;

typedef struct
{
  gchar *name;
  CpSpeechDialogIntent intent; /* CONTINUE for tools the caller runs */
  JsonNode *input; /* object template */
} Action;

typedef struct
{
  gchar *name;
  GPtrArray *examples; /* Pattern */
  GPtrArray *keywords; /* Pattern */
  GPtrArray *slots; /* Slot */
  gchar *confirm;
  gchar *confirm_reprompt;
  gchar *declined;
  Action *action;
  gchar *progress;
  gchar *reply;
  gchar *failure;
} Intent;

typedef struct
{
  gchar *name;
  GStrv required;
} Tool;

struct _CpSpeechDialogWorkflow
{
  gatomicrefcount ref;
  gchar *source; /* for errors */
  gchar *name;
  gchar *greeting;
  gdouble threshold;
  gdouble min_confidence;
  GPtrArray *reprompts; /* gchar* */
  guint max_retries;
  gchar *fallback_reply;
  Action *fallback_action;
  GPtrArray *intents; /* Intent */
  GHashTable *weights; /* token -> gdouble* */
};

struct _CpSpeechDialog
{
  CpSpeechDialogWorkflow *workflow;
  State state;
  const Intent *intent;
  gdouble score;
  guint slot;
  GHashTable *values; /* slot name -> value */
  guint retries;
  gchar *pending_id;
  GPtrArray *history; /* CpSpeechDialogTurn */
};

static const gchar *const digit_words[] = {
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
};

static const gchar *const teen_words[] = {
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
};

static const gchar *const tens_words[] = {
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
};

static const gchar *const yes_words[] = {
    "yes",
    "yeah",
    "yep",
    "correct",
    "right",
    "sure",
    "okay",
};

static const gchar *const no_words[] = {
    "no",
    "nope",
    "wrong",
    "incorrect",
    "not",
};

/* What the recognizer listens for when a yes or no is expected. */
static const gchar *const yes_no_phrases[] = {
    "yes",
    "yeah",
    "yep",
    "correct",
    "that's right",
    "sure",
    "okay",
    "no",
    "nope",
    "wrong",
    "that's wrong",
    "not right",
    NULL,
};

/* ---- text normalization ---- */

static gint
word_index (const gchar *word, const gchar *const *words, guint n)
{
  guint i;

  for (i = 0; i < n; i++) {
    if (strcmp (word, words[i]) == 0)
      return i;
  }
  return -1;
}

static void
add_digits (GPtrArray *tokens, const gchar *digits)
{
  for (; *digits != '\0'; digits++)
    g_ptr_array_add (tokens, g_strndup (digits, 1));
}

static gboolean
is_word_byte (guchar c)
{
  return g_ascii_isalnum (c) || c == '\'' || c >= 0x80;
}

static GPtrArray *
split_raw_words (const gchar *text)
{
  GPtrArray *words = g_ptr_array_new_with_free_func (g_free);
  const gchar *p = text;

  while (*p != '\0') {
    const gchar *start;
    gchar *word, *trimmed;

    while (*p != '\0' && !is_word_byte (*p))
      p++;
    start = p;
    while (is_word_byte (*p))
      p++;
    if (p == start)
      continue;
    word = g_ascii_strdown (start, p - start);
    trimmed = word;
    while (*trimmed == '\'')
      trimmed++;
    while (*trimmed != '\0' && trimmed[strlen (trimmed) - 1] == '\'')
      trimmed[strlen (trimmed) - 1] = '\0';
    if (*trimmed != '\0')
      g_ptr_array_add (words, g_strdup (trimmed));
    g_free (word);
  }
  return words;
}

static gboolean
is_all_digits (const gchar *s)
{
  for (; *s != '\0'; s++) {
    if (!g_ascii_isdigit (*s))
      return FALSE;
  }
  return TRUE;
}

/* Tokens of @text: lower case, no punctuation, and numbers, spoken or
 * written, as one token per digit ("twenty one" and "21" both give "2"
 * "1"), so that examples, recognizer output and digit slots agree. */
static GPtrArray *
normalize (const gchar *text)
{
  g_autoptr (GPtrArray) words = split_raw_words (text);
  GPtrArray *tokens = g_ptr_array_new_with_free_func (g_free);
  guint i;

  for (i = 0; i < words->len; i++) {
    const gchar *w = words->pdata[i];
    gint d;

    if (is_all_digits (w)) {
      add_digits (tokens, w);
    } else if ((d = word_index (w, digit_words, 10)) >= 0) {
      g_ptr_array_add (tokens, g_strdup_printf ("%d", d));
    } else if ((d = word_index (w, teen_words, 10)) >= 0) {
      add_digits (tokens, "1");
      g_ptr_array_add (tokens, g_strdup_printf ("%d", d));
    } else if ((d = word_index (w, tens_words, 8)) >= 0) {
      gint unit = i + 1 < words->len
          ? word_index (words->pdata[i + 1], digit_words, 10)
          : -1;

      g_ptr_array_add (tokens, g_strdup_printf ("%d", d + 2));
      g_ptr_array_add (tokens, g_strdup_printf ("%d", MAX (unit, 0)));
      if (unit > 0)
        i++;
    } else {
      g_ptr_array_add (tokens, g_strdup (w));
    }
  }
  return tokens;
}

/* The recognizer's spelling of normalized tokens: digits as words. */
static gchar *
tokens_to_asr (GPtrArray *tokens)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; i < tokens->len; i++) {
    const gchar *t = tokens->pdata[i];

    if (s->len > 0)
      g_string_append_c (s, ' ');
    if (g_ascii_isdigit (t[0]) && t[1] == '\0')
      g_string_append (s, digit_words[t[0] - '0']);
    else
      g_string_append (s, t);
  }
  return g_string_free (s, FALSE);
}

static gboolean
tokens_contain (GPtrArray *tokens, const gchar *token)
{
  guint i;

  for (i = 0; i < tokens->len; i++) {
    if (strcmp (tokens->pdata[i], token) == 0)
      return TRUE;
  }
  return FALSE;
}

static GPtrArray *
unique_tokens (GPtrArray *tokens)
{
  GPtrArray *unique = g_ptr_array_new_with_free_func (g_free);
  guint i;

  for (i = 0; i < tokens->len; i++) {
    if (!tokens_contain (unique, tokens->pdata[i]))
      g_ptr_array_add (unique, g_strdup (tokens->pdata[i]));
  }
  return unique;
}

static gboolean
is_one_digit (const gchar *token)
{
  return g_ascii_isdigit (token[0]) && token[1] == '\0';
}

/* All the digits of @tokens in order ("oh" is a zero), NULL if none. */
static gchar *
extract_digits (GPtrArray *tokens)
{
  GString *digits = g_string_new (NULL);
  guint i;

  for (i = 0; i < tokens->len; i++) {
    const gchar *t = tokens->pdata[i];

    if (is_one_digit (t))
      g_string_append_c (digits, t[0]);
    else if (strcmp (t, "oh") == 0)
      g_string_append_c (digits, '0');
  }
  if (digits->len == 0) {
    g_string_free (digits, TRUE);
    return NULL;
  }
  return g_string_free (digits, FALSE);
}

static Answer
extract_answer (GPtrArray *tokens)
{
  gboolean yes = FALSE, no = FALSE;
  guint i;

  for (i = 0; i < tokens->len; i++) {
    yes |=
        word_index (tokens->pdata[i], yes_words, G_N_ELEMENTS (yes_words)) >= 0;
    no |= word_index (tokens->pdata[i], no_words, G_N_ELEMENTS (no_words)) >= 0;
  }
  if (yes == no)
    return ANSWER_NONE;
  return yes ? ANSWER_YES : ANSWER_NO;
}

/* ---- workflow structures ---- */

static void
pattern_free (Pattern *p)
{
  g_ptr_array_unref (p->tokens);
  g_free (p->asr);
  g_free (p->path);
  g_free (p);
}

static void
slot_free (Slot *s)
{
  g_free (s->name);
  g_free (s->question);
  g_free (s->reprompt);
  g_free (s);
}

static void
action_free (Action *a)
{
  if (a == NULL)
    return;
  g_free (a->name);
  json_node_unref (a->input);
  g_free (a);
}

static void
intent_free (Intent *intent)
{
  g_free (intent->name);
  g_ptr_array_unref (intent->examples);
  g_ptr_array_unref (intent->keywords);
  g_ptr_array_unref (intent->slots);
  g_free (intent->confirm);
  g_free (intent->confirm_reprompt);
  g_free (intent->declined);
  action_free (intent->action);
  g_free (intent->progress);
  g_free (intent->reply);
  g_free (intent->failure);
  g_free (intent);
}

static Intent *
intent_new (void)
{
  Intent *intent = g_new0 (Intent, 1);

  intent->examples =
      g_ptr_array_new_with_free_func ((GDestroyNotify) pattern_free);
  intent->keywords =
      g_ptr_array_new_with_free_func ((GDestroyNotify) pattern_free);
  intent->slots = g_ptr_array_new_with_free_func ((GDestroyNotify) slot_free);
  return intent;
}

static void
tool_free (Tool *tool)
{
  g_free (tool->name);
  g_strfreev (tool->required);
  g_free (tool);
}

static const Slot *
intent_find_slot (const Intent *intent, const gchar *name, guint *index)
{
  guint i;

  for (i = 0; i < intent->slots->len; i++) {
    const Slot *slot = intent->slots->pdata[i];

    if (strcmp (slot->name, name) == 0) {
      if (index != NULL)
        *index = i;
      return slot;
    }
  }
  return NULL;
}

/* ---- loading ---- */

typedef struct
{
  const gchar *source;
  const gchar *tools_dir;
  GPtrArray *tools; /* Tool */
  GError **error;
} Loader;

static gboolean fail (Loader *ld, const gchar *path, const gchar *format, ...)
    G_GNUC_PRINTF (3, 4);

/* Errors name the file, the JSON path and the defect. */
static gboolean
fail (Loader *ld, const gchar *path, const gchar *format, ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (ld->error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW,
      "%s: %s: %s", ld->source, path, message);
  return FALSE;
}

static gboolean
check_members (Loader *ld, JsonObject *obj, const gchar *path,
    const gchar *const *allowed)
{
  g_autoptr (GList) members = json_object_get_members (obj);
  GList *l;

  for (l = members; l != NULL; l = l->next) {
    if (!g_strv_contains (allowed, l->data))
      return fail (ld, path, "unknown member \"%s\"", (gchar *) l->data);
  }
  return TRUE;
}

static gboolean
node_is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_STRING;
}

static gboolean
read_string (Loader *ld, JsonObject *obj, const gchar *path,
    const gchar *member, gboolean required, gchar **out)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = NULL;
  if (node == NULL) {
    if (required)
      return fail (ld, path, "missing string \"%s\"", member);
    return TRUE;
  }
  if (!node_is_string (node) || json_node_get_string (node)[0] == '\0')
    return fail (ld, path, "\"%s\" must be a non-empty string", member);
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

static gboolean
read_number (Loader *ld, JsonObject *obj, const gchar *path,
    const gchar *member, gdouble min, gdouble max, gdouble *inout)
{
  JsonNode *node = json_object_get_member (obj, member);
  gdouble v;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || (json_node_get_value_type (node) != G_TYPE_INT64
          && json_node_get_value_type (node) != G_TYPE_DOUBLE))
    return fail (ld, path, "\"%s\" must be a number", member);
  v = json_node_get_double (node);
  if (!(v >= min && v <= max))
    return fail (ld, path, "\"%s\" must be between %g and %g", member, min,
        max);
  *inout = v;
  return TRUE;
}

static gboolean
read_count (Loader *ld, JsonObject *obj, const gchar *path, const gchar *member,
    guint min, guint max, guint *inout)
{
  JsonNode *node = json_object_get_member (obj, member);
  gint64 v;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return fail (ld, path, "\"%s\" must be an integer", member);
  v = json_node_get_int (node);
  if (v < min || v > max)
    return fail (ld, path, "\"%s\" must be between %u and %u", member, min,
        max);
  *inout = v;
  return TRUE;
}

/* An optional array member; NULL with no error when absent. */
static JsonArray *
read_array (Loader *ld, JsonObject *obj, const gchar *path, const gchar *member,
    gboolean *ok)
{
  JsonNode *node = json_object_get_member (obj, member);

  *ok = TRUE;
  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (node)) {
    *ok = fail (ld, path, "\"%s\" must be an array", member);
    return NULL;
  }
  return json_node_get_array (node);
}

static JsonObject *
read_object (Loader *ld, JsonObject *obj, const gchar *path,
    const gchar *member, gboolean *ok)
{
  JsonNode *node = json_object_get_member (obj, member);

  *ok = TRUE;
  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    *ok = fail (ld, path, "\"%s\" must be an object", member);
    return NULL;
  }
  return json_node_get_object (node);
}

/* Checks the {name} placeholders of @template: @slots names the slots it
 * may use (NULL: none), @results whether {result.field} is allowed. */
static gboolean
check_template (Loader *ld, const gchar *path, const gchar *template,
    const Intent *slots, gboolean results)
{
  const gchar *p = template;

  while (*p != '\0') {
    const gchar *end;
    g_autofree gchar *name = NULL;

    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
      p += 2;
      continue;
    }
    if (*p == '}')
      return fail (ld, path, "unmatched \"}\" (write \"}}\" for a brace)");
    if (*p != '{') {
      p++;
      continue;
    }
    end = strchr (p, '}');
    if (end == NULL)
      return fail (ld, path, "unclosed \"{\" (write \"{{\" for a brace)");
    name = g_strndup (p + 1, end - p - 1);
    if (results
        && (strcmp (name, "result") == 0
            || g_str_has_prefix (name, "result."))) {
      p = end + 1;
      continue;
    }
    if (slots == NULL || intent_find_slot (slots, name, NULL) == NULL)
      return fail (ld, path, "unknown placeholder {%s}%s", name,
          results ? "" : " (only slot names are allowed here)");
    p = end + 1;
  }
  return TRUE;
}

static gboolean
read_template (Loader *ld, JsonObject *obj, const gchar *path,
    const gchar *member, gboolean required, const Intent *slots,
    gboolean results, gchar **out)
{
  g_autofree gchar *sub = NULL;

  if (!read_string (ld, obj, path, member, required, out))
    return FALSE;
  if (*out == NULL)
    return TRUE;
  sub = g_strdup_printf ("%s.%s", path, member);
  return check_template (ld, sub, *out, slots, results);
}

static Pattern *
pattern_new (Loader *ld, const gchar *path, const gchar *text)
{
  g_autoptr (GPtrArray) tokens = normalize (text);
  Pattern *p;

  if (tokens->len == 0) {
    fail (ld, path, "\"%s\" has no words", text);
    return NULL;
  }
  p = g_new0 (Pattern, 1);
  p->asr = tokens_to_asr (tokens);
  p->tokens = unique_tokens (tokens);
  p->path = g_strdup (path);
  return p;
}

static gboolean
read_patterns (Loader *ld, JsonObject *obj, const gchar *path,
    const gchar *member, GPtrArray *out)
{
  JsonArray *array;
  gboolean ok;
  guint i;

  array = read_array (ld, obj, path, member, &ok);
  if (array == NULL)
    return ok;
  for (i = 0; i < json_array_get_length (array); i++) {
    JsonNode *node = json_array_get_element (array, i);
    g_autofree gchar *item = g_strdup_printf ("%s.%s[%u]", path, member, i);
    Pattern *p;

    if (!node_is_string (node))
      return fail (ld, item, "must be a string");
    p = pattern_new (ld, item, json_node_get_string (node));
    if (p == NULL)
      return FALSE;
    g_ptr_array_add (out, p);
  }
  return TRUE;
}

static const Tool *
find_tool (Loader *ld, const gchar *name)
{
  guint i;

  for (i = 0; i < ld->tools->len; i++) {
    const Tool *tool = ld->tools->pdata[i];

    if (strcmp (tool->name, name) == 0)
      return tool;
  }
  return NULL;
}

static gboolean
check_input_strings (Loader *ld, const gchar *path, JsonNode *node,
    const Intent *slots)
{
  guint i;

  if (JSON_NODE_HOLDS_OBJECT (node)) {
    g_autoptr (GList) members =
        json_object_get_members (json_node_get_object (node));
    GList *l;

    for (l = members; l != NULL; l = l->next) {
      g_autofree gchar *sub =
          g_strdup_printf ("%s.%s", path, (gchar *) l->data);

      if (!check_input_strings (ld, sub,
              json_object_get_member (json_node_get_object (node), l->data),
              slots))
        return FALSE;
    }
  } else if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *array = json_node_get_array (node);

    for (i = 0; i < json_array_get_length (array); i++) {
      g_autofree gchar *sub = g_strdup_printf ("%s[%u]", path, i);

      if (!check_input_strings (ld, sub, json_array_get_element (array, i),
              slots))
        return FALSE;
    }
  } else if (node_is_string (node)) {
    return check_template (ld, path, json_node_get_string (node), slots, FALSE);
  }
  return TRUE;
}

/* {"name": ..., "input": {...}}: the tool must be built in or in the
 * tools directory, and the input must give what its schema requires. */
static Action *
read_action (Loader *ld, JsonObject *parent, const gchar *parent_path,
    const Intent *slots, gboolean *ok)
{
  static const gchar *const members[] = {"name", "input", NULL};
  g_autofree gchar *path = g_strdup_printf ("%s.tool", parent_path);
  g_autofree gchar *input_path = g_strdup_printf ("%s.input", path);
  g_autofree gchar *name = NULL;
  JsonObject *obj, *input;
  const Tool *tool;
  Action *action;
  guint i;

  obj = read_object (ld, parent, parent_path, "tool", ok);
  if (obj == NULL)
    return NULL;
  *ok = FALSE;
  if (!check_members (ld, obj, path, members)
      || !read_string (ld, obj, path, "name", TRUE, &name))
    return NULL;
  input = read_object (ld, obj, path, "input", ok);
  if (!*ok)
    return NULL;
  *ok = FALSE;
  tool = find_tool (ld, name);
  if (tool == NULL && strcmp (name, TRANSFER_TOOL) != 0
      && strcmp (name, END_TOOL) != 0) {
    fail (ld, path,
        "unknown tool \"%s\": not built in and no tool of that "
        "name in the tools directory \"%s\"",
        name, ld->tools_dir != NULL ? ld->tools_dir : "(none)");
    return NULL;
  }
  for (i = 0; tool != NULL && tool->required[i] != NULL; i++) {
    if (input == NULL || !json_object_has_member (input, tool->required[i])) {
      fail (ld, path, "input lacks \"%s\", which tool \"%s\" requires",
          tool->required[i], name);
      return NULL;
    }
  }

  action = g_new0 (Action, 1);
  action->name = g_steal_pointer (&name);
  action->input = input != NULL
      ? json_node_copy (json_object_get_member (obj, "input"))
      : json_node_init_object (json_node_alloc (), json_object_new ());
  if (strcmp (action->name, TRANSFER_TOOL) == 0)
    action->intent = CP_SPEECH_DIALOG_INTENT_TRANSFER;
  else if (strcmp (action->name, END_TOOL) == 0)
    action->intent = CP_SPEECH_DIALOG_INTENT_END;
  if (!check_input_strings (ld, input_path, action->input, slots)) {
    action_free (action);
    return NULL;
  }
  *ok = TRUE;
  return action;
}

static gboolean
is_slot_name (const gchar *name)
{
  for (; *name != '\0'; name++) {
    if (!g_ascii_isalnum (*name) && *name != '_')
      return FALSE;
  }
  return TRUE;
}

static Slot *
read_slot (Loader *ld, JsonObject *obj, const gchar *path, Intent *intent)
{
  static const gchar *const members[] = {"name", "type", "question", "reprompt",
      "min_digits", "max_digits", NULL};
  g_autofree gchar *type = NULL;
  Slot *slot = g_new0 (Slot, 1);
  Slot *ret = NULL;

  slot->min_digits = 1;
  slot->max_digits = MAX_DIGITS_LIMIT;
  if (!check_members (ld, obj, path, members)
      || !read_string (ld, obj, path, "name", TRUE, &slot->name)
      || !read_string (ld, obj, path, "type", TRUE, &type))
    goto out;
  if (!is_slot_name (slot->name)) {
    fail (ld, path,
        "slot name \"%s\" may only have letters, digits and "
        "\"_\"",
        slot->name);
    goto out;
  }
  if (intent_find_slot (intent, slot->name, NULL) != NULL) {
    fail (ld, path, "a second slot named \"%s\"", slot->name);
    goto out;
  }
  if (strcmp (type, "digits") == 0) {
    slot->type = SLOT_DIGITS;
  } else if (strcmp (type, "yes_no") == 0) {
    slot->type = SLOT_YES_NO;
  } else if (strcmp (type, "text") == 0) {
    slot->type = SLOT_TEXT;
  } else {
    fail (ld, path, "slot type \"%s\" is not digits, yes_no or text", type);
    goto out;
  }
  if (slot->type != SLOT_DIGITS
      && (json_object_has_member (obj, "min_digits")
          || json_object_has_member (obj, "max_digits"))) {
    fail (ld, path, "min_digits and max_digits are for digits slots only");
    goto out;
  }
  if (!read_count (ld, obj, path, "min_digits", 1, MAX_DIGITS_LIMIT,
          &slot->min_digits)
      || !read_count (ld, obj, path, "max_digits", 1, MAX_DIGITS_LIMIT,
          &slot->max_digits))
    goto out;
  if (slot->min_digits > slot->max_digits) {
    fail (ld, path, "min_digits %u is above max_digits %u", slot->min_digits,
        slot->max_digits);
    goto out;
  }
  /* Questions may use the slots asked before them. */
  if (!read_template (ld, obj, path, "question", TRUE, intent, FALSE,
          &slot->question)
      || !read_template (ld, obj, path, "reprompt", FALSE, intent, FALSE,
          &slot->reprompt))
    goto out;
  if (slot->reprompt == NULL)
    slot->reprompt = g_strdup (slot->question);
  ret = g_steal_pointer (&slot);
out:
  if (slot != NULL)
    slot_free (slot);
  return ret;
}

static gboolean
read_slots (Loader *ld, JsonObject *obj, const gchar *path, Intent *intent)
{
  JsonArray *array;
  gboolean ok;
  guint i;

  array = read_array (ld, obj, path, "slots", &ok);
  for (i = 0; array != NULL && i < json_array_get_length (array); i++) {
    JsonNode *node = json_array_get_element (array, i);
    g_autofree gchar *item = g_strdup_printf ("%s.slots[%u]", path, i);
    Slot *slot;

    if (!JSON_NODE_HOLDS_OBJECT (node))
      return fail (ld, item, "must be an object");
    slot = read_slot (ld, json_node_get_object (node), item, intent);
    if (slot == NULL)
      return FALSE;
    g_ptr_array_add (intent->slots, slot);
  }
  return ok;
}

static gboolean
read_intent_replies (Loader *ld, JsonObject *obj, const gchar *path,
    Intent *intent)
{
  gboolean runs_tool = intent->action != NULL
      && intent->action->intent == CP_SPEECH_DIALOG_INTENT_CONTINUE;

  if (!read_template (ld, obj, path, "confirm", FALSE, intent, FALSE,
          &intent->confirm)
      || !read_template (ld, obj, path, "confirm_reprompt", FALSE, intent,
          FALSE, &intent->confirm_reprompt)
      || !read_template (ld, obj, path, "declined", FALSE, intent, FALSE,
          &intent->declined)
      || !read_template (ld, obj, path, "progress", FALSE, intent, FALSE,
          &intent->progress)
      || !read_template (ld, obj, path, "reply",
          intent->action == NULL || runs_tool, intent, runs_tool,
          &intent->reply)
      || !read_template (ld, obj, path, "failure", runs_tool, intent, FALSE,
          &intent->failure))
    return FALSE;
  if (intent->confirm == NULL
      && (intent->confirm_reprompt != NULL || intent->declined != NULL))
    return fail (ld, path, "confirm_reprompt and declined need \"confirm\"");
  if (intent->confirm != NULL && intent->declined == NULL
      && intent->slots->len == 0)
    return fail (ld, path,
        "an intent with \"confirm\" and no slots needs "
        "\"declined\", the reply to a no");
  if (!runs_tool && (intent->progress != NULL || intent->failure != NULL))
    return fail (ld, path,
        "progress and failure are for tools the caller "
        "runs");
  if (intent->confirm_reprompt == NULL && intent->confirm != NULL)
    intent->confirm_reprompt = g_strdup (intent->confirm);
  return TRUE;
}

static Intent *
read_intent (Loader *ld, JsonObject *obj, const gchar *path, GPtrArray *intents)
{
  static const gchar *const members[] = {"name", "examples", "keywords",
      "slots", "confirm", "confirm_reprompt", "declined", "tool", "progress",
      "reply", "failure", NULL};
  Intent *intent = intent_new ();
  gboolean ok;
  guint i;

  if (!check_members (ld, obj, path, members)
      || !read_string (ld, obj, path, "name", TRUE, &intent->name))
    goto error;
  for (i = 0; i < intents->len; i++) {
    if (strcmp (((Intent *) intents->pdata[i])->name, intent->name) == 0) {
      fail (ld, path, "a second intent named \"%s\"", intent->name);
      goto error;
    }
  }
  if (!read_patterns (ld, obj, path, "examples", intent->examples)
      || !read_patterns (ld, obj, path, "keywords", intent->keywords))
    goto error;
  if (intent->examples->len + intent->keywords->len == 0) {
    fail (ld, path, "an intent needs \"examples\" or \"keywords\"");
    goto error;
  }
  if (!read_slots (ld, obj, path, intent))
    goto error;
  intent->action = read_action (ld, obj, path, intent, &ok);
  if (!ok || !read_intent_replies (ld, obj, path, intent))
    goto error;
  return intent;

error:
  intent_free (intent);
  return NULL;
}

static gboolean
read_intents (Loader *ld, JsonObject *root, CpSpeechDialogWorkflow *wf)
{
  JsonArray *array;
  gboolean ok;
  guint i;

  array = read_array (ld, root, "$", "intents", &ok);
  if (!ok)
    return FALSE;
  if (array == NULL || json_array_get_length (array) == 0)
    return fail (ld, "$", "\"intents\" must be a non-empty array");
  for (i = 0; i < json_array_get_length (array); i++) {
    JsonNode *node = json_array_get_element (array, i);
    g_autofree gchar *path = g_strdup_printf ("$.intents[%u]", i);
    Intent *intent;

    if (!JSON_NODE_HOLDS_OBJECT (node))
      return fail (ld, path, "must be an object");
    intent = read_intent (ld, json_node_get_object (node), path, wf->intents);
    if (intent == NULL)
      return FALSE;
    g_ptr_array_add (wf->intents, intent);
  }
  return TRUE;
}

static gboolean
read_fallback (Loader *ld, JsonObject *root, CpSpeechDialogWorkflow *wf)
{
  static const gchar *const members[] = {"reprompts", "max_retries", "reply",
      "tool", NULL};
  const gchar *path = "$.fallback";
  JsonObject *obj;
  JsonArray *array;
  gboolean ok;
  guint i;

  obj = read_object (ld, root, "$", "fallback", &ok);
  if (!ok)
    return FALSE;
  if (obj == NULL)
    return fail (ld, "$", "missing object \"fallback\"");
  if (!check_members (ld, obj, path, members))
    return FALSE;
  array = read_array (ld, obj, path, "reprompts", &ok);
  if (!ok)
    return FALSE;
  if (array == NULL || json_array_get_length (array) == 0)
    return fail (ld, path, "\"reprompts\" must be a non-empty array");
  for (i = 0; i < json_array_get_length (array); i++) {
    JsonNode *node = json_array_get_element (array, i);
    g_autofree gchar *item = g_strdup_printf ("%s.reprompts[%u]", path, i);

    if (!node_is_string (node) || json_node_get_string (node)[0] == '\0')
      return fail (ld, item, "must be a non-empty string");
    if (!check_template (ld, item, json_node_get_string (node), NULL, FALSE))
      return FALSE;
    g_ptr_array_add (wf->reprompts, g_strdup (json_node_get_string (node)));
  }
  if (!read_count (ld, obj, path, "max_retries", 0, MAX_RETRIES_LIMIT,
          &wf->max_retries)
      || !read_template (ld, obj, path, "reply", TRUE, NULL, FALSE,
          &wf->fallback_reply))
    return FALSE;
  wf->fallback_action = read_action (ld, obj, path, NULL, &ok);
  return ok;
}

/* Intents' tokens weigh ln (1 + intents / intents using the token). */
static void
compute_weights (CpSpeechDialogWorkflow *wf)
{
  g_autoptr (GHashTable) counts = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer key, value;
  guint i, j, k;

  for (i = 0; i < wf->intents->len; i++) {
    Intent *intent = wf->intents->pdata[i];
    g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
    GPtrArray *lists[] = {intent->examples, intent->keywords};

    for (k = 0; k < G_N_ELEMENTS (lists); k++) {
      for (j = 0; j < lists[k]->len; j++) {
        Pattern *p = lists[k]->pdata[j];
        guint t;

        for (t = 0; t < p->tokens->len; t++) {
          if (g_hash_table_add (seen, p->tokens->pdata[t]))
            g_hash_table_insert (counts, p->tokens->pdata[t],
                GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts,
                                      p->tokens->pdata[t]))
                    + 1));
        }
      }
    }
  }
  g_hash_table_iter_init (&iter, counts);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    gdouble *w = g_new (gdouble, 1);

    *w = log (1.0 + (gdouble) wf->intents->len / GPOINTER_TO_UINT (value));
    g_hash_table_insert (wf->weights, g_strdup (key), w);
  }
  for (i = 0; i < wf->intents->len; i++) {
    Intent *intent = wf->intents->pdata[i];
    GPtrArray *lists[] = {intent->examples, intent->keywords};

    for (k = 0; k < G_N_ELEMENTS (lists); k++) {
      for (j = 0; j < lists[k]->len; j++) {
        Pattern *p = lists[k]->pdata[j];
        guint t;

        for (t = 0; t < p->tokens->len; t++)
          p->weight += *(
              gdouble *) g_hash_table_lookup (wf->weights, p->tokens->pdata[t]);
      }
    }
  }
}

static gboolean
read_tool_file (Loader *ld, const gchar *path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  g_autoptr (GPtrArray) required = g_ptr_array_new ();
  JsonObject *obj, *schema;
  JsonNode *node, *req;
  Tool *tool;
  guint i;

  if (!json_parser_load_from_file (parser, path, &local)) {
    g_set_error (ld->error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW,
        "tool file %s: %s", path, local->message);
    return FALSE;
  }
  node = json_parser_get_root (parser);
  obj = node != NULL && JSON_NODE_HOLDS_OBJECT (node)
      ? json_node_get_object (node)
      : NULL;
  node = obj != NULL ? json_object_get_member (obj, "input_schema") : NULL;
  if (obj == NULL || !json_object_has_member (obj, "name")
      || !node_is_string (json_object_get_member (obj, "name")) || node == NULL
      || !JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (ld->error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW,
        "tool file %s: a tool needs a string \"name\" and an object "
        "\"input_schema\"",
        path);
    return FALSE;
  }
  schema = json_node_get_object (node);
  req = json_object_get_member (schema, "required");
  for (i = 0; req != NULL && JSON_NODE_HOLDS_ARRAY (req)
       && i < json_array_get_length (json_node_get_array (req));
       i++) {
    JsonNode *item = json_array_get_element (json_node_get_array (req), i);

    if (node_is_string (item))
      g_ptr_array_add (required, (gpointer) json_node_get_string (item));
  }
  g_ptr_array_add (required, NULL);
  tool = g_new0 (Tool, 1);
  tool->name = g_strdup (json_object_get_string_member (obj, "name"));
  tool->required = g_strdupv ((GStrv) required->pdata);
  g_ptr_array_add (ld->tools, tool);
  return TRUE;
}

/* Every *.json file of the tools directory; a missing directory holds only
 * the built-in tools. */
static gboolean
read_tools (Loader *ld)
{
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  guint i;

  if (ld->tools_dir == NULL || !g_file_test (ld->tools_dir, G_FILE_TEST_IS_DIR))
    return TRUE;
  dir = g_dir_open (ld->tools_dir, 0, ld->error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_suffix (name, ".json"))
      g_ptr_array_add (names, g_build_filename (ld->tools_dir, name, NULL));
  }
  for (i = 0; i < names->len; i++) {
    if (!read_tool_file (ld, names->pdata[i]))
      return FALSE;
  }
  return TRUE;
}

/* json-glib names the input "<data>"; name the file instead. */
static void
set_parse_error (Loader *ld, GError *parse)
{
  const gchar *msg = parse->message;

  if (g_str_has_prefix (msg, "<data>:"))
    msg += strlen ("<data>");
  g_set_error (ld->error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW, "%s%s%s",
      ld->source, msg[0] == ':' ? "" : ": ", msg);
}

/* Each example and keyword must be a phrase the recognizer can listen
 * for (cp_speech_recognizer_set_phrases): letters only, every word in the
 * pronunciation dictionary. Checked phrase by phrase to name the bad one. */
static gboolean
check_vocabulary (CpSpeechDialogWorkflow *wf, const gchar *source,
    CpSpeechModel *model, GError **error)
{
  g_autoptr (CpSpeechRecognizer) rec = NULL;
  guint i, j, k;

  rec = cp_speech_recognizer_new (model, 16000, error);
  if (rec == NULL)
    return FALSE;
  for (i = 0; i < wf->intents->len; i++) {
    Intent *intent = wf->intents->pdata[i];
    GPtrArray *lists[] = {intent->examples, intent->keywords};

    for (k = 0; k < G_N_ELEMENTS (lists); k++) {
      for (j = 0; j < lists[k]->len; j++) {
        Pattern *p = lists[k]->pdata[j];
        const gchar *phrase[] = {p->asr, NULL};

        if (!cp_speech_recognizer_set_phrases (rec, phrase, error)) {
          g_prefix_error (error, "%s: %s: ", source, p->path);
          return FALSE;
        }
      }
    }
  }
  return TRUE;
}

static void
workflow_free (CpSpeechDialogWorkflow *wf)
{
  g_free (wf->source);
  g_free (wf->name);
  g_free (wf->greeting);
  g_ptr_array_unref (wf->reprompts);
  g_free (wf->fallback_reply);
  action_free (wf->fallback_action);
  g_ptr_array_unref (wf->intents);
  g_hash_table_unref (wf->weights);
  g_free (wf);
}

static gboolean
read_workflow (Loader *ld, JsonNode *root, CpSpeechDialogWorkflow *wf)
{
  static const gchar *const members[] = {"name", "description", "greeting",
      "match_threshold", "min_confidence", "fallback", "intents", NULL};
  g_autofree gchar *description = NULL;
  JsonObject *obj;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return fail (ld, "$", "a workflow must be a JSON object");
  obj = json_node_get_object (root);
  return check_members (ld, obj, "$", members)
      && read_string (ld, obj, "$", "name", TRUE, &wf->name)
      && read_string (ld, obj, "$", "description", FALSE, &description)
      && read_template (ld, obj, "$", "greeting", TRUE, NULL, FALSE,
          &wf->greeting)
      && read_number (ld, obj, "$", "match_threshold", 0.01, 1.0,
          &wf->threshold)
      && read_number (ld, obj, "$", "min_confidence", 0.0, 1.0,
          &wf->min_confidence)
      && read_intents (ld, obj, wf) && read_fallback (ld, obj, wf);
}

/**
 * cp_speech_dialog_workflow_new_from_data:
 * @data: the workflow JSON (pipelines/workflows/README.md)
 * @source: the name errors give for @data, e.g. its file name
 * @tools_dir: (nullable): the tools directory; NULL: built-in tools only
 * @model: (nullable): check every example and keyword against this
 * recognizer model's dictionary
 *
 * Returns: (transfer full): the workflow, or NULL with @error naming
 * @source, the JSON path and the defect.
 */
CpSpeechDialogWorkflow *
cp_speech_dialog_workflow_new_from_data (const gchar *data, gsize len,
    const gchar *source, const gchar *tools_dir, CpSpeechModel *model,
    GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GPtrArray) tools =
      g_ptr_array_new_with_free_func ((GDestroyNotify) tool_free);
  g_autoptr (GError) parse_error = NULL;
  Loader ld = {source, tools_dir, tools, error};
  CpSpeechDialogWorkflow *wf;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (source != NULL, NULL);

  if (len > G_MAXSSIZE) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW,
        "%s: too large", source);
    return NULL;
  }
  if (!read_tools (&ld))
    return NULL;
  if (!json_parser_load_from_data (parser, data, len, &parse_error)) {
    set_parse_error (&ld, parse_error);
    return NULL;
  }

  wf = g_new0 (CpSpeechDialogWorkflow, 1);
  g_atomic_ref_count_init (&wf->ref);
  wf->source = g_strdup (source);
  wf->threshold = DEFAULT_THRESHOLD;
  wf->max_retries = DEFAULT_MAX_RETRIES;
  wf->reprompts = g_ptr_array_new_with_free_func (g_free);
  wf->intents = g_ptr_array_new_with_free_func ((GDestroyNotify) intent_free);
  wf->weights = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!read_workflow (&ld, json_parser_get_root (parser), wf)
      || (model != NULL && !check_vocabulary (wf, source, model, error))) {
    workflow_free (wf);
    return NULL;
  }
  compute_weights (wf);
  return wf;
}

/**
 * cp_speech_dialog_workflow_load:
 * @path: a workflow JSON file
 *
 * As cp_speech_dialog_workflow_new_from_data() on the file's contents.
 */
CpSpeechDialogWorkflow *
cp_speech_dialog_workflow_load (const gchar *path, const gchar *tools_dir,
    CpSpeechModel *model, GError **error)
{
  g_autofree gchar *data = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  return cp_speech_dialog_workflow_new_from_data (data, len, path, tools_dir,
      model, error);
}

CpSpeechDialogWorkflow *
cp_speech_dialog_workflow_ref (CpSpeechDialogWorkflow *workflow)
{
  g_return_val_if_fail (workflow != NULL, NULL);

  g_atomic_ref_count_inc (&workflow->ref);
  return workflow;
}

void
cp_speech_dialog_workflow_unref (CpSpeechDialogWorkflow *workflow)
{
  g_return_if_fail (workflow != NULL);

  if (g_atomic_ref_count_dec (&workflow->ref))
    workflow_free (workflow);
}

const gchar *
cp_speech_dialog_workflow_get_name (CpSpeechDialogWorkflow *workflow)
{
  g_return_val_if_fail (workflow != NULL, NULL);

  return workflow->name;
}

/* ---- matching ---- */

static gdouble
token_weight (CpSpeechDialogWorkflow *wf, const gchar *token)
{
  gdouble *w = g_hash_table_lookup (wf->weights, token);

  return w != NULL ? *w : UNKNOWN_TOKEN_WEIGHT;
}

static gdouble
overlap_score (CpSpeechDialogWorkflow *wf, const Pattern *p, GPtrArray *unique,
    gdouble unique_weight, gboolean *all_found)
{
  gdouble shared = 0.0;
  guint i;

  *all_found = TRUE;
  for (i = 0; i < p->tokens->len; i++) {
    if (tokens_contain (unique, p->tokens->pdata[i]))
      shared += token_weight (wf, p->tokens->pdata[i]);
    else
      *all_found = FALSE;
  }
  return 2.0 * shared / (unique_weight + p->weight);
}

static const Intent *
match_intent (CpSpeechDialogWorkflow *wf, GPtrArray *tokens, gdouble *score)
{
  g_autoptr (GPtrArray) unique = unique_tokens (tokens);
  const Intent *best = NULL;
  gdouble unique_weight = 0.0;
  guint i, j;

  *score = 0.0;
  for (i = 0; i < unique->len; i++)
    unique_weight += token_weight (wf, unique->pdata[i]);
  if (unique->len == 0)
    return NULL;
  for (i = 0; i < wf->intents->len; i++) {
    const Intent *intent = wf->intents->pdata[i];
    gdouble s = 0.0;
    gboolean all;

    for (j = 0; j < intent->examples->len; j++)
      s = MAX (s,
          overlap_score (wf, intent->examples->pdata[j], unique, unique_weight,
              &all));
    for (j = 0; j < intent->keywords->len; j++) {
      gdouble k = overlap_score (wf, intent->keywords->pdata[j], unique,
          unique_weight, &all);

      if (all)
        s = MAX (s, KEYWORD_BASE_SCORE + (1.0 - KEYWORD_BASE_SCORE) * k);
    }
    if (s > *score) {
      *score = s;
      best = intent;
    }
  }
  return best;
}

/* ---- conversation ---- */

static void
turn_free (CpSpeechDialogTurn *turn)
{
  g_free (turn->text);
  g_free (turn->intent);
  g_free (turn->tool_name);
  g_free (turn->tool_use_id);
  g_free (turn->tool_input);
  g_free (turn);
}

static CpSpeechDialogTurn *
add_turn (CpSpeechDialog *d, CpSpeechDialogRole role, const gchar *text)
{
  CpSpeechDialogTurn *turn = g_new0 (CpSpeechDialogTurn, 1);

  turn->role = role;
  turn->text = g_strdup (text);
  g_ptr_array_add (d->history, turn);
  return turn;
}

/**
 * cp_speech_dialog_new:
 *
 * Returns: (transfer full): a conversation on @workflow. A conversation is
 * not thread-safe; the workflow may be shared by any number of them.
 */
CpSpeechDialog *
cp_speech_dialog_new (CpSpeechDialogWorkflow *workflow)
{
  CpSpeechDialog *d;

  g_return_val_if_fail (workflow != NULL, NULL);

  d = g_new0 (CpSpeechDialog, 1);
  d->workflow = cp_speech_dialog_workflow_ref (workflow);
  d->state = STATE_TOP;
  d->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  d->history = g_ptr_array_new_with_free_func ((GDestroyNotify) turn_free);
  return d;
}

void
cp_speech_dialog_free (CpSpeechDialog *dialog)
{
  if (dialog == NULL)
    return;
  cp_speech_dialog_workflow_unref (dialog->workflow);
  g_hash_table_unref (dialog->values);
  g_free (dialog->pending_id);
  g_ptr_array_unref (dialog->history);
  g_free (dialog);
}

void
cp_speech_dialog_reply_free (CpSpeechDialogReply *reply)
{
  if (reply == NULL)
    return;
  g_free (reply->text);
  g_free (reply->matched);
  g_free (reply->slot);
  g_free (reply->tool_name);
  g_free (reply->tool_use_id);
  g_free (reply->tool_input);
  g_free (reply->reason);
  g_free (reply);
}

static CpSpeechDialogReply *
reply_new (CpSpeechDialog *d)
{
  CpSpeechDialogReply *reply = g_new0 (CpSpeechDialogReply, 1);

  if (d->intent != NULL) {
    reply->matched = g_strdup (d->intent->name);
    reply->score = d->score;
  }
  return reply;
}

/* The reply goes into the history as the assistant's turn. */
static CpSpeechDialogReply *
reply_done (CpSpeechDialog *d, CpSpeechDialogReply *reply)
{
  CpSpeechDialogTurn *turn;

  if (reply->text == NULL && reply->tool_name == NULL)
    return reply;
  turn = add_turn (d, CP_SPEECH_DIALOG_ROLE_ASSISTANT, reply->text);
  turn->tool_name = g_strdup (reply->tool_name);
  turn->tool_use_id = g_strdup (reply->tool_use_id);
  turn->tool_input = g_strdup (reply->tool_input);
  return reply;
}

static void
append_json_value (GString *out, JsonNode *node, gboolean *missing)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node)) {
    *missing = TRUE;
  } else if (JSON_NODE_HOLDS_VALUE (node)) {
    switch (json_node_get_value_type (node)) {
      case G_TYPE_STRING:
        g_string_append (out, json_node_get_string (node));
        break;
      case G_TYPE_INT64:
        g_string_append_printf (out, "%" G_GINT64_FORMAT,
            json_node_get_int (node));
        break;
      case G_TYPE_DOUBLE:
        g_string_append_printf (out, "%g", json_node_get_double (node));
        break;
      default:
        g_string_append (out, json_node_get_boolean (node) ? "yes" : "no");
        break;
    }
  } else {
    g_autofree gchar *text = json_to_string (node, FALSE);

    g_string_append (out, text);
  }
}

/* {result.a.b} looks up member b of member a of the tool result. */
static JsonNode *
lookup_result (JsonNode *result, const gchar *name)
{
  g_auto (GStrv) parts = g_strsplit (name, ".", -1);
  JsonNode *node = result;
  guint i;

  for (i = 1; parts[i] != NULL && node != NULL; i++) {
    if (!JSON_NODE_HOLDS_OBJECT (node))
      return NULL;
    node = json_object_get_member (json_node_get_object (node), parts[i]);
  }
  return node;
}

/* Fills the placeholders of @template. @speech: digit strings are spelled
 * digit by digit, as an order number is read out. */
static gchar *
render (CpSpeechDialog *d, const gchar *template, JsonNode *result,
    gboolean speech, gboolean *missing)
{
  GString *out = g_string_new (NULL);
  const gchar *p = template;

  while (*p != '\0') {
    const gchar *end;
    g_autofree gchar *name = NULL;
    const gchar *value;
    guint i;

    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
      g_string_append_c (out, p[0]);
      p += 2;
      continue;
    }
    if (*p != '{' || (end = strchr (p, '}')) == NULL) {
      g_string_append_c (out, *p++);
      continue;
    }
    name = g_strndup (p + 1, end - p - 1);
    p = end + 1;
    if (result != NULL
        && (strcmp (name, "result") == 0
            || g_str_has_prefix (name, "result."))) {
      append_json_value (out, lookup_result (result, name), missing);
      continue;
    }
    value = g_hash_table_lookup (d->values, name);
    if (value == NULL) {
      *missing = TRUE;
    } else if (speech && is_all_digits (value)) {
      for (i = 0; value[i] != '\0'; i++)
        g_string_append_printf (out, "%s%c", i > 0 ? " " : "", value[i]);
    } else {
      g_string_append (out, value);
    }
  }
  return g_string_free (out, FALSE);
}

static gchar *
render_speech (CpSpeechDialog *d, const gchar *template)
{
  gboolean missing = FALSE;

  return template != NULL ? render (d, template, NULL, TRUE, &missing) : NULL;
}

static void
render_input (CpSpeechDialog *d, JsonNode *node)
{
  gboolean missing = FALSE;
  guint i;

  if (JSON_NODE_HOLDS_OBJECT (node)) {
    JsonObject *obj = json_node_get_object (node);
    g_autoptr (GList) members = json_object_get_members (obj);
    GList *l;

    for (l = members; l != NULL; l = l->next)
      render_input (d, json_object_get_member (obj, l->data));
  } else if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *array = json_node_get_array (node);

    for (i = 0; i < json_array_get_length (array); i++)
      render_input (d, json_array_get_element (array, i));
  } else if (node_is_string (node)) {
    g_autofree gchar *text =
        render (d, json_node_get_string (node), NULL, FALSE, &missing);

    json_node_set_string (node, text);
  }
}

static void
reset_intent (CpSpeechDialog *d)
{
  d->intent = NULL;
  d->score = 0.0;
  d->slot = 0;
  d->retries = 0;
  g_hash_table_remove_all (d->values);
}

/* Speaks @reply_template and calls @action: built-in tools end the
 * conversation, others wait for the caller's result. */
static CpSpeechDialogReply *
run_action (CpSpeechDialog *d, const Action *action,
    const gchar *reply_template, const gchar *progress_template,
    const gchar *default_reason)
{
  CpSpeechDialogReply *reply = reply_new (d);
  g_autoptr (JsonNode) input = NULL;
  JsonObject *obj;

  if (action == NULL) {
    reply->text = render_speech (d, reply_template);
    reset_intent (d);
    d->state = STATE_TOP;
    return reply_done (d, reply);
  }

  input = json_node_copy (action->input);
  render_input (d, input);
  reply->tool_name = g_strdup (action->name);
  reply->tool_use_id = g_uuid_string_random ();
  reply->tool_input = json_to_string (input, FALSE);
  reply->intent = action->intent;
  if (action->intent == CP_SPEECH_DIALOG_INTENT_CONTINUE) {
    reply->text = render_speech (d, progress_template);
    reply->awaits_result = TRUE;
    g_free (d->pending_id);
    d->pending_id = g_strdup (reply->tool_use_id);
    d->state = STATE_TOOL;
    return reply_done (d, reply);
  }
  obj = json_node_get_object (input);
  reply->reason = g_strdup (json_object_has_member (obj, "reason")
              && node_is_string (json_object_get_member (obj, "reason"))
          ? json_object_get_string_member (obj, "reason")
          : default_reason);
  reply->text = render_speech (d, reply_template);
  d->state = STATE_DONE;
  return reply_done (d, reply);
}

static void
prepend_text (CpSpeechDialogReply *reply, const gchar *prefix)
{
  gchar *text = g_strconcat (prefix, " ", reply->text, NULL);

  g_free (reply->text);
  reply->text = text;
}

static CpSpeechDialogReply *
run_intent (CpSpeechDialog *d)
{
  return run_action (d, d->intent->action, d->intent->reply,
      d->intent->progress, d->intent->name);
}

/* Asks for the first slot without a value, then confirms, then acts.
 * @prefix: (nullable): said before the question */
static CpSpeechDialogReply *
advance (CpSpeechDialog *d, const gchar *prefix)
{
  const Intent *intent = d->intent;
  CpSpeechDialogReply *reply;

  for (; d->slot < intent->slots->len; d->slot++) {
    const Slot *slot = intent->slots->pdata[d->slot];

    if (!g_hash_table_contains (d->values, slot->name)) {
      d->state = STATE_SLOT;
      reply = reply_new (d);
      reply->text = render_speech (d, slot->question);
      if (prefix != NULL)
        prepend_text (reply, prefix);
      reply->slot = g_strdup (slot->name);
      return reply_done (d, reply);
    }
  }
  if (intent->confirm != NULL) {
    d->state = STATE_CONFIRM;
    reply = reply_new (d);
    reply->text = render_speech (d, intent->confirm);
    if (prefix != NULL)
      prepend_text (reply, prefix);
    return reply_done (d, reply);
  }
  return run_intent (d);
}

static CpSpeechDialogReply *
begin_intent (CpSpeechDialog *d, const Intent *intent, gdouble score)
{
  reset_intent (d);
  d->intent = intent;
  d->score = score;
  return advance (d, NULL);
}

/* Not understood: @reprompt, or once the retries are used up, the
 * workflow's fallback. */
static CpSpeechDialogReply *
retry (CpSpeechDialog *d, gchar *reprompt)
{
  CpSpeechDialogWorkflow *wf = d->workflow;
  CpSpeechDialogReply *reply;

  if (++d->retries > wf->max_retries) {
    g_free (reprompt);
    reset_intent (d);
    return run_action (d, wf->fallback_action, wf->fallback_reply, NULL,
        "fallback");
  }
  reply = reply_new (d);
  reply->text = reprompt;
  if (d->state == STATE_SLOT)
    reply->slot = g_strdup (((Slot *) d->intent->slots->pdata[d->slot])->name);
  return reply_done (d, reply);
}

static CpSpeechDialogReply *
not_understood (CpSpeechDialog *d)
{
  GPtrArray *reprompts = d->workflow->reprompts;

  return retry (d,
      g_strdup (reprompts->pdata[MIN (d->retries, reprompts->len - 1)]));
}

/* The slot's value in @tokens, or NULL if it holds none. */
static gchar *
parse_slot (const Slot *slot, GPtrArray *tokens, const gchar *text)
{
  gchar *digits;
  gsize n;

  switch (slot->type) {
    case SLOT_DIGITS:
      digits = extract_digits (tokens);
      n = digits != NULL ? strlen (digits) : 0;
      if (n >= slot->min_digits && n <= slot->max_digits)
        return digits;
      g_free (digits);
      return NULL;
    case SLOT_YES_NO:
      switch (extract_answer (tokens)) {
        case ANSWER_YES:
          return g_strdup ("yes");
        case ANSWER_NO:
          return g_strdup ("no");
        default:
          return NULL;
      }
    default:
      return tokens->len > 0 ? g_strstrip (g_strdup (text)) : NULL;
  }
}

static CpSpeechDialogReply *
handle_slot (CpSpeechDialog *d, GPtrArray *tokens, const gchar *text,
    const Intent *other, gdouble score)
{
  const Slot *slot = d->intent->slots->pdata[d->slot];
  gchar *value = parse_slot (slot, tokens, text);

  if (value != NULL) {
    g_hash_table_insert (d->values, g_strdup (slot->name), value);
    d->retries = 0;
    return advance (d, NULL);
  }
  if (other != NULL && other != d->intent)
    return begin_intent (d, other, score);
  return retry (d, render_speech (d, slot->reprompt));
}

static CpSpeechDialogReply *
handle_confirm (CpSpeechDialog *d, GPtrArray *tokens, const Intent *other,
    gdouble score)
{
  const Intent *intent = d->intent;
  g_autofree gchar *declined = NULL;
  CpSpeechDialogReply *reply;

  switch (extract_answer (tokens)) {
    case ANSWER_YES:
      return run_intent (d);
    case ANSWER_NO:
      declined = render_speech (d, intent->declined);
      if (intent->slots->len == 0) {
        reply = reply_new (d);
        reply->text = g_steal_pointer (&declined);
        reset_intent (d);
        d->state = STATE_TOP;
        return reply_done (d, reply);
      }
      /* A wrong value: ask for all of them again. */
      g_hash_table_remove_all (d->values);
      d->slot = 0;
      d->retries = 0;
      return advance (d, declined);
    default:
      if (other != NULL && other != intent)
        return begin_intent (d, other, score);
      return retry (d, render_speech (d, intent->confirm_reprompt));
  }
}

/**
 * cp_speech_dialog_start:
 *
 * Returns: (transfer full): the greeting, to speak before listening.
 */
CpSpeechDialogReply *
cp_speech_dialog_start (CpSpeechDialog *dialog)
{
  CpSpeechDialogReply *reply;

  g_return_val_if_fail (dialog != NULL, NULL);

  reply = g_new0 (CpSpeechDialogReply, 1);
  reply->text = g_strdup (dialog->workflow->greeting);
  return reply_done (dialog, reply);
}

/**
 * cp_speech_dialog_handle_utterance:
 * @text: what the caller said (a final recognition result); may be empty
 * @confidence: the recognizer's confidence, 0 to 1; below the workflow's
 * min_confidence the utterance counts as not understood
 *
 * Returns: (transfer full): what to do. Its text is NULL while a tool
 * call awaits its result and once the conversation is over.
 */
CpSpeechDialogReply *
cp_speech_dialog_handle_utterance (CpSpeechDialog *dialog, const gchar *text,
    gdouble confidence)
{
  CpSpeechDialogWorkflow *wf;
  g_autoptr (GPtrArray) tokens = NULL;
  CpSpeechDialogTurn *turn;
  const Intent *best;
  gdouble score;
  gboolean heard;

  g_return_val_if_fail (dialog != NULL, NULL);
  g_return_val_if_fail (text != NULL, NULL);

  wf = dialog->workflow;
  if (dialog->state == STATE_DONE)
    return g_new0 (CpSpeechDialogReply, 1);

  tokens = normalize (text);
  heard = tokens->len > 0 && confidence >= wf->min_confidence;
  if (!heard)
    g_ptr_array_set_size (tokens, 0);
  best = match_intent (wf, tokens, &score);
  if (score < wf->threshold)
    best = NULL;
  turn = add_turn (dialog, CP_SPEECH_DIALOG_ROLE_USER, text);

  switch (dialog->state) {
    case STATE_SLOT:
      turn->intent = g_strdup (dialog->intent->name);
      return handle_slot (dialog, tokens, text, best, score);
    case STATE_CONFIRM:
      turn->intent = g_strdup (dialog->intent->name);
      return handle_confirm (dialog, tokens, best, score);
    case STATE_TOOL:
      return reply_new (dialog);
    default:
      if (best == NULL)
        return not_understood (dialog);
      turn->intent = g_strdup (best->name);
      return begin_intent (dialog, best, score);
  }
}

/**
 * cp_speech_dialog_tool_result:
 * @tool_use_id: the id of the reply that called the tool
 * @json: the tool's result, any JSON value; an object with an "error"
 * member is a failure
 *
 * Returns: (transfer full): the intent's reply with the result's fields,
 * or its failure reply; NULL with @error if no such call is pending or
 * @json is not JSON.
 */
CpSpeechDialogReply *
cp_speech_dialog_tool_result (CpSpeechDialog *dialog, const gchar *tool_use_id,
    const gchar *json, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) parse_error = NULL;
  CpSpeechDialogReply *reply;
  CpSpeechDialogTurn *turn;
  JsonNode *result;
  gboolean missing = FALSE;

  g_return_val_if_fail (dialog != NULL, NULL);
  g_return_val_if_fail (tool_use_id != NULL, NULL);
  g_return_val_if_fail (json != NULL, NULL);

  if (dialog->state != STATE_TOOL
      || strcmp (dialog->pending_id, tool_use_id) != 0) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW,
        "no tool call with id \"%s\" awaits a result", tool_use_id);
    return NULL;
  }
  if (!json_parser_load_from_data (parser, json, -1, &parse_error)
      || json_parser_get_root (parser) == NULL) {
    g_set_error (error, CP_SPEECH_ERROR, CP_SPEECH_ERROR_WORKFLOW,
        "the result of tool call \"%s\" is not JSON: %s", tool_use_id,
        parse_error != NULL ? parse_error->message : "empty");
    return NULL;
  }
  result = json_parser_get_root (parser);

  turn = add_turn (dialog, CP_SPEECH_DIALOG_ROLE_TOOL, json);
  turn->tool_name = g_strdup (dialog->intent->action->name);
  turn->tool_use_id = g_strdup (tool_use_id);
  g_clear_pointer (&dialog->pending_id, g_free);

  reply = reply_new (dialog);
  if (!JSON_NODE_HOLDS_OBJECT (result)
      || !json_object_has_member (json_node_get_object (result), "error"))
    reply->text =
        render (dialog, dialog->intent->reply, result, TRUE, &missing);
  if (reply->text == NULL || missing) {
    g_free (reply->text);
    reply->text = render_speech (dialog, dialog->intent->failure);
  }
  reset_intent (dialog);
  dialog->state = STATE_TOP;
  return reply_done (dialog, reply);
}

static void
add_phrase (GPtrArray *phrases, GHashTable *seen, const gchar *phrase)
{
  if (g_hash_table_add (seen, (gpointer) phrase))
    g_ptr_array_add (phrases, g_strdup (phrase));
}

static const Slot *
current_slot (CpSpeechDialog *d)
{
  return d->state == STATE_SLOT ? d->intent->slots->pdata[d->slot] : NULL;
}

/**
 * cp_speech_dialog_get_phrases:
 *
 * Returns: (transfer full) (nullable): what the caller may say now, for
 * cp_speech_recognizer_set_phrases(): every example and keyword, plus
 * "zero" to "nine" when a digit is asked and yes/no words when a yes or
 * no is; NULL when free text is asked or the conversation is over (listen
 * with the open vocabulary). A digits slot takes one digit per phrase: see
 * cp_speech_dialog_get_jsgf() for digit strings.
 */
GStrv
cp_speech_dialog_get_phrases (CpSpeechDialog *dialog)
{
  g_autoptr (GHashTable) seen = NULL;
  GPtrArray *phrases;
  const Slot *slot;
  guint i, j, k;

  g_return_val_if_fail (dialog != NULL, NULL);

  slot = current_slot (dialog);
  if (dialog->state == STATE_DONE || (slot != NULL && slot->type == SLOT_TEXT))
    return NULL;
  seen = g_hash_table_new (g_str_hash, g_str_equal);
  phrases = g_ptr_array_new ();
  if (slot != NULL && slot->type == SLOT_DIGITS) {
    for (i = 0; i < G_N_ELEMENTS (digit_words); i++)
      add_phrase (phrases, seen, digit_words[i]);
    add_phrase (phrases, seen, "oh");
  }
  if (dialog->state == STATE_CONFIRM
      || (slot != NULL && slot->type == SLOT_YES_NO)) {
    for (i = 0; yes_no_phrases[i] != NULL; i++)
      add_phrase (phrases, seen, yes_no_phrases[i]);
  }
  for (i = 0; i < dialog->workflow->intents->len; i++) {
    Intent *intent = dialog->workflow->intents->pdata[i];
    GPtrArray *lists[] = {intent->examples, intent->keywords};

    for (k = 0; k < G_N_ELEMENTS (lists); k++) {
      for (j = 0; j < lists[k]->len; j++)
        add_phrase (phrases, seen, ((Pattern *) lists[k]->pdata[j])->asr);
    }
  }
  g_ptr_array_add (phrases, NULL);
  return (GStrv) g_ptr_array_free (phrases, FALSE);
}

/**
 * cp_speech_dialog_workflow_get_vocabulary:
 *
 * Returns: (transfer full): every phrase a conversation of @workflow may
 * listen for, in any state: its examples and keywords, the digit words
 * and the yes/no phrases. A grammar-only recognizer model of these
 * (cp_speech_model_get_grammar()) takes every grammar of
 * cp_speech_dialog_get_phrases() and cp_speech_dialog_get_jsgf().
 */
GStrv
cp_speech_dialog_workflow_get_vocabulary (CpSpeechDialogWorkflow *workflow)
{
  g_autoptr (GHashTable) seen = NULL;
  GPtrArray *phrases;
  guint i, j, k;

  g_return_val_if_fail (workflow != NULL, NULL);

  seen = g_hash_table_new (g_str_hash, g_str_equal);
  phrases = g_ptr_array_new ();
  for (i = 0; i < workflow->intents->len; i++) {
    Intent *intent = workflow->intents->pdata[i];
    GPtrArray *lists[] = {intent->examples, intent->keywords};

    for (k = 0; k < G_N_ELEMENTS (lists); k++) {
      for (j = 0; j < lists[k]->len; j++)
        add_phrase (phrases, seen, ((Pattern *) lists[k]->pdata[j])->asr);
    }
  }
  for (i = 0; i < G_N_ELEMENTS (digit_words); i++)
    add_phrase (phrases, seen, digit_words[i]);
  add_phrase (phrases, seen, "oh");
  for (i = 0; yes_no_phrases[i] != NULL; i++)
    add_phrase (phrases, seen, yes_no_phrases[i]);
  g_ptr_array_add (phrases, NULL);
  return (GStrv) g_ptr_array_free (phrases, FALSE);
}

/* The example or keyword with a word outside the dictionary, named as
 * check_vocabulary() names it; each is tried alone, on this error path
 * only. */
static void
find_unknown_word (CpSpeechDialogWorkflow *wf, GError **error)
{
  guint i, j, k;

  for (i = 0; i < wf->intents->len; i++) {
    Intent *intent = wf->intents->pdata[i];
    GPtrArray *lists[] = {intent->examples, intent->keywords};

    for (k = 0; k < G_N_ELEMENTS (lists); k++) {
      for (j = 0; j < lists[k]->len; j++) {
        Pattern *p = lists[k]->pdata[j];
        const gchar *phrase[] = {p->asr, NULL};
        g_autoptr (CpSpeechModel) model = NULL;
        g_autoptr (GError) local = NULL;

        model = cp_speech_model_new_grammar (NULL, phrase, &local);
        if (model == NULL) {
          g_propagate_prefixed_error (error, g_steal_pointer (&local),
              "%s: %s: ", wf->source, p->path);
          return;
        }
      }
    }
  }
}

/**
 * cp_speech_dialog_workflow_get_model:
 *
 * The recognizer model for conversations of @workflow: the process's
 * shared grammar-only model (cp_speech_model_get_grammar()) of
 * cp_speech_dialog_workflow_get_vocabulary(), a fraction of the full
 * model's memory and load time per stream.
 *
 * Returns: (transfer full): the model, or NULL with @error set; a word
 * outside the pronunciation dictionary is named with the source, the JSON
 * path and the phrase, as cp_speech_dialog_workflow_load() names it when
 * given a model.
 */
CpSpeechModel *
cp_speech_dialog_workflow_get_model (CpSpeechDialogWorkflow *workflow,
    GError **error)
{
  g_auto (GStrv) vocabulary = NULL;
  g_autoptr (GError) local = NULL;
  CpSpeechModel *model;

  g_return_val_if_fail (workflow != NULL, NULL);

  vocabulary = cp_speech_dialog_workflow_get_vocabulary (workflow);
  model =
      cp_speech_model_get_grammar ((const gchar *const *) vocabulary, &local);
  if (model != NULL)
    return model;
  if (g_error_matches (local, CP_SPEECH_ERROR, CP_SPEECH_ERROR_GRAMMAR))
    find_unknown_word (workflow, error);
  if (error == NULL || *error == NULL)
    g_propagate_prefixed_error (error, g_steal_pointer (&local),
        "%s: ", workflow->source);
  return NULL;
}

/**
 * cp_speech_dialog_get_jsgf:
 *
 * Returns: (transfer full) (nullable): when a digits slot is asked, a JSGF
 * grammar for cp_speech_recognizer_set_grammar() taking any string of
 * spoken digits or one of cp_speech_dialog_get_phrases(); NULL in other
 * states, where the phrases are the grammar.
 */
gchar *
cp_speech_dialog_get_jsgf (CpSpeechDialog *dialog)
{
  g_auto (GStrv) phrases = NULL;
  const Slot *slot;
  GString *jsgf;
  guint i;

  g_return_val_if_fail (dialog != NULL, NULL);

  slot = current_slot (dialog);
  if (slot == NULL || slot->type != SLOT_DIGITS)
    return NULL;
  phrases = cp_speech_dialog_get_phrases (dialog);
  /* The digit count as the slot bounds it: sphinxbase 5prealpha turns a
   * repetition with "+" into a loop that re-enters the phrases. */
  jsgf = g_string_new ("#JSGF V1.0;\ngrammar dialog;\n"
                       "public <utterance> = <digits> | <phrase>;\n<digits> =");
  for (i = 0; i < slot->min_digits; i++)
    g_string_append (jsgf, " <digit>");
  if (slot->max_digits - slot->min_digits > MAX_OPTIONAL_DIGITS) {
    g_string_append (jsgf, " <digit>*");
  } else {
    for (i = slot->min_digits; i < slot->max_digits; i++)
      g_string_append (jsgf, " [<digit>]");
  }
  g_string_append (jsgf, ";\n<digit> = oh");
  for (i = 0; i < G_N_ELEMENTS (digit_words); i++)
    g_string_append_printf (jsgf, " | %s", digit_words[i]);
  g_string_append (jsgf, ";\n<phrase> = ");
  for (i = 0; phrases[i] != NULL; i++)
    g_string_append_printf (jsgf, "%s%s", i > 0 ? " | " : "", phrases[i]);
  g_string_append (jsgf, ";\n");
  return g_string_free (jsgf, FALSE);
}

gboolean
cp_speech_dialog_is_finished (CpSpeechDialog *dialog)
{
  g_return_val_if_fail (dialog != NULL, FALSE);

  return dialog->state == STATE_DONE;
}

/**
 * cp_speech_dialog_get_history:
 *
 * Returns: (transfer none) (element-type CpSpeechDialogTurn): the turns so
 * far, oldest first, for the transcript and for session renewal.
 */
GPtrArray *
cp_speech_dialog_get_history (CpSpeechDialog *dialog)
{
  g_return_val_if_fail (dialog != NULL, NULL);

  return dialog->history;
}

/* The values of novasonic-intent. */
const gchar *
cp_speech_dialog_intent_to_string (CpSpeechDialogIntent intent)
{
  switch (intent) {
    case CP_SPEECH_DIALOG_INTENT_TRANSFER:
      return "transfer";
    case CP_SPEECH_DIALOG_INTENT_END:
      return "end";
    default:
      return "continue";
  }
}

/* The roles of Nova Sonic's content events. */
const gchar *
cp_speech_dialog_role_to_string (CpSpeechDialogRole role)
{
  switch (role) {
    case CP_SPEECH_DIALOG_ROLE_USER:
      return "USER";
    case CP_SPEECH_DIALOG_ROLE_TOOL:
      return "TOOL";
    default:
      return "ASSISTANT";
  }
}

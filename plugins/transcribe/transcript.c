/* callpipe — transcripts: Transcribe streaming results and the batch
 * output document. See transcript.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "transcript.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* A TranscriptEvent is a few levels deep; anything nested deeper is not
 * one, and is refused before the recursive JSON parser sees it. */
#define MAX_JSON_DEPTH 32
/* Words that start this much before a cut still count as after it: the
 * service rounds times to the millisecond. */
#define TRIM_SLACK 0.001

static const gchar *const channel_labels[CP_TRANSCRIPT_MAX_CHANNELS] = {
    "ch_0",
    "ch_1",
};

GQuark
cp_transcript_error_quark (void)
{
  return g_quark_from_static_string ("cp-transcript-error-quark");
}

const gchar *
cp_transcript_channel_label (guint channel)
{
  g_return_val_if_fail (channel < CP_TRANSCRIPT_MAX_CHANNELS, NULL);
  return channel_labels[channel];
}

static void
item_clear (gpointer data)
{
  CpTranscriptItem *item = data;

  g_free (item->content);
}

CpTranscriptResult *
cp_transcript_result_new (const gchar *result_id, gboolean is_partial,
    guint channel)
{
  CpTranscriptResult *r = g_new0 (CpTranscriptResult, 1);

  r->result_id = g_strdup (result_id ? result_id : "");
  r->is_partial = is_partial;
  r->channel = channel;
  r->text = g_strdup ("");
  r->items = g_array_new (FALSE, TRUE, sizeof (CpTranscriptItem));
  g_array_set_clear_func (r->items, item_clear);
  return r;
}

CpTranscriptResult *
cp_transcript_result_copy (const CpTranscriptResult *result)
{
  CpTranscriptResult *r = cp_transcript_result_new (result->result_id,
      result->is_partial, result->channel);
  guint i;

  r->start = result->start;
  r->end = result->end;
  g_free (r->text);
  r->text = g_strdup (result->text);
  for (i = 0; i < result->items->len; i++) {
    CpTranscriptItem item = g_array_index (result->items, CpTranscriptItem, i);

    item.content = g_strdup (item.content);
    g_array_append_val (r->items, item);
  }
  return r;
}

void
cp_transcript_result_free (CpTranscriptResult *result)
{
  if (result == NULL)
    return;
  g_free (result->result_id);
  g_free (result->text);
  g_array_unref (result->items);
  g_free (result);
}

void
cp_transcript_result_add_item (CpTranscriptResult *result, const gchar *content,
    gboolean is_punctuation, gdouble start, gdouble end, gdouble confidence,
    gboolean has_confidence)
{
  CpTranscriptItem item = {0};

  item.content = g_strdup (content ? content : "");
  item.is_punctuation = is_punctuation;
  if (!is_punctuation) {
    item.start = start;
    item.end = end;
  }
  item.confidence = confidence;
  item.has_confidence = has_confidence;
  g_array_append_val (result->items, item);
}

void
cp_transcript_result_shift (CpTranscriptResult *result, gdouble offset)
{
  guint i;

  result->start += offset;
  result->end += offset;
  for (i = 0; i < result->items->len; i++) {
    CpTranscriptItem *item =
        &g_array_index (result->items, CpTranscriptItem, i);

    if (!item->is_punctuation) {
      item->start += offset;
      item->end += offset;
    }
  }
}

gchar *
cp_transcript_result_items_text (const CpTranscriptResult *result)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; i < result->items->len; i++) {
    const CpTranscriptItem *item =
        &g_array_index (result->items, CpTranscriptItem, i);

    if (s->len > 0 && !item->is_punctuation)
      g_string_append_c (s, ' ');
    g_string_append (s, item->content);
  }
  return g_string_free (s, FALSE);
}

gboolean
cp_transcript_result_trim_before (CpTranscriptResult *result, gdouble time)
{
  gboolean dropping = FALSE;
  gboolean any_word = FALSE;
  guint i = 0;

  if (result->end <= time + TRIM_SLACK && result->end > 0)
    return FALSE;
  if (result->items->len == 0)
    return result->start >= time - TRIM_SLACK;

  while (i < result->items->len) {
    CpTranscriptItem *item =
        &g_array_index (result->items, CpTranscriptItem, i);

    if (!item->is_punctuation)
      dropping = item->start < time - TRIM_SLACK;
    if (dropping) {
      g_array_remove_index (result->items, i);
      continue;
    }
    if (!item->is_punctuation) {
      if (!any_word)
        result->start = item->start;
      result->end = item->end;
      any_word = TRUE;
    }
    i++;
  }
  if (!any_word)
    return FALSE;
  g_free (result->text);
  result->text = cp_transcript_result_items_text (result);
  return TRUE;
}

/* ---- TranscriptEvent parsing ---- */

static gboolean
json_depth_ok (const gchar *json, gsize len)
{
  gboolean in_string = FALSE;
  gint depth = 0;
  gsize i;

  for (i = 0; i < len; i++) {
    gchar c = json[i];

    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '{' || c == '[') {
      if (++depth > MAX_JSON_DEPTH)
        return FALSE;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return TRUE;
}

static JsonObject *
member_object (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node)
                                               : NULL;
}

static JsonArray *
member_array (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  return node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node)
                                              : NULL;
}

static const gchar *
member_string (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
member_double (JsonObject *obj, const gchar *name, gdouble *out)
{
  JsonNode *node = json_object_get_member (obj, name);
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_DOUBLE)
    *out = json_node_get_double (node);
  else if (type == G_TYPE_INT64)
    *out = (gdouble) json_node_get_int (node);
  else
    return FALSE;
  return TRUE;
}

static gboolean
member_bool (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  return node && JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_BOOLEAN
      && json_node_get_boolean (node);
}

static gboolean
time_ok (gdouble t)
{
  /* Finite and within a stream's four hours, with room to spare. */
  return t >= 0.0 && t < 1e7;
}

static void
parse_items (CpTranscriptResult *r, JsonArray *items)
{
  guint i;

  for (i = 0; i < json_array_get_length (items); i++) {
    JsonNode *node = json_array_get_element (items, i);
    JsonObject *obj;
    const gchar *type, *content;
    gdouble start = 0, end = 0, confidence = 0;
    gboolean punct, has_conf;
    CpTranscriptItem *item;

    if (!JSON_NODE_HOLDS_OBJECT (node))
      continue;
    obj = json_node_get_object (node);
    content = member_string (obj, "Content");
    if (content == NULL)
      continue;
    type = member_string (obj, "Type");
    punct = g_strcmp0 (type, "punctuation") == 0;
    member_double (obj, "StartTime", &start);
    member_double (obj, "EndTime", &end);
    if (!time_ok (start) || !time_ok (end) || end < start)
      start = end = 0;
    has_conf = member_double (obj, "Confidence", &confidence)
        && confidence >= 0.0 && confidence <= 1.0;
    cp_transcript_result_add_item (r, content, punct, start, end,
        has_conf ? confidence : 0.0, has_conf);
    item = &g_array_index (r->items, CpTranscriptItem, r->items->len - 1);
    item->stable = member_bool (obj, "Stable");
  }
}

static CpTranscriptResult *
parse_result (JsonObject *obj, GError **error)
{
  const gchar *channel_id = member_string (obj, "ChannelId");
  guint channel = 0;
  CpTranscriptResult *r;
  JsonArray *alts;
  gdouble t;

  if (channel_id != NULL) {
    if (g_strcmp0 (channel_id, channel_labels[0]) == 0)
      channel = 0;
    else if (g_strcmp0 (channel_id, channel_labels[1]) == 0)
      channel = 1;
    else {
      g_set_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_PARSE,
          "TranscriptEvent result has an unknown ChannelId");
      return NULL;
    }
  }
  r = cp_transcript_result_new (member_string (obj, "ResultId"),
      member_bool (obj, "IsPartial"), channel);
  if (member_double (obj, "StartTime", &t) && time_ok (t))
    r->start = t;
  if (member_double (obj, "EndTime", &t) && time_ok (t) && t >= r->start)
    r->end = t;
  else
    r->end = r->start;

  alts = member_array (obj, "Alternatives");
  if (alts != NULL && json_array_get_length (alts) > 0) {
    JsonNode *first = json_array_get_element (alts, 0);

    if (JSON_NODE_HOLDS_OBJECT (first)) {
      JsonObject *alt = json_node_get_object (first);
      const gchar *text = member_string (alt, "Transcript");
      JsonArray *items = member_array (alt, "Items");

      if (items != NULL)
        parse_items (r, items);
      g_free (r->text);
      r->text = text ? g_strdup (text) : cp_transcript_result_items_text (r);
    }
  }
  return r;
}

GPtrArray *
cp_transcript_event_parse (const gchar *json, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autoptr (GError) local = NULL;
  JsonNode *root;
  JsonObject *transcript;
  JsonArray *arr;
  guint i;

  if (len > G_MAXSSIZE || !json_depth_ok (json, len)) {
    g_set_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_PARSE,
        "TranscriptEvent payload is too deeply nested");
    return NULL;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, json, (gssize) len, &local)) {
    g_set_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_PARSE,
        "TranscriptEvent payload is not JSON: %s", local->message);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || (transcript =
                 member_object (json_node_get_object (root), "Transcript"))
          == NULL) {
    g_set_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_PARSE,
        "TranscriptEvent payload has no Transcript object");
    return NULL;
  }

  results = g_ptr_array_new_with_free_func (
      (GDestroyNotify) cp_transcript_result_free);
  arr = member_array (transcript, "Results");
  for (i = 0; arr != NULL && i < json_array_get_length (arr); i++) {
    JsonNode *node = json_array_get_element (arr, i);
    CpTranscriptResult *r;

    if (!JSON_NODE_HOLDS_OBJECT (node))
      continue;
    r = parse_result (json_node_get_object (node), error);
    if (r == NULL)
      return NULL;
    g_ptr_array_add (results, r);
  }
  return g_steal_pointer (&results);
}

/* ---- the batch document ---- */

struct _CpTranscript
{
  guint n_channels;
  /* Per channel, the items of its final results in arrival order. */
  GArray *items[CP_TRANSCRIPT_MAX_CHANNELS];
};

CpTranscript *
cp_transcript_new (guint n_channels)
{
  CpTranscript *t = g_new0 (CpTranscript, 1);
  guint c;

  g_return_val_if_fail (n_channels >= 1
          && n_channels <= CP_TRANSCRIPT_MAX_CHANNELS,
      NULL);
  t->n_channels = n_channels;
  for (c = 0; c < n_channels; c++) {
    t->items[c] = g_array_new (FALSE, TRUE, sizeof (CpTranscriptItem));
    g_array_set_clear_func (t->items[c], item_clear);
  }
  return t;
}

void
cp_transcript_free (CpTranscript *transcript)
{
  guint c;

  if (transcript == NULL)
    return;
  for (c = 0; c < transcript->n_channels; c++)
    g_array_unref (transcript->items[c]);
  g_free (transcript);
}

void
cp_transcript_add (CpTranscript *transcript, const CpTranscriptResult *result)
{
  GArray *dest;
  guint i;

  g_return_if_fail (result->channel < transcript->n_channels);
  if (result->is_partial)
    return;
  dest = transcript->items[result->channel];
  for (i = 0; i < result->items->len; i++) {
    CpTranscriptItem copy = g_array_index (result->items, CpTranscriptItem, i);

    copy.content = g_strdup (copy.content);
    g_array_append_val (dest, copy);
  }
}

guint
cp_transcript_get_n_items (const CpTranscript *transcript)
{
  guint c, n = 0;

  for (c = 0; c < transcript->n_channels; c++)
    n += transcript->items[c]->len;
  return n;
}

/* Fixed-point text without trailing zeros, but with at least one decimal,
 * as Transcribe writes numbers ("4.86", "1.0"). */
static gchar *
format_number (gdouble value, guint decimals)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
  gchar fmt[8];
  gsize n;

  g_snprintf (fmt, sizeof (fmt), "%%.%uf", decimals);
  g_ascii_formatd (buf, sizeof (buf), fmt, value);
  n = strlen (buf);
  while (n > 0 && buf[n - 1] == '0' && n >= 2 && buf[n - 2] != '.')
    buf[--n] = '\0';
  return g_strdup (buf);
}

static void
build_item (JsonBuilder *b, const CpTranscriptItem *item, guint channel,
    gboolean with_channel)
{
  g_autofree gchar *confidence =
      format_number (item->has_confidence ? item->confidence
                                          : (item->is_punctuation ? 0.0 : 1.0),
          4);

  json_builder_begin_object (b);
  if (!item->is_punctuation) {
    g_autofree gchar *start = format_number (item->start, 3);
    g_autofree gchar *end = format_number (item->end, 3);

    json_builder_set_member_name (b, "start_time");
    json_builder_add_string_value (b, start);
    json_builder_set_member_name (b, "end_time");
    json_builder_add_string_value (b, end);
  }
  if (with_channel) {
    json_builder_set_member_name (b, "channel_label");
    json_builder_add_string_value (b, channel_labels[channel]);
  }
  json_builder_set_member_name (b, "alternatives");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "confidence");
  json_builder_add_string_value (b, confidence);
  json_builder_set_member_name (b, "content");
  json_builder_add_string_value (b, item->content);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b,
      item->is_punctuation ? "punctuation" : "pronunciation");
  json_builder_end_object (b);
}

/* The start of the word a punctuation mark belongs to, for ordering. */
static gdouble
item_sort_time (GArray *items, guint index)
{
  while (index > 0
      && g_array_index (items, CpTranscriptItem, index).is_punctuation)
    index--;
  return g_array_index (items, CpTranscriptItem, index).start;
}

/* All channels merged by time; each channel's own order is kept and its
 * punctuation stays behind its word. */
static void
build_merged_items (JsonBuilder *b, const CpTranscript *t, GString *text)
{
  guint pos[CP_TRANSCRIPT_MAX_CHANNELS] = {0};

  for (;;) {
    gint best = -1;
    gdouble best_time = 0;
    guint c;
    const CpTranscriptItem *item;

    for (c = 0; c < t->n_channels; c++) {
      gdouble time;

      if (pos[c] >= t->items[c]->len)
        continue;
      time = item_sort_time (t->items[c], pos[c]);
      if (best < 0 || time < best_time) {
        best = c;
        best_time = time;
      }
    }
    if (best < 0)
      break;
    item = &g_array_index (t->items[best], CpTranscriptItem, pos[best]);
    build_item (b, item, best, t->n_channels > 1);
    if (text->len > 0 && !item->is_punctuation)
      g_string_append_c (text, ' ');
    g_string_append (text, item->content);
    pos[best]++;
  }
}

gchar *
cp_transcript_to_json (const CpTranscript *transcript, const gchar *job_name,
    const gchar *language_code)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonBuilder) items = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GString) text = g_string_new (NULL);
  guint c, i;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "jobName");
  json_builder_add_string_value (b, job_name);
  json_builder_set_member_name (b, "accountId");
  json_builder_add_string_value (b, "");
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, "COMPLETED");
  json_builder_set_member_name (b, "results");
  json_builder_begin_object (b);
  if (language_code != NULL) {
    json_builder_set_member_name (b, "language_code");
    json_builder_add_string_value (b, language_code);
  }

  /* Transcribe writes the transcripts before the items they come from. */
  json_builder_begin_array (items);
  build_merged_items (items, transcript, text);
  json_builder_end_array (items);

  json_builder_set_member_name (b, "transcripts");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "transcript");
  json_builder_add_string_value (b, text->str);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "items");
  json_builder_add_value (b, json_builder_get_root (items));

  if (transcript->n_channels > 1) {
    json_builder_set_member_name (b, "channel_labels");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "channels");
    json_builder_begin_array (b);
    for (c = 0; c < transcript->n_channels; c++) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "channel_label");
      json_builder_add_string_value (b, channel_labels[c]);
      json_builder_set_member_name (b, "items");
      json_builder_begin_array (b);
      for (i = 0; i < transcript->items[c]->len; i++)
        build_item (b,
            &g_array_index (transcript->items[c], CpTranscriptItem, i), c,
            TRUE);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_set_member_name (b, "number_of_channels");
    json_builder_add_int_value (b, transcript->n_channels);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

gboolean
cp_transcript_write_file (const CpTranscript *transcript, const gchar *path,
    const gchar *job_name, const gchar *language_code, GError **error)
{
  g_autofree gchar *doc =
      cp_transcript_to_json (transcript, job_name, language_code);
  g_autoptr (GError) local = NULL;

  if (!g_file_set_contents (path, doc, -1, &local)) {
    g_set_error (error, CP_TRANSCRIPT_ERROR, CP_TRANSCRIPT_ERROR_WRITE,
        "Could not write the transcript: %s", local->message);
    return FALSE;
  }
  return TRUE;
}

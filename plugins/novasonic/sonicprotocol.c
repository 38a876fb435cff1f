/* callpipe — Amazon Nova Sonic bidirectional-stream protocol */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "sonicprotocol.h"

#include <json-glib/json-glib.h>
#include <string.h>

GQuark
sonic_error_quark (void)
{
  return g_quark_from_static_string ("sonic-error-quark");
}

const gchar *
sonic_role_to_string (SonicRole role)
{
  switch (role) {
    case SONIC_ROLE_USER:
      return "USER";
    case SONIC_ROLE_ASSISTANT:
      return "ASSISTANT";
    case SONIC_ROLE_SYSTEM:
      return "SYSTEM";
    case SONIC_ROLE_TOOL:
      return "TOOL";
    default:
      return "UNKNOWN";
  }
}

const gchar *
sonic_stage_to_string (SonicStage stage)
{
  switch (stage) {
    case SONIC_STAGE_FINAL:
      return "FINAL";
    case SONIC_STAGE_SPECULATIVE:
      return "SPECULATIVE";
    default:
      return "NONE";
  }
}

static SonicRole
role_from_string (const gchar *s)
{
  if (s == NULL)
    return SONIC_ROLE_UNKNOWN;
  if (strcmp (s, "USER") == 0)
    return SONIC_ROLE_USER;
  if (strcmp (s, "ASSISTANT") == 0)
    return SONIC_ROLE_ASSISTANT;
  if (strcmp (s, "SYSTEM") == 0)
    return SONIC_ROLE_SYSTEM;
  if (strcmp (s, "TOOL") == 0)
    return SONIC_ROLE_TOOL;
  return SONIC_ROLE_UNKNOWN;
}

static SonicContentType
content_type_from_string (const gchar *s)
{
  if (s == NULL)
    return SONIC_CONTENT_UNKNOWN;
  if (strcmp (s, "TEXT") == 0)
    return SONIC_CONTENT_TEXT;
  if (strcmp (s, "AUDIO") == 0)
    return SONIC_CONTENT_AUDIO;
  if (strcmp (s, "TOOL") == 0)
    return SONIC_CONTENT_TOOL;
  return SONIC_CONTENT_UNKNOWN;
}

/* ---- tools ---- */

void
sonic_tool_free (SonicTool *tool)
{
  if (tool == NULL)
    return;
  g_free (tool->name);
  g_free (tool->description);
  g_free (tool->input_schema);
  g_free (tool->instruction);
  g_free (tool->category);
  g_free (tool);
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

static gchar *
node_to_string (JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

SonicTool *
sonic_tool_parse (const gchar *json, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *obj;
  JsonNode *schema;
  SonicTool *tool;

  if (!json_parser_load_from_data (parser, json, len, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    goto invalid;
  obj = json_node_get_object (json_parser_get_root (parser));
  schema = json_object_get_member (obj, "input_schema");
  if (member_string (obj, "name") == NULL
      || member_string (obj, "description") == NULL || schema == NULL
      || !JSON_NODE_HOLDS_OBJECT (schema))
    goto invalid;

  tool = g_new0 (SonicTool, 1);
  tool->name = g_strdup (member_string (obj, "name"));
  tool->description = g_strdup (member_string (obj, "description"));
  tool->input_schema = node_to_string (schema);
  tool->instruction = g_strdup (member_string (obj, "instruction"));
  tool->category = g_strdup (member_string (obj, "category"));
  return tool;

invalid:
  g_set_error (error, SONIC_ERROR, SONIC_ERROR_TOOL,
      "a tool needs string \"name\" and \"description\" and an object "
      "\"input_schema\"");
  return NULL;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar **) a, *(const gchar **) b);
}

GPtrArray *
sonic_tools_load_dir (const gchar *dir, GError **error)
{
  g_autoptr (GPtrArray) tools =
      g_ptr_array_new_with_free_func ((GDestroyNotify) sonic_tool_free);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = NULL;
  const gchar *name;
  guint i;

  if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&tools);
  d = g_dir_open (dir, 0, error);
  if (d == NULL)
    return NULL;
  while ((name = g_dir_read_name (d)) != NULL) {
    if (g_str_has_suffix (name, ".json"))
      g_ptr_array_add (names, g_strdup (name));
  }
  g_ptr_array_sort (names, compare_names);

  for (i = 0; i < names->len; i++) {
    g_autofree gchar *path = g_build_filename (dir, names->pdata[i], NULL);
    g_autofree gchar *contents = NULL;
    g_autoptr (GError) local = NULL;
    gsize len;
    SonicTool *tool;

    if (!g_file_get_contents (path, &contents, &len, &local)
        || (tool = sonic_tool_parse (contents, len, &local)) == NULL) {
      g_set_error (error, SONIC_ERROR, SONIC_ERROR_TOOL, "tool file %s: %s",
          path, local->message);
      return NULL;
    }
    g_ptr_array_add (tools, tool);
  }
  return g_steal_pointer (&tools);
}

/* ---- configuration ---- */

SonicConfig *
sonic_config_new (void)
{
  SonicConfig *config = g_new0 (SonicConfig, 1);

  config->input_rate = 16000;
  config->output_rate = 24000;
  config->max_tokens = 1024;
  config->temperature = 0.7;
  config->top_p = 0.9;
  return config;
}

void
sonic_config_free (SonicConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->model_id);
  g_free (config->voice_id);
  g_free (config->system_prompt);
  g_clear_pointer (&config->tools, g_ptr_array_unref);
  g_free (config->endpointing);
  g_free (config);
}

gchar *
sonic_config_system_text (const SonicConfig *config)
{
  GString *s =
      g_string_new (config->system_prompt ? config->system_prompt : "");
  guint i;

  for (i = 0; config->tools && i < config->tools->len; i++) {
    SonicTool *tool = g_ptr_array_index (config->tools, i);

    if (tool->instruction == NULL || tool->instruction[0] == '\0')
      continue;
    if (s->len > 0)
      g_string_append (s, "\n\n");
    g_string_append_printf (s, "Tool %s: %s", tool->name, tool->instruction);
  }
  return g_string_free (s, FALSE);
}

/* ---- request ---- */

gchar *
sonic_request_path (const gchar *model_id)
{
  g_autofree gchar *label = cp_aws_uri_encode (model_id, FALSE);

  return g_strdup_printf ("/model/%s/invoke-with-bidirectional-stream", label);
}

CpAwsSigV4Result *
sonic_sign_request (const gchar *authority, const gchar *model_id,
    const gchar *region, const gchar *access_key, const gchar *secret_key,
    const gchar *session_token, gint64 time, GError **error)
{
  g_autofree gchar *path = sonic_request_path (model_id);
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("POST", path);
  CpAwsSigningParams params = {
      .access_key_id = access_key,
      .secret_access_key = secret_key,
      .session_token = session_token,
      .region = region,
      .service = SONIC_SIGNING_SERVICE,
      .time = time,
  };

  /* The label is encoded already: sigv4 encodes it once more for the
   * canonical URI, as the SDKs do for every service but S3. */
  req->path_encoded = TRUE;
  /* Signed under its HTTP/2 name, as the JS SDK does. */
  cp_aws_http_request_add_header (req, ":authority", authority);
  cp_aws_http_request_add_header (req, "content-type", SONIC_CONTENT_TYPE);
  cp_aws_http_request_set_payload_hash (req, CP_AWS_STREAMING_EVENTS);
  return cp_aws_sigv4_sign_headers (req, &params, error);
}

/* ---- input events ---- */

static gchar *
builder_finish (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);

  return node_to_string (root);
}

/* Opens {"event":{"<name>":{ and, when given, "promptName" and
 * "contentName"; the caller adds members and closes with event_end(). */
static JsonBuilder *
event_begin (const gchar *name, const gchar *prompt_name,
    const gchar *content_name)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "event");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  if (prompt_name) {
    json_builder_set_member_name (b, "promptName");
    json_builder_add_string_value (b, prompt_name);
  }
  if (content_name) {
    json_builder_set_member_name (b, "contentName");
    json_builder_add_string_value (b, content_name);
  }
  return b;
}

static gchar *
event_end (JsonBuilder *b)
{
  gchar *json;

  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json = builder_finish (b);
  g_object_unref (b);
  return json;
}

static void
add_string (JsonBuilder *b, const gchar *name, const gchar *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
add_int (JsonBuilder *b, const gchar *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
add_media_type (JsonBuilder *b, const gchar *config_name, const gchar *type)
{
  json_builder_set_member_name (b, config_name);
  json_builder_begin_object (b);
  add_string (b, "mediaType", type);
  json_builder_end_object (b);
}

gchar *
sonic_event_session_start (const SonicConfig *config)
{
  JsonBuilder *b = event_begin ("sessionStart", NULL, NULL);

  json_builder_set_member_name (b, "inferenceConfiguration");
  json_builder_begin_object (b);
  add_int (b, "maxTokens", config->max_tokens);
  json_builder_set_member_name (b, "topP");
  json_builder_add_double_value (b, config->top_p);
  json_builder_set_member_name (b, "temperature");
  json_builder_add_double_value (b, config->temperature);
  json_builder_end_object (b);
  if (config->endpointing) {
    json_builder_set_member_name (b, "turnDetectionConfiguration");
    json_builder_begin_object (b);
    add_string (b, "endpointingSensitivity", config->endpointing);
    json_builder_end_object (b);
  }
  return event_end (b);
}

static void
add_tool_spec (JsonBuilder *b, const SonicTool *tool)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "toolSpec");
  json_builder_begin_object (b);
  add_string (b, "name", tool->name);
  add_string (b, "description", tool->description);
  json_builder_set_member_name (b, "inputSchema");
  json_builder_begin_object (b);
  add_string (b, "json", tool->input_schema);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

gchar *
sonic_event_prompt_start (const SonicConfig *config, const gchar *prompt_name)
{
  JsonBuilder *b = event_begin ("promptStart", prompt_name, NULL);
  guint i;

  add_media_type (b, "textOutputConfiguration", "text/plain");
  json_builder_set_member_name (b, "audioOutputConfiguration");
  json_builder_begin_object (b);
  add_string (b, "mediaType", "audio/lpcm");
  add_int (b, "sampleRateHertz", config->output_rate);
  add_int (b, "sampleSizeBits", 16);
  add_int (b, "channelCount", 1);
  add_string (b, "voiceId", config->voice_id ? config->voice_id : "matthew");
  add_string (b, "encoding", "base64");
  add_string (b, "audioType", "SPEECH");
  json_builder_end_object (b);
  add_media_type (b, "toolUseOutputConfiguration", "application/json");
  if (config->tools && config->tools->len > 0) {
    json_builder_set_member_name (b, "toolConfiguration");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "tools");
    json_builder_begin_array (b);
    for (i = 0; i < config->tools->len; i++)
      add_tool_spec (b, g_ptr_array_index (config->tools, i));
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  return event_end (b);
}

gchar *
sonic_event_text_content_start (const gchar *prompt_name,
    const gchar *content_name, SonicRole role, gboolean interactive)
{
  JsonBuilder *b = event_begin ("contentStart", prompt_name, content_name);

  add_string (b, "type", "TEXT");
  json_builder_set_member_name (b, "interactive");
  json_builder_add_boolean_value (b, interactive);
  add_string (b, "role", sonic_role_to_string (role));
  add_media_type (b, "textInputConfiguration", "text/plain");
  return event_end (b);
}

gchar *
sonic_event_text_input (const gchar *prompt_name, const gchar *content_name,
    const gchar *text)
{
  JsonBuilder *b = event_begin ("textInput", prompt_name, content_name);

  add_string (b, "content", text);
  return event_end (b);
}

gchar *
sonic_event_audio_content_start (const gchar *prompt_name,
    const gchar *content_name, gint rate)
{
  JsonBuilder *b = event_begin ("contentStart", prompt_name, content_name);

  add_string (b, "type", "AUDIO");
  json_builder_set_member_name (b, "interactive");
  json_builder_add_boolean_value (b, TRUE);
  add_string (b, "role", "USER");
  json_builder_set_member_name (b, "audioInputConfiguration");
  json_builder_begin_object (b);
  add_string (b, "mediaType", "audio/lpcm");
  add_int (b, "sampleRateHertz", rate);
  add_int (b, "sampleSizeBits", 16);
  add_int (b, "channelCount", 1);
  add_string (b, "audioType", "SPEECH");
  add_string (b, "encoding", "base64");
  json_builder_end_object (b);
  return event_end (b);
}

/* Room g_base64_encode_step() and g_base64_encode_close() need for @len
 * bytes (no line breaks). */
#define BASE64_ROOM(len) (((len) / 3 + 1) * 4 + 4)

/* Appends the base64 of @data to @out. */
static void
string_append_base64 (GString *out, const guint8 *data, gsize len)
{
  gsize at = out->len, n;
  gint state = 0, save = 0;

  g_string_set_size (out, at + BASE64_ROOM (len));
  n = g_base64_encode_step (data, len, FALSE, out->str + at, &state, &save);
  n += g_base64_encode_close (FALSE, out->str + at + n, &state, &save);
  g_string_truncate (out, at + n);
}

static void
bytes_append_base64 (GByteArray *out, const guint8 *data, gsize len)
{
  gsize at = out->len, n;
  gint state = 0, save = 0;

  g_byte_array_set_size (out, at + BASE64_ROOM (len));
  n = g_base64_encode_step (data, len, FALSE, (gchar *) out->data + at, &state,
      &save);
  n += g_base64_encode_close (FALSE, (gchar *) out->data + at + n, &state,
      &save);
  g_byte_array_set_size (out, at + n);
}

static void
bytes_append_str (GByteArray *out, const gchar *text)
{
  g_byte_array_append (out, (const guint8 *) text, strlen (text));
}

/* Audio is the bulk of the upstream: its JSON is formatted directly
 * rather than through a builder (the names are UUIDs, the content
 * base64), into a buffer that the sender reuses. */
static void
audio_input_json (GString *out, const gchar *prompt_name,
    const gchar *content_name, const guint8 *pcm, gsize len)
{
  g_string_append (out, "{\"event\":{\"audioInput\":{\"promptName\":\"");
  g_string_append (out, prompt_name);
  g_string_append (out, "\",\"contentName\":\"");
  g_string_append (out, content_name);
  g_string_append (out, "\",\"content\":\"");
  string_append_base64 (out, pcm, len);
  g_string_append (out, "\"}}}");
}

gchar *
sonic_event_audio_input (const gchar *prompt_name, const gchar *content_name,
    const guint8 *pcm, gsize len)
{
  GString *json = g_string_sized_new (BASE64_ROOM (len) + 160);

  audio_input_json (json, prompt_name, content_name, pcm, len);
  return g_string_free (json, FALSE);
}

gchar *
sonic_event_tool_content_start (const gchar *prompt_name,
    const gchar *content_name, const gchar *tool_use_id)
{
  JsonBuilder *b = event_begin ("contentStart", prompt_name, content_name);

  json_builder_set_member_name (b, "interactive");
  json_builder_add_boolean_value (b, FALSE);
  add_string (b, "type", "TOOL");
  add_string (b, "role", "TOOL");
  json_builder_set_member_name (b, "toolResultInputConfiguration");
  json_builder_begin_object (b);
  add_string (b, "toolUseId", tool_use_id);
  add_string (b, "type", "TEXT");
  add_media_type (b, "textInputConfiguration", "text/plain");
  json_builder_end_object (b);
  return event_end (b);
}

gchar *
sonic_event_tool_result (const gchar *prompt_name, const gchar *content_name,
    const gchar *json)
{
  JsonBuilder *b = event_begin ("toolResult", prompt_name, content_name);

  add_string (b, "content", json);
  return event_end (b);
}

gchar *
sonic_event_content_end (const gchar *prompt_name, const gchar *content_name)
{
  return event_end (event_begin ("contentEnd", prompt_name, content_name));
}

gchar *
sonic_event_prompt_end (const gchar *prompt_name)
{
  return event_end (event_begin ("promptEnd", prompt_name, NULL));
}

gchar *
sonic_event_session_end (void)
{
  return event_end (event_begin ("sessionEnd", NULL, NULL));
}

CpAwsEventMessage *
sonic_wrap_event (const gchar *json)
{
  CpAwsEventMessage *msg = cp_aws_event_message_new ();
  g_autofree gchar *b64 =
      g_base64_encode ((const guchar *) json, strlen (json));
  gchar *text = g_strdup_printf ("{\"bytes\":\"%s\"}", b64);
  g_autoptr (GBytes) payload = g_bytes_new_take (text, strlen (text));

  cp_aws_event_message_set_string (msg, ":event-type", "chunk");
  cp_aws_event_message_set_string (msg, ":message-type", "event");
  cp_aws_event_message_set_string (msg, ":content-type", "application/json");
  cp_aws_event_message_set_payload (msg, payload);
  return msg;
}

/* The headers section every chunk message shares, encoded once. */
static const GByteArray *
chunk_headers (void)
{
  static GByteArray *headers;

  if (g_once_init_enter (&headers)) {
    g_autoptr (CpAwsEventMessage) msg = sonic_wrap_event ("");
    GByteArray *encoded = g_byte_array_new ();

    if (!cp_aws_event_message_encode_headers (msg, encoded, NULL))
      g_assert_not_reached ();
    g_once_init_leave (&headers, encoded);
  }
  return headers;
}

gboolean
sonic_append_audio_chunk (GByteArray *out, GString *scratch,
    const gchar *prompt_name, const gchar *content_name, const guint8 *pcm,
    gsize len, GError **error)
{
  const GByteArray *headers = chunk_headers ();
  gsize start = cp_aws_event_stream_begin_message (out);

  g_string_truncate (scratch, 0);
  audio_input_json (scratch, prompt_name, content_name, pcm, len);
  g_byte_array_append (out, headers->data, headers->len);
  bytes_append_str (out, "{\"bytes\":\"");
  bytes_append_base64 (out, (const guint8 *) scratch->str, scratch->len);
  bytes_append_str (out, "\"}");
  return cp_aws_event_stream_end_message (out, start, headers->len, error);
}

/* ---- output events ---- */

void
sonic_output_event_free (SonicOutputEvent *event)
{
  if (event == NULL)
    return;
  g_free (event->event_name);
  g_free (event->content_id);
  g_free (event->text);
  g_clear_pointer (&event->audio, g_bytes_unref);
  g_free (event->tool_name);
  g_free (event->tool_use_id);
  g_free (event->stop_reason);
  g_free (event->exception_type);
  g_free (event->exception_message);
  g_free (event);
}

static gboolean
malformed (GError **error, const gchar *what)
{
  g_set_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED,
      "malformed output event: %s", what);
  return FALSE;
}

static JsonNode *
parse_json (GBytes *bytes, JsonParser *parser, GError **error)
{
  gsize len;
  const gchar *data = g_bytes_get_data (bytes, &len);
  g_autoptr (GError) local = NULL;

  if (len == 0 || !g_utf8_validate (data, len, NULL)) {
    malformed (error, "payload is empty or not UTF-8");
    return NULL;
  }
  if (!json_parser_load_from_data (parser, data, len, &local)) {
    g_set_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED,
        "malformed output event: %s", local->message);
    return NULL;
  }
  if (json_parser_get_root (parser) == NULL) {
    malformed (error, "payload holds no JSON value");
    return NULL;
  }
  return json_parser_get_root (parser);
}

static gboolean
is_base64 (const gchar *b64, gsize n)
{
  gsize i;

  if (n % 4 != 0)
    return FALSE;
  for (i = 0; i < n; i++) {
    gchar c = b64[i];

    if (!(g_ascii_isalnum (c) || c == '+' || c == '/'
            || (c == '=' && i >= n - 2)))
      return FALSE;
  }
  return TRUE;
}

/* @n bytes of padded base64, nothing else (no whitespace). */
static gboolean
decode_base64_len (const gchar *b64, gsize n, guchar **out, gsize *out_len)
{
  gint state = 0;
  guint save = 0;

  if (!is_base64 (b64, n))
    return FALSE;
  *out = g_malloc (n / 4 * 3 + 3);
  *out_len = g_base64_decode_step (b64, n, *out, &state, &save);
  return TRUE;
}

static gboolean
decode_base64_strict (const gchar *b64, guchar **out, gsize *out_len)
{
  return decode_base64_len (b64, strlen (b64), out, out_len);
}

/* The chunk payload as the service writes it, {"bytes":"<base64>"}, is
 * taken apart without a JSON parser (the base64 is most of an audio
 * event's bytes); anything else goes through the parser. */
static gboolean
chunk_bytes_fast (GBytes *payload, const gchar **b64, gsize *n)
{
  static const gchar head[] = "{\"bytes\":\"", tail[] = "\"}";
  gsize len;
  const gchar *data = g_bytes_get_data (payload, &len);

  if (len < sizeof (head) - 1 + sizeof (tail) - 1
      || memcmp (data, head, sizeof (head) - 1) != 0
      || memcmp (data + len - (sizeof (tail) - 1), tail, sizeof (tail) - 1)
          != 0)
    return FALSE;
  *b64 = data + sizeof (head) - 1;
  *n = len - (sizeof (head) - 1) - (sizeof (tail) - 1);
  return is_base64 (*b64, *n);
}

static gint64
member_int (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return json_node_get_int (node);
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return (gint64) json_node_get_double (node);
  return 0;
}

static SonicStage
parse_stage (JsonObject *obj)
{
  const gchar *fields = member_string (obj, "additionalModelFields");
  g_autoptr (JsonParser) parser = NULL;
  JsonNode *root;
  const gchar *stage;

  if (fields == NULL)
    return SONIC_STAGE_NONE;
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, fields, -1, NULL))
    return SONIC_STAGE_NONE;
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return SONIC_STAGE_NONE;
  stage = member_string (json_node_get_object (root), "generationStage");
  if (g_strcmp0 (stage, "FINAL") == 0)
    return SONIC_STAGE_FINAL;
  if (g_strcmp0 (stage, "SPECULATIVE") == 0)
    return SONIC_STAGE_SPECULATIVE;
  return SONIC_STAGE_NONE;
}

static gboolean
is_interrupted_text (const gchar *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root, *member;

  if (strstr (text, "interrupted") == NULL
      || !json_parser_load_from_data (parser, text, -1, NULL))
    return FALSE;
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return FALSE;
  member = json_object_get_member (json_node_get_object (root), "interrupted");
  return member && JSON_NODE_HOLDS_VALUE (member)
      && json_node_get_value_type (member) == G_TYPE_BOOLEAN
      && json_node_get_boolean (member);
}

static gboolean
fill_event (SonicOutputEvent *ev, const gchar *name, JsonObject *obj,
    GError **error)
{
  ev->event_name = g_strdup (name);
  ev->content_id = g_strdup (member_string (obj, "contentId"));
  ev->role = role_from_string (member_string (obj, "role"));
  ev->type = content_type_from_string (member_string (obj, "type"));

  if (strcmp (name, "completionStart") == 0) {
    ev->kind = SONIC_OUT_COMPLETION_START;
  } else if (strcmp (name, "contentStart") == 0) {
    ev->kind = SONIC_OUT_CONTENT_START;
    ev->stage = parse_stage (obj);
    if (ev->content_id == NULL)
      return malformed (error, "contentStart without contentId");
  } else if (strcmp (name, "textOutput") == 0) {
    const gchar *text = member_string (obj, "content");

    ev->kind = SONIC_OUT_TEXT;
    if (text == NULL)
      return malformed (error, "textOutput without string content");
    ev->text = g_strdup (text);
    ev->interrupted = is_interrupted_text (text);
  } else if (strcmp (name, "audioOutput") == 0) {
    const gchar *b64 = member_string (obj, "content");
    guchar *pcm = NULL;
    gsize len = 0;

    ev->kind = SONIC_OUT_AUDIO;
    if (b64 == NULL || !decode_base64_strict (b64, &pcm, &len))
      return malformed (error, "audioOutput content is not base64");
    if (len % 2 != 0) {
      g_free (pcm);
      return malformed (error, "audioOutput holds an odd number of bytes");
    }
    ev->audio = g_bytes_new_take (pcm, len);
  } else if (strcmp (name, "toolUse") == 0) {
    ev->kind = SONIC_OUT_TOOL_USE;
    ev->tool_name = g_strdup (member_string (obj, "toolName"));
    ev->tool_use_id = g_strdup (member_string (obj, "toolUseId"));
    ev->text = g_strdup (member_string (obj, "content"));
    if (ev->tool_name == NULL || ev->tool_use_id == NULL)
      return malformed (error, "toolUse without toolName or toolUseId");
    if (ev->text == NULL)
      ev->text = g_strdup ("{}");
  } else if (strcmp (name, "contentEnd") == 0) {
    ev->kind = SONIC_OUT_CONTENT_END;
    ev->stop_reason = g_strdup (member_string (obj, "stopReason"));
  } else if (strcmp (name, "usageEvent") == 0) {
    ev->kind = SONIC_OUT_USAGE;
    ev->input_tokens = member_int (obj, "totalInputTokens");
    ev->output_tokens = member_int (obj, "totalOutputTokens");
    ev->total_tokens = member_int (obj, "totalTokens");
  } else if (strcmp (name, "completionEnd") == 0) {
    ev->kind = SONIC_OUT_COMPLETION_END;
    ev->stop_reason = g_strdup (member_string (obj, "stopReason"));
  } else if (strcmp (name, "userSpeechStart") == 0) {
    ev->kind = SONIC_OUT_USER_SPEECH_START;
  } else if (strcmp (name, "userSpeechEnd") == 0) {
    ev->kind = SONIC_OUT_USER_SPEECH_END;
  } else {
    ev->kind = SONIC_OUT_UNKNOWN;
  }
  return TRUE;
}

static SonicOutputEvent *
parse_chunk (const CpAwsEventMessage *msg, GError **error)
{
  g_autoptr (JsonParser) outer = NULL;
  g_autoptr (JsonParser) inner = json_parser_new ();
  g_autoptr (SonicOutputEvent) ev = g_new0 (SonicOutputEvent, 1);
  g_autoptr (GBytes) event_bytes = NULL;
  JsonNode *root, *event;
  JsonObject *obj;
  const gchar *b64;
  gsize b64_len = 0;
  guchar *json = NULL;
  gsize json_len = 0;
  GList *members;
  const gchar *name;

  if (chunk_bytes_fast (cp_aws_event_message_get_payload (msg), &b64,
          &b64_len)) {
    decode_base64_len (b64, b64_len, &json, &json_len);
  } else {
    outer = json_parser_new ();
    root = parse_json (cp_aws_event_message_get_payload (msg), outer, error);
    if (root == NULL)
      return NULL;
    if (!JSON_NODE_HOLDS_OBJECT (root)
        || (b64 = member_string (json_node_get_object (root), "bytes")) == NULL
        || !decode_base64_strict (b64, &json, &json_len)) {
      malformed (error, "chunk payload is not {\"bytes\":\"<base64>\"}");
      return NULL;
    }
  }
  event_bytes = g_bytes_new_take (json, json_len);
  root = parse_json (event_bytes, inner, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root)
      || (event = json_object_get_member (json_node_get_object (root), "event"))
          == NULL
      || !JSON_NODE_HOLDS_OBJECT (event)
      || json_object_get_size (json_node_get_object (event)) != 1) {
    malformed (error, "no {\"event\":{\"<name>\":{...}}} object");
    return NULL;
  }
  members = json_object_get_members (json_node_get_object (event));
  name = members->data;
  g_list_free (members);
  event = json_object_get_member (json_node_get_object (event), name);
  if (!JSON_NODE_HOLDS_OBJECT (event)) {
    malformed (error, "the event body is not an object");
    return NULL;
  }
  obj = json_node_get_object (event);
  if (!fill_event (ev, name, obj, error))
    return NULL;
  return g_steal_pointer (&ev);
}

static SonicOutputEvent *
parse_exception (const CpAwsEventMessage *msg, const gchar *type,
    const gchar *message)
{
  SonicOutputEvent *ev = g_new0 (SonicOutputEvent, 1);

  ev->kind = SONIC_OUT_EXCEPTION;
  ev->event_name = g_strdup (type);
  ev->exception_type = g_strdup (type);
  ev->exception_message = g_strdup (message ? message : "");
  return ev;
}

SonicOutputEvent *
sonic_output_event_parse (const CpAwsEventMessage *msg, GError **error)
{
  const gchar *message_type = cp_aws_event_message_get_message_type (msg);

  if (g_strcmp0 (message_type, "event") == 0) {
    const gchar *event_type = cp_aws_event_message_get_event_type (msg);
    SonicOutputEvent *ev;

    if (g_strcmp0 (event_type, "chunk") == 0)
      return parse_chunk (msg, error);
    ev = g_new0 (SonicOutputEvent, 1);
    ev->kind = SONIC_OUT_UNKNOWN;
    ev->event_name = g_strdup (event_type ? event_type : "");
    return ev;
  }
  if (g_strcmp0 (message_type, "exception") == 0) {
    const gchar *type = cp_aws_event_message_get_exception_type (msg);
    g_autoptr (JsonParser) parser = json_parser_new ();
    const gchar *message = NULL;
    JsonNode *root;

    if (type == NULL) {
      malformed (error, "exception without :exception-type");
      return NULL;
    }
    root = parse_json (cp_aws_event_message_get_payload (msg), parser, NULL);
    if (root && JSON_NODE_HOLDS_OBJECT (root)) {
      message = member_string (json_node_get_object (root), "message");
      if (message == NULL)
        message = member_string (json_node_get_object (root), "Message");
    }
    return parse_exception (msg, type, message);
  }
  if (g_strcmp0 (message_type, "error") == 0) {
    const gchar *code = cp_aws_event_message_get_string (msg, ":error-code");

    if (code == NULL) {
      malformed (error, "error message without :error-code");
      return NULL;
    }
    return parse_exception (msg, code,
        cp_aws_event_message_get_string (msg, ":error-message"));
  }
  g_set_error (error, SONIC_ERROR, SONIC_ERROR_MALFORMED,
      "malformed output message: :message-type \"%s\"",
      message_type ? message_type : "(none)");
  return NULL;
}

gboolean
sonic_exception_is_retryable (const gchar *exception_type)
{
  static const gchar *const retryable[] = {"modelTimeoutException",
      "throttlingException", "serviceUnavailableException",
      "internalServerException", "modelStreamErrorException",
      "ModelTimeoutException", "ThrottlingException",
      "ServiceUnavailableException", "InternalServerException",
      "ModelStreamErrorException", NULL};

  return exception_type && g_strv_contains (retryable, exception_type);
}

/* ---- history ---- */

struct _SonicHistory
{
  GPtrArray *entries; /* of SonicHistoryEntry */
};

static void
history_entry_free (SonicHistoryEntry *entry)
{
  g_free (entry->text);
  g_free (entry);
}

SonicHistory *
sonic_history_new (void)
{
  SonicHistory *history = g_new0 (SonicHistory, 1);

  history->entries =
      g_ptr_array_new_with_free_func ((GDestroyNotify) history_entry_free);
  return history;
}

void
sonic_history_free (SonicHistory *history)
{
  if (history == NULL)
    return;
  g_ptr_array_unref (history->entries);
  g_free (history);
}

void
sonic_history_add (SonicHistory *history, SonicRole role, const gchar *text)
{
  SonicHistoryEntry *last;

  if ((role != SONIC_ROLE_USER && role != SONIC_ROLE_ASSISTANT) || text == NULL
      || text[0] == '\0')
    return;
  last = history->entries->len
      ? g_ptr_array_index (history->entries, history->entries->len - 1)
      : NULL;
  if (last && last->role == role) {
    gchar *merged = g_strconcat (last->text, " ", text, NULL);

    g_free (last->text);
    last->text = merged;
    return;
  }
  last = g_new0 (SonicHistoryEntry, 1);
  last->role = role;
  last->text = g_strdup (text);
  g_ptr_array_add (history->entries, last);
  /* Keep memory bounded on calls of any length: older entries than the
   * export can hold are never sent again. */
  if (history->entries->len
      > 2 * SONIC_HISTORY_MAX_TOTAL / SONIC_HISTORY_MAX_MESSAGE)
    g_ptr_array_remove_index (history->entries, 0);
}

/* The last at most @max bytes of @text, cut at a character boundary. */
static gchar *
utf8_tail (const gchar *text, gsize max)
{
  gsize len = strlen (text);
  const gchar *start;

  if (len <= max)
    return g_strdup (text);
  start = text + len - max;
  while (*start && (((guchar) *start) & 0xc0) == 0x80)
    start++;
  return g_strdup (start);
}

GPtrArray *
sonic_history_export (const SonicHistory *history)
{
  GPtrArray *out =
      g_ptr_array_new_with_free_func ((GDestroyNotify) history_entry_free);
  gsize total = 0;
  gint i, first = history->entries->len;

  for (i = (gint) history->entries->len - 1; i >= 0; i--) {
    SonicHistoryEntry *e = g_ptr_array_index (history->entries, i);
    gsize len = MIN (strlen (e->text), SONIC_HISTORY_MAX_MESSAGE);

    if (total + len > SONIC_HISTORY_MAX_TOTAL)
      break;
    total += len;
    first = i;
  }
  for (i = first; i < (gint) history->entries->len; i++) {
    SonicHistoryEntry *e = g_ptr_array_index (history->entries, i);
    SonicHistoryEntry *copy;

    if (out->len == 0 && e->role != SONIC_ROLE_USER)
      continue;
    copy = g_new0 (SonicHistoryEntry, 1);
    copy->role = e->role;
    copy->text = utf8_tail (e->text, SONIC_HISTORY_MAX_MESSAGE);
    g_ptr_array_add (out, copy);
  }
  return out;
}

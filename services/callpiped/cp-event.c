/* callpiped — POST /calls bodies */
#include "cp-event.h"
#include "cp-template.h"

#include <json-glib/json-glib.h>
#include <string.h>

GQuark
cp_event_error_quark (void)
{
  return g_quark_from_static_string ("cp-event-error-quark");
}

void
cp_call_request_free (CpCallRequest *req)
{
  if (req == NULL)
    return;
  g_free (req->contact_id);
  g_free (req->stream_arn);
  g_free (req->start_fragment);
  g_free (req->media_uri);
  g_free (req->attributes_json);
  g_free (req);
}

static gboolean
field_error (GError **error, CpEventError code, const gchar *field,
    const gchar *what)
{
  g_set_error (error, CP_EVENT_ERROR, code, "%s: %s", field, what);
  return FALSE;
}

/* Member @name of @obj as an object; absent or null gives NULL and TRUE. */
static gboolean
get_object (JsonObject *obj, const gchar *name, const gchar *field,
    JsonObject **out, GError **error)
{
  JsonNode *n = obj != NULL ? json_object_get_member (obj, name) : NULL;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
        "expected an object");
  *out = json_node_get_object (n);
  return TRUE;
}

/* Member @name as a string; absent, null or "" gives NULL and TRUE. */
static gboolean
get_string (JsonObject *obj, const gchar *name, const gchar *field, gchar **out,
    GError **error)
{
  JsonNode *n = obj != NULL ? json_object_get_member (obj, name) : NULL;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (json_node_get_value_type (n) != G_TYPE_STRING)
    return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
        "expected a string");
  if (*json_node_get_string (n) != '\0')
    *out = json_node_dup_string (n);
  return TRUE;
}

/* Connect sends numbers as decimal strings; the flat form may use JSON
 * integers too. */
static gboolean
get_decimal (JsonObject *obj, const gchar *name, const gchar *field,
    gchar **out, GError **error)
{
  JsonNode *n = obj != NULL ? json_object_get_member (obj, name) : NULL;
  const gchar *s;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (n)
      && json_node_get_value_type (n) == G_TYPE_INT64) {
    if (json_node_get_int (n) < 0)
      return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
          "must not be negative");
    *out = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (n));
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_STRING)
    return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
        "expected a decimal string or an integer");
  s = json_node_get_string (n);
  if (*s == '\0')
    return TRUE;
  if (strlen (s) > 64 || strspn (s, "0123456789") != strlen (s))
    return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
        "expected decimal digits");
  *out = g_strdup (s);
  return TRUE;
}

static gboolean
check_value (const gchar *var, const gchar *value, const gchar *field,
    GError **error)
{
  g_autoptr (GError) verr = NULL;

  if (cp_template_check_value (var, value, &verr))
    return TRUE;
  return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
      verr->message);
}

static gboolean
check_media_uri (const gchar *uri, const gchar *field, GError **error)
{
  if (!check_value ("MEDIA_URI", uri, field, error))
    return FALSE;
  if (!g_str_has_prefix (uri, "file://") && !g_str_has_prefix (uri, "http://")
      && !g_str_has_prefix (uri, "https://"))
    return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, field,
        "calls take file://, http:// or https:// media");
  return TRUE;
}

static gboolean
take_attributes (CpCallRequest *req, JsonObject *attrs, const gchar *field,
    GError **error)
{
  g_autoptr (JsonNode) node = NULL;
  GList *members, *l;

  if (attrs == NULL)
    return TRUE;
  members = json_object_get_members (attrs);
  for (l = members; l != NULL; l = l->next) {
    JsonNode *v = json_object_get_member (attrs, l->data);

    if (!JSON_NODE_HOLDS_VALUE (v)
        || json_node_get_value_type (v) != G_TYPE_STRING) {
      g_autofree gchar *f =
          g_strdup_printf ("%s.%s", field, (const gchar *) l->data);

      g_list_free (members);
      return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, f,
          "contact attributes are strings");
    }
  }
  g_list_free (members);
  node = json_node_init_object (json_node_alloc (), attrs);
  req->attributes_json = json_to_string (node, FALSE);
  return TRUE;
}

static gboolean
parse_connect (CpCallRequest *req, JsonObject *root, GError **error)
{
  JsonObject *details, *data, *streams, *customer, *audio, *params, *attrs;

  if (!get_object (root, "Details", "Details", &details, error)
      || !get_object (details, "ContactData", "Details.ContactData", &data,
          error)
      || !get_object (details, "Parameters", "Details.Parameters", &params,
          error))
    return FALSE;
  if (data == NULL)
    return field_error (error, CP_EVENT_ERROR_MISSING_FIELD,
        "Details.ContactData", "required");
  if (!get_string (data, "ContactId", "Details.ContactData.ContactId",
          &req->contact_id, error))
    return FALSE;
  if (req->contact_id == NULL)
    return field_error (error, CP_EVENT_ERROR_MISSING_FIELD,
        "Details.ContactData.ContactId", "required");
  if (!get_object (data, "MediaStreams", "Details.ContactData.MediaStreams",
          &streams, error)
      || !get_object (streams, "Customer",
          "Details.ContactData.MediaStreams.Customer", &customer, error)
      || !get_object (customer, "Audio",
          "Details.ContactData.MediaStreams.Customer.Audio", &audio, error)
      || !get_string (audio, "StreamARN",
          "Details.ContactData.MediaStreams.Customer.Audio.StreamARN",
          &req->stream_arn, error)
      || !get_decimal (audio, "StartFragmentNumber",
          "Details.ContactData.MediaStreams.Customer.Audio."
          "StartFragmentNumber",
          &req->start_fragment, error))
    return FALSE;
  {
    g_autofree gchar *ts = NULL;

    if (!get_decimal (audio, "StartTimestamp",
            "Details.ContactData.MediaStreams.Customer.Audio.StartTimestamp",
            &ts, error))
      return FALSE;
    if (ts != NULL
        && !g_ascii_string_to_signed (ts, 10, 0, G_MAXINT64,
            &req->start_timestamp, NULL))
      return field_error (error, CP_EVENT_ERROR_INVALID_FIELD,
          "Details.ContactData.MediaStreams.Customer.Audio.StartTimestamp",
          "out of range");
  }
  if (!get_object (data, "Attributes", "Details.ContactData.Attributes", &attrs,
          error)
      || !take_attributes (req, attrs, "Details.ContactData.Attributes", error))
    return FALSE;
  if (req->media_uri == NULL) {
    if (!get_string (params, "mediaUri", "Details.Parameters.mediaUri",
            &req->media_uri, error))
      return FALSE;
    if (req->media_uri != NULL
        && !check_media_uri (req->media_uri, "Details.Parameters.mediaUri",
            error))
      return FALSE;
  }
  if (!check_value ("CONTACT_ID", req->contact_id,
          "Details.ContactData.ContactId", error))
    return FALSE;
  if (req->stream_arn != NULL
      && !check_value ("STREAM_ARN", req->stream_arn,
          "Details.ContactData.MediaStreams.Customer.Audio.StreamARN", error))
    return FALSE;
  return TRUE;
}

static gboolean
parse_flat (CpCallRequest *req, JsonObject *root, GError **error)
{
  g_autofree gchar *ts = NULL;
  JsonObject *attrs;

  if (!get_string (root, "contactId", "contactId", &req->contact_id, error))
    return FALSE;
  if (req->contact_id == NULL)
    return field_error (error, CP_EVENT_ERROR_MISSING_FIELD, "contactId",
        "required");
  if (!check_value ("CONTACT_ID", req->contact_id, "contactId", error)
      || !get_string (root, "streamArn", "streamArn", &req->stream_arn, error)
      || !get_decimal (root, "startFragmentNumber", "startFragmentNumber",
          &req->start_fragment, error)
      || !get_decimal (root, "startTimestamp", "startTimestamp", &ts, error)
      || !get_object (root, "attributes", "attributes", &attrs, error)
      || !take_attributes (req, attrs, "attributes", error))
    return FALSE;
  if (ts != NULL
      && !g_ascii_string_to_signed (ts, 10, 0, G_MAXINT64,
          &req->start_timestamp, NULL))
    return field_error (error, CP_EVENT_ERROR_INVALID_FIELD, "startTimestamp",
        "out of range");
  if (req->stream_arn != NULL
      && !check_value ("STREAM_ARN", req->stream_arn, "streamArn", error))
    return FALSE;
  return TRUE;
}

CpCallRequest *
cp_call_request_parse (const gchar *body, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (CpCallRequest) req = g_new0 (CpCallRequest, 1);
  g_autoptr (GError) jerr = NULL;
  JsonNode *root_node;
  JsonObject *root;

  req->start_timestamp = -1;
  if (len > G_MAXSSIZE
      || !json_parser_load_from_data (parser, body, len, &jerr)) {
    g_set_error (error, CP_EVENT_ERROR, CP_EVENT_ERROR_MALFORMED,
        "body is not valid JSON: %s", jerr ? jerr->message : "too large");
    return NULL;
  }
  root_node = json_parser_get_root (parser);
  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node)) {
    g_set_error (error, CP_EVENT_ERROR, CP_EVENT_ERROR_MALFORMED,
        "body must be a JSON object");
    return NULL;
  }
  root = json_node_get_object (root_node);

  /* mediaUri may sit at the top level of either shape. */
  if (!get_string (root, "mediaUri", "mediaUri", &req->media_uri, error))
    return NULL;
  if (req->media_uri != NULL
      && !check_media_uri (req->media_uri, "mediaUri", error))
    return NULL;

  if (json_object_has_member (root, "Details")) {
    if (!parse_connect (req, root, error))
      return NULL;
  } else if (!parse_flat (req, root, error)) {
    return NULL;
  }

  if (req->stream_arn == NULL && req->media_uri == NULL) {
    g_set_error (error, CP_EVENT_ERROR, CP_EVENT_ERROR_MISSING_FIELD,
        "no media: the event needs the customer audio StreamARN "
        "(Details.ContactData.MediaStreams.Customer.Audio.StreamARN or "
        "streamArn) or a mediaUri");
    return NULL;
  }
  return g_steal_pointer (&req);
}

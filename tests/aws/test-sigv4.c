/* Unit tests for the SigV4 signer: every case of the aws-c-auth v4 suite
 * (header and query signing), every case of the original AWS
 * aws4_testsuite, the S3 documentation examples, the aws-chunked chain
 * and the event-stream seed, plus the rules and errors the suites do not
 * cover. */
#include "aws/sigv4.h"
#include "aws/awscrypto.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define SUITE_TIME_ISO "2015-08-30T12:36:00Z"

static gchar *conformance_dir;

/* ---- helpers ---- */

static gchar *
read_text (const gchar *dir, const gchar *name)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  gchar *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, &error))
    g_error ("cannot read %s: %s", path, error->message);
  return text;
}

static gchar *
read_trimmed (const gchar *dir, const gchar *name)
{
  return g_strstrip (read_text (dir, name));
}

static JsonNode *
read_json (const gchar *dir, const gchar *name)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!json_parser_load_from_file (parser, path, &error))
    g_error ("cannot parse %s: %s", path, error->message);
  return json_node_copy (json_parser_get_root (parser));
}

static gint64
iso_to_unix (const gchar *iso)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_iso8601 (iso, NULL);

  g_assert_nonnull (dt);
  return g_date_time_to_unix (dt);
}

/* A request as the suites write it (request.txt / .req): request line,
 * header lines with folded continuations, an empty line, the body. */
typedef struct
{
  CpAwsHttpRequest *request;
  gchar *head; /* request line + header lines, verbatim */
  gchar *header_lines; /* header lines only, verbatim */
  gchar *raw_path;
  gchar *raw_query; /* NULL without '?' */
  gchar *body;
} SuiteRequest;

static void
suite_request_free (SuiteRequest *r)
{
  cp_aws_http_request_free (r->request);
  g_free (r->head);
  g_free (r->header_lines);
  g_free (r->raw_path);
  g_free (r->raw_query);
  g_free (r->body);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SuiteRequest, suite_request_free)

static SuiteRequest *
parse_suite_request (const gchar *text)
{
  SuiteRequest *r = g_new0 (SuiteRequest, 1);
  const gchar *blank = strstr (text, "\n\n");
  g_autofree gchar *head =
      blank ? g_strndup (text, blank - text) : g_strdup (text);
  g_auto (GStrv) lines = NULL;
  g_autoptr (GError) error = NULL;
  GString *name = NULL;
  GString *value = NULL;
  const gchar *first_space;
  const gchar *last_space;
  const gchar *q;
  g_autofree gchar *target = NULL;
  guint i;

  g_strchomp (head);
  r->head = g_strdup (head);
  r->body = g_strdup (blank ? blank + 2 : "");
  lines = g_strsplit (head, "\n", -1);
  first_space = strchr (lines[0], ' ');
  last_space = strrchr (lines[0], ' ');
  g_assert_true (first_space != NULL && last_space > first_space);
  target = g_strndup (first_space + 1, last_space - first_space - 1);
  q = strchr (target, '?');
  r->raw_path = q ? g_strndup (target, q - target) : g_strdup (target);
  r->raw_query = q ? g_strdup (q + 1) : NULL;
  {
    g_autofree gchar *method = g_strndup (lines[0], first_space - lines[0]);

    r->request = cp_aws_http_request_new (method, r->raw_path);
  }
  /* The suites' paths are what goes on the wire, unencoded bytes and all. */
  r->request->path_encoded = TRUE;
  if (r->raw_query != NULL)
    g_assert_true (cp_aws_http_request_add_query_string (r->request,
        r->raw_query, &error));
  g_assert_no_error (error);

  r->header_lines = g_strdup (lines[1] ? head + strlen (lines[0]) + 1 : "");
  for (i = 1; lines[i] != NULL; i++) {
    const gchar *colon;

    if (lines[i][0] == ' ' || lines[i][0] == '\t') {
      g_assert_nonnull (value);
      g_string_append_printf (value, "\n%s", lines[i]);
      continue;
    }
    if (name != NULL)
      cp_aws_http_request_add_header (r->request, name->str, value->str);
    colon = strchr (lines[i], ':');
    g_assert_nonnull (colon);
    if (name == NULL) {
      name = g_string_new (NULL);
      value = g_string_new (NULL);
    }
    g_string_assign (name, "");
    g_string_append_len (name, lines[i], colon - lines[i]);
    g_string_assign (value, colon + 1);
  }
  if (name != NULL) {
    cp_aws_http_request_add_header (r->request, name->str, value->str);
    g_string_free (name, TRUE);
    g_string_free (value, TRUE);
  }
  cp_aws_http_request_set_payload (r->request, r->body, strlen (r->body));
  return r;
}

static void
skip_without_data (void)
{
  g_test_skip ("CALLPIPE_SHARED_DIR/conformance/sigv4 is missing: set "
               "CALLPIPE_SHARED_DIR to the shared data directory");
}

/* ---- aws-c-auth v4 suite ---- */

typedef struct
{
  gchar *dir;
  gboolean query;
} CrtCase;

static void
crt_case_free (gpointer data)
{
  CrtCase *c = data;

  g_free (c->dir);
  g_free (c);
}

static void
test_crt_case (gconstpointer data)
{
  const CrtCase *c = data;
  const gchar *prefix = c->query ? "query-" : "header-";
  g_autoptr (JsonNode) ctx_node = read_json (c->dir, "context.json");
  JsonObject *ctx = json_node_get_object (ctx_node);
  JsonObject *creds = json_object_get_object_member (ctx, "credentials");
  g_autofree gchar *req_text = read_text (c->dir, "request.txt");
  g_autoptr (SuiteRequest) sr = parse_suite_request (req_text);
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *f_creq =
      g_strconcat (prefix, "canonical-request.txt", NULL);
  g_autofree gchar *f_sts = g_strconcat (prefix, "string-to-sign.txt", NULL);
  g_autofree gchar *f_sig = g_strconcat (prefix, "signature.txt", NULL);
  g_autofree gchar *f_sreq = g_strconcat (prefix, "signed-request.txt", NULL);
  g_autofree gchar *creq = read_text (c->dir, f_creq);
  g_autofree gchar *sts = read_text (c->dir, f_sts);
  g_autofree gchar *sig = read_trimmed (c->dir, f_sig);
  g_autofree gchar *sreq = read_text (c->dir, f_sreq);
  g_autofree gchar *mine = NULL;
  CpAwsSigningParams p = {0};

  p.access_key_id = json_object_get_string_member (creds, "access_key_id");
  p.secret_access_key =
      json_object_get_string_member (creds, "secret_access_key");
  p.session_token =
      json_object_get_string_member_with_default (creds, "token", NULL);
  p.region = json_object_get_string_member (ctx, "region");
  p.service = json_object_get_string_member (ctx, "service");
  p.time = iso_to_unix (json_object_get_string_member (ctx, "timestamp"));
  p.expires = json_object_get_int_member (ctx, "expiration_in_seconds");
  if (!json_object_get_boolean_member_with_default (ctx, "normalize", TRUE))
    p.flags |= CP_AWS_SIGV4_NO_NORMALIZE_PATH;
  if (json_object_get_boolean_member_with_default (ctx, "sign_body", FALSE))
    p.flags |= CP_AWS_SIGV4_SIGN_CONTENT_SHA256;
  if (json_object_get_boolean_member_with_default (ctx, "omit_session_token",
          FALSE))
    p.flags |= CP_AWS_SIGV4_OMIT_SESSION_TOKEN;

  if (c->query)
    res = cp_aws_sigv4_presign (sr->request, &p, &error);
  else
    res = cp_aws_sigv4_sign_headers (sr->request, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->canonical_request, ==, creq);
  g_assert_cmpstr (res->string_to_sign, ==, sts);
  g_assert_cmpstr (res->signature, ==, sig);

  if (c->query) {
    g_assert_null (res->authorization);
    g_assert_cmpuint (res->headers->len, ==, 0);
    mine = g_strdup_printf ("%s %s?%s%s%s HTTP/1.1\n%s\n\n%s",
        sr->request->method, sr->raw_path, sr->raw_query ? sr->raw_query : "",
        sr->raw_query ? "&" : "", res->auth_query, sr->header_lines, sr->body);
  } else {
    GString *s = g_string_new (sr->head);
    guint i;

    for (i = 0; i < res->headers->len; i++) {
      CpAwsHttpHeader *h = g_ptr_array_index (res->headers, i);

      g_string_append_printf (s, "\n%s:%s", h->name, h->value);
    }
    g_string_append_printf (s, "\n\n%s", sr->body);
    mine = g_string_free (s, FALSE);
  }
  g_assert_cmpstr (mine, ==, sreq);
}

/* ---- original aws4_testsuite ---- */

static void
test_aws4_case (gconstpointer data)
{
  const gchar *dir = data;
  g_autofree gchar *base = g_path_get_basename (dir);
  g_autofree gchar *f_req = g_strconcat (base, ".req", NULL);
  g_autofree gchar *f_creq = g_strconcat (base, ".creq", NULL);
  g_autofree gchar *f_sts = g_strconcat (base, ".sts", NULL);
  g_autofree gchar *f_authz = g_strconcat (base, ".authz", NULL);
  g_autofree gchar *req_text = read_text (dir, f_req);
  g_autofree gchar *creq = read_text (dir, f_creq);
  g_autofree gchar *sts = read_text (dir, f_sts);
  g_autofree gchar *authz = read_trimmed (dir, f_authz);
  g_autoptr (SuiteRequest) sr = parse_suite_request (req_text);
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *token = NULL;
  const gchar *tok_line;
  CpAwsSigningParams p = {
      .access_key_id = "AKIDEXAMPLE",
      .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      .region = "us-east-1",
      .service = "service",
      .time = iso_to_unix (SUITE_TIME_ISO),
  };

  /* As botocore's harness: the token, when the case signs one, is the one
   * in the expected canonical request (the .req may lack it). */
  tok_line = strstr (creq, "\nx-amz-security-token:");
  if (tok_line != NULL) {
    const gchar *v = tok_line + strlen ("\nx-amz-security-token:");

    token = g_strndup (v, strcspn (v, "\n"));
    p.session_token = token;
  }
  res = cp_aws_sigv4_sign_headers (sr->request, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->canonical_request, ==, creq);
  g_assert_cmpstr (res->string_to_sign, ==, sts);
  g_assert_cmpstr (res->authorization, ==, authz);
}

/* ---- S3 documentation examples ---- */

static JsonObject *
vectors_member (JsonNode *root, const gchar *name)
{
  JsonObject *o =
      json_object_get_object_member (json_node_get_object (root), name);

  g_assert_nonnull (o);
  return o;
}

static void
s3_docs_params (JsonObject *docs, CpAwsSigningParams *p)
{
  GError *error = NULL;

  p->access_key_id = json_object_get_string_member (docs, "access_key");
  p->secret_access_key = json_object_get_string_member (docs, "secret_key");
  p->region = json_object_get_string_member (docs, "region");
  p->service = json_object_get_string_member (docs, "service");
  g_assert_true (
      cp_aws_sigv4_parse_time (json_object_get_string_member (docs, "amz_date"),
          &p->time, &error));
  g_assert_no_error (error);
}

/* The vector file keeps the headers as prose; the docs' request headers
 * (besides Host and the signer's own) are these. */
typedef struct
{
  const gchar *example;
  const gchar *method;
  const gchar *headers[2][2];
} S3DocsExample;

static const S3DocsExample s3_docs_examples[] = {
    {"get_object_range", "GET", {{"Range", "bytes=0-9"}}},
    {"put_object", "PUT",
        {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
            {"x-amz-storage-class", "REDUCED_REDUNDANCY"}}},
    {"get_bucket_lifecycle", "GET", {{NULL}}},
    {"list_objects", "GET", {{NULL}}},
};

static void
test_s3_docs_example (gconstpointer data)
{
  const S3DocsExample *ex = data;
  g_autofree gchar *dir = g_build_filename (conformance_dir, "sigv4", NULL);
  g_autoptr (JsonNode) root = read_json (dir, "streaming-and-s3-vectors.json");
  JsonObject *docs = vectors_member (root, "s3_docs_examples");
  JsonObject *o = json_object_get_object_member (docs, ex->example);
  const gchar *path_note = json_object_get_string_member (o, "path");
  g_autofree gchar *path = g_strndup (path_note, strcspn (path_note, " "));
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new (ex->method, path);
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  CpAwsSigningParams p = {0};
  const gchar *body;
  guint i;

  s3_docs_params (docs, &p);
  cp_aws_http_request_add_header (req, "Host",
      json_object_get_string_member (docs, "host"));
  for (i = 0; i < G_N_ELEMENTS (ex->headers) && ex->headers[i][0]; i++)
    cp_aws_http_request_add_header (req, ex->headers[i][0], ex->headers[i][1]);
  if (json_object_has_member (o, "query"))
    g_assert_true (cp_aws_http_request_add_query_string (req,
        json_object_get_string_member (o, "query"), &error));
  body = json_object_get_string_member_with_default (o, "body", NULL);
  if (body != NULL)
    cp_aws_http_request_set_payload (req, body, strlen (body));

  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->signature, ==,
      json_object_get_string_member (o, "signature"));
  /* S3 sends and signs x-amz-content-sha256 even for an empty body. */
  g_assert_true (strstr (res->signed_headers, "x-amz-content-sha256"));
  if (strcmp (ex->example, "put_object") == 0) {
    g_assert_true (strstr (res->canonical_request, "\n/test%24file.text\n"));
    g_assert_cmpstr (res->path, ==, "/test%24file.text");
  }
}

static void
test_s3_docs_presigned_get (void)
{
  g_autofree gchar *dir = g_build_filename (conformance_dir, "sigv4", NULL);
  g_autoptr (JsonNode) root = read_json (dir, "streaming-and-s3-vectors.json");
  JsonObject *docs = vectors_member (root, "s3_docs_examples");
  JsonObject *o = json_object_get_object_member (docs, "presigned_get");
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("GET",
      json_object_get_string_member (o, "path"));
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *expect_tail = NULL;
  CpAwsSigningParams p = {0};

  s3_docs_params (docs, &p);
  p.expires =
      g_ascii_strtoll (json_object_get_string_member (o, "X-Amz-Expires"), NULL,
          10);
  cp_aws_http_request_add_header (req, "Host",
      json_object_get_string_member (docs, "host"));
  res = cp_aws_sigv4_presign (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->signature, ==,
      json_object_get_string_member (o, "signature"));
  g_assert_cmpstr (res->signed_headers, ==,
      json_object_get_string_member (o, "X-Amz-SignedHeaders"));
  g_assert_true (g_str_has_suffix (res->canonical_request,
      json_object_get_string_member (o, "payload_hash")));
  expect_tail = g_strconcat ("&X-Amz-Signature=", res->signature, NULL);
  g_assert_true (g_str_has_suffix (res->query_string, expect_tail));
  g_assert_true (g_str_has_prefix (res->query_string,
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
      "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
      "X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders=host&"
      "X-Amz-Expires=86400&"));
}

/* ---- aws-chunked chain ---- */

/* "'a' x 65536" or "(empty, final)", as the vector file writes chunks. */
static GBytes *
chunk_data (const gchar *spec)
{
  gchar fill;
  guint64 n;
  gchar *end = NULL;
  guint8 *buf;

  if (spec[0] == '(')
    return g_bytes_new (NULL, 0);
  g_assert_true (strlen (spec) > 6 && spec[0] == '\'' && spec[2] == '\'');
  g_assert_true (g_str_has_prefix (spec + 3, " x "));
  fill = spec[1];
  n = g_ascii_strtoull (spec + 6, &end, 10);
  g_assert_true (end != NULL && *end == '\0' && n > 0);
  buf = g_malloc (n);
  memset (buf, fill, n);
  return g_bytes_new_take (buf, n);
}

static void
test_aws_chunked_chain (void)
{
  g_autofree gchar *dir = g_build_filename (conformance_dir, "sigv4", NULL);
  g_autoptr (JsonNode) root = read_json (dir, "streaming-and-s3-vectors.json");
  JsonObject *v = vectors_member (root,
      "s3_aws_chunked_STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  JsonObject *rq = json_object_get_object_member (v, "request");
  JsonObject *hdrs = json_object_get_object_member (rq, "headers");
  JsonArray *chunks = json_object_get_array_member (v, "chunks");
  g_autoptr (CpAwsHttpRequest) req = NULL;
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (CpAwsChunkSigner) signer = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) wire = g_byte_array_new ();
  g_autoptr (GList) names = json_object_get_members (hdrs);
  g_autofree gchar *first_head = NULL;
  g_autofree gchar *last = NULL;
  CpAwsSigningParams p = {0};
  guint64 decoded = 0;
  gsize first_len = 0;
  GList *l;
  guint i;

  p.access_key_id = json_object_get_string_member (v, "access_key");
  p.secret_access_key = json_object_get_string_member (v, "secret_key");
  p.region = json_object_get_string_member (v, "region");
  p.service = json_object_get_string_member (v, "service");
  g_assert_true (
      cp_aws_sigv4_parse_time (json_object_get_string_member (v, "amz_date"),
          &p.time, &error));
  req = cp_aws_http_request_new (json_object_get_string_member (rq, "method"),
      json_object_get_string_member (rq, "path"));
  for (l = names; l != NULL; l = l->next)
    cp_aws_http_request_add_header (req, l->data,
        json_object_get_string_member (hdrs, l->data));

  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->signed_headers, ==,
      json_object_get_string_member (v, "signed_headers"));
  g_assert_cmpstr (res->signature, ==,
      json_object_get_string_member (v, "seed_signature"));
  g_assert_true (
      g_str_has_suffix (res->canonical_request, "\n" CP_AWS_STREAMING_PAYLOAD));

  signer = cp_aws_chunk_signer_new (&p, res->signature, &error);
  g_assert_no_error (error);
  for (i = 0; i < json_array_get_length (chunks); i++) {
    JsonObject *ch = json_array_get_object_element (chunks, i);
    g_autoptr (GBytes) data =
        chunk_data (json_object_get_string_member (ch, "data"));
    guint before = wire->len;
    gsize len;
    const guint8 *bytes = g_bytes_get_data (data, &len);
    g_autofree gchar *head = NULL;

    cp_aws_chunk_signer_frame (signer, bytes, len, wire);
    head = g_strdup_printf ("%" G_GSIZE_MODIFIER "x;chunk-signature=%s\r\n",
        len, json_object_get_string_member (ch, "signature"));
    g_assert_cmpuint (wire->len - before, ==, strlen (head) + len + 2);
    g_assert_cmpmem (wire->data + before, strlen (head), head, strlen (head));
    g_assert_cmpmem (wire->data + before + strlen (head), len, bytes, len);
    g_assert_cmpmem (wire->data + wire->len - 2, 2, "\r\n", 2);
    if (i == 0) {
      first_head = g_steal_pointer (&head);
      first_len = len;
    }
    decoded += len;
  }
  g_assert_cmpstr (first_head, ==,
      "10000;chunk-signature="
      "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
  g_assert_cmpuint (decoded, ==,
      g_ascii_strtoull (json_object_get_string_member (hdrs,
                            "x-amz-decoded-content-length"),
          NULL, 10));
  g_assert_cmpuint (wire->len, ==,
      g_ascii_strtoull (json_object_get_string_member (hdrs, "content-length"),
          NULL, 10));
  g_assert_cmpuint (cp_aws_chunked_encoded_length (decoded, first_len), ==,
      wire->len);

  /* A signer seeded with a mid-chain signature continues that chain, so
   * an upload can resume from the last chunk it sent. */
  g_clear_pointer (&signer, cp_aws_chunk_signer_free);
  signer = cp_aws_chunk_signer_new (&p,
      json_object_get_string_member (json_array_get_object_element (chunks, 1),
          "signature"),
      &error);
  g_assert_no_error (error);
  last = cp_aws_chunk_signer_sign (signer, NULL, 0);
  g_assert_cmpstr (last, ==,
      json_object_get_string_member (json_array_get_object_element (chunks, 2),
          "signature"));
}

static void
test_chunked_length (void)
{
  /* One framed chunk: hex(len) + ";chunk-signature=" + 64 + CRLF + data +
   * CRLF; the final empty chunk is 86 bytes. */
  g_assert_cmpuint (cp_aws_chunked_encoded_length (0, 65536), ==, 86);
  g_assert_cmpuint (cp_aws_chunked_encoded_length (1, 65536), ==,
      1 + 17 + 64 + 2 + 1 + 2 + 86);
  g_assert_cmpuint (cp_aws_chunked_encoded_length (65536 * 2, 65536), ==,
      2 * (5 + 17 + 64 + 2 + 65536 + 2) + 86);
  g_assert_cmpuint (cp_aws_chunked_encoded_length (66560, 65536), ==, 66824);
}

/* ---- event-stream seed ---- */

static void
test_event_stream_seed (void)
{
  g_autofree gchar *dir = g_build_filename (conformance_dir, "sigv4", NULL);
  g_autoptr (JsonNode) root = read_json (dir, "streaming-and-s3-vectors.json");
  JsonObject *v =
      vectors_member (root, "event_stream_STREAMING-AWS4-HMAC-SHA256-EVENTS");
  JsonObject *rq = json_object_get_object_member (v, "request");
  JsonObject *hdrs = json_object_get_object_member (rq, "headers");
  g_autoptr (GList) names = json_object_get_members (hdrs);
  g_autoptr (CpAwsHttpRequest) req = NULL;
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  CpAwsSigningParams p = {0};
  GList *l;

  p.access_key_id = json_object_get_string_member (v, "access_key");
  p.secret_access_key = json_object_get_string_member (v, "secret_key");
  p.region = json_object_get_string_member (v, "region");
  p.service = json_object_get_string_member (v, "service");
  g_assert_true (cp_aws_sigv4_parse_time (json_object_get_string_member (hdrs,
                                              "x-amz-date"),
      &p.time, &error));
  req = cp_aws_http_request_new (json_object_get_string_member (rq, "method"),
      json_object_get_string_member (rq, "path"));
  for (l = names; l != NULL; l = l->next)
    cp_aws_http_request_add_header (req, l->data,
        json_object_get_string_member (hdrs, l->data));
  cp_aws_http_request_set_payload_hash (req, CP_AWS_STREAMING_EVENTS);

  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->signature, ==,
      json_object_get_string_member (v, "seed_signature"));
  g_assert_cmpstr (res->authorization, ==,
      json_object_get_string_member (v, "authorization"));
  g_assert_true (
      g_str_has_suffix (res->canonical_request, "\n" CP_AWS_STREAMING_EVENTS));
}

/* ---- rules the suites do not exercise ---- */

static CpAwsSigningParams
example_params (const gchar *service)
{
  CpAwsSigningParams p = {
      .access_key_id = "AKIDEXAMPLE",
      .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      .region = "us-east-1",
      .service = service,
      .time = 1440938160, /* 2015-08-30T12:36:00Z */
      .expires = 3600,
  };
  return p;
}

static gchar *
canonical_line (const gchar *creq, guint n)
{
  g_auto (GStrv) lines = g_strsplit (creq, "\n", -1);

  g_assert_cmpuint (g_strv_length (lines), >, n);
  return g_strdup (lines[n]);
}

static void
test_path_encoding_rules (void)
{
  const gchar *raw = "/a b+1~\xc3\xbc/./x.wav";
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("GET", raw);
  CpAwsSigningParams s3 = example_params ("s3");
  CpAwsSigningParams other = example_params ("bedrock");
  g_autoptr (CpAwsSigV4Result) r1 = NULL;
  g_autoptr (CpAwsSigV4Result) r2 = NULL;
  g_autoptr (CpAwsSigV4Result) r3 = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *uri1 = NULL;
  g_autofree gchar *uri2 = NULL;
  g_autofree gchar *uri3 = NULL;

  cp_aws_http_request_add_header (req, "Host", "example.amazonaws.com");
  /* S3: encoded once, '/' kept, no dot-segment removal. */
  r1 = cp_aws_sigv4_sign_headers (req, &s3, &error);
  g_assert_no_error (error);
  uri1 = canonical_line (r1->canonical_request, 1);
  g_assert_cmpstr (r1->path, ==, "/a%20b%2B1~%C3%BC/./x.wav");
  g_assert_cmpstr (uri1, ==, r1->path);
  /* Other services: normalized, and the wire path encoded again. */
  r2 = cp_aws_sigv4_sign_headers (req, &other, &error);
  g_assert_no_error (error);
  uri2 = canonical_line (r2->canonical_request, 1);
  g_assert_cmpstr (r2->path, ==, "/a%20b%2B1~%C3%BC/./x.wav");
  g_assert_cmpstr (uri2, ==, "/a%2520b%252B1~%25C3%25BC/x.wav");
  /* The same request given as its wire path signs the same. */
  g_free (req->path);
  req->path = g_strdup ("/a%20b%2B1~%C3%BC/./x.wav");
  req->path_encoded = TRUE;
  r3 = cp_aws_sigv4_sign_headers (req, &other, &error);
  g_assert_no_error (error);
  uri3 = canonical_line (r3->canonical_request, 1);
  g_assert_cmpstr (uri3, ==, uri2);
  g_assert_cmpstr (r3->signature, ==, r2->signature);
}

static void
test_model_id_path (void)
{
  /* Bedrock model ids hold ':'; the SDKs send %3A and sign %253A. */
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("POST",
      "/model/amazon.nova-2-sonic-v1:0/invoke-with-bidirectional-stream");
  CpAwsSigningParams p = example_params ("bedrock");
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *uri = NULL;

  cp_aws_http_request_add_header (req, "host",
      "bedrock-runtime.us-east-1.amazonaws.com");
  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->path, ==,
      "/model/amazon.nova-2-sonic-v1%3A0/invoke-with-bidirectional-stream");
  uri = canonical_line (res->canonical_request, 1);
  g_assert_cmpstr (uri, ==,
      "/model/amazon.nova-2-sonic-v1%253A0/invoke-with-bidirectional-stream");
}

static void
test_query_rules (void)
{
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("GET", "/");
  CpAwsSigningParams p = example_params ("s3");
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *cq = NULL;

  cp_aws_http_request_add_header (req, "Host", "b.s3.amazonaws.com");
  g_assert_true (cp_aws_http_request_add_query_string (req,
      "uploads&prefix=a+b%2Fc&b=2&b=1&=x", &error));
  g_assert_no_error (error);
  cp_aws_http_request_add_query (req, "k y", NULL);
  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  cq = canonical_line (res->canonical_request, 2);
  g_assert_cmpstr (cq, ==, "=x&b=1&b=2&k%20y=&prefix=a%2Bb%2Fc&uploads=");
  g_assert_cmpstr (res->query_string, ==,
      "uploads&prefix=a%2Bb%2Fc&b=2&b=1&=x&k%20y");
  g_assert_null (res->auth_query);
}

static void
test_headers_added (void)
{
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("PUT", "/k");
  CpAwsSigningParams p = example_params ("s3");
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  CpAwsHttpHeader *h;

  cp_aws_http_request_add_header (req, "Host", "b.s3.amazonaws.com");
  /* Replaced or never signed: */
  cp_aws_http_request_add_header (req, "X-Amz-Date", "19990101T000000Z");
  cp_aws_http_request_add_header (req, "Authorization", "stale");
  cp_aws_http_request_add_header (req, "User-Agent", "callpipe/0.1");
  cp_aws_http_request_set_payload (req, "hi", 2);
  p.session_token = "tok";
  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->signed_headers, ==,
      "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  g_assert_cmpuint (res->headers->len, ==, 4);
  h = g_ptr_array_index (res->headers, 0);
  g_assert_cmpstr (h->name, ==, "X-Amz-Security-Token");
  g_assert_cmpstr (h->value, ==, "tok");
  h = g_ptr_array_index (res->headers, 1);
  g_assert_cmpstr (h->value, ==, "20150830T123600Z");
  h = g_ptr_array_index (res->headers, 2);
  g_assert_cmpstr (h->name, ==, "x-amz-content-sha256");
  g_assert_cmpstr (h->value, ==,
      "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4");
  h = g_ptr_array_index (res->headers, 3);
  g_assert_cmpstr (h->name, ==, "Authorization");
  g_assert_true (g_str_has_suffix (h->value, res->signature));

  /* Default rules leave x-amz-content-sha256 out unless asked. */
  p.service = "kinesisvideo";
  g_clear_pointer (&res, cp_aws_sigv4_result_free);
  res = cp_aws_sigv4_sign_headers (req, &p, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->signed_headers, ==,
      "host;x-amz-date;x-amz-security-token");
  g_assert_cmpuint (res->headers->len, ==, 3);
}

static void
test_presign_token (void)
{
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("GET", "/k");
  CpAwsSigningParams p = example_params ("s3");
  g_autoptr (CpAwsSigV4Result) res = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *cq = NULL;

  cp_aws_http_request_add_header (req, "Host", "b.s3.amazonaws.com");
  p.session_token = "a/b+c=";
  res = cp_aws_sigv4_presign (req, &p, &error);
  g_assert_no_error (error);
  cq = canonical_line (res->canonical_request, 2);
  g_assert_true (strstr (cq, "&X-Amz-Security-Token=a%2Fb%2Bc%3D&"));
  g_assert_true (strstr (res->query_string,
      "&X-Amz-Security-Token=a%2Fb%2Bc%3D&X-Amz-Signature="));
  g_assert_true (
      g_str_has_suffix (res->canonical_request, "\n" CP_AWS_UNSIGNED_PAYLOAD));
}

static void
test_time_format (void)
{
  gint64 t = 0;
  g_autofree gchar *s = cp_aws_sigv4_format_time (1369353600);
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (s, ==, "20130524T000000Z");
  g_assert_true (cp_aws_sigv4_parse_time ("20130524T000000Z", &t, &error));
  g_assert_no_error (error);
  g_assert_cmpint (t, ==, 1369353600);
  g_assert_null (cp_aws_sigv4_format_time (G_GINT64_CONSTANT (1) << 50));
}

/* ---- errors ---- */

static void
expect_sign_error (const CpAwsHttpRequest *req, const CpAwsSigningParams *p,
    gboolean presign, gint code, const gchar *needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CpAwsSigV4Result) res = presign
      ? cp_aws_sigv4_presign (req, p, &error)
      : cp_aws_sigv4_sign_headers (req, p, &error);

  g_assert_null (res);
  g_assert_error (error, CP_AWS_SIGV4_ERROR, code);
  if (strstr (error->message, needle) == NULL)
    g_error ("error \"%s\" does not mention \"%s\"", error->message, needle);
}

static void
test_errors_params (void)
{
  g_autoptr (CpAwsHttpRequest) req = cp_aws_http_request_new ("GET", "/");
  CpAwsSigningParams p;

  cp_aws_http_request_add_header (req, "Host", "example.amazonaws.com");
  p = example_params ("s3");
  p.access_key_id = NULL;
  expect_sign_error (req, &p, FALSE, CP_AWS_SIGV4_ERROR_MISSING, "access key");
  p = example_params ("s3");
  p.secret_access_key = "";
  expect_sign_error (req, &p, FALSE, CP_AWS_SIGV4_ERROR_MISSING, "secret");
  p = example_params ("s3");
  p.region = NULL;
  expect_sign_error (req, &p, TRUE, CP_AWS_SIGV4_ERROR_MISSING, "region");
  p = example_params ("s3");
  p.service = "";
  expect_sign_error (req, &p, FALSE, CP_AWS_SIGV4_ERROR_MISSING, "service");
  p = example_params ("s3");
  p.expires = 0;
  expect_sign_error (req, &p, TRUE, CP_AWS_SIGV4_ERROR_INVALID, "expiry");
  p.expires = CP_AWS_PRESIGN_MAX_EXPIRES + 1;
  expect_sign_error (req, &p, TRUE, CP_AWS_SIGV4_ERROR_INVALID, "604801");
  p = example_params ("s3");
  p.time = G_GINT64_CONSTANT (1) << 50;
  expect_sign_error (req, &p, FALSE, CP_AWS_SIGV4_ERROR_INVALID, "time");
}

static void
test_errors_request (void)
{
  g_autoptr (CpAwsHttpRequest) no_host = cp_aws_http_request_new ("GET", "/");
  g_autoptr (CpAwsHttpRequest) relative =
      cp_aws_http_request_new ("GET", "key");
  g_autoptr (CpAwsHttpRequest) q = cp_aws_http_request_new ("GET", "/");
  g_autoptr (GError) error = NULL;
  CpAwsSigningParams p = example_params ("service");

  expect_sign_error (no_host, &p, FALSE, CP_AWS_SIGV4_ERROR_MISSING, "Host");
  cp_aws_http_request_add_header (relative, "Host", "h");
  expect_sign_error (relative, &p, TRUE, CP_AWS_SIGV4_ERROR_INVALID, "'/'");

  cp_aws_http_request_add_query (q, "keep", "1");
  g_assert_false (
      cp_aws_http_request_add_query_string (q, "a=1&b=%zz", &error));
  g_assert_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID);
  g_assert_true (strstr (error->message, "%zz"));
  g_assert_cmpuint (q->query->len, ==, 1);
  g_clear_error (&error);
  g_assert_false (cp_aws_http_request_add_query_string (q, "a=%4", &error));
  g_assert_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID);
}

static void
test_errors_time_and_chain (void)
{
  static const gchar *const bad[] = {
      "2013-05-24",
      "20130524T000000",
      "20130524t000000Z",
      "2013052AT000000Z",
      "20130231T000000Z",
      "20130524T240000Z",
      "20130524T006000Z",
      "",
      "20130524T000000Z ",
  };
  CpAwsSigningParams p = example_params ("s3");
  g_autoptr (CpAwsChunkSigner) signer = NULL;
  g_autoptr (GError) error = NULL;
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    gint64 t = -1;

    g_assert_false (cp_aws_sigv4_parse_time (bad[i], &t, &error));
    g_assert_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID);
    g_assert_true (strstr (error->message, "date"));
    g_assert_cmpint (t, ==, -1);
    g_clear_error (&error);
  }
  signer = cp_aws_chunk_signer_new (&p, "not-a-signature", &error);
  g_assert_null (signer);
  g_assert_error (error, CP_AWS_SIGV4_ERROR, CP_AWS_SIGV4_ERROR_INVALID);
  g_assert_true (strstr (error->message, "seed signature"));
}

/* ---- registration ---- */

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

static void
add_crt_cases (GPtrArray *keep)
{
  g_autofree gchar *root =
      g_build_filename (conformance_dir, "sigv4", "aws-c-auth-v4", NULL);
  g_autoptr (GDir) dir = g_dir_open (root, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  guint i;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (i = 0; i < names->len; i++) {
    const gchar *n = g_ptr_array_index (names, i);
    gint q;

    for (q = 0; q < 2; q++) {
      CrtCase *c = g_new0 (CrtCase, 1);
      g_autofree gchar *path = NULL;

      c->dir = g_build_filename (root, n, NULL);
      c->query = q;
      g_ptr_array_add (keep, c);
      path = g_strdup_printf ("/aws/sigv4/aws-c-auth/%s/%s",
          q ? "query" : "header", n);
      g_test_add_data_func (path, c, test_crt_case);
    }
  }
}

static void
add_aws4_cases (const gchar *root, const gchar *rel, GPtrArray *dirs)
{
  g_autofree gchar *here = g_build_filename (root, rel, NULL);
  g_autofree gchar *base = g_path_get_basename (here);
  g_autofree gchar *req =
      g_strconcat (here, G_DIR_SEPARATOR_S, base, ".req", NULL);
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  guint i;

  if (rel[0] != '\0' && g_file_test (req, G_FILE_TEST_IS_REGULAR)) {
    g_autofree gchar *path =
        g_strconcat ("/aws/sigv4/aws4-testsuite/", rel, NULL);

    g_ptr_array_add (dirs, g_strdup (here));
    g_test_add_data_func (path, g_ptr_array_index (dirs, dirs->len - 1),
        test_aws4_case);
    return;
  }
  dir = g_dir_open (here, 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (i = 0; i < names->len; i++) {
    const gchar *n = g_ptr_array_index (names, i);
    g_autofree gchar *child = g_build_filename (here, n, NULL);
    g_autofree gchar *child_rel = NULL;

    if (!g_file_test (child, G_FILE_TEST_IS_DIR))
      continue;
    child_rel = rel[0] ? g_strconcat (rel, "/", n, NULL) : g_strdup (n);
    add_aws4_cases (root, child_rel, dirs);
  }
}

int
main (int argc, char **argv)
{
  const gchar *shared = g_getenv ("CALLPIPE_SHARED_DIR");
  g_autoptr (GPtrArray) crt = g_ptr_array_new_with_free_func (crt_case_free);
  g_autoptr (GPtrArray) aws4 = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *sigv4_dir = NULL;
  gsize i;
  int ret;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/aws/sigv4/rules/path-encoding", test_path_encoding_rules);
  g_test_add_func ("/aws/sigv4/rules/model-id-path", test_model_id_path);
  g_test_add_func ("/aws/sigv4/rules/query", test_query_rules);
  g_test_add_func ("/aws/sigv4/rules/headers-added", test_headers_added);
  g_test_add_func ("/aws/sigv4/rules/presign-token", test_presign_token);
  g_test_add_func ("/aws/sigv4/rules/time-format", test_time_format);
  g_test_add_func ("/aws/sigv4/chunked/length", test_chunked_length);
  g_test_add_func ("/aws/sigv4/errors/params", test_errors_params);
  g_test_add_func ("/aws/sigv4/errors/request", test_errors_request);
  g_test_add_func ("/aws/sigv4/errors/time-and-chain",
      test_errors_time_and_chain);

  if (shared != NULL) {
    conformance_dir = g_build_filename (shared, "conformance", NULL);
    sigv4_dir = g_build_filename (conformance_dir, "sigv4", NULL);
  }
  if (sigv4_dir == NULL || !g_file_test (sigv4_dir, G_FILE_TEST_IS_DIR)) {
    g_test_add_func ("/aws/sigv4/conformance", skip_without_data);
  } else {
    g_autofree gchar *aws4_root =
        g_build_filename (sigv4_dir, "aws4-testsuite", NULL);

    add_crt_cases (crt);
    add_aws4_cases (aws4_root, "", aws4);
    for (i = 0; i < G_N_ELEMENTS (s3_docs_examples); i++) {
      g_autofree gchar *path = g_strdup_printf ("/aws/sigv4/s3-docs/%s",
          s3_docs_examples[i].example);

      g_test_add_data_func (path, &s3_docs_examples[i], test_s3_docs_example);
    }
    g_test_add_func ("/aws/sigv4/s3-docs/presigned_get",
        test_s3_docs_presigned_get);
    g_test_add_func ("/aws/sigv4/chunked/s3-docs-chain",
        test_aws_chunked_chain);
    g_test_add_func ("/aws/sigv4/event-stream/seed", test_event_stream_seed);
  }
  ret = g_test_run ();
  g_free (conformance_dir);
  return ret;
}

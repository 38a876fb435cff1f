/* Unit tests of the S3 REST client's protocol helpers: locations, ETags,
 * XML bodies, metadata rules, addressing, and a request that cannot
 * connect. No network peer. */
#include "s3client.h"

#include <gio/gio.h>
#include <string.h>

static void
test_location_parse (void)
{
  g_auto (CpS3Location) loc = {0};
  const gchar *bad[] = {"s3://", "s3://bucket", "s3://bucket/", "s3:///key",
      "http://bucket/key", "s3://bu cket/key", "", NULL};
  guint i;

  g_assert_true (
      cp_s3_location_parse ("s3://my-bucket/calls/a b+c.wav", &loc, NULL));
  g_assert_cmpstr (loc.bucket, ==, "my-bucket");
  g_assert_cmpstr (loc.key, ==, "calls/a b+c.wav");
  cp_s3_location_clear (&loc);

  for (i = 0; bad[i]; i++) {
    g_autoptr (GError) error = NULL;

    g_assert_false (cp_s3_location_parse (bad[i], &loc, &error));
    g_assert_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_LOCATION);
    g_assert_null (loc.bucket);
  }
}

static void
md5_of (const gchar *s, guint8 out[CP_S3_MD5_LEN])
{
  GChecksum *sum = g_checksum_new (G_CHECKSUM_MD5);
  gsize len = CP_S3_MD5_LEN;

  g_checksum_update (sum, (const guchar *) s, strlen (s));
  g_checksum_get_digest (sum, out, &len);
  g_checksum_free (sum);
}

static void
test_etags (void)
{
  g_autoptr (GByteArray) md5s = g_byte_array_new ();
  g_autofree gchar *part = NULL;
  g_autofree gchar *whole = NULL;
  guint8 md5[CP_S3_MD5_LEN];

  md5_of ("part one", md5);
  part = cp_s3_part_etag (md5);
  g_assert_cmpstr (part, ==, "\"3303e12af474ca11d85ed2966a932992\"");
  g_byte_array_append (md5s, md5, CP_S3_MD5_LEN);
  md5_of ("part two", md5);
  g_byte_array_append (md5s, md5, CP_S3_MD5_LEN);
  /* hex(md5(md5("part one") || md5("part two"))), as S3 computes it. */
  whole = cp_s3_multipart_etag (md5s);
  g_assert_cmpstr (whole, ==, "\"0732917abc3288784e318ac0aab1757a-2\"");
}

static void
test_limits (void)
{
  /* The default 8 MiB parts hold 78.125 GiB; 5 MiB parts 48.8 GiB. */
  g_assert_cmpuint (cp_s3_max_object_size (8 * 1024 * 1024), ==,
      G_GUINT64_CONSTANT (83886080000));
  g_assert_cmpuint (cp_s3_max_object_size (CP_S3_MIN_PART_SIZE), ==,
      G_GUINT64_CONSTANT (52428800000));
}

static void
test_xml_parse (void)
{
  const gchar *error_xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<Error><Code>NoSuchKey</Code><Message>The specified key does not "
      "exist.</Message><Key>a &amp; b</Key></Error>";
  const gchar *initiate =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/"
      "2006-03-01/\"><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";
  const gchar *complete =
      "<CompleteMultipartUploadResult><Location>x</Location>"
      "<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
      "</CompleteMultipartUploadResult>";
  g_autofree gchar *root = NULL;
  g_autofree gchar *value = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (cp_s3_xml_parse (error_xml, strlen (error_xml), "Code", &root,
      &value, NULL));
  g_assert_cmpstr (root, ==, "Error");
  g_assert_cmpstr (value, ==, "NoSuchKey");
  g_clear_pointer (&root, g_free);
  g_clear_pointer (&value, g_free);
  g_assert_true (cp_s3_xml_parse (error_xml, strlen (error_xml), "Key", NULL,
      &value, NULL));
  g_assert_cmpstr (value, ==, "a & b");
  g_clear_pointer (&value, g_free);

  g_assert_true (cp_s3_xml_parse (initiate, strlen (initiate), "UploadId",
      &root, &value, NULL));
  g_assert_cmpstr (root, ==, "InitiateMultipartUploadResult");
  g_assert_cmpstr (value, ==, "VXBsb2FkIElE");
  g_clear_pointer (&root, g_free);
  g_clear_pointer (&value, g_free);

  g_assert_true (cp_s3_xml_parse (complete, strlen (complete), "ETag", NULL,
      &value, NULL));
  g_assert_cmpstr (value, ==, "\"3858f62230ac3c915f300c664312c11f-9\"");
  g_clear_pointer (&value, g_free);

  /* Absent field, truncated and empty documents. */
  g_assert_true (cp_s3_xml_parse (initiate, strlen (initiate), "Missing", NULL,
      &value, NULL));
  g_assert_null (value);
  g_assert_false (cp_s3_xml_parse (initiate, strlen (initiate) - 10, "UploadId",
      NULL, &value, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_false (cp_s3_xml_parse ("", 0, "Code", NULL, &value, &error));
  g_assert_nonnull (error);
}

static void
test_complete_body (void)
{
  g_autoptr (GPtrArray) etags = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *body = NULL;
  g_autofree gchar *value = NULL;

  g_ptr_array_add (etags, g_strdup ("\"aaa\""));
  g_ptr_array_add (etags, g_strdup ("\"bbb\""));
  body = cp_s3_complete_request_body (etags);
  g_assert_nonnull (strstr (body,
      "<Part><PartNumber>1</PartNumber>"
      "<ETag>&quot;aaa&quot;</ETag></Part><Part><PartNumber>2"
      "</PartNumber><ETag>&quot;bbb&quot;</ETag></Part>"));
  g_assert_true (g_str_has_prefix (body, "<CompleteMultipartUpload "));
  /* It is well-formed XML. */
  g_assert_true (
      cp_s3_xml_parse (body, strlen (body), "ETag", NULL, &value, NULL));
  g_assert_cmpstr (value, ==, "\"aaa\"");
}

/* Parts over TLS go unsigned (Content-MD5 guards them); over plain http
 * the body's SHA-256 is signed, as are bodies without a Content-MD5. */
static void
test_payload_hash (void)
{
  g_autoptr (GBytes) body = g_bytes_new_static ("abc", 3);
  g_autoptr (CpHttpHeaders) md5 = cp_http_headers_new ();
  g_autoptr (CpHttpHeaders) plain = cp_http_headers_new ();
  const gchar *abc_sha256 =
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const gchar *empty_sha256 =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  gchar *hash;

  cp_http_headers_add (md5, "content-md5", "kAFQmDzST7DWlj99KOF/cg==");
  cp_http_headers_add (plain, "Content-Type", "application/xml");

  hash = cp_s3_payload_hash ("https", md5, body);
  g_assert_cmpstr (hash, ==, "UNSIGNED-PAYLOAD");
  g_free (hash);
  hash = cp_s3_payload_hash ("http", md5, body);
  g_assert_cmpstr (hash, ==, abc_sha256);
  g_free (hash);
  hash = cp_s3_payload_hash ("https", plain, body);
  g_assert_cmpstr (hash, ==, abc_sha256);
  g_free (hash);
  hash = cp_s3_payload_hash ("https", NULL, body);
  g_assert_cmpstr (hash, ==, abc_sha256);
  g_free (hash);
  hash = cp_s3_payload_hash ("https", md5, NULL);
  g_assert_cmpstr (hash, ==, empty_sha256);
  g_free (hash);
}

static void
test_metadata_validate (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (cp_s3_metadata_validate ("contact-id", "abc 123/x", NULL));
  g_assert_false (cp_s3_metadata_validate ("bad name", "x", &error));
  g_assert_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (cp_s3_metadata_validate ("n", "line\nbreak", &error));
  g_assert_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (cp_s3_metadata_validate ("n", "caf\xc3\xa9", &error));
  g_assert_error (error, CP_S3_ERROR, CP_S3_ERROR_INVALID_ARGUMENT);
}

static gchar *
url_for (const gchar *endpoint, const gchar *region, gint path_style,
    const gchar *uri)
{
  g_auto (CpS3Location) loc = {0};
  g_autoptr (CpS3Client) client = NULL;
  CpS3ClientConfig config = {0};

  config.endpoint = endpoint;
  config.region = region;
  config.access_key = "AKIDEXAMPLE";
  config.secret_key = "secret";
  if (path_style >= 0) {
    config.force_path_style = path_style;
    config.force_path_style_set = TRUE;
  }
  g_assert_true (cp_s3_location_parse (uri, &loc, NULL));
  client = cp_s3_client_new (&config, NULL);
  g_assert_nonnull (client);
  return cp_s3_client_object_url (client, &loc);
}

static void
test_addressing (void)
{
  gchar *url;

  g_unsetenv ("AWS_ENDPOINT_URL");
  g_unsetenv ("AWS_ENDPOINT_URL_S3");

  /* AWS: virtual-hosted, the key encoded once with '/' kept. */
  url = url_for (NULL, "eu-west-1", -1, "s3://rec/calls/a b+c.wav");
  g_assert_cmpstr (url, ==,
      "https://rec.s3.eu-west-1.amazonaws.com/calls/a%20b%2Bc.wav");
  g_free (url);
  /* A dotted bucket cannot be a host under the wildcard certificate. */
  url = url_for (NULL, "eu-west-1", -1, "s3://my.rec/k");
  g_assert_cmpstr (url, ==, "https://s3.eu-west-1.amazonaws.com/my.rec/k");
  g_free (url);
  url = url_for (NULL, "us-east-1", TRUE, "s3://rec/k");
  g_assert_cmpstr (url, ==, "https://s3.us-east-1.amazonaws.com/rec/k");
  g_free (url);
  /* An endpoint means path style, unless told otherwise. */
  url = url_for ("http://127.0.0.1:9000", "us-east-1", -1, "s3://rec/k");
  g_assert_cmpstr (url, ==, "http://127.0.0.1:9000/rec/k");
  g_free (url);
  url = url_for ("https://minio.example:443/base/", NULL, -1, "s3://rec/k");
  g_assert_cmpstr (url, ==, "https://minio.example/base/rec/k");
  g_free (url);
  url = url_for ("http://s3.local:8080", NULL, FALSE, "s3://rec/k");
  g_assert_cmpstr (url, ==, "http://rec.s3.local:8080/k");
  g_free (url);
  /* AWS_ENDPOINT_URL_S3 counts as an endpoint. */
  g_setenv ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9999", TRUE);
  url = url_for (NULL, "us-east-1", -1, "s3://rec/k");
  g_assert_cmpstr (url, ==, "http://127.0.0.1:9999/rec/k");
  g_free (url);
  g_unsetenv ("AWS_ENDPOINT_URL_S3");
}

static guint16
closed_port (void)
{
  g_autoptr (GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4,
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo =
      g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (sock, any, FALSE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* A refused connection is a transport error, retried, then reported. */
static void
test_unreachable (void)
{
  g_autofree gchar *endpoint =
      g_strdup_printf ("http://127.0.0.1:%u", closed_port ());
  g_auto (CpS3Location) loc = {0};
  g_autoptr (CpS3Client) client = NULL;
  g_autoptr (GError) error = NULL;
  CpS3ClientConfig config = {0};
  guint64 size;

  config.endpoint = endpoint;
  config.access_key = "AKIDEXAMPLE";
  config.secret_key = "secret";
  config.max_attempts = 1;
  client = cp_s3_client_new (&config, NULL);
  g_assert_true (cp_s3_location_parse ("s3://b/k", &loc, NULL));
  g_assert_false (
      cp_s3_client_head_object (client, &loc, &size, NULL, NULL, &error));
  g_assert_error (error, CP_HTTP_ERROR, CP_HTTP_ERROR_CONNECT);
  g_assert_nonnull (strstr (error->message, "HeadObject of s3://b/k"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/s3client/location", test_location_parse);
  g_test_add_func ("/s3client/etags", test_etags);
  g_test_add_func ("/s3client/limits", test_limits);
  g_test_add_func ("/s3client/xml", test_xml_parse);
  g_test_add_func ("/s3client/complete-body", test_complete_body);
  g_test_add_func ("/s3client/metadata", test_metadata_validate);
  g_test_add_func ("/s3client/payload-hash", test_payload_hash);
  g_test_add_func ("/s3client/addressing", test_addressing);
  g_test_add_func ("/s3client/unreachable", test_unreachable);
  return g_test_run ();
}

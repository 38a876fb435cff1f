/* Unit tests for the SigV4 crypto helpers. */
#include "aws/awscrypto.h"

#include <string.h>

static void
test_sha256_empty (void)
{
  g_autofree gchar *hex = cp_aws_sha256_hex ("", 0);

  g_assert_cmpstr (hex, ==,
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* The signing-key example from the AWS General Reference. */
static void
test_signing_key_doc_example (void)
{
  guint8 key[CP_AWS_SHA256_LEN];
  g_autofree gchar *hex = NULL;

  cp_aws_derive_signing_key ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      "20120215", "us-east-1", "iam", key);
  hex = cp_aws_hex_encode (key, sizeof (key));
  g_assert_cmpstr (hex, ==,
      "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

/* RFC 4231 test case 2. */
static void
test_hmac_rfc4231 (void)
{
  guint8 mac[CP_AWS_SHA256_LEN];
  g_autofree gchar *hex = NULL;
  const gchar *data = "what do ya want for nothing?";

  cp_aws_hmac_sha256 ("Jefe", 4, data, strlen (data), mac);
  hex = cp_aws_hex_encode (mac, sizeof (mac));
  g_assert_cmpstr (hex, ==,
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/aws/crypto/sha256-empty", test_sha256_empty);
  g_test_add_func ("/aws/crypto/signing-key", test_signing_key_doc_example);
  g_test_add_func ("/aws/crypto/hmac-rfc4231", test_hmac_rfc4231);
  return g_test_run ();
}

/* Unit tests for the credential provider chain (gst/aws/credentials.c),
 * against an in-process HTTP peer on 127.0.0.1 that plays the ECS/EKS
 * container endpoint and the EC2 instance metadata service (IMDSv2). */
#include "aws/credentials.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#define IMDS_TOKEN "imds-session-token-1234"
#define IMDS_ROLE "callpipe-role"
#define T0 G_GINT64_CONSTANT (1800000000)

typedef enum
{
  PEER_OK,
  PEER_GARBAGE,
  PEER_ERROR,
  PEER_HANG,
  PEER_BODY, /* answer 200 with Peer.body */
} PeerMode;

typedef struct
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  guint port;

  GMutex lock;
  GCond cond;
  gboolean ready;
  /* behaviour */
  PeerMode mode;
  gint64 expiration; /* unix seconds; 0 = no Expiration field */
  gboolean has_role;
  const gchar *body;
  /* observations */
  guint serial; /* credential documents served */
  guint token_requests;
  guint requests; /* every request */
  gchar *last_auth;
  gchar *last_path;
} Peer;

typedef struct
{
  gchar *home;
  Peer peer;
} Fixture;

static gint64 fake_now_us;

static gint64
fake_clock (gpointer user_data)
{
  return fake_now_us;
}

static void
set_now (gint64 seconds)
{
  fake_now_us = seconds * G_USEC_PER_SEC;
}

static void
reply (SoupServerMessage *msg, guint status, const gchar *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
      body, strlen (body));
}

/* Under peer->lock. */
static void
reply_credentials (Peer *peer, SoupServerMessage *msg)
{
  g_autofree gchar *body = NULL;
  g_autofree gchar *expiration = NULL;

  switch (peer->mode) {
    case PEER_GARBAGE:
      reply (msg, 200, "{\"AccessKeyId\": \"AKIA\", not json");
      return;
    case PEER_ERROR:
      reply (msg, 500, "{\"message\": \"internal error\"}");
      return;
    case PEER_HANG:
      soup_server_message_pause (msg);
      return;
    case PEER_BODY:
      reply (msg, 200, peer->body);
      return;
    case PEER_OK:
      break;
  }
  peer->serial++;
  if (peer->expiration != 0) {
    g_autoptr (GDateTime) when =
        g_date_time_new_from_unix_utc (peer->expiration);

    expiration = g_date_time_format_iso8601 (when);
  }
  body = g_strdup_printf ("{\"Code\": \"Success\", \"Type\": \"AWS-HMAC\", "
                          "\"AccessKeyId\": \"ASIAPEER%u\", "
                          "\"SecretAccessKey\": \"peer-secret-%u\", "
                          "\"Token\": \"peer-token-%u\"%s%s%s}",
      peer->serial, peer->serial, peer->serial,
      expiration ? ", \"Expiration\": \"" : "", expiration ? expiration : "",
      expiration ? "\"" : "");
  reply (msg, 200, body);
}

static gboolean
has_imds_token (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  return g_strcmp0 (soup_message_headers_get_one (headers,
                        "X-aws-ec2-metadata-token"),
             IMDS_TOKEN)
      == 0;
}

static void
on_request (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  Peer *peer = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *method = soup_server_message_get_method (msg);

  g_mutex_lock (&peer->lock);
  peer->requests++;
  g_free (peer->last_path);
  peer->last_path = g_strdup (path);
  g_free (peer->last_auth);
  peer->last_auth =
      g_strdup (soup_message_headers_get_one (headers, "Authorization"));

  if (g_str_has_prefix (path, "/creds")) {
    reply_credentials (peer, msg);
  } else if (strcmp (path, "/latest/api/token") == 0) {
    /* IMDSv2: a PUT with a TTL, nothing else. */
    if (strcmp (method, "PUT") != 0
        || soup_message_headers_get_one (headers,
               "X-aws-ec2-metadata-token-ttl-seconds")
            == NULL) {
      reply (msg, 400, "");
    } else {
      peer->token_requests++;
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
          IMDS_TOKEN, strlen (IMDS_TOKEN));
    }
  } else if (!has_imds_token (msg)) {
    reply (msg, 401, "");
  } else if (strcmp (path, "/latest/meta-data/iam/security-credentials/")
      == 0) {
    if (peer->has_role) {
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
          IMDS_ROLE "\n", strlen (IMDS_ROLE) + 1);
    } else {
      reply (msg, 404, "");
    }
  } else if (strcmp (path,
                 "/latest/meta-data/iam/security-credentials/" IMDS_ROLE)
      == 0) {
    reply_credentials (peer, msg);
  } else {
    reply (msg, 404, "");
  }
  g_mutex_unlock (&peer->lock);
}

static gpointer
peer_thread (gpointer data)
{
  Peer *peer = data;
  g_autoptr (SoupServer) server = NULL;
  g_autoptr (GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (peer->context);
  server = soup_server_new (NULL, NULL);
  soup_server_add_handler (server, NULL, on_request, peer, NULL);
  soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  g_assert_nonnull (uris);

  g_mutex_lock (&peer->lock);
  peer->port = g_uri_get_port (uris->data);
  peer->ready = TRUE;
  g_cond_signal (&peer->cond);
  g_mutex_unlock (&peer->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (peer->loop);
  soup_server_disconnect (server);
  g_clear_object (&server);
  while (g_main_context_iteration (peer->context, FALSE))
    ;
  g_main_context_pop_thread_default (peer->context);
  return NULL;
}

static void
peer_start (Peer *peer)
{
  g_mutex_init (&peer->lock);
  g_cond_init (&peer->cond);
  peer->mode = PEER_OK;
  peer->has_role = TRUE;
  peer->context = g_main_context_new ();
  peer->loop = g_main_loop_new (peer->context, FALSE);
  peer->thread = g_thread_new ("peer", peer_thread, peer);
  g_mutex_lock (&peer->lock);
  while (!peer->ready)
    g_cond_wait (&peer->cond, &peer->lock);
  g_mutex_unlock (&peer->lock);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
peer_stop (Peer *peer)
{
  g_main_context_invoke (peer->context, quit_loop, peer->loop);
  g_thread_join (peer->thread);
  g_main_loop_unref (peer->loop);
  g_main_context_unref (peer->context);
  g_free (peer->last_auth);
  g_free (peer->last_path);
  g_mutex_clear (&peer->lock);
  g_cond_clear (&peer->cond);
}

static void
peer_set (Peer *peer, PeerMode mode, gint64 expiration)
{
  g_mutex_lock (&peer->lock);
  peer->mode = mode;
  peer->expiration = expiration;
  g_mutex_unlock (&peer->lock);
}

static guint
peer_requests (Peer *peer)
{
  guint requests;

  g_mutex_lock (&peer->lock);
  requests = peer->requests;
  g_mutex_unlock (&peer->lock);
  return requests;
}

static gchar *
peer_url (Peer *peer, const gchar *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", peer->port, path);
}

/* A port on 127.0.0.1 that nothing listens on. */
static guint
closed_port (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetAddress) loopback = NULL;
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_socket_address_new (loopback, 0);
  g_socket_bind (socket, address, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Whatever AWS_* the machine running the tests has must not leak in,
 * and no test may reach a real metadata service. */
static void
unset_aws_env (void)
{
  g_auto (GStrv) names = g_listenv ();
  guint i;

  for (i = 0; names[i] != NULL; i++) {
    if (g_str_has_prefix (names[i], "AWS_"))
      g_unsetenv (names[i]);
  }
}

static void
setup (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  unset_aws_env ();
  g_setenv ("AWS_EC2_METADATA_DISABLED", "true", TRUE);
  fixture->home = g_dir_make_tmp ("cp-credentials-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("HOME", fixture->home, TRUE);
  set_now (T0);
  peer_start (&fixture->peer);
}

static void
remove_tree (const gchar *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree gchar *child = g_build_filename (path, name, NULL);

    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      remove_tree (child);
    else
      g_remove (child);
  }
  g_rmdir (path);
}

static void
teardown (Fixture *fixture, gconstpointer data)
{
  peer_stop (&fixture->peer);
  remove_tree (fixture->home);
  g_free (fixture->home);
  unset_aws_env ();
}

static gchar *
write_home_file (Fixture *fixture, const gchar *relative, const gchar *text)
{
  g_autofree gchar *path = g_build_filename (fixture->home, relative, NULL);
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static CpAwsCredentials *
get_ok (CpAwsCredentialsProvider *provider)
{
  g_autoptr (GError) error = NULL;
  CpAwsCredentials *creds;

  creds = cp_aws_credentials_provider_get (provider, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (creds);
  return creds;
}

static GError *
get_error (CpAwsCredentialsProvider *provider)
{
  GError *error = NULL;
  CpAwsCredentials *creds;

  creds = cp_aws_credentials_provider_get (provider, NULL, &error);
  g_assert_null (creds);
  g_assert_nonnull (error);
  return error;
}

static CpAwsCredentialsProvider *
new_provider (Fixture *fixture, const gchar *profile)
{
  g_autofree gchar *base = peer_url (&fixture->peer, "");
  CpAwsCredentialsProvider *provider =
      cp_aws_credentials_provider_new_default (NULL, NULL, NULL, profile);

  cp_aws_credentials_provider_set_clock (provider, fake_clock, NULL);
  cp_aws_credentials_provider_set_container_base (provider, base);
  return provider;
}

static void
set_env_keys (void)
{
  g_setenv ("AWS_ACCESS_KEY_ID", "AKIAENV", TRUE);
  g_setenv ("AWS_SECRET_ACCESS_KEY", "env-secret", TRUE);
  g_setenv ("AWS_SESSION_TOKEN", "env-token", TRUE);
}

static const gchar default_credentials[] =
    "[default]\n"
    "aws_access_key_id = AKIAPROFILE\n"
    "aws_secret_access_key = profile-secret\n";

/* ---- explicit and environment ---- */

static void
test_explicit_beats_env (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsCredentials) again = NULL;

  set_env_keys ();
  provider = cp_aws_credentials_provider_new_default ("AKIAEXPLICIT",
      "explicit-secret", NULL, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "AKIAEXPLICIT");
  g_assert_cmpstr (creds->secret_access_key, ==, "explicit-secret");
  g_assert_null (creds->session_token);
  g_assert_cmpint (creds->expiration, ==, 0);
  g_assert_cmpstr (creds->source, ==, "explicit");

  /* A copy each time, from the cache. */
  again = get_ok (provider);
  g_assert_true (again != creds);
  g_assert_cmpstr (again->access_key_id, ==, "AKIAEXPLICIT");
}

static void
test_explicit_partial (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  set_env_keys ();
  provider = cp_aws_credentials_provider_new_default ("AKIAEXPLICIT", NULL,
      NULL, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "secret key"));
}

static void
test_env_beats_profile (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;

  g_free (write_home_file (fixture, ".aws/credentials", default_credentials));
  set_env_keys ();
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "AKIAENV");
  g_assert_cmpstr (creds->secret_access_key, ==, "env-secret");
  g_assert_cmpstr (creds->session_token, ==, "env-token");
  g_assert_cmpstr (creds->source, ==, "environment");
}

static void
test_env_partial (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  g_free (write_home_file (fixture, ".aws/credentials", default_credentials));
  g_setenv ("AWS_ACCESS_KEY_ID", "AKIAENV", TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "AWS_SECRET_ACCESS_KEY"));
}

/* ---- profiles ---- */

static void
test_profile_default (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;

  g_free (write_home_file (fixture, ".aws/credentials", default_credentials));
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "AKIAPROFILE");
  g_assert_cmpstr (creds->secret_access_key, ==, "profile-secret");
  g_assert_null (creds->session_token);
  g_assert_cmpstr (creds->source, ==, "profile");
}

static void
test_profile_named (Fixture *fixture, gconstpointer data)
{
  g_autofree gchar *path = NULL;
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentialsProvider) explicit_profile = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsCredentials) creds2 = NULL;

  /* The default path has other keys: AWS_SHARED_CREDENTIALS_FILE wins. */
  g_free (write_home_file (fixture, ".aws/credentials",
      "[work]\naws_access_key_id = AKIAWRONG\n"
      "aws_secret_access_key = wrong\n"));
  path = write_home_file (fixture, "elsewhere/creds",
      "[default]\n"
      "aws_access_key_id = AKIADEFAULT\n"
      "aws_secret_access_key = default-secret\n"
      "\n"
      "  [ work ]  # trailing comment\n"
      "AWS_Access_Key_Id=AKIAWORK\n"
      "aws_secret_access_key = work/secret+key\n"
      "aws_session_token = work-token\n"
      "[home]\n"
      "aws_access_key_id = AKIAHOME\n"
      "aws_secret_access_key = home-secret\n");
  g_setenv ("AWS_SHARED_CREDENTIALS_FILE", path, TRUE);
  g_setenv ("AWS_PROFILE", "work", TRUE);

  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "AKIAWORK");
  g_assert_cmpstr (creds->secret_access_key, ==, "work/secret+key");
  g_assert_cmpstr (creds->session_token, ==, "work-token");

  /* The profile argument beats AWS_PROFILE. */
  explicit_profile = new_provider (fixture, "home");
  creds2 = get_ok (explicit_profile);
  g_assert_cmpstr (creds2->access_key_id, ==, "AKIAHOME");
}

static void
test_profile_config_syntax (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentialsProvider) fallback = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsCredentials) creds2 = NULL;

  g_free (write_home_file (fixture, ".aws/config",
      "; the config file\n"
      "[work]\n"
      "aws_access_key_id = AKIABARE\n"
      "aws_secret_access_key = bare\n"
      "[profile work]\n"
      "region = eu-west-1\n"
      "s3 =\n"
      "  addressing_style = path\n"
      "aws_access_key_id = AKIACONFIG\n"
      "aws_secret_access_key = config#secret ; comment\n"
      "[sso-session corp]\n"
      "sso_region = us-east-1\n"));
  provider = new_provider (fixture, "work");
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "AKIACONFIG");
  /* '#' glued to a value is part of it; after a space it is a comment. */
  g_assert_cmpstr (creds->secret_access_key, ==, "config#secret");
  g_assert_cmpstr (creds->source, ==, "profile");

  /* The credentials file is read first. */
  g_free (write_home_file (fixture, ".aws/credentials",
      "[work]\naws_access_key_id = AKIACREDFILE\n"
      "aws_secret_access_key = credfile\n"));
  fallback = new_provider (fixture, "work");
  creds2 = get_ok (fallback);
  g_assert_cmpstr (creds2->access_key_id, ==, "AKIACREDFILE");
}

static void
test_profile_missing_named (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  g_free (write_home_file (fixture, ".aws/credentials", default_credentials));
  g_setenv ("AWS_PROFILE", "nosuch", TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "'nosuch'"));
}

static void
test_profile_garbage (Fixture *fixture, gconstpointer data)
{
  static const gchar *const garbage[] = {
      "[default]\naws_access_key_id AKIA\n",
      "aws_access_key_id = AKIA\n[default]\n",
      "[default\naws_access_key_id = AKIA\n",
      "[default]\n = value\n",
      "[]\n",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (garbage); i++) {
    g_autoptr (CpAwsCredentialsProvider) provider = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *path =
        write_home_file (fixture, ".aws/credentials", garbage[i]);

    provider = new_provider (fixture, NULL);
    error = get_error (provider);
    g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, path));
  }
}

static void
test_profile_binary_file (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *path = g_build_filename (fixture->home, "blob", NULL);
  static const gchar blob[] = "[default]\0\xff\xfe";

  g_file_set_contents (path, blob, sizeof (blob), &error);
  g_assert_no_error (error);
  g_setenv ("AWS_CONFIG_FILE", path, TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, path));
}

static void
test_profile_partial (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  g_free (write_home_file (fixture, ".aws/credentials",
      "[default]\naws_access_key_id = AKIA\n"));
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "aws_secret_access_key"));
}

static void
test_profile_unsupported (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  g_free (write_home_file (fixture, ".aws/config",
      "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
      "source_profile = default\n"));
  provider = new_provider (fixture, "admin");
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "role_arn"));
}

/* No files at all and nothing else: a clear NOT_FOUND. */
static void
test_nothing_found (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "AWS_EC2_METADATA_DISABLED"));
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 0);
}

static void
test_profile_beats_container (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;

  g_free (write_home_file (fixture, ".aws/credentials", default_credentials));
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/task", TRUE);
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->source, ==, "profile");
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 0);
}

/* ---- container ---- */

static void
test_container_relative (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;

  peer_set (&fixture->peer, PEER_OK, T0 + 3600);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/v2/task-id",
      TRUE);
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "ASIAPEER1");
  g_assert_cmpstr (creds->secret_access_key, ==, "peer-secret-1");
  g_assert_cmpstr (creds->session_token, ==, "peer-token-1");
  g_assert_cmpint (creds->expiration, ==, T0 + 3600);
  g_assert_cmpstr (creds->source, ==, "container");
  g_assert_cmpstr (fixture->peer.last_path, ==, "/creds/v2/task-id");
  g_assert_null (fixture->peer.last_auth);
}

static void
test_container_full_token (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autofree gchar *url = peer_url (&fixture->peer, "/creds/full");

  g_setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, TRUE);
  g_setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic dG9rZW4=", TRUE);
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->source, ==, "container");
  g_assert_cmpint (creds->expiration, ==, 0);
  g_assert_cmpstr (fixture->peer.last_path, ==, "/creds/full");
  g_assert_cmpstr (fixture->peer.last_auth, ==, "Basic dG9rZW4=");
}

static void
test_container_token_file (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autofree gchar *url = peer_url (&fixture->peer, "/creds/eks");
  g_autofree gchar *token_path =
      write_home_file (fixture, "token", "eks-pod-identity-token\n");

  g_setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, TRUE);
  g_setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-variable", TRUE);
  g_setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path, TRUE);
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->source, ==, "container");
  g_assert_cmpstr (fixture->peer.last_auth, ==, "eks-pod-identity-token");
}

static void
test_container_bad_token (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentialsProvider) missing = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) missing_error = NULL;
  g_autofree gchar *url = peer_url (&fixture->peer, "/creds/eks");

  g_setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, TRUE);
  g_setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Injected: 1", TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);

  g_setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/token",
      TRUE);
  missing = new_provider (fixture, NULL);
  missing_error = get_error (missing);
  g_assert_error (missing_error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (missing_error->message,
      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 0);
}

static void
test_container_disallowed_host (Fixture *fixture, gconstpointer data)
{
  static const gchar *const urls[] = {
      "http://example.com/creds",
      "http://10.0.0.1/creds",
      "http://169.254.169.254/creds",
      "ftp://127.0.0.1/creds",
      "not a url",
  };
  guint i;

  g_setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token", TRUE);
  for (i = 0; i < G_N_ELEMENTS (urls); i++) {
    g_autoptr (CpAwsCredentialsProvider) provider = NULL;
    g_autoptr (GError) error = NULL;

    g_setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", urls[i], TRUE);
    provider = new_provider (fixture, NULL);
    error = get_error (provider);
    g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID);
    g_assert_nonnull (
        strstr (error->message, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    g_assert_null (strstr (error->message, "secret-token"));
  }
}

static void
test_container_garbage (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  peer_set (&fixture->peer, PEER_GARBAGE, 0);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "not JSON"));
}

static void
test_container_bad_documents (Fixture *fixture, gconstpointer data)
{
  static const gchar *const bodies[] = {
      "[]",
      "{\"AccessKeyId\": \"ASIA\"}",
      "{\"AccessKeyId\": 12, \"SecretAccessKey\": \"s\"}",
      "{\"AccessKeyId\": \"ASIA\", \"SecretAccessKey\": \"s\", "
      "\"Expiration\": \"tomorrow\"}",
      "{\"Code\": \"AssumeRoleUnauthorizedAccess\", \"AccessKeyId\": \"A\", "
      "\"SecretAccessKey\": \"s\"}",
  };
  guint i;

  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  for (i = 0; i < G_N_ELEMENTS (bodies); i++) {
    g_autoptr (CpAwsCredentialsProvider) provider = NULL;
    g_autoptr (GError) error = NULL;

    g_mutex_lock (&fixture->peer.lock);
    fixture->peer.mode = PEER_BODY;
    fixture->peer.body = bodies[i];
    g_mutex_unlock (&fixture->peer.lock);
    provider = new_provider (fixture, NULL);
    error = get_error (provider);
    g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
        CP_AWS_CREDENTIALS_ERROR_INVALID);
  }
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, G_N_ELEMENTS (bodies));
}

static void
test_container_http_error (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  peer_set (&fixture->peer, PEER_ERROR, 0);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_UNREACHABLE);
  g_assert_nonnull (strstr (error->message, "500"));
}

static void
test_container_unreachable (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *url =
      g_strdup_printf ("http://127.0.0.1:%u/creds", closed_port ());

  g_setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_UNREACHABLE);
  g_assert_nonnull (strstr (error->message, url));
}

/* A peer that accepts and never answers: the request timeout ends it. */
static void
test_container_hang (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  peer_set (&fixture->peer, PEER_HANG, 0);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_UNREACHABLE);
}

static void
test_container_beats_imds (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autofree gchar *base = peer_url (&fixture->peer, "");

  g_unsetenv ("AWS_EC2_METADATA_DISABLED");
  g_setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, TRUE);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->source, ==, "container");
  g_assert_cmpuint (fixture->peer.token_requests, ==, 0);
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 1);
}

static void
test_cancelled (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  CpAwsCredentials *creds;

  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  g_cancellable_cancel (cancellable);
  creds = cp_aws_credentials_provider_get (provider, cancellable, &error);
  g_assert_null (creds);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 0);
}

/* ---- EC2 instance metadata ---- */

static CpAwsCredentialsProvider *
new_imds_provider (Fixture *fixture)
{
  g_autofree gchar *base = peer_url (&fixture->peer, "/");

  g_unsetenv ("AWS_EC2_METADATA_DISABLED");
  g_setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, TRUE);
  return new_provider (fixture, NULL);
}

static void
test_imds_flow (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;

  peer_set (&fixture->peer, PEER_OK, T0 + 6 * 3600);
  provider = new_imds_provider (fixture);
  creds = get_ok (provider);
  g_assert_cmpstr (creds->access_key_id, ==, "ASIAPEER1");
  g_assert_cmpstr (creds->secret_access_key, ==, "peer-secret-1");
  g_assert_cmpstr (creds->session_token, ==, "peer-token-1");
  g_assert_cmpint (creds->expiration, ==, T0 + 6 * 3600);
  g_assert_cmpstr (creds->source, ==, "imds");
  /* The peer answers 401 to GETs without the session token, so getting
   * here proves the token was fetched once and sent. */
  g_assert_cmpuint (fixture->peer.token_requests, ==, 1);
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 3);
  g_assert_cmpstr (fixture->peer.last_path, ==,
      "/latest/meta-data/iam/security-credentials/" IMDS_ROLE);
}

static void
test_imds_disabled (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  provider = new_imds_provider (fixture);
  g_setenv ("AWS_EC2_METADATA_DISABLED", "TRUE", TRUE);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_NOT_FOUND);
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 0);
}

static void
test_imds_garbage (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  peer_set (&fixture->peer, PEER_GARBAGE, 0);
  provider = new_imds_provider (fixture);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "EC2 instance metadata"));
}

static void
test_imds_no_role (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  g_mutex_lock (&fixture->peer.lock);
  fixture->peer.has_role = FALSE;
  g_mutex_unlock (&fixture->peer.lock);
  provider = new_imds_provider (fixture);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no IAM role"));
}

static void
test_imds_unreachable (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *base =
      g_strdup_printf ("http://127.0.0.1:%u", closed_port ());

  g_unsetenv ("AWS_EC2_METADATA_DISABLED");
  g_setenv ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, TRUE);
  provider = new_provider (fixture, NULL);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_UNREACHABLE);
  g_assert_nonnull (strstr (error->message, base));
}

static void
test_imds_hang (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;

  peer_set (&fixture->peer, PEER_HANG, 0);
  provider = new_imds_provider (fixture);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_UNREACHABLE);
  g_assert_cmpuint (fixture->peer.token_requests, ==, 1);
}

/* ---- caching and refresh, driven by the injected clock ---- */

static void
assert_key (CpAwsCredentialsProvider *provider, const gchar *expected)
{
  g_autoptr (CpAwsCredentials) creds = get_ok (provider);

  g_assert_cmpstr (creds->access_key_id, ==, expected);
}

static void
test_refresh (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  const gint64 expiry2 = T0 + 3600;

  peer_set (&fixture->peer, PEER_OK, T0 + 900);
  provider = new_imds_provider (fixture);
  assert_key (provider, "ASIAPEER1");
  g_assert_cmpuint (fixture->peer.serial, ==, 1);

  /* 400 s left: more than the refresh window, served from the cache. */
  set_now (T0 + 500);
  assert_key (provider, "ASIAPEER1");
  g_assert_cmpuint (fixture->peer.serial, ==, 1);

  /* 200 s left: refreshed ahead of expiry. */
  peer_set (&fixture->peer, PEER_OK, expiry2);
  set_now (T0 + 700);
  assert_key (provider, "ASIAPEER2");
  g_assert_cmpuint (fixture->peer.serial, ==, 2);
  g_assert_cmpuint (fixture->peer.token_requests, ==, 2);

  /* The refresh fails while the old ones are still valid: keep them. */
  peer_set (&fixture->peer, PEER_ERROR, 0);
  set_now (expiry2 - 200);
  assert_key (provider, "ASIAPEER2");
  g_assert_cmpuint (fixture->peer.token_requests, ==, 3);

  /* ... and do not ask again at once. */
  set_now (expiry2 - 190);
  assert_key (provider, "ASIAPEER2");
  g_assert_cmpuint (fixture->peer.token_requests, ==, 3);

  /* Too close to expiry to hand out: the failure is reported. */
  set_now (expiry2 - 30);
  error = get_error (provider);
  g_assert_error (error, CP_AWS_CREDENTIALS_ERROR,
      CP_AWS_CREDENTIALS_ERROR_UNREACHABLE);
  g_assert_cmpuint (fixture->peer.token_requests, ==, 4);

  /* The service is back: fetched at once, from the same source. */
  peer_set (&fixture->peer, PEER_OK, expiry2 + 3600);
  set_now (expiry2 - 20);
  assert_key (provider, "ASIAPEER3");
}

static void
test_refresh_container (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;

  peer_set (&fixture->peer, PEER_OK, T0 + 600);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  assert_key (provider, "ASIAPEER1");
  set_now (T0 + 200);
  assert_key (provider, "ASIAPEER1");
  set_now (T0 + 301);
  assert_key (provider, "ASIAPEER2");
  g_assert_cmpstr (fixture->peer.last_path, ==, "/creds/x");
}

typedef struct
{
  CpAwsCredentialsProvider *provider;
  guint failures;
} Worker;

static gpointer
worker_thread (gpointer data)
{
  Worker *worker = data;
  guint i;

  for (i = 0; i < 50; i++) {
    g_autoptr (CpAwsCredentials) creds = NULL;

    creds = cp_aws_credentials_provider_get (worker->provider, NULL, NULL);
    if (creds == NULL || strcmp (creds->access_key_id, "ASIAPEER1") != 0)
      worker->failures++;
  }
  return NULL;
}

/* Many threads asking at once share one fetch. */
static void
test_concurrent_get (Fixture *fixture, gconstpointer data)
{
  g_autoptr (CpAwsCredentialsProvider) provider = NULL;
  Worker workers[4];
  GThread *threads[4];
  guint i;

  peer_set (&fixture->peer, PEER_OK, T0 + 3600);
  g_setenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds/x", TRUE);
  provider = new_provider (fixture, NULL);
  for (i = 0; i < G_N_ELEMENTS (threads); i++) {
    workers[i].provider = provider;
    workers[i].failures = 0;
    threads[i] = g_thread_new ("worker", worker_thread, &workers[i]);
  }
  for (i = 0; i < G_N_ELEMENTS (threads); i++) {
    g_thread_join (threads[i]);
    g_assert_cmpuint (workers[i].failures, ==, 0);
  }
  g_assert_cmpuint (peer_requests (&fixture->peer), ==, 1);
}

static void
test_credentials_copy (void)
{
  g_autoptr (CpAwsCredentials) creds =
      cp_aws_credentials_new ("AKIA", "secret", "");
  g_autoptr (CpAwsCredentials) copy = NULL;

  g_assert_null (creds->session_token);
  creds->expiration = 42;
  creds->source = "imds";
  copy = cp_aws_credentials_copy (creds);
  g_assert_cmpstr (copy->access_key_id, ==, "AKIA");
  g_assert_cmpstr (copy->secret_access_key, ==, "secret");
  g_assert_null (copy->session_token);
  g_assert_cmpint (copy->expiration, ==, 42);
  g_assert_cmpstr (copy->source, ==, "imds");
}

static void
test_error_quark (void)
{
  g_assert_cmpstr (g_quark_to_string (CP_AWS_CREDENTIALS_ERROR), ==,
      "cp-aws-credentials-error-quark");
}

#define ADD(path, func) \
  g_test_add ("/aws/credentials/" path, Fixture, NULL, setup, func, teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/aws/credentials/copy", test_credentials_copy);
  g_test_add_func ("/aws/credentials/error-quark", test_error_quark);
  ADD ("explicit-beats-env", test_explicit_beats_env);
  ADD ("explicit-partial", test_explicit_partial);
  ADD ("env-beats-profile", test_env_beats_profile);
  ADD ("env-partial", test_env_partial);
  ADD ("profile-default", test_profile_default);
  ADD ("profile-named", test_profile_named);
  ADD ("profile-config-syntax", test_profile_config_syntax);
  ADD ("profile-missing-named", test_profile_missing_named);
  ADD ("profile-garbage", test_profile_garbage);
  ADD ("profile-binary-file", test_profile_binary_file);
  ADD ("profile-partial", test_profile_partial);
  ADD ("profile-unsupported", test_profile_unsupported);
  ADD ("nothing-found", test_nothing_found);
  ADD ("profile-beats-container", test_profile_beats_container);
  ADD ("container-relative", test_container_relative);
  ADD ("container-full-token", test_container_full_token);
  ADD ("container-token-file", test_container_token_file);
  ADD ("container-bad-token", test_container_bad_token);
  ADD ("container-disallowed-host", test_container_disallowed_host);
  ADD ("container-garbage", test_container_garbage);
  ADD ("container-bad-documents", test_container_bad_documents);
  ADD ("container-http-error", test_container_http_error);
  ADD ("container-unreachable", test_container_unreachable);
  ADD ("container-hang", test_container_hang);
  ADD ("container-beats-imds", test_container_beats_imds);
  ADD ("cancelled", test_cancelled);
  ADD ("imds-flow", test_imds_flow);
  ADD ("imds-disabled", test_imds_disabled);
  ADD ("imds-garbage", test_imds_garbage);
  ADD ("imds-no-role", test_imds_no_role);
  ADD ("imds-unreachable", test_imds_unreachable);
  ADD ("imds-hang", test_imds_hang);
  ADD ("refresh", test_refresh);
  ADD ("refresh-container", test_refresh_container);
  ADD ("concurrent-get", test_concurrent_get);
  return g_test_run ();
}

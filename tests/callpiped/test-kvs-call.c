/* Integration test: an Amazon Connect call through Kinesis Video Streams,
 * end to end. The built callpiped runs connect-bot (kvssrc → kvsdemux →
 * novasonic → stereo recording + transcript) for the Lambda event
 * Connect sends, against two local peers on 127.0.0.1: the GetMedia peer
 * (tests/kvs/kvs-getmedia-peer.py), serving in real time a Connect-shaped
 * stream written by tests/kvs/kvs-fixture.c, and sonicpeer.py as Nova
 * Sonic. The peers check every SigV4 signature; waits are bounded and
 * every child dies with the test. */
#include "kvs-peer.h"
#include "test-client.h"
#include "test-util.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define TOKEN "kvs-call-token"
#define POLL_US (50 * 1000)
#define CALL_WAIT_US (90 * G_USEC_PER_SEC)

/* The stream lives in eu-west-2 and the bot in us-east-1: the GetMedia
 * peer only accepts requests signed for the stream's region. */
#define STREAM_REGION "eu-west-2"
#define BOT_REGION "us-east-1"
#define STREAM_ARN                                       \
  "arn:aws:kinesisvideo:" STREAM_REGION ":111111111111:" \
  "stream/callpipe-it-contact-4a573372-1f28-4e26-b97b-"  \
  "ae3e1a8a0001/1726677600000"
#define MISSING_ARN                                      \
  "arn:aws:kinesisvideo:" STREAM_REGION ":111111111111:" \
  "stream/callpipe-it-contact-0000/1726677600000"
#define CONTACT_ID "4a573372-1f28-4e26-b97b-ae3e1a8a0001"
#define NEXT_CONTACT_ID "9d0c1e55-7a2b-4c3d-8e9f-0a1b2c3d4e5f"
#define STREAM_ARN_FIELD \
  "Details.ContactData.MediaStreams.Customer.Audio.StreamARN"

/* The stream: the caller speaks for one fragment (the fixture's ramp,
 * 1..8192, loud enough for sonicpeer to hear speech), then is silent for
 * SILENT_FRAGMENTS (only the agent side has blocks: kvsdemux fills the
 * caller's side with silence) while the bot answers; then the stream goes
 * on with the next contact, which must end the call and never reach it. */
#define SPEECH_FRAGMENTS 1
#define SILENT_FRAGMENTS 4
#define CALL_FRAGMENTS (SPEECH_FRAGMENTS + SILENT_FRAGMENTS)
#define N_FRAGMENTS (CALL_FRAGMENTS + 2)
#define CALLER_SAMPLES (SPEECH_FRAGMENTS * KVS_PEER_FRAGMENT_SAMPLES)
#define CALL_SAMPLES (CALL_FRAGMENTS * KVS_PEER_FRAGMENT_SAMPLES)

/* sonicpeer's reply: 1 s of samples 1000 + turn, at 8 kHz. */
#define REPLY_MS 1000
#define REPLY_VALUE 1001

typedef struct
{
  gchar *dir;
  gchar *data_dir;
  gchar *config;
  KvsPeerFixture stream;
  KvsPeer kvs;
  gboolean kvs_running;
  GSubprocess *sonic;
  guint sonic_port;
  GSubprocess *daemon;
  guint port;
  SoupSession *http;
} Fixture;

typedef CpTestReply Reply;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, cp_test_reply_free)

/* ---- the stream ---- */

/* KVS fragment numbers are 47 decimal digits. */
static gchar *
fragment_number (guint i)
{
  return g_strdup_printf ("91343852333181432392682062622220590765191907%03u",
      i);
}

static void
write_stream (Fixture *f)
{
  g_autoptr (GByteArray) s = g_byte_array_new ();
  g_autoptr (GString) index = g_string_new (NULL);
  KvsFixtureState st = {0, 0};
  guint i;

  for (i = 0; i < N_FRAGMENTS; i++) {
    KvsFixtureFragment frag = {0};
    guint64 ts = KVS_PEER_BASE_MS + i * KVS_PEER_FRAGMENT_MS;
    gsize offset = s->len;

    frag.number = fragment_number (i);
    frag.contact_id = i < CALL_FRAGMENTS ? CONTACT_ID : NEXT_CONTACT_ID;
    frag.timecode_ms = ts;
    frag.from_blocks =
        i < SPEECH_FRAGMENTS || i >= CALL_FRAGMENTS ? KVS_PEER_BLOCKS : 0;
    frag.to_blocks = KVS_PEER_BLOCKS;
    frag.block_samples = KVS_PEER_BLOCK_SAMPLES;
    /* Connect tags before the Cluster in some fragments, after it in all. */
    frag.tags_before = i % 2 == 1;
    kvs_fixture_write_fragment (s, &frag, &st);
    g_string_append_printf (index,
        "%s\t%s\t%" G_GUINT64_FORMAT "\t%" G_GUINT64_FORMAT
        "\t%u\t%" G_GSIZE_FORMAT "\t%" G_GSIZE_FORMAT "\n",
        frag.number, frag.number, ts, ts + KVS_PEER_SERVER_DELAY_MS,
        KVS_PEER_FRAGMENT_MS, offset, (gsize) (s->len - offset));
    g_free ((gchar *) frag.number);
  }
  f->stream.mkv = g_build_filename (f->dir, "stream.mkv", NULL);
  f->stream.index = g_build_filename (f->dir, "stream.idx", NULL);
  g_assert_true (g_file_set_contents (f->stream.mkv, (const gchar *) s->data,
      s->len, NULL));
  g_assert_true (g_file_set_contents (f->stream.index, index->str, -1, NULL));
}

/* ---- the processes ---- */

/* A failed assertion aborts without teardown: children must not outlive
 * the test. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static gboolean
start_sonic (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
          | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  g_autofree gchar *reply_ms = g_strdup_printf ("%u", REPLY_MS);

  if (SONIC_PEER_PYTHON[0] == '\0')
    return FALSE;
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->sonic = g_subprocess_launcher_spawn (launcher, &error, SONIC_PEER_PYTHON,
      SONIC_PEER_SCRIPT, "--lifetime", "240", "--reply-ms", reply_ms,
      "--access-key", KVS_PEER_ACCESS_KEY, "--secret-key", KVS_PEER_SECRET_KEY,
      NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->sonic));
  line = g_data_input_stream_read_line (out, NULL, NULL, NULL);
  if (line == NULL || atoi (line) <= 0) {
    g_subprocess_force_exit (f->sonic);
    g_subprocess_wait (f->sonic, NULL, NULL);
    g_clear_object (&f->sonic);
    return FALSE;
  }
  f->sonic_port = atoi (line);
  return TRUE;
}

/* The KVS endpoint is [kvs] endpoint, or with @endpoint_in_env, the AWS
 * SDK's AWS_ENDPOINT_URL_KINESIS_VIDEO (no [kvs] section at all). */
static void
start_daemon (Fixture *f, gboolean endpoint_in_env)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree gchar *line = NULL;
  g_autofree gchar *config = NULL;
  g_autofree gchar *endpoint =
      g_strdup_printf ("http://127.0.0.1:%u", f->kvs.port);
  g_autofree gchar *kvs_section = endpoint_in_env
      ? g_strdup ("")
      : g_strdup_printf ("[kvs]\nendpoint = %s\n", endpoint);
  const gchar *p;

  config = g_strdup_printf ("[server]\n"
                            "address = 127.0.0.1\n"
                            "token = " TOKEN "\n"
                            "drain-timeout = 10\n"
                            "[bot]\n"
                            "backend = bedrock\n"
                            "region = " BOT_REGION "\n"
                            "endpoint = http://127.0.0.1:%u\n"
                            "%s",
      f->sonic_port, kvs_section);
  g_assert_true (g_file_set_contents (f->config, config, -1, NULL));

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* kvssrc and novasonic sign with these through the credential chain;
   * nothing else from the environment picks the region or endpoints. */
  g_subprocess_launcher_setenv (launcher, "AWS_ACCESS_KEY_ID",
      KVS_PEER_ACCESS_KEY, TRUE);
  g_subprocess_launcher_setenv (launcher, "AWS_SECRET_ACCESS_KEY",
      KVS_PEER_SECRET_KEY, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "AWS_SESSION_TOKEN");
  g_subprocess_launcher_unsetenv (launcher, "AWS_REGION");
  g_subprocess_launcher_unsetenv (launcher, "AWS_DEFAULT_REGION");
  g_subprocess_launcher_unsetenv (launcher, "AWS_ENDPOINT_URL");
  g_subprocess_launcher_unsetenv (launcher, "AWS_ENDPOINT_URL_KINESIS_VIDEO");
  if (endpoint_in_env)
    g_subprocess_launcher_setenv (launcher, "AWS_ENDPOINT_URL_KINESIS_VIDEO",
        endpoint, TRUE);
  f->daemon = g_subprocess_launcher_spawn (launcher, &error, CALLPIPED_BIN,
      "--port", "0", "--data-dir", f->data_dir, "--config", f->config, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->daemon));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  p = strstr (line, "port ");
  g_assert_nonnull (p);
  f->port = atoi (p + 5);
  g_assert_cmpuint (f->port, >, 0);
}

/* Both peers and the daemon; nothing starts (the test skips) without
 * Debian's python3 and python3-h2. @data "env": the KVS endpoint from the
 * environment, not the configuration. */
static void
setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("callpiped-kvs-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->data_dir = g_build_filename (f->dir, "var", NULL);
  f->config = g_build_filename (f->dir, "callpiped.ini", NULL);
  f->http = soup_session_new_with_options ("timeout", 60, NULL);
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)
      || !start_sonic (f))
    return;
  write_stream (f);
  /* The stream starts as the first request comes in, with half a second
   * already written (Connect streams before the Lambda runs); it stays
   * open after its last fragment, as a live stream does. */
  kvs_peer_start (&f->kvs, KVS_PEER_SCRIPT, &f->stream, "--region",
      STREAM_REGION, "--stream-arn", STREAM_ARN, "--live-from-request",
      "--live-offset-ms", "500", "--hold", "120", NULL);
  f->kvs_running = TRUE;
  start_daemon (f, g_strcmp0 (data, "env") == 0);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  if (f->daemon != NULL) {
    g_subprocess_send_signal (f->daemon, SIGKILL);
    g_subprocess_wait (f->daemon, NULL, NULL);
    g_clear_object (&f->daemon);
  }
  if (f->sonic != NULL) {
    g_subprocess_force_exit (f->sonic);
    g_subprocess_wait (f->sonic, NULL, NULL);
    g_clear_object (&f->sonic);
  }
  if (f->kvs_running)
    kvs_peer_stop (&f->kvs);
  g_free (f->stream.mkv);
  g_free (f->stream.index);
  g_clear_object (&f->http);
  cp_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->data_dir);
  g_free (f->config);
}

static gboolean
skip_without_peers (Fixture *f)
{
  if (f->daemon != NULL)
    return FALSE;
  g_test_skip ("the peers need Debian's /usr/bin/python3 with python3-h2");
  return TRUE;
}

/* ---- HTTP ---- */

static Reply *
http (Fixture *f, const gchar *method, const gchar *path, const gchar *token,
    const gchar *body)
{
  return cp_test_http (f->http, f->port, method, path, token, body);
}

static JsonObject *
jobj (Reply *r)
{
  g_assert_nonnull (r->json);
  return json_node_get_object (r->json);
}

static const gchar *
jstr (Reply *r, const gchar *member)
{
  return cp_test_reply_string (r, member);
}

/* The Lambda event exactly as Amazon Connect sends it from an "Invoke AWS
 * Lambda function" block placed after "Start media streaming"
 * (research/kvs-connect.md §5). */
static gchar *
connect_event (const gchar *contact_id, const gchar *stream_arn,
    const gchar *start_fragment, guint64 start_ms)
{
  return g_strdup_printf ("{\n"
                          "  \"Details\": {\n"
                          "    \"ContactData\": {\n"
                          "      \"Attributes\": {\"language\": \"en-US\"},\n"
                          "      \"AwsRegion\": \"" STREAM_REGION "\",\n"
                          "      \"Channel\": \"VOICE\",\n"
                          "      \"ContactId\": \"%s\",\n"
                          "      \"CustomerEndpoint\": {\"Address\": "
                          "\"+441234567890\",\n"
                          "                             \"Type\": "
                          "\"TELEPHONE_NUMBER\"},\n"
                          "      \"InitialContactId\": \"%s\",\n"
                          "      \"InitiationMethod\": \"INBOUND\",\n"
                          "      \"InstanceARN\": "
                          "\"arn:aws:connect:" STREAM_REGION
                          ":111111111111:instance/"
                          "9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b\",\n"
                          "      \"MediaStreams\": {\n"
                          "        \"Customer\": {\n"
                          "          \"Audio\": {\n"
                          "            \"StartFragmentNumber\": \"%s\",\n"
                          "            \"StartTimestamp\": \"%" G_GUINT64_FORMAT
                          "\",\n"
                          "            \"StreamARN\": \"%s\"\n"
                          "          }\n"
                          "        }\n"
                          "      },\n"
                          "      \"PreviousContactId\": \"%s\",\n"
                          "      \"Queue\": null,\n"
                          "      \"SystemEndpoint\": {\"Address\": "
                          "\"+441234000000\",\n"
                          "                           \"Type\": "
                          "\"TELEPHONE_NUMBER\"}\n"
                          "    },\n"
                          "    \"Parameters\": {}\n"
                          "  },\n"
                          "  \"Name\": \"ContactFlowEvent\"\n"
                          "}\n",
      contact_id, contact_id, start_fragment, start_ms, stream_arn, contact_id);
}

/* POST /calls answers 202 at once, long before the call is over. */
static gchar *
start_call (Fixture *f, const gchar *body)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (Reply) r = http (f, "POST", "/calls", TOKEN, body);
  gint64 took = g_get_monotonic_time () - t0;

  if (r->status != 202)
    g_error ("POST /calls: %u %.*s", r->status,
        (int) g_bytes_get_size (r->body),
        (const gchar *) g_bytes_get_data (r->body, NULL));
  g_assert_cmpint (took, <, 3 * G_USEC_PER_SEC);
  g_assert_cmpstr (jstr (r, "status"), ==, "started");
  g_assert_true (g_uuid_string_is_valid (jstr (r, "sessionId")));
  return g_strdup (jstr (r, "sessionId"));
}

/* Follows GET /calls/{id} to a final state; @saw_running: whether it was
 * seen running on the way. */
static Reply *
follow_call (Fixture *f, const gchar *id, gboolean *saw_running)
{
  g_autofree gchar *path = g_strdup_printf ("/calls/%s", id);
  gint64 deadline = g_get_monotonic_time () + CALL_WAIT_US;

  *saw_running = FALSE;
  while (g_get_monotonic_time () < deadline) {
    Reply *r = http (f, "GET", path, TOKEN, NULL);
    const gchar *state;

    g_assert_cmpuint (r->status, ==, 200);
    state = jstr (r, "state");
    if (!g_strcmp0 (state, "running"))
      *saw_running = TRUE;
    if (!g_strcmp0 (state, "ended") || !g_strcmp0 (state, "failed"))
      return r;
    cp_test_reply_free (r);
    g_usleep (POLL_US);
  }
  g_error ("call %s did not end in time", id);
  return NULL;
}

static void
assert_error (Reply *r, guint status, const gchar *code, const gchar *needle)
{
  JsonObject *e;
  const gchar *message;

  g_assert_cmpuint (r->status, ==, status);
  e = json_object_get_object_member (jobj (r), "error");
  g_assert_nonnull (e);
  g_assert_cmpstr (json_object_get_string_member (e, "code"), ==, code);
  message = json_object_get_string_member (e, "message");
  if (needle != NULL && strstr (message, needle) == NULL)
    g_error ("error message '%s' does not mention '%s'", message, needle);
}

/* ---- what the GetMedia peer received ---- */

/* The peer's log: one JSON object per request (path, request body,
 * "auth": "ok" or why the signature was refused). */
static JsonArray *
peer_requests (Fixture *f)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  JsonArray *out = json_array_new ();
  guint i;

  g_assert_true (g_file_get_contents (f->kvs.log, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (i = 0; lines[i] != NULL; i++) {
    g_autoptr (JsonParser) parser = json_parser_new ();

    if (*lines[i] == '\0')
      continue;
    g_assert_true (json_parser_load_from_data (parser, lines[i], -1, NULL));
    json_array_add_element (out,
        json_node_copy (json_parser_get_root (parser)));
  }
  return out;
}

/* The requests to @path, each checked signed with the test credentials
 * for the stream's region (the peer recomputes the signature), naming
 * @stream_arn. */
static GPtrArray *
signed_requests (JsonArray *log, const gchar *path, const gchar *stream_arn)
{
  GPtrArray *out = g_ptr_array_new ();
  guint i;

  for (i = 0; i < json_array_get_length (log); i++) {
    JsonObject *e = json_array_get_object_element (log, i);
    JsonObject *req;

    if (g_strcmp0 (json_object_get_string_member (e, "path"), path) != 0)
      continue;
    g_assert_cmpstr (json_object_get_string_member (e, "auth"), ==, "ok");
    req = json_object_get_object_member (e, "request");
    g_assert_nonnull (req);
    g_assert_cmpstr (json_object_get_string_member (req, "StreamARN"), ==,
        stream_arn);
    g_ptr_array_add (out, req);
  }
  return out;
}

/* ---- the recording ---- */

typedef struct
{
  guint channels;
  guint rate;
  const guint8 *data;
  guint64 frames;
} Wav;

/* Checks the RIFF and data sizes agree with the bytes: a WAV whose header
 * was never finalized fails here. */
static void
parse_wav (const guint8 *d, gsize len, Wav *w)
{
  gsize off = 12;
  guint32 riff;

  memset (w, 0, sizeof (*w));
  g_assert_cmpuint (len, >=, 44);
  g_assert_cmpmem (d, 4, "RIFF", 4);
  g_assert_cmpmem (d + 8, 4, "WAVE", 4);
  memcpy (&riff, d + 4, 4);
  g_assert_cmpuint (GUINT32_FROM_LE (riff), ==, len - 8);
  while (off + 8 <= len) {
    guint32 size;

    memcpy (&size, d + off + 4, 4);
    size = GUINT32_FROM_LE (size);
    if (!memcmp (d + off, "fmt ", 4)) {
      guint16 fmt, channels, bits;
      guint32 rate;

      memcpy (&fmt, d + off + 8, 2);
      memcpy (&channels, d + off + 10, 2);
      memcpy (&rate, d + off + 12, 4);
      memcpy (&bits, d + off + 22, 2);
      g_assert_cmpuint (GUINT16_FROM_LE (fmt), ==, 1);
      g_assert_cmpuint (GUINT16_FROM_LE (bits), ==, 16);
      w->channels = GUINT16_FROM_LE (channels);
      w->rate = GUINT32_FROM_LE (rate);
    } else if (!memcmp (d + off, "data", 4)) {
      g_assert_cmpuint (w->channels, >, 0);
      g_assert_cmpuint (off + 8 + size, <=, len);
      w->data = d + off + 8;
      w->frames = size / (2 * w->channels);
    }
    off += 8 + size + (size & 1);
  }
  g_assert_nonnull (w->data);
}

static gint
sample (const Wav *w, guint64 frame, guint channel)
{
  gint16 v;

  memcpy (&v, w->data + 2 * (frame * w->channels + channel), 2);
  return GINT16_FROM_LE (v);
}

/* The caller's side of the recording is the MKV's from_customer audio:
 * the fixture's ramp (sample k is k + 1) sample for sample, through the
 * 8 → 16 → 8 kHz resampling, then silence to the end of the call:
 * neither the bot's reply nor the next contact. */
static void
check_caller_side (const Wav *w)
{
  guint64 i, start, mid = G_MAXUINT64, off_ramp = 0, mismatches = 0;
  gdouble energy = 0, expected = 0;

  /* the call's five fragments, no more (the next contact's are not
   * recorded), give or take the resampler's edges */
  g_assert_cmpuint (w->frames, >=, CALL_SAMPLES - 400);
  g_assert_cmpuint (w->frames, <=, CALL_SAMPLES + 4000);
  for (i = 0; i < w->frames && mid == G_MAXUINT64; i++) {
    if (sample (w, i, 0) >= CALLER_SAMPLES / 2)
      mid = i;
  }
  g_assert_cmpuint (mid, !=, G_MAXUINT64);
  g_assert_cmpuint (mid, >=, CALLER_SAMPLES / 2 - 1);
  start = mid - (CALLER_SAMPLES / 2 - 1);
  g_assert_cmpuint (start + CALLER_SAMPLES, <=, w->frames);
  for (i = 32; i < CALLER_SAMPLES - 32; i++) {
    if (ABS (sample (w, start + i, 0) - (gint) (i + 1)) > 16)
      mismatches++;
  }
  for (i = 0; i < CALLER_SAMPLES; i++)
    expected += (gdouble) (i + 1) * (i + 1);
  for (i = 0; i < w->frames; i++) {
    gint l = sample (w, i, 0);

    energy += (gdouble) l * l;
    if ((i + 64 < start || i > start + CALLER_SAMPLES + 64) && ABS (l) > 256)
      off_ramp++;
  }
  g_test_message ("caller side: %" G_GUINT64_FORMAT
                  " frames, speech from frame %" G_GUINT64_FORMAT
                  ", energy %.4f of the fixture's, %" G_GUINT64_FORMAT
                  " samples off the ramp, %" G_GUINT64_FORMAT
                  " loud samples outside it",
      w->frames, start, energy / expected, mismatches, off_ramp);
  g_assert_cmpuint (mismatches, ==, 0);
  g_assert_cmpfloat (energy, >, 0.99 * expected);
  g_assert_cmpfloat (energy, <, 1.01 * expected);
  g_assert_cmpuint (off_ramp, ==, 0);
}

/* The bot's side: sonicpeer's one reply (REPLY_MS of REPLY_VALUE), whole,
 * and nothing else: neither the caller nor a second reply. */
static void
check_bot_side (const Wav *w)
{
  guint64 i, reply = 0, other = 0;

  for (i = 0; i < w->frames; i++) {
    gint r = sample (w, i, 1);

    if (ABS (r - REPLY_VALUE) <= 6 && r != REPLY_VALUE + 1)
      reply++;
    else if (ABS (r) > 16)
      other++;
  }
  g_test_message ("bot side: %" G_GUINT64_FORMAT
                  " samples of the reply, %" G_GUINT64_FORMAT " others",
      reply, other);
  g_assert_cmpuint (reply, >=, 8 * REPLY_MS * 7 / 8);
  g_assert_cmpuint (reply, <=, 8 * REPLY_MS + 160);
  g_assert_cmpuint (other, ==, 0);
}

/* The texts @role said, in order, joined by '|'. */
static gchar *
role_texts (JsonArray *transcript, const gchar *role)
{
  GString *out = g_string_new (NULL);
  guint i;

  for (i = 0; i < json_array_get_length (transcript); i++) {
    JsonObject *e = json_array_get_object_element (transcript, i);

    if (g_strcmp0 (json_object_get_string_member (e, "role"), role) != 0)
      continue;
    if (out->len > 0)
      g_string_append_c (out, '|');
    g_string_append (out, json_object_get_string_member (e, "text"));
  }
  return g_string_free (out, FALSE);
}

/* ---- tests ---- */

static void
test_connect_call (Fixture *f, gconstpointer data)
{
  g_autofree gchar *fragment = fragment_number (0);
  g_autofree gchar *event = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *rec_file = NULL;
  g_autofree gchar *rec_bytes = NULL;
  g_autofree gchar *doc_file = NULL;
  g_autofree gchar *doc_bytes = NULL;
  g_autofree gchar *caller = NULL;
  g_autofree gchar *bot = NULL;
  g_autofree gchar *doc_bot = NULL;
  g_autofree gchar *name = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (Reply) media = NULL;
  g_autoptr (Reply) doc = NULL;
  g_autoptr (JsonArray) log = NULL;
  g_autoptr (GPtrArray) endpoints = NULL;
  g_autoptr (GPtrArray) media_reqs = NULL;
  JsonObject *selector;
  gboolean saw_running;
  gsize rec_len, doc_len;
  Wav wav;

  if (skip_without_peers (f))
    return;
  event = connect_event (CONTACT_ID, STREAM_ARN, fragment, KVS_PEER_BASE_MS);
  id = start_call (f, event);
  call = follow_call (f, id, &saw_running);

  g_assert_true (saw_running);
  g_assert_cmpstr (jstr (call, "state"), ==, "ended");
  g_assert_cmpstr (jstr (call, "reason"), ==, "end of stream");
  g_assert_cmpstr (jstr (call, "contactId"), ==, CONTACT_ID);
  g_assert_cmpstr (jstr (call, "pipeline"), ==, "connect-bot");
  /* the media went out in real time: the call lasted as long as it */
  g_assert_cmpfloat (json_object_get_double_member (jobj (call), "duration"), >,
      CALL_FRAGMENTS * KVS_PEER_FRAGMENT_MS / 1000.0 - 1.0);

  /* kvssrc asked the control endpoint for the GetMedia endpoint, then
   * started at the event's StartTimestamp (the call's first fragment),
   * every request signed for the stream's region */
  log = peer_requests (f);
  endpoints = signed_requests (log, "/getDataEndpoint", STREAM_ARN);
  g_assert_cmpuint (endpoints->len, >=, 1);
  g_assert_cmpstr (json_object_get_string_member (g_ptr_array_index (endpoints,
                                                      0),
                       "APIName"),
      ==, "GET_MEDIA");
  media_reqs = signed_requests (log, "/getMedia", STREAM_ARN);
  g_assert_cmpuint (media_reqs->len, >=, 1);
  selector = json_object_get_object_member (g_ptr_array_index (media_reqs, 0),
      "StartSelector");
  g_assert_nonnull (selector);
  g_assert_cmpstr (json_object_get_string_member (selector,
                       "StartSelectorType"),
      ==, "PRODUCER_TIMESTAMP");
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (selector,
                                      "StartTimestamp"),
      KVS_PEER_BASE_MS / 1000.0, 0.0005);
  g_assert_cmpuint (json_array_get_length (log), ==,
      endpoints->len + media_reqs->len);

  /* the recording in storage: stereo 8 kHz, the caller on the left; the
   * same bytes behind recordingUrl */
  name = g_strconcat (id, ".wav", NULL);
  rec_file =
      g_build_filename (f->data_dir, "storage", "recordings", name, NULL);
  g_assert_true (g_file_get_contents (rec_file, &rec_bytes, &rec_len, NULL));
  parse_wav ((const guint8 *) rec_bytes, rec_len, &wav);
  g_assert_cmpuint (wav.channels, ==, 2);
  g_assert_cmpuint (wav.rate, ==, 8000);
  check_caller_side (&wav);
  g_assert_nonnull (jstr (call, "recordingUrl"));
  media = http (f, "GET", jstr (call, "recordingUrl"), NULL, NULL);
  g_assert_cmpuint (media->status, ==, 200);
  g_assert_cmpstr (media->content_type, ==, "audio/wav");
  g_assert_cmpmem (g_bytes_get_data (media->body, NULL),
      g_bytes_get_size (media->body), rec_bytes, rec_len);

  /* the transcript document in storage, behind transcriptUrl */
  g_free (name);
  name = g_strconcat (id, ".json", NULL);
  doc_file =
      g_build_filename (f->data_dir, "storage", "transcripts", name, NULL);
  g_assert_true (g_file_get_contents (doc_file, &doc_bytes, &doc_len, NULL));
  g_assert_nonnull (jstr (call, "transcriptUrl"));
  doc = http (f, "GET", jstr (call, "transcriptUrl"), NULL, NULL);
  g_assert_cmpuint (doc->status, ==, 200);
  g_assert_cmpmem (g_bytes_get_data (doc->body, NULL),
      g_bytes_get_size (doc->body), doc_bytes, doc_len);
  g_assert_cmpstr (jstr (doc, "sessionId"), ==, id);
  g_assert_cmpstr (jstr (doc, "contactId"), ==, CONTACT_ID);
  g_assert_cmpstr (jstr (doc, "state"), ==, "ended");

  /* The bot heard the caller once and answered once, uninterrupted: its
   * input is the caller's audio as spoken, however kvsdemux paces it. */
  caller = role_texts (json_object_get_array_member (jobj (call), "transcript"),
      "caller");
  bot = role_texts (json_object_get_array_member (jobj (call), "transcript"),
      "bot");
  doc_bot = role_texts (json_object_get_array_member (jobj (doc), "transcript"),
      "bot");
  g_test_message ("caller said '%s', the bot '%s'", caller, bot);
  g_assert_cmpstr (doc_bot, ==, bot);
  g_assert_cmpstr (caller, ==, "turn 1");
  g_assert_cmpstr (bot, ==, "reply 1");
  check_bot_side (&wav);
}

/* A stream KVS does not know: GetDataEndpoint answers
 * ResourceNotFoundException, and the call fails saying so. The endpoint
 * comes from AWS_ENDPOINT_URL_KINESIS_VIDEO here: without [kvs] endpoint,
 * kvssrc resolves it as the AWS SDKs do. */
static void
test_stream_not_found (Fixture *f, gconstpointer data)
{
  g_autofree gchar *fragment = fragment_number (0);
  g_autofree gchar *event = NULL;
  g_autofree gchar *id = NULL;
  g_autoptr (Reply) call = NULL;
  g_autoptr (JsonArray) log = NULL;
  g_autoptr (GPtrArray) endpoints = NULL;
  g_autoptr (GPtrArray) media_reqs = NULL;
  gboolean saw_running;
  const gchar *reason;

  if (skip_without_peers (f))
    return;
  event = connect_event (CONTACT_ID, MISSING_ARN, fragment, KVS_PEER_BASE_MS);
  id = start_call (f, event);
  call = follow_call (f, id, &saw_running);
  g_assert_cmpstr (jstr (call, "state"), ==, "failed");
  reason = jstr (call, "reason");
  g_assert_nonnull (reason);
  g_test_message ("reason: %s", reason);
  if (strstr (reason, "ResourceNotFoundException") == NULL)
    g_error ("reason '%s' does not name ResourceNotFoundException", reason);

  /* the service refused it: a signed request for that stream reached the
   * peer, and no GetMedia followed */
  log = peer_requests (f);
  endpoints = signed_requests (log, "/getDataEndpoint", MISSING_ARN);
  g_assert_cmpuint (endpoints->len, >=, 1);
  media_reqs = signed_requests (log, "/getMedia", MISSING_ARN);
  g_assert_cmpuint (media_reqs->len, ==, 0);
}

/* A StreamARN that is no Kinesis Video stream ARN is refused at the door:
 * 400 naming the field, no session, nothing sent to KVS. */
static void
test_malformed_arn (Fixture *f, gconstpointer data)
{
  static const gchar *const bad[] = {
      /* not Kinesis Video */
      "arn:aws:kinesis:eu-west-2:111111111111:stream/callpipe-it",
      /* no creation time */
      "arn:aws:kinesisvideo:eu-west-2:111111111111:stream/callpipe-it",
      /* no region */
      "arn:aws:kinesisvideo::111111111111:stream/callpipe-it/1726677600000",
      /* a stream name KVS does not allow */
      "arn:aws:kinesisvideo:eu-west-2:111111111111:stream/a:b/1726677600000",
      "not-an-arn",
  };
  g_autofree gchar *fragment = fragment_number (0);
  g_autoptr (Reply) flat = NULL;
  g_autoptr (Reply) list = NULL;
  g_autoptr (JsonArray) log = NULL;
  gsize i;

  if (skip_without_peers (f))
    return;
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree gchar *event =
        connect_event (CONTACT_ID, bad[i], fragment, KVS_PEER_BASE_MS);
    g_autoptr (Reply) r = http (f, "POST", "/calls", TOKEN, event);

    assert_error (r, 400, "invalid_field", STREAM_ARN_FIELD);
  }
  flat = http (f, "POST", "/calls", TOKEN,
      "{\"contactId\": \"c-1\", \"streamArn\": "
      "\"arn:aws:kinesisvideo:eu-west-2:1:channel\"}");
  assert_error (flat, 400, "invalid_field", "streamArn");

  list = http (f, "GET", "/calls", TOKEN, NULL);
  g_assert_cmpuint (list->status, ==, 200);
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (jobj (list), "calls")),
      ==, 0);
  log = peer_requests (f);
  g_assert_cmpuint (json_array_get_length (log), ==, 0);
}

int
main (int argc, char **argv)
{
  cp_test_sanitizer_env_for_children ();
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func, mode) \
  g_test_add ("/callpiped/kvs-call/" path, Fixture, mode, setup, func, teardown)
  ADD ("malformed-arn", test_malformed_arn, NULL);
  ADD ("stream-not-found", test_stream_not_found, "env");
  ADD ("connect-call", test_connect_call, NULL);
  return g_test_run ();
}

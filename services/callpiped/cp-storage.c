/* callpiped — the storage directory and its signed media links */
#include "cp-storage.h"

#include "aws/awsconfig.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where objects of each kind go, under the storage root. */
static const gchar *const storage_dirs[] = {"recordings", "transcripts",
    "turns"};

struct _CpStorage
{
  gchar *root; /* canonical absolute path */
  guint8 secret[CP_STORAGE_SECRET_LEN];
  gsize secret_len;
  gchar *s3_base; /* s3://bucket[/prefix] or NULL */
  CpAwsCredentialsProvider *credentials; /* S3 only, made on first use */
};

GQuark
cp_storage_error_quark (void)
{
  return g_quark_from_static_string ("cp-storage-error-quark");
}

/* Hashing both sides first makes the comparison independent of where the
 * first difference is and of the secret's length. */
gboolean
cp_constant_time_equal (const gchar *a, const gchar *b)
{
  guint8 da[32], db[32];
  gsize la = sizeof (da), lb = sizeof (db);
  g_autoptr (GChecksum) ca = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GChecksum) cb = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 diff = 0;
  gsize i;

  g_checksum_update (ca, (const guchar *) a, strlen (a));
  g_checksum_update (cb, (const guchar *) b, strlen (b));
  g_checksum_get_digest (ca, da, &la);
  g_checksum_get_digest (cb, db, &lb);
  for (i = 0; i < sizeof (da); i++)
    diff |= da[i] ^ db[i];
  return diff == 0;
}

static gboolean
read_or_create_secret (const gchar *file, guint8 *out, GError **error)
{
  g_autofree gchar *text = NULL;
  g_autofree gchar *hex = NULL;
  gsize len = 0;
  guint i;

  if (g_file_get_contents (file, &text, &len, NULL)) {
    g_strstrip (text);
    if (strlen (text) != CP_STORAGE_SECRET_LEN * 2) {
      g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
          "%s: expected %d hex digits", file, CP_STORAGE_SECRET_LEN * 2);
      return FALSE;
    }
    for (i = 0; i < CP_STORAGE_SECRET_LEN; i++) {
      gint hi = g_ascii_xdigit_value (text[2 * i]);
      gint lo = g_ascii_xdigit_value (text[2 * i + 1]);

      if (hi < 0 || lo < 0) {
        g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
            "%s: not hex", file);
        return FALSE;
      }
      out[i] = (hi << 4) | lo;
    }
    return TRUE;
  }

  if (getrandom (out, CP_STORAGE_SECRET_LEN, 0) != CP_STORAGE_SECRET_LEN) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
        "getrandom: %s", g_strerror (errno));
    return FALSE;
  }
  hex = g_malloc (CP_STORAGE_SECRET_LEN * 2 + 2);
  for (i = 0; i < CP_STORAGE_SECRET_LEN; i++)
    g_snprintf (hex + 2 * i, 3, "%02x", out[i]);
  hex[CP_STORAGE_SECRET_LEN * 2] = '\n';
  hex[CP_STORAGE_SECRET_LEN * 2 + 1] = '\0';
  return g_file_set_contents_full (file, hex, -1,
      G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

static gboolean
make_dirs (const gchar *root, GError **error)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (storage_dirs); i++) {
    g_autofree gchar *dir = g_build_filename (root, storage_dirs[i], NULL);

    if (g_mkdir_with_parents (dir, 0750) != 0) {
      g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
          "cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  }
  return TRUE;
}

static gchar *
canonical (const gchar *path)
{
  char buf[PATH_MAX];

  if (realpath (path, buf) == NULL)
    return NULL;
  return g_strdup (buf);
}

CpStorage *
cp_storage_new_with_secret (const gchar *root, const guint8 *secret, gsize len)
{
  CpStorage *s = g_new0 (CpStorage, 1);

  s->root = canonical (root);
  if (s->root == NULL)
    s->root = g_canonicalize_filename (root, NULL);
  s->secret_len = MIN (len, sizeof (s->secret));
  memcpy (s->secret, secret, s->secret_len);
  return s;
}

CpStorage *
cp_storage_new (const gchar *root, const gchar *secret_file, GError **error)
{
  guint8 secret[CP_STORAGE_SECRET_LEN];
  CpStorage *s;

  if (!make_dirs (root, error)
      || !read_or_create_secret (secret_file, secret, error))
    return NULL;
  s = cp_storage_new_with_secret (root, secret, sizeof (secret));
  memset (secret, 0, sizeof (secret));
  return s;
}

void
cp_storage_free (CpStorage *s)
{
  if (s == NULL)
    return;
  memset (s->secret, 0, sizeof (s->secret));
  g_free (s->root);
  g_free (s->s3_base);
  if (s->credentials != NULL)
    cp_aws_credentials_provider_free (s->credentials);
  g_free (s);
}

/* @s3_uri is s3://bucket or s3://bucket/prefix, checked by the config. */
void
cp_storage_set_s3 (CpStorage *s, const gchar *s3_uri)
{
  g_free (s->s3_base);
  s->s3_base = g_strdup (s3_uri);
}

gboolean
cp_storage_is_s3 (CpStorage *s)
{
  return s->s3_base != NULL;
}

const gchar *
cp_storage_sink_element (CpStorage *s)
{
  return s->s3_base != NULL ? "s3sink" : "filesink";
}

const gchar *
cp_storage_source_element (CpStorage *s)
{
  return s->s3_base != NULL ? "s3src" : "filesrc";
}

/* Where the pipelines read or write the object @rel_path. */
gchar *
cp_storage_location (CpStorage *s, const gchar *rel_path)
{
  if (s->s3_base != NULL)
    return g_strconcat (s->s3_base, "/", rel_path, NULL);
  return g_build_filename (s->root, rel_path, NULL);
}

/* The local file for @rel_path: the object itself with a directory, the
 * spool copy with S3. */
gchar *
cp_storage_local_path (CpStorage *s, const gchar *rel_path)
{
  return g_build_filename (s->root, rel_path, NULL);
}

const gchar *
cp_storage_get_root (CpStorage *s)
{
  return s->root;
}

gchar *
cp_storage_recording_path (CpStorage *s, const gchar *session_id)
{
  g_autofree gchar *rel = g_strconcat ("recordings/", session_id, ".wav", NULL);

  return cp_storage_location (s, rel);
}

gchar *
cp_storage_transcript_path (CpStorage *s, const gchar *session_id)
{
  g_autofree gchar *rel =
      g_strconcat ("transcripts/", session_id, ".json", NULL);

  return cp_storage_location (s, rel);
}

gchar *
cp_storage_relative_path (CpStorage *s, const gchar *abs_path)
{
  const gchar *base = s->s3_base != NULL ? s->s3_base : s->root;
  gsize n = strlen (base);

  if (strncmp (abs_path, base, n) != 0 || abs_path[n] != '/')
    return NULL;
  return g_strdup (abs_path + n + 1);
}

static gchar *
compute_sig (CpStorage *s, const gchar *rel_path, const gchar *expires)
{
  g_autoptr (GHmac) h =
      g_hmac_new (G_CHECKSUM_SHA256, s->secret, s->secret_len);

  g_hmac_update (h, (const guchar *) rel_path, strlen (rel_path));
  g_hmac_update (h, (const guchar *) "\n", 1);
  g_hmac_update (h, (const guchar *) expires, strlen (expires));
  return g_strdup (g_hmac_get_string (h));
}

gchar *
cp_storage_sign (CpStorage *s, const gchar *rel_path, gint64 expires)
{
  g_autofree gchar *exp = g_strdup_printf ("%" G_GINT64_FORMAT, expires);
  g_autofree gchar *sig = compute_sig (s, rel_path, exp);
  g_autofree gchar *escaped = g_uri_escape_string (rel_path,
      G_URI_RESERVED_CHARS_ALLOWED_IN_PATH, FALSE);

  return g_strdup_printf ("/media/%s?expires=%s&sig=%s", escaped, exp, sig);
}

/* Only plain names: no empty, "." or ".." segments and no characters a
 * file system or a shell could read specially. */
gboolean
cp_storage_rel_path_is_safe (const gchar *rel_path)
{
  g_auto (GStrv) parts = NULL;
  guint i;

  if (*rel_path == '\0' || strlen (rel_path) > 1024)
    return FALSE;
  parts = g_strsplit (rel_path, "/", -1);
  for (i = 0; parts[i] != NULL; i++) {
    const gchar *p = parts[i];

    if (*p == '\0' || *p == '.')
      return FALSE;
    for (; *p != '\0'; p++) {
      if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-' && *p != '_')
        return FALSE;
    }
  }
  return TRUE;
}

gboolean
cp_storage_verify (CpStorage *s, const gchar *rel_path, const gchar *expires,
    const gchar *sig, gint64 now, GError **error)
{
  g_autofree gchar *want = NULL;
  gint64 exp;

  if (rel_path == NULL || !cp_storage_rel_path_is_safe (rel_path)) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "bad media path");
    return FALSE;
  }
  if (expires == NULL || sig == NULL
      || !g_ascii_string_to_signed (expires, 10, 0, G_MAXINT64, &exp, NULL)) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "the link needs expires and sig");
    return FALSE;
  }
  want = compute_sig (s, rel_path, expires);
  if (!cp_constant_time_equal (want, sig)) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "bad signature");
    return FALSE;
  }
  if (exp < now) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "the link has expired");
    return FALSE;
  }
  return TRUE;
}

gchar *
cp_storage_resolve (CpStorage *s, const gchar *rel_path, GError **error)
{
  g_autofree gchar *joined = NULL;
  g_autofree gchar *real = NULL;

  if (!cp_storage_rel_path_is_safe (rel_path)) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "bad media path");
    return NULL;
  }
  joined = g_build_filename (s->root, rel_path, NULL);
  real = canonical (joined);
  if (real == NULL) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_NOT_FOUND,
        "no such media");
    return NULL;
  }
  /* A symlink inside storage must not lead out of it. */
  if (strncmp (real, s->root, strlen (s->root)) != 0
      || real[strlen (s->root)] != '/') {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "bad media path");
    return NULL;
  }
  return g_steal_pointer (&real);
}

/* Virtual-hosted style needs a bucket that is one DNS label under the
 * https wildcard certificate; a custom endpoint (a local S3) gets path
 * style, as s3sink uses. */
static gboolean
virtual_host_bucket (const gchar *bucket)
{
  gsize len = strlen (bucket);
  const gchar *p;

  if (len < 3 || len > 63 || bucket[0] == '-' || bucket[len - 1] == '-')
    return FALSE;
  for (p = bucket; *p != '\0'; p++) {
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
      return FALSE;
  }
  return TRUE;
}

static gchar *
presign (CpStorage *s, const gchar *bucket, const gchar *key, guint ttl,
    GError **error)
{
  g_autofree gchar *region = cp_aws_resolve_region (NULL, NULL);
  g_autofree gchar *endpoint = NULL;
  g_autofree gchar *authority = NULL;
  g_autofree gchar *path = NULL;
  g_autoptr (GUri) uri = NULL;
  g_autoptr (CpAwsCredentials) creds = NULL;
  g_autoptr (CpAwsHttpRequest) req = NULL;
  g_autoptr (CpAwsSigV4Result) res = NULL;
  CpAwsSigningParams params = {0};
  gboolean custom = cp_aws_getenv ("AWS_ENDPOINT_URL_S3") != NULL
      || cp_aws_getenv ("AWS_ENDPOINT_URL") != NULL;
  const gchar *host;
  gint port;

  /* The region s3sink and s3src fall back to as well. */
  if (region == NULL)
    region = g_strdup ("us-east-1");
  endpoint = cp_aws_resolve_endpoint_full (NULL, "S3", "s3", region, error);
  if (endpoint == NULL)
    return NULL;
  uri = g_uri_parse (endpoint, G_URI_FLAGS_NONE, error);
  if (uri == NULL)
    return NULL;
  host = g_uri_get_host (uri);
  port = g_uri_get_port (uri);
  if (!custom && !strcmp (region, "us-east-1"))
    host = "s3.amazonaws.com";
  if (!custom && virtual_host_bucket (bucket)) {
    authority = g_strdup_printf ("%s.%s", bucket, host);
    path = g_strconcat ("/", key, NULL);
  } else {
    authority =
        port > 0 ? g_strdup_printf ("%s:%d", host, port) : g_strdup (host);
    path = g_strconcat ("/", bucket, "/", key, NULL);
  }
  if (s->credentials == NULL)
    s->credentials =
        cp_aws_credentials_provider_new_default (NULL, NULL, NULL, NULL);
  creds = cp_aws_credentials_provider_get (s->credentials, NULL, error);
  if (creds == NULL)
    return NULL;
  req = cp_aws_http_request_new ("GET", path);
  cp_aws_http_request_add_header (req, "Host", authority);
  params.access_key_id = creds->access_key_id;
  params.secret_access_key = creds->secret_access_key;
  params.session_token = creds->session_token;
  params.region = region;
  params.service = "s3";
  params.time = g_get_real_time () / G_USEC_PER_SEC;
  params.expires = MIN (ttl, CP_AWS_PRESIGN_MAX_EXPIRES);
  res = cp_aws_sigv4_presign (req, &params, error);
  if (res == NULL)
    return NULL;
  return g_strdup_printf ("%s://%s%s?%s", g_uri_get_scheme (uri), authority,
      res->path, res->query_string);
}

/* A link to the object at @location that works for @ttl seconds: a
 * presigned S3 URL, or a signed /media link on @base_url. */
gchar *
cp_storage_link (CpStorage *s, const gchar *location, const gchar *base_url,
    guint ttl, GError **error)
{
  g_autofree gchar *rel = cp_storage_relative_path (s, location);
  g_autofree gchar *signed_path = NULL;

  if (rel == NULL) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FORBIDDEN,
        "%s is not in storage", location);
    return NULL;
  }
  if (s->s3_base != NULL) {
    const gchar *bucket_start = s->s3_base + strlen ("s3://");
    const gchar *slash = strchr (bucket_start, '/');
    g_autofree gchar *bucket = slash
        ? g_strndup (bucket_start, slash - bucket_start)
        : g_strdup (bucket_start);
    g_autofree gchar *key =
        g_strconcat (slash ? slash + 1 : "", slash ? "/" : "", rel, NULL);

    return presign (s, bucket, key, ttl, error);
  }
  signed_path =
      cp_storage_sign (s, rel, g_get_real_time () / G_USEC_PER_SEC + ttl);
  return g_strconcat (base_url, signed_path, NULL);
}

/* ---- recordings a crash left unfinished ---- */

/* The data chunk starts within this many bytes (wavenc: 44, or a little
 * more with a LIST chunk of tags before it); checking a recording reads no
 * more than this. */
#define WAV_HEAD_MAX 4096

typedef struct
{
  guint32 rate;
  guint16 block_align;
  gsize data_at; /* where the samples start */
  guint32 data_size; /* as the header says */
  guint32 riff_size;
} WavLayout;

static guint32
read_le32 (const guint8 *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32) p[3] << 24);
}

static void
write_le32 (guint8 *p, guint32 v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = v >> 24;
}

/* RIFF/WAVE, a fmt chunk, then the data chunk's header within @len. */
static gboolean
parse_wav_head (const guint8 *d, gsize len, WavLayout *w)
{
  gboolean have_fmt = FALSE;
  gsize off = 12;

  if (len < 12 || memcmp (d, "RIFF", 4) != 0 || memcmp (d + 8, "WAVE", 4) != 0)
    return FALSE;
  w->riff_size = read_le32 (d + 4);
  while (off + 8 <= len) {
    guint32 size = read_le32 (d + off + 4);

    if (memcmp (d + off, "data", 4) == 0) {
      if (!have_fmt)
        return FALSE;
      w->data_at = off + 8;
      w->data_size = size;
      return TRUE;
    }
    if (memcmp (d + off, "fmt ", 4) == 0) {
      if (size < 16 || off + 8 + 16 > len)
        return FALSE;
      w->rate = read_le32 (d + off + 12);
      w->block_align = d[off + 20] | (d[off + 21] << 8);
      if (w->block_align == 0)
        return FALSE;
      have_fmt = TRUE;
    }
    /* A chunk before the data must be complete. */
    if (size > len - off - 8)
      return FALSE;
    off += 8 + size + (size & 1);
  }
  return FALSE;
}

static gboolean
io_error (GError **error, const gchar *path, const gchar *what, int errsv)
{
  g_set_error (error, CP_STORAGE_ERROR,
      errsv == ENOENT ? CP_STORAGE_ERROR_NOT_FOUND : CP_STORAGE_ERROR_FAILED,
      "%s: %s: %s", path, what, g_strerror (errsv));
  return FALSE;
}

/* Reads @fd's head into @w and its length into @file_len. */
static gboolean
read_wav_layout (int fd, const gchar *path, WavLayout *w, guint64 *file_len,
    GError **error)
{
  g_autofree guint8 *head = NULL;
  struct stat st;
  gsize want, got = 0;

  if (fstat (fd, &st) != 0)
    return io_error (error, path, "stat", errno);
  *file_len = st.st_size;
  want = MIN ((guint64) st.st_size, WAV_HEAD_MAX);
  head = g_malloc (MAX (want, 1));
  while (got < want) {
    ssize_t n = pread (fd, head + got, want - got, got);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return io_error (error, path, "read", n < 0 ? errno : EIO);
    got += n;
  }
  if (!parse_wav_head (head, got, w)) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
        "%s holds no WAV header (%" G_GUINT64_FORMAT " bytes reached the "
        "disk)",
        path, *file_len);
    return FALSE;
  }
  return TRUE;
}

static gboolean
layout_is_final (const WavLayout *w, guint64 file_len)
{
  return w->riff_size == file_len - 8 && w->data_at + w->data_size <= file_len;
}

static int
open_wav (const gchar *path, int flags, GError **error)
{
  int fd = g_open (path, flags | O_CLOEXEC, 0);

  if (fd < 0)
    io_error (error, path, "open", errno);
  return fd;
}

gboolean
cp_storage_check_wav (const gchar *path, CpStorageWav *wav, GError **error)
{
  WavLayout w = {0};
  guint64 file_len = 0;
  int fd = open_wav (path, O_RDONLY, error);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = read_wav_layout (fd, path, &w, &file_len, error);
  close (fd);
  if (!ok)
    return FALSE;
  memset (wav, 0, sizeof (*wav));
  wav->rate = w.rate;
  if (layout_is_final (&w, file_len)) {
    wav->state = CP_STORAGE_WAV_COMPLETE;
    wav->frames = w.data_size / w.block_align;
  } else {
    wav->state = CP_STORAGE_WAV_REPAIRED;
    wav->frames = (file_len - w.data_at) / w.block_align;
    wav->cut_bytes = (file_len - w.data_at) % w.block_align;
  }
  return TRUE;
}

static gboolean
write_at (int fd, const gchar *path, const guint8 *p, gsize len, off_t at,
    GError **error)
{
  while (len > 0) {
    ssize_t n = pwrite (fd, p, len, at);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return io_error (error, path, "write", n < 0 ? errno : EIO);
    p += n;
    len -= n;
    at += n;
  }
  return TRUE;
}

/* The samples that reached the disk become the data chunk: its size and
 * the RIFF size are set from the file's length, after a partial last
 * frame is cut off. A header that already agrees is left alone. */
gboolean
cp_storage_repair_wav (const gchar *path, CpStorageWav *wav, GError **error)
{
  WavLayout w = {0};
  guint64 file_len = 0, avail, keep;
  guint8 size[4];
  int fd = open_wav (path, O_RDWR, error);
  gboolean ok = FALSE;

  if (fd < 0)
    return FALSE;
  if (!read_wav_layout (fd, path, &w, &file_len, error))
    goto out;
  memset (wav, 0, sizeof (*wav));
  wav->rate = w.rate;
  if (layout_is_final (&w, file_len)) {
    wav->state = CP_STORAGE_WAV_COMPLETE;
    wav->frames = w.data_size / w.block_align;
    ok = TRUE;
    goto out;
  }
  avail = file_len - w.data_at;
  keep = avail - avail % w.block_align;
  if (w.data_at + keep - 8 > G_MAXUINT32) {
    g_set_error (error, CP_STORAGE_ERROR, CP_STORAGE_ERROR_FAILED,
        "%s: %" G_GUINT64_FORMAT " bytes are more than a WAV header can "
        "describe",
        path, file_len);
    goto out;
  }
  if (keep < avail && ftruncate (fd, w.data_at + keep) != 0) {
    io_error (error, path, "truncate", errno);
    goto out;
  }
  write_le32 (size, keep);
  if (!write_at (fd, path, size, 4, w.data_at - 4, error))
    goto out;
  write_le32 (size, w.data_at + keep - 8);
  if (!write_at (fd, path, size, 4, 4, error))
    goto out;
  if (fsync (fd) != 0) {
    io_error (error, path, "fsync", errno);
    goto out;
  }
  wav->state = CP_STORAGE_WAV_REPAIRED;
  wav->frames = keep / w.block_align;
  wav->cut_bytes = avail - keep;
  ok = TRUE;
out:
  close (fd);
  return ok;
}

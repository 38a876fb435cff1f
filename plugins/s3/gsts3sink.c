/* callpipe — s3sink: S3 multipart upload with parts in flight
 *
 * SECTION:element-s3sink
 * @title: s3sink
 *
 * Writes its input to an S3 object. Data is cut into parts of
 * #GstS3Sink:part-size bytes, which a pool of #GstS3Sink:max-inflight-parts
 * worker threads uploads concurrently (UploadPart with Content-MD5,
 * retried with the AWS SDK standard policy), so the streaming thread only
 * copies bytes. When every part buffer is in use, the streaming thread
 * waits.
 *
 * Muxers that finish by going back to rewrite their header (wavenc,
 * qtmux and matroskamux when not streamable) work: with
 * #GstS3Sink:header-rewrite (default), the first part stays in memory
 * until EOS and is uploaded last (S3 assembles parts by number, not by
 * arrival), so a byte SEGMENT event that moves the write position into
 * the first part-size bytes overwrites them there. Writing into the part
 * still being filled (not sent yet) is allowed too, and so is going back
 * to the end. A move to any other place (bytes already sent) is an error.
 * The SEEKING query answers seekable in bytes for [0, part-size). Memory
 * stays within part-size × (max-inflight-parts + 2), or part-size ×
 * (max-inflight-parts + 1) with header-rewrite=false (then only the
 * unsent part can be rewritten, which covers objects smaller than one
 * part).
 *
 * EOS completes the upload, checks that S3's ETag is the MD5 of the part
 * MD5s, posts an `s3sink-complete` element message (`bucket`, `key`,
 * `etag`, `size`, `parts`) and lets EOS go on. An object smaller than one
 * part is sent with a single PutObject. When the pipeline stops without
 * EOS, or a part fails for good, #GstS3Sink:on-error decides: `abort`
 * (default) leaves no multipart upload behind, `complete` stores what was
 * uploaded.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 audiotestsrc num-buffers=500 ! wavenc ! \
 *     s3sink location=s3://my-bucket/calls/test.wav content-type=audio/wav
 * ]|
 * Against a local S3-compatible store (path-style URLs):
 * |[
 * gst-launch-1.0 filesrc location=call.wav ! s3sink \
 *     location=s3://recordings/call.wav endpoint=http://127.0.0.1:5000 \
 *     access-key=test secret-key=test region=us-east-1
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsts3sink.h"
#include "gsts3elements.h"
#include "s3client.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_s3_sink_debug);
#define GST_CAT_DEFAULT gst_s3_sink_debug

#define DEFAULT_LOCATION NULL
#define DEFAULT_ENDPOINT NULL
#define DEFAULT_REGION NULL
#define DEFAULT_FORCE_PATH_STYLE FALSE
#define DEFAULT_PART_SIZE (8 * 1024 * 1024)
#define DEFAULT_MAX_INFLIGHT_PARTS 4
#define MAX_INFLIGHT_PARTS 64
#define DEFAULT_CONTENT_TYPE NULL
#define DEFAULT_STORAGE_CLASS NULL
#define DEFAULT_ON_ERROR GST_S3_SINK_ON_ERROR_ABORT
#define DEFAULT_REQUEST_TIMEOUT 30000
#define DEFAULT_RETRY_ATTEMPTS 3
#define DEFAULT_HEADER_REWRITE TRUE

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_ENDPOINT,
  PROP_REGION,
  PROP_FORCE_PATH_STYLE,
  PROP_ACCESS_KEY,
  PROP_SECRET_KEY,
  PROP_SESSION_TOKEN,
  PROP_PART_SIZE,
  PROP_MAX_INFLIGHT_PARTS,
  PROP_CONTENT_TYPE,
  PROP_METADATA,
  PROP_STORAGE_CLASS,
  PROP_ON_ERROR,
  PROP_REQUEST_TIMEOUT,
  PROP_RETRY_ATTEMPTS,
  PROP_HEADER_REWRITE,
};

typedef struct
{
  guint8 *data; /* part_size bytes */
  gsize len;
  guint number; /* 1-based, set when queued */
} S3Part;

typedef struct
{
  gchar *etag; /* NULL until uploaded */
  guint8 md5[CP_S3_MD5_LEN];
  gsize size;
} S3PartResult;

struct _GstS3Sink
{
  GstBaseSink parent;

  /* Properties, under the object lock. */
  gchar *location;
  gchar *endpoint;
  gchar *region;
  gboolean force_path_style;
  gboolean force_path_style_set;
  gchar *access_key;
  gchar *secret_key;
  gchar *session_token;
  guint64 part_size;
  guint max_inflight_parts;
  gchar *content_type;
  GstStructure *metadata;
  gchar *storage_class;
  GstS3SinkOnError on_error;
  guint request_timeout;
  guint retry_attempts;
  gboolean header_rewrite;

  /* Fixed from start() to stop(). */
  CpS3Client *client;
  CpS3Location loc;
  CpS3ObjectOptions options;
  gchar *options_content_type;
  gchar *options_storage_class;
  gsize upload_part_size;
  GstS3SinkOnError upload_on_error;
  gboolean hold_first; /* header-rewrite */
  guint n_workers;
  GThread **workers;
  GCancellable *worker_cancellable; /* cancelled to abort uploads */

  /* The streaming thread's: the part being filled and where it starts in
   * the object, part 1 while it is held (hold_first), the object's size
   * and where the next byte goes (below size after a SEGMENT that went
   * back to rewrite). */
  S3Part *current;
  guint64 current_start;
  S3Part *first;
  guint64 size;
  guint64 position;
  GCancellable *stream_cancellable; /* EOS requests; unlock cancels */

  /* Lock order: the object lock is never taken with this one held.
   * Everything below is under it. */
  GMutex lock;
  GCond cond;
  GQueue free_parts; /* of S3Part, buffers to reuse */
  guint n_allocated; /* parts in existence: <= n_workers + 1 + hold_first */
  GQueue queue; /* of S3Part, ready to upload */
  guint active; /* parts being uploaded */
  guint parts_queued; /* the last part number given out (to a held part 1
                       * too) */
  GArray *results; /* of S3PartResult, by part number - 1 */
  gchar *upload_id;
  gboolean creating; /* CreateMultipartUpload in flight */
  GError *error; /* the first failure, for the stream */
  GstFlowReturn flow_ret;
  gboolean flushing;
  gboolean shutdown;
  gboolean completed;
};

#define S3_SINK_LOCK(s) g_mutex_lock (&(s)->lock)
#define S3_SINK_UNLOCK(s) g_mutex_unlock (&(s)->lock)
#define S3_SINK_WAIT(s) g_cond_wait (&(s)->cond, &(s)->lock)
#define S3_SINK_BROADCAST(s) g_cond_broadcast (&(s)->cond)

static void gst_s3_sink_uri_handler_init (gpointer g_iface,
    gpointer iface_data);

#define gst_s3_sink_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstS3Sink, gst_s3_sink, GST_TYPE_BASE_SINK,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gst_s3_sink_uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE (s3sink, "s3sink", GST_RANK_SECONDARY,
    GST_TYPE_S3_SINK);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

GType
gst_s3_sink_on_error_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_S3_SINK_ON_ERROR_ABORT,
          "Abort the multipart upload: store nothing, leave nothing behind",
          "abort"},
      {GST_S3_SINK_ON_ERROR_COMPLETE,
          "Store what was uploaded, up to the first failed part", "complete"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstS3SinkOnError", values);

    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---- part buffers and results (under the lock) ---- */

static void
part_free (S3Part *part)
{
  g_free (part->data);
  g_free (part);
}

static void
release_part (GstS3Sink *self, S3Part *part)
{
  part->len = 0;
  part->number = 0;
  g_queue_push_head (&self->free_parts, part);
  S3_SINK_BROADCAST (self);
}

static void
set_error (GstS3Sink *self, GError *error)
{
  if (self->error == NULL
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    GST_WARNING_OBJECT (self, "%s", error->message);
    self->error = error;
  } else {
    g_error_free (error);
  }
  self->flow_ret = GST_FLOW_ERROR;
  S3_SINK_BROADCAST (self);
}

static S3PartResult *
part_result (GstS3Sink *self, guint number)
{
  if (self->results->len < number)
    g_array_set_size (self->results, number);
  return &g_array_index (self->results, S3PartResult, number - 1);
}

static void
clear_result (S3PartResult *result)
{
  g_free (result->etag);
}

static void
drop_queued_parts (GstS3Sink *self)
{
  S3Part *part;

  while ((part = g_queue_pop_head (&self->queue)))
    release_part (self, part);
}

/* ---- the upload workers ---- */

static void
compute_md5 (const guint8 *data, gsize len, guint8 md5[CP_S3_MD5_LEN])
{
  GChecksum *sum = g_checksum_new (G_CHECKSUM_MD5);
  gsize digest_len = CP_S3_MD5_LEN;

  g_checksum_update (sum, data, len);
  g_checksum_get_digest (sum, md5, &digest_len);
  g_checksum_free (sum);
}

/* Called with the lock held; returns with it held. The first worker to
 * need the upload creates it while the others wait. */
static gboolean
ensure_upload (GstS3Sink *self)
{
  GError *error = NULL;
  gchar *upload_id = NULL;
  gboolean ok;

  while (self->creating)
    S3_SINK_WAIT (self);
  if (self->upload_id)
    return TRUE;
  if (self->flow_ret != GST_FLOW_OK)
    return FALSE;

  self->creating = TRUE;
  S3_SINK_UNLOCK (self);
  ok = cp_s3_client_create_multipart_upload (self->client, &self->loc,
      &self->options, &upload_id, self->worker_cancellable, &error);
  S3_SINK_LOCK (self);
  self->creating = FALSE;
  if (ok) {
    GST_INFO_OBJECT (self, "Multipart upload of s3://%s/%s started",
        self->loc.bucket, self->loc.key);
    self->upload_id = upload_id;
  } else {
    set_error (self, error);
  }
  S3_SINK_BROADCAST (self);
  return ok;
}

static void
upload_one (GstS3Sink *self, S3Part *part)
{
  GError *error = NULL;
  GBytes *body;
  gchar *etag = NULL;
  guint8 md5[CP_S3_MD5_LEN];
  const gchar *upload_id = self->upload_id;
  gboolean ok;

  /* upload_id does not change until stop() has joined the workers. */
  S3_SINK_UNLOCK (self);
  compute_md5 (part->data, part->len, md5);
  body = g_bytes_new_static (part->data, part->len);
  GST_DEBUG_OBJECT (self, "Uploading part %u (%" G_GSIZE_FORMAT " bytes)",
      part->number, part->len);
  ok = cp_s3_client_upload_part (self->client, &self->loc, upload_id,
      part->number, body, md5, &etag, self->worker_cancellable, &error);
  g_bytes_unref (body);
  S3_SINK_LOCK (self);

  if (ok) {
    S3PartResult *result = part_result (self, part->number);

    GST_DEBUG_OBJECT (self, "Part %u stored, ETag %s", part->number, etag);
    result->etag = etag;
    memcpy (result->md5, md5, CP_S3_MD5_LEN);
    result->size = part->len;
  } else {
    set_error (self, error);
    /* Under abort, parts still in flight are wasted work. */
    if (self->upload_on_error == GST_S3_SINK_ON_ERROR_ABORT)
      g_cancellable_cancel (self->worker_cancellable);
  }
}

static gpointer
worker_thread (gpointer data)
{
  GstS3Sink *self = data;

  S3_SINK_LOCK (self);
  for (;;) {
    S3Part *part;

    while (!self->shutdown && g_queue_is_empty (&self->queue))
      S3_SINK_WAIT (self);
    if (self->flow_ret != GST_FLOW_OK)
      drop_queued_parts (self);
    part = g_queue_pop_head (&self->queue);
    if (part == NULL)
      break;
    self->active++;
    if (ensure_upload (self))
      upload_one (self, part);
    self->active--;
    release_part (self, part);
  }
  S3_SINK_UNLOCK (self);
  return NULL;
}

/* ---- the streaming thread ---- */

static void
post_stored_error (GstS3Sink *self)
{
  GError *error;

  S3_SINK_LOCK (self);
  error = g_steal_pointer (&self->error);
  S3_SINK_UNLOCK (self);
  if (error == NULL)
    return;
  if (g_error_matches (error, CP_S3_ERROR, CP_S3_ERROR_ACCESS_DENIED))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("%s", error->message),
        (NULL));
  else if (g_error_matches (error, CP_S3_ERROR, CP_S3_ERROR_NOT_FOUND))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", error->message),
        (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("%s", error->message), (NULL));
  g_error_free (error);
}

/* Called with the lock held. */
static gboolean
queue_current (GstS3Sink *self)
{
  if (self->parts_queued >= CP_S3_MAX_PARTS) {
    g_autofree gchar *limit =
        g_format_size_full (cp_s3_max_object_size (self->upload_part_size),
            G_FORMAT_SIZE_IEC_UNITS);

    set_error (self,
        g_error_new (CP_S3_ERROR, CP_S3_ERROR_INVALID_ARGUMENT,
            "s3://%s/%s would need more than %u parts of %" G_GSIZE_FORMAT
            " bytes (%s at most): set a larger part-size",
            self->loc.bucket, self->loc.key, CP_S3_MAX_PARTS,
            self->upload_part_size, limit));
    return FALSE;
  }
  self->current->number = ++self->parts_queued;
  g_queue_push_tail (&self->queue, g_steal_pointer (&self->current));
  S3_SINK_BROADCAST (self);
  return TRUE;
}

/* Called with the lock held: waits for a free part buffer. */
static GstFlowReturn
acquire_part (GstS3Sink *self)
{
  while (TRUE) {
    if (self->flushing)
      return GST_FLOW_FLUSHING;
    if (self->flow_ret != GST_FLOW_OK)
      return self->flow_ret;
    self->current = g_queue_pop_head (&self->free_parts);
    if (self->current)
      return GST_FLOW_OK;
    if (self->n_allocated < self->n_workers + (self->hold_first ? 2 : 1)) {
      self->current = g_new0 (S3Part, 1);
      self->current->data = g_malloc (self->upload_part_size);
      self->n_allocated++;
      return GST_FLOW_OK;
    }
    S3_SINK_WAIT (self);
  }
}

/* Called with the lock held: the full part being filled makes way for the
 * next one. Part 1 stays here while header-rewrite holds it; any other
 * part goes to the workers. */
static gboolean
retire_current (GstS3Sink *self)
{
  if (self->hold_first && self->parts_queued == 0) {
    self->current->number = ++self->parts_queued;
    self->first = g_steal_pointer (&self->current);
    return TRUE;
  }
  return queue_current (self);
}

/* The part still in memory that holds byte @pos of the object (part 1
 * while held, or the part being filled), with where it starts in
 * @start; NULL when that byte was handed to the workers. */
static S3Part *
held_part_at (GstS3Sink *self, guint64 pos, guint64 *start)
{
  if (self->first && pos < self->first->len) {
    *start = 0;
    return self->first;
  }
  if (self->current && pos >= self->current_start
      && pos < self->current_start + self->current->len) {
    *start = self->current_start;
    return self->current;
  }
  return NULL;
}

static GstFlowReturn
append (GstS3Sink *self, const guint8 *data, gsize len)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gsize offset = 0;

  while (offset < len) {
    gsize n;

    /* A full part is queued only once more data arrives, so an object
     * of exactly one part is a single PutObject. */
    if (self->current == NULL || self->current->len == self->upload_part_size) {
      S3_SINK_LOCK (self);
      if (self->current && !retire_current (self))
        ret = GST_FLOW_ERROR;
      else
        ret = acquire_part (self);
      S3_SINK_UNLOCK (self);
      if (ret != GST_FLOW_OK)
        break;
      self->current_start = self->size;
    }
    n = MIN (len - offset, self->upload_part_size - self->current->len);
    memcpy (self->current->data + self->current->len, data + offset, n);
    self->current->len += n;
    self->size += n;
    offset += n;
  }
  self->position = self->size;
  return ret;
}

/* Writes at the position a SEGMENT moved back to, as far as the end of
 * the object; returns the bytes written in @written, or FALSE when they
 * would reach bytes already handed to the workers. */
static gboolean
overwrite (GstS3Sink *self, const guint8 *data, gsize len, gsize *written)
{
  *written = 0;
  while (*written < len && self->position < self->size) {
    guint64 start;
    S3Part *part = held_part_at (self, self->position, &start);
    gsize n;

    if (part == NULL)
      return FALSE;
    n = MIN (len - *written, start + part->len - self->position);
    memcpy (part->data + (self->position - start), data + *written, n);
    self->position += n;
    *written += n;
  }
  return TRUE;
}

/* Posts why upstream cannot write at @pos, and fails the stream: the
 * buffers that follow would land at the wrong place. */
static void
refuse_position (GstS3Sink *self, guint64 pos)
{
  S3_SINK_LOCK (self);
  self->flow_ret = GST_FLOW_ERROR;
  S3_SINK_BROADCAST (self);
  S3_SINK_UNLOCK (self);
  GST_ELEMENT_ERROR (self, RESOURCE, SEEK,
      ("Cannot write at byte %" G_GUINT64_FORMAT " of s3://%s/%s: that part "
       "of the object was uploaded already",
          pos, self->loc.bucket, self->loc.key),
      ("The object has %" G_GUINT64_FORMAT " bytes; s3sink can go back "
       "into the first part (%" G_GSIZE_FORMAT " bytes, with "
       "header-rewrite=true; it is %s) and into the part not sent yet "
       "(from byte %" G_GUINT64_FORMAT ")",
          self->size, self->upload_part_size, self->hold_first ? "on" : "off",
          self->current_start));
}

static GstFlowReturn
gst_s3_sink_render (GstBaseSink *sink, GstBuffer *buffer)
{
  GstS3Sink *self = GST_S3_SINK (sink);
  GstFlowReturn ret;
  GstMapInfo map;
  gsize written = 0;

  S3_SINK_LOCK (self);
  ret = self->flow_ret;
  S3_SINK_UNLOCK (self);
  if (ret != GST_FLOW_OK) {
    post_stored_error (self);
    return ret;
  }
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE, (NULL),
        ("Failed to map the buffer"));
    return GST_FLOW_ERROR;
  }

  if (self->position < self->size
      && !overwrite (self, map.data, map.size, &written)) {
    gst_buffer_unmap (buffer, &map);
    refuse_position (self, self->position);
    return GST_FLOW_ERROR;
  }
  if (written < map.size)
    ret = append (self, map.data + written, map.size - written);
  gst_buffer_unmap (buffer, &map);

  if (ret == GST_FLOW_ERROR)
    post_stored_error (self);
  return ret;
}

static GstStructure *
complete_message (GstS3Sink *self, const gchar *etag, guint64 size, guint parts)
{
  return gst_structure_new ("s3sink-complete", "bucket", G_TYPE_STRING,
      self->loc.bucket, "key", G_TYPE_STRING, self->loc.key, "etag",
      G_TYPE_STRING, etag, "size", G_TYPE_UINT64, size, "parts", G_TYPE_UINT,
      parts, NULL);
}

/* Called with the lock held: the ETags and MD5s of parts 1..n. */
static gboolean
collect_parts (GstS3Sink *self, guint n, GPtrArray *etags, GByteArray *md5s,
    guint64 *size)
{
  guint i;

  *size = 0;
  for (i = 1; i <= n; i++) {
    S3PartResult *r = part_result (self, i);

    if (r->etag == NULL)
      return FALSE;
    g_ptr_array_add (etags, g_strdup (r->etag));
    g_byte_array_append (md5s, r->md5, CP_S3_MD5_LEN);
    *size += r->size;
  }
  return TRUE;
}

static gboolean
complete_upload (GstS3Sink *self, guint n_parts, GCancellable *cancellable,
    GError **error)
{
  g_autoptr (GPtrArray) etags = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GByteArray) md5s = g_byte_array_new ();
  g_autofree gchar *etag = NULL;
  guint64 size;

  S3_SINK_LOCK (self);
  collect_parts (self, n_parts, etags, md5s, &size);
  S3_SINK_UNLOCK (self);
  if (!cp_s3_client_complete_multipart_upload (self->client, &self->loc,
          self->upload_id, etags, md5s, &etag, cancellable, error))
    return FALSE;
  GST_INFO_OBJECT (self,
      "s3://%s/%s stored: %u parts, %" G_GUINT64_FORMAT " bytes, ETag %s",
      self->loc.bucket, self->loc.key, n_parts, size, etag);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          complete_message (self, etag, size, n_parts)));
  return TRUE;
}

static gboolean
put_current (GstS3Sink *self, GCancellable *cancellable, GError **error)
{
  g_autoptr (GBytes) body = NULL;
  g_autofree gchar *etag = NULL;
  gsize len = self->current ? self->current->len : 0;

  body = g_bytes_new_static (len ? self->current->data : NULL, len);
  if (!cp_s3_client_put_object (self->client, &self->loc, body, &self->options,
          &etag, cancellable, error))
    return FALSE;
  GST_INFO_OBJECT (self,
      "s3://%s/%s stored: %" G_GSIZE_FORMAT " bytes, ETag %s", self->loc.bucket,
      self->loc.key, len, etag);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          complete_message (self, etag, len, 1)));
  return TRUE;
}

/* EOS: send what is left, wait for every part, complete. */
static gboolean
finish_upload (GstS3Sink *self)
{
  GCancellable *cancellable;
  GError *error = NULL;
  gboolean multipart;
  guint n_parts;
  gboolean ok;

  S3_SINK_LOCK (self);
  cancellable = g_object_ref (self->stream_cancellable);
  multipart = self->parts_queued > 0;
  if (multipart && self->current && self->current->len > 0
      && !queue_current (self))
    goto failed;
  /* Part 1 goes last: whatever the muxer rewrote in it is in now. */
  if (self->first) {
    g_queue_push_tail (&self->queue, g_steal_pointer (&self->first));
    S3_SINK_BROADCAST (self);
  }
  while (multipart && self->flow_ret == GST_FLOW_OK && !self->flushing
      && (!g_queue_is_empty (&self->queue) || self->active > 0))
    S3_SINK_WAIT (self);
  if (self->flow_ret != GST_FLOW_OK)
    goto failed;
  if (self->flushing) {
    S3_SINK_UNLOCK (self);
    g_object_unref (cancellable);
    return FALSE;
  }
  n_parts = self->parts_queued;
  S3_SINK_UNLOCK (self);

  if (multipart)
    ok = complete_upload (self, n_parts, cancellable, &error);
  else
    ok = put_current (self, cancellable, &error);
  g_object_unref (cancellable);

  S3_SINK_LOCK (self);
  if (ok)
    self->completed = TRUE;
  else
    set_error (self, error);
  S3_SINK_UNLOCK (self);
  if (!ok)
    post_stored_error (self);
  return ok;

failed:
  S3_SINK_UNLOCK (self);
  g_object_unref (cancellable);
  post_stored_error (self);
  return FALSE;
}

/* A byte SEGMENT moves where the next buffer goes: to the end, or back
 * into a part still in memory. */
static gboolean
move_to (GstS3Sink *self, guint64 pos)
{
  guint64 start;

  if (pos != self->size
      && (pos > self->size || held_part_at (self, pos, &start) == NULL)) {
    refuse_position (self, pos);
    return FALSE;
  }
  if (pos != self->position)
    GST_DEBUG_OBJECT (self,
        "Writing at byte %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, pos,
        self->size);
  self->position = pos;
  return TRUE;
}

static gboolean
gst_s3_sink_event (GstBaseSink *sink, GstEvent *event)
{
  GstS3Sink *self = GST_S3_SINK (sink);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      if (!finish_upload (self)) {
        gst_event_unref (event);
        return FALSE;
      }
      break;
    case GST_EVENT_SEGMENT: {
      const GstSegment *segment;

      /* Muxers go back to rewrite their header with a byte SEGMENT. */
      gst_event_parse_segment (event, &segment);
      if (segment->format == GST_FORMAT_BYTES
          && !move_to (self, segment->start)) {
        gst_event_unref (event);
        return FALSE;
      }
      break;
    }
    default:
      break;
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (sink, event);
}

static gboolean
gst_s3_sink_query (GstBaseSink *sink, GstQuery *query)
{
  GstS3Sink *self = GST_S3_SINK (sink);

  if (GST_QUERY_TYPE (query) == GST_QUERY_SEEKING) {
    GstFormat format;
    gboolean seekable;
    guint64 part_size;

    gst_query_parse_seeking (query, &format, NULL, NULL, NULL);
    GST_OBJECT_LOCK (self);
    seekable = format == GST_FORMAT_BYTES && self->header_rewrite;
    part_size = self->part_size;
    GST_OBJECT_UNLOCK (self);
    /* The range that stays rewritable until EOS: the first part. */
    if (seekable)
      gst_query_set_seeking (query, format, TRUE, 0, (gint64) part_size);
    else
      gst_query_set_seeking (query, format, FALSE, 0, -1);
    return TRUE;
  }
  return GST_BASE_SINK_CLASS (parent_class)->query (sink, query);
}

static gboolean
gst_s3_sink_unlock (GstBaseSink *sink)
{
  GstS3Sink *self = GST_S3_SINK (sink);

  S3_SINK_LOCK (self);
  self->flushing = TRUE;
  S3_SINK_BROADCAST (self);
  S3_SINK_UNLOCK (self);
  g_cancellable_cancel (self->stream_cancellable);
  return TRUE;
}

static gboolean
gst_s3_sink_unlock_stop (GstBaseSink *sink)
{
  GstS3Sink *self = GST_S3_SINK (sink);

  S3_SINK_LOCK (self);
  self->flushing = FALSE;
  S3_SINK_UNLOCK (self);
  /* The streaming thread is out of the sink: nothing uses it. */
  g_cancellable_reset (self->stream_cancellable);
  return TRUE;
}

/* ---- start / stop ---- */

static gboolean
metadata_field (GQuark field, const GValue *value, gpointer user_data)
{
  GstS3Sink *self = user_data;
  g_autofree gchar *text = NULL;
  g_autoptr (GError) error = NULL;
  const gchar *name = g_quark_to_string (field);

  if (G_VALUE_HOLDS_STRING (value))
    text = g_value_dup_string (value);
  else
    text = gst_value_serialize (value);
  if (text == NULL || !cp_s3_metadata_validate (name, text, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, (NULL),
        ("Invalid metadata: %s", error ? error->message : name));
    return FALSE;
  }
  cp_http_headers_add (self->options.metadata, name, text);
  return TRUE;
}

static void
reset_upload (GstS3Sink *self)
{
  S3Part *part;

  while ((part = g_queue_pop_head (&self->free_parts)))
    part_free (part);
  while ((part = g_queue_pop_head (&self->queue)))
    part_free (part);
  g_clear_pointer (&self->current, part_free);
  g_clear_pointer (&self->first, part_free);
  self->current_start = 0;
  self->position = 0;
  self->n_allocated = 0;
  self->active = 0;
  self->parts_queued = 0;
  g_array_set_size (self->results, 0);
  g_clear_pointer (&self->upload_id, g_free);
  g_clear_error (&self->error);
  self->creating = FALSE;
  self->flow_ret = GST_FLOW_OK;
  self->shutdown = FALSE;
  self->completed = FALSE;
  self->size = 0;
  g_clear_pointer (&self->workers, g_free);
  self->n_workers = 0;
  g_clear_object (&self->worker_cancellable);
  g_clear_pointer (&self->client, cp_s3_client_free);
  cp_s3_location_clear (&self->loc);
  g_clear_pointer (&self->options.metadata, cp_http_headers_unref);
  g_clear_pointer (&self->options_content_type, g_free);
  g_clear_pointer (&self->options_storage_class, g_free);
  self->options.content_type = NULL;
  self->options.storage_class = NULL;
}

static gboolean
gst_s3_sink_start (GstBaseSink *sink)
{
  GstS3Sink *self = GST_S3_SINK (sink);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *location = NULL;
  g_autofree gchar *endpoint = NULL;
  g_autofree gchar *region = NULL;
  g_autofree gchar *access_key = NULL;
  g_autofree gchar *secret_key = NULL;
  g_autofree gchar *session_token = NULL;
  GstStructure *metadata = NULL;
  CpS3ClientConfig config = {0};
  gboolean metadata_ok = TRUE;
  guint i;

  GST_OBJECT_LOCK (self);
  location = g_strdup (self->location);
  endpoint = g_strdup (self->endpoint);
  region = g_strdup (self->region);
  access_key = g_strdup (self->access_key);
  secret_key = g_strdup (self->secret_key);
  session_token = g_strdup (self->session_token);
  config.force_path_style = self->force_path_style;
  config.force_path_style_set = self->force_path_style_set;
  config.idle_timeout_ms = self->request_timeout;
  config.max_attempts = self->retry_attempts;
  self->upload_part_size = self->part_size;
  self->upload_on_error = self->on_error;
  self->hold_first = self->header_rewrite;
  self->n_workers = self->max_inflight_parts;
  self->options_content_type = g_strdup (self->content_type);
  self->options_storage_class = g_strdup (self->storage_class);
  if (self->metadata)
    metadata = gst_structure_copy (self->metadata);
  GST_OBJECT_UNLOCK (self);

  if (location == NULL)
    goto no_location;
  if (!cp_s3_location_parse (location, &self->loc, &error))
    goto bad_location;

  self->options.content_type = self->options_content_type;
  self->options.storage_class = self->options_storage_class;
  self->options.metadata = cp_http_headers_new ();
  if (metadata) {
    metadata_ok = gst_structure_foreach (metadata, metadata_field, self);
    gst_structure_free (metadata);
  }
  if (!metadata_ok)
    goto failed;

  config.endpoint = endpoint;
  config.region = region;
  config.access_key = access_key;
  config.secret_key = secret_key;
  config.session_token = session_token;
  self->client = cp_s3_client_new (&config, &error);
  if (self->client == NULL)
    goto bad_endpoint;

  self->worker_cancellable = g_cancellable_new ();
  self->workers = g_new0 (GThread *, self->n_workers);
  for (i = 0; i < self->n_workers; i++)
    self->workers[i] = g_thread_new ("s3sink-upload", worker_thread, self);
  GST_INFO_OBJECT (self,
      "Writing s3://%s/%s in %s: parts of %" G_GSIZE_FORMAT
      " bytes, %u in flight, first part %s",
      self->loc.bucket, self->loc.key, cp_s3_client_get_region (self->client),
      self->upload_part_size, self->n_workers,
      self->hold_first ? "held until EOS" : "sent when full");
  return TRUE;

  /* ERRORS */
no_location:
  GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
      ("No location set: set location=s3://bucket/key"), (NULL));
  goto failed;
bad_location:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message), (NULL));
  goto failed;
bad_endpoint:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message), (NULL));
  goto failed;
failed:
  reset_upload (self);
  return FALSE;
}

/* Uploads a part that is still in memory as part @number, from stop(),
 * once the workers are gone. */
static gboolean
upload_now (GstS3Sink *self, S3Part *part, guint number, GError **error)
{
  g_autofree gchar *etag = NULL;
  g_autoptr (GBytes) body = g_bytes_new_static (part->data, part->len);
  guint8 md5[CP_S3_MD5_LEN];
  S3PartResult *r;

  compute_md5 (part->data, part->len, md5);
  if (!cp_s3_client_upload_part (self->client, &self->loc, self->upload_id,
          number, body, md5, &etag, NULL, error))
    return FALSE;
  r = part_result (self, number);
  r->etag = g_steal_pointer (&etag);
  memcpy (r->md5, md5, CP_S3_MD5_LEN);
  r->size = part->len;
  return TRUE;
}

/* on-error=complete when the stream stopped without EOS: store the
 * parts 1..k that made it (part 1 from memory while header-rewrite
 * held it, and, after a clean stop, the data still buffered), so the
 * object is a prefix of the stream. */
static void
complete_partial (GstS3Sink *self)
{
  g_autoptr (GError) error = NULL;
  gboolean failed;
  guint k = 0;

  S3_SINK_LOCK (self);
  failed = self->flow_ret != GST_FLOW_OK;
  S3_SINK_UNLOCK (self);

  if (self->parts_queued == 0) {
    if (!failed && !put_current (self, NULL, &error))
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message),
          (NULL));
    return;
  }
  /* Only part 1 was cut: no worker has started the upload. */
  if (self->upload_id == NULL && !failed
      && !cp_s3_client_create_multipart_upload (self->client, &self->loc,
          &self->options, &self->upload_id, NULL, &error)) {
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message), (NULL));
    return;
  }
  if (self->upload_id == NULL)
    return;
  if (self->first && !upload_now (self, self->first, 1, &error)) {
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message), (NULL));
    g_clear_error (&error);
  }
  while (k < self->results->len && part_result (self, k + 1)->etag)
    k++;
  if (!failed && k == self->parts_queued && self->current
      && self->current->len > 0) {
    if (upload_now (self, self->current, k + 1, &error)) {
      k++;
    } else {
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message),
          (NULL));
      g_clear_error (&error);
    }
  }
  if (k > 0 && complete_upload (self, k, NULL, &error)) {
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
        ("The stream stopped early: s3://%s/%s holds its first %u parts",
            self->loc.bucket, self->loc.key, k),
        (NULL));
    return;
  }
  if (error)
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message), (NULL));
  g_clear_error (&error);
  if (!cp_s3_client_abort_multipart_upload (self->client, &self->loc,
          self->upload_id, NULL, &error))
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message), (NULL));
}

static gboolean
gst_s3_sink_stop (GstBaseSink *sink)
{
  GstS3Sink *self = GST_S3_SINK (sink);
  gboolean abort_now;
  guint i;

  S3_SINK_LOCK (self);
  self->shutdown = TRUE;
  abort_now =
      !self->completed && self->upload_on_error == GST_S3_SINK_ON_ERROR_ABORT;
  if (abort_now) {
    drop_queued_parts (self);
    g_cancellable_cancel (self->worker_cancellable);
  }
  S3_SINK_BROADCAST (self);
  S3_SINK_UNLOCK (self);

  for (i = 0; i < self->n_workers; i++)
    g_thread_join (self->workers[i]);

  if (!self->completed && self->client) {
    if (!abort_now) {
      complete_partial (self);
    } else if (self->upload_id) {
      g_autoptr (GError) error = NULL;

      if (cp_s3_client_abort_multipart_upload (self->client, &self->loc,
              self->upload_id, NULL, &error))
        GST_INFO_OBJECT (self, "Multipart upload of s3://%s/%s aborted",
            self->loc.bucket, self->loc.key);
      else
        GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
            ("Could not abort the multipart upload of s3://%s/%s; it stays "
             "until a lifecycle rule removes it",
                self->loc.bucket, self->loc.key),
            ("%s", error->message));
    }
  }
  reset_upload (self);
  return TRUE;
}

/* ---- URI handler ---- */

static GstURIType
gst_s3_sink_uri_get_type (GType type)
{
  return GST_URI_SINK;
}

static const gchar *const *
gst_s3_sink_uri_get_protocols (GType type)
{
  static const gchar *protocols[] = {"s3", NULL};

  return protocols;
}

static gchar *
gst_s3_sink_uri_get_uri (GstURIHandler *handler)
{
  GstS3Sink *self = GST_S3_SINK (handler);
  gchar *uri;

  GST_OBJECT_LOCK (self);
  uri = g_strdup (self->location);
  GST_OBJECT_UNLOCK (self);
  return uri;
}

static gboolean
gst_s3_sink_uri_set_uri (GstURIHandler *handler, const gchar *uri,
    GError **error)
{
  GstS3Sink *self = GST_S3_SINK (handler);
  g_auto (CpS3Location) loc = {0};

  if (GST_STATE (self) != GST_STATE_NULL
      && GST_STATE (self) != GST_STATE_READY) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
        "Changing the location of s3sink while it runs is not supported");
    return FALSE;
  }
  if (!cp_s3_location_parse (uri, &loc, NULL)) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "'%s' is not s3://bucket/key", uri);
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  g_free (self->location);
  self->location = g_strdup (uri);
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static void
gst_s3_sink_uri_handler_init (gpointer g_iface, gpointer iface_data)
{
  GstURIHandlerInterface *iface = g_iface;

  iface->get_type = gst_s3_sink_uri_get_type;
  iface->get_protocols = gst_s3_sink_uri_get_protocols;
  iface->get_uri = gst_s3_sink_uri_get_uri;
  iface->set_uri = gst_s3_sink_uri_set_uri;
}

/* ---- properties ---- */

static void
replace_string (GstS3Sink *self, gchar **field, const GValue *value)
{
  GST_OBJECT_LOCK (self);
  g_free (*field);
  *field = g_value_dup_string (value);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_s3_sink_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstS3Sink *self = GST_S3_SINK (object);

  switch (prop_id) {
    case PROP_LOCATION:
      replace_string (self, &self->location, value);
      break;
    case PROP_ENDPOINT:
      replace_string (self, &self->endpoint, value);
      break;
    case PROP_REGION:
      replace_string (self, &self->region, value);
      break;
    case PROP_FORCE_PATH_STYLE:
      GST_OBJECT_LOCK (self);
      self->force_path_style = g_value_get_boolean (value);
      self->force_path_style_set = TRUE;
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_ACCESS_KEY:
      replace_string (self, &self->access_key, value);
      break;
    case PROP_SECRET_KEY:
      replace_string (self, &self->secret_key, value);
      break;
    case PROP_SESSION_TOKEN:
      replace_string (self, &self->session_token, value);
      break;
    case PROP_PART_SIZE:
      GST_OBJECT_LOCK (self);
      self->part_size = g_value_get_uint64 (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_MAX_INFLIGHT_PARTS:
      GST_OBJECT_LOCK (self);
      self->max_inflight_parts = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_CONTENT_TYPE:
      replace_string (self, &self->content_type, value);
      break;
    case PROP_METADATA:
      GST_OBJECT_LOCK (self);
      g_clear_pointer (&self->metadata, gst_structure_free);
      self->metadata = g_value_dup_boxed (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STORAGE_CLASS:
      replace_string (self, &self->storage_class, value);
      break;
    case PROP_ON_ERROR:
      GST_OBJECT_LOCK (self);
      self->on_error = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_REQUEST_TIMEOUT:
      GST_OBJECT_LOCK (self);
      self->request_timeout = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_RETRY_ATTEMPTS:
      GST_OBJECT_LOCK (self);
      self->retry_attempts = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_HEADER_REWRITE:
      GST_OBJECT_LOCK (self);
      self->header_rewrite = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_s3_sink_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstS3Sink *self = GST_S3_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_ENDPOINT:
      g_value_set_string (value, self->endpoint);
      break;
    case PROP_REGION:
      g_value_set_string (value, self->region);
      break;
    case PROP_FORCE_PATH_STYLE:
      g_value_set_boolean (value, self->force_path_style);
      break;
    case PROP_ACCESS_KEY:
      g_value_set_string (value, self->access_key);
      break;
    case PROP_SECRET_KEY:
      g_value_set_string (value, self->secret_key ? "*****" : NULL);
      break;
    case PROP_SESSION_TOKEN:
      g_value_set_string (value, self->session_token ? "*****" : NULL);
      break;
    case PROP_PART_SIZE:
      g_value_set_uint64 (value, self->part_size);
      break;
    case PROP_MAX_INFLIGHT_PARTS:
      g_value_set_uint (value, self->max_inflight_parts);
      break;
    case PROP_CONTENT_TYPE:
      g_value_set_string (value, self->content_type);
      break;
    case PROP_METADATA:
      g_value_set_boxed (value, self->metadata);
      break;
    case PROP_STORAGE_CLASS:
      g_value_set_string (value, self->storage_class);
      break;
    case PROP_ON_ERROR:
      g_value_set_enum (value, self->on_error);
      break;
    case PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, self->request_timeout);
      break;
    case PROP_RETRY_ATTEMPTS:
      g_value_set_uint (value, self->retry_attempts);
      break;
    case PROP_HEADER_REWRITE:
      g_value_set_boolean (value, self->header_rewrite);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_s3_sink_finalize (GObject *object)
{
  GstS3Sink *self = GST_S3_SINK (object);

  reset_upload (self);
  g_free (self->location);
  g_free (self->endpoint);
  g_free (self->region);
  g_free (self->access_key);
  g_free (self->secret_key);
  g_free (self->session_token);
  g_free (self->content_type);
  g_free (self->storage_class);
  g_clear_pointer (&self->metadata, gst_structure_free);
  g_array_unref (self->results);
  g_object_unref (self->stream_cancellable);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_s3_sink_init (GstS3Sink *self)
{
  self->force_path_style = DEFAULT_FORCE_PATH_STYLE;
  self->part_size = DEFAULT_PART_SIZE;
  self->max_inflight_parts = DEFAULT_MAX_INFLIGHT_PARTS;
  self->on_error = DEFAULT_ON_ERROR;
  self->request_timeout = DEFAULT_REQUEST_TIMEOUT;
  self->retry_attempts = DEFAULT_RETRY_ATTEMPTS;
  self->header_rewrite = DEFAULT_HEADER_REWRITE;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->free_parts);
  g_queue_init (&self->queue);
  self->results = g_array_new (FALSE, TRUE, sizeof (S3PartResult));
  g_array_set_clear_func (self->results, (GDestroyNotify) clear_result);
  self->stream_cancellable = g_cancellable_new ();
  self->flow_ret = GST_FLOW_OK;
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
}

static void
gst_s3_sink_class_init (GstS3SinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);
  const GParamFlags flags =
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_s3_sink_debug, "s3sink", 0,
      "S3 multipart upload sink");

  gobject_class->set_property = gst_s3_sink_set_property;
  gobject_class->get_property = gst_s3_sink_get_property;
  gobject_class->finalize = gst_s3_sink_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "The object to write, as s3://bucket/key", DEFAULT_LOCATION, flags));
  g_object_class_install_property (gobject_class, PROP_ENDPOINT,
      g_param_spec_string ("endpoint", "Endpoint",
          "S3 endpoint URL, e.g. http://127.0.0.1:5000 for a local store "
          "(default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)",
          DEFAULT_ENDPOINT, flags));
  g_object_class_install_property (gobject_class, PROP_REGION,
      g_param_spec_string ("region", "Region",
          "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the "
          "profile, else us-east-1)",
          DEFAULT_REGION, flags));
  g_object_class_install_property (gobject_class, PROP_FORCE_PATH_STYLE,
      g_param_spec_boolean ("force-path-style", "Force path style",
          "Address objects as endpoint/bucket/key instead of "
          "bucket.endpoint/key (when not set: path style whenever an "
          "endpoint is set)",
          DEFAULT_FORCE_PATH_STYLE, flags));
  g_object_class_install_property (gobject_class, PROP_ACCESS_KEY,
      g_param_spec_string ("access-key", "Access key",
          "AWS access key id (default: the AWS credential chain: "
          "environment, profile, container, instance)",
          NULL, flags));
  g_object_class_install_property (gobject_class, PROP_SECRET_KEY,
      g_param_spec_string ("secret-key", "Secret key",
          "AWS secret access key, with access-key (never shown)", NULL, flags));
  g_object_class_install_property (gobject_class, PROP_SESSION_TOKEN,
      g_param_spec_string ("session-token", "Session token",
          "AWS session token of temporary credentials (never shown)", NULL,
          flags));
  g_object_class_install_property (gobject_class, PROP_PART_SIZE,
      g_param_spec_uint64 ("part-size", "Part size",
          "Bytes per uploaded part (5 MiB to 5 GiB); objects up to 10,000 "
          "parts, so 8 MiB parts hold 78 GiB",
          CP_S3_MIN_PART_SIZE, CP_S3_MAX_PART_SIZE, DEFAULT_PART_SIZE, flags));
  g_object_class_install_property (gobject_class, PROP_MAX_INFLIGHT_PARTS,
      g_param_spec_uint ("max-inflight-parts", "Max in-flight parts",
          "Parts uploaded at the same time; part buffers take at most "
          "part-size x (max-inflight-parts + 2) bytes, or part-size x "
          "(max-inflight-parts + 1) with header-rewrite=false",
          1, MAX_INFLIGHT_PARTS, DEFAULT_MAX_INFLIGHT_PARTS, flags));
  g_object_class_install_property (gobject_class, PROP_CONTENT_TYPE,
      g_param_spec_string ("content-type", "Content type",
          "Content-Type stored with the object, e.g. audio/wav (default: "
          "S3's binary/octet-stream)",
          DEFAULT_CONTENT_TYPE, flags));
  g_object_class_install_property (gobject_class, PROP_METADATA,
      g_param_spec_boxed ("metadata", "Metadata",
          "User metadata stored with the object as x-amz-meta-<field> "
          "(printable ASCII values), e.g. \"m, contact-id=abc\"",
          GST_TYPE_STRUCTURE, flags));
  g_object_class_install_property (gobject_class, PROP_STORAGE_CLASS,
      g_param_spec_string ("storage-class", "Storage class",
          "S3 storage class, e.g. STANDARD_IA or INTELLIGENT_TIERING "
          "(default: the bucket's, STANDARD)",
          DEFAULT_STORAGE_CLASS, flags));
  g_object_class_install_property (gobject_class, PROP_ON_ERROR,
      g_param_spec_enum ("on-error", "On error",
          "What to do with an unfinished upload when the pipeline stops "
          "without EOS or a part fails",
          GST_TYPE_S3_SINK_ON_ERROR, DEFAULT_ON_ERROR, flags));
  g_object_class_install_property (gobject_class, PROP_REQUEST_TIMEOUT,
      g_param_spec_uint ("request-timeout", "Request timeout",
          "Fail (and retry) a request when no byte moves for this many "
          "milliseconds (0 = never)",
          0, G_MAXUINT, DEFAULT_REQUEST_TIMEOUT, flags));
  g_object_class_install_property (gobject_class, PROP_RETRY_ATTEMPTS,
      g_param_spec_uint ("retry-attempts", "Retry attempts",
          "Attempts per request, the first included (AWS standard retry "
          "mode: backoff with jitter on 5xx, throttling, timeouts)",
          1, 10, DEFAULT_RETRY_ATTEMPTS, flags));
  g_object_class_install_property (gobject_class, PROP_HEADER_REWRITE,
      g_param_spec_boolean ("header-rewrite", "Header rewrite",
          "Keep the first part in memory until EOS and upload it last, so "
          "that muxers can go back and rewrite their header (wavenc, "
          "qtmux, matroskamux); costs one more part buffer. When false, "
          "only the part not sent yet can be rewritten",
          DEFAULT_HEADER_REWRITE, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class, "S3 sink",
      "Sink/Network",
      "Writes to an S3 object with a multipart upload, "
      "several parts in flight",
      "callpipe");

  basesink_class->start = GST_DEBUG_FUNCPTR (gst_s3_sink_start);
  basesink_class->stop = GST_DEBUG_FUNCPTR (gst_s3_sink_stop);
  basesink_class->render = GST_DEBUG_FUNCPTR (gst_s3_sink_render);
  basesink_class->event = GST_DEBUG_FUNCPTR (gst_s3_sink_event);
  basesink_class->query = GST_DEBUG_FUNCPTR (gst_s3_sink_query);
  basesink_class->unlock = GST_DEBUG_FUNCPTR (gst_s3_sink_unlock);
  basesink_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_s3_sink_unlock_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_S3_SINK_ON_ERROR, 0);
}

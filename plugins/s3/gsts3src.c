/* callpipe — s3src: ranged S3 reads with read-ahead, seekable in bytes
 *
 * SECTION:element-s3src
 * @title: s3src
 *
 * Reads an S3 object. HeadObject gives its size (so downstream can seek
 * in bytes, and demuxers run in pull mode); the data comes in ranged GETs
 * of #GstS3Src:chunk-size bytes, checked against the ETag HeadObject
 * returned (a replaced object is an error, not a mix of two objects).
 * While one chunk is consumed, a worker thread fetches the next. Requests
 * are retried with the AWS SDK standard policy. A missing object or
 * bucket is a RESOURCE NOT_FOUND error and a denied one NOT_AUTHORIZED,
 * naming the S3 error code and the object.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 s3src location=s3://my-bucket/calls/test.wav ! wavparse ! \
 *     audioconvert ! autoaudiosink
 * ]|
 * From a local S3-compatible store:
 * |[
 * gst-launch-1.0 s3src location=s3://recordings/call.wav \
 *     endpoint=http://127.0.0.1:5000 access-key=test secret-key=test ! \
 *     wavparse ! fakesink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsts3src.h"
#include "gsts3elements.h"
#include "s3client.h"

GST_DEBUG_CATEGORY_STATIC (gst_s3_src_debug);
#define GST_CAT_DEFAULT gst_s3_src_debug

#define DEFAULT_LOCATION NULL
#define DEFAULT_ENDPOINT NULL
#define DEFAULT_REGION NULL
#define DEFAULT_FORCE_PATH_STYLE FALSE
#define DEFAULT_CHUNK_SIZE (2 * 1024 * 1024)
#define MIN_CHUNK_SIZE (64 * 1024)
#define MAX_CHUNK_SIZE (256 * 1024 * 1024)
#define DEFAULT_REQUEST_TIMEOUT 30000
#define DEFAULT_RETRY_ATTEMPTS 3
#define DEFAULT_BLOCKSIZE (64 * 1024)
/* Chunks kept: the one being read, the one fetched ahead, and one more
 * so that a demuxer hopping between two places does not refetch. */
#define N_CACHED 3
#define NO_CHUNK G_MAXUINT64

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
  PROP_CHUNK_SIZE,
  PROP_REQUEST_TIMEOUT,
  PROP_RETRY_ATTEMPTS,
};

typedef struct
{
  guint64 index; /* NO_CHUNK when empty */
  GBytes *data;
  guint64 last_use;
} CachedChunk;

struct _GstS3Src
{
  GstBaseSrc parent;

  /* Properties, under the object lock. */
  gchar *location;
  gchar *endpoint;
  gchar *region;
  gboolean force_path_style;
  gboolean force_path_style_set;
  gchar *access_key;
  gchar *secret_key;
  gchar *session_token;
  guint chunk_size;
  guint request_timeout;
  guint retry_attempts;

  /* Fixed from start() to stop(). */
  CpS3Client *client;
  CpS3Location loc;
  guint64 size;
  gchar *etag;
  gsize chunk;
  guint64 n_chunks;
  GThread *worker;

  /* Everything below is under this lock; the object lock is never taken
   * with it held. */
  GMutex lock;
  GCond cond;
  CachedChunk cache[N_CACHED];
  guint64 use_counter;
  guint64 wanted; /* the chunk create() waits for */
  guint64 prefetch; /* the chunk to fetch ahead */
  guint64 fetching; /* the chunk in flight */
  GCancellable *fetch_cancellable;
  GError *fetch_error;
  guint64 error_index;
  gboolean flushing;
  gboolean shutdown;
};

#define S3_SRC_LOCK(s) g_mutex_lock (&(s)->lock)
#define S3_SRC_UNLOCK(s) g_mutex_unlock (&(s)->lock)
#define S3_SRC_WAIT(s) g_cond_wait (&(s)->cond, &(s)->lock)
#define S3_SRC_BROADCAST(s) g_cond_broadcast (&(s)->cond)

static void gst_s3_src_uri_handler_init (gpointer g_iface, gpointer iface_data);

#define gst_s3_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstS3Src, gst_s3_src, GST_TYPE_BASE_SRC,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gst_s3_src_uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE (s3src, "s3src", GST_RANK_SECONDARY,
    GST_TYPE_S3_SRC);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* ---- the chunk cache (under the lock) ---- */

static CachedChunk *
find_cached (GstS3Src *self, guint64 index)
{
  guint i;

  for (i = 0; i < N_CACHED; i++) {
    if (self->cache[i].index == index) {
      self->cache[i].last_use = ++self->use_counter;
      return &self->cache[i];
    }
  }
  return NULL;
}

static void
store_cached (GstS3Src *self, guint64 index, GBytes *data)
{
  CachedChunk *slot = &self->cache[0];
  guint i;

  for (i = 1; i < N_CACHED; i++) {
    if (self->cache[i].last_use < slot->last_use)
      slot = &self->cache[i];
  }
  g_clear_pointer (&slot->data, g_bytes_unref);
  slot->index = index;
  slot->data = data;
  slot->last_use = ++self->use_counter;
}

static void
clear_cache (GstS3Src *self)
{
  guint i;

  for (i = 0; i < N_CACHED; i++) {
    g_clear_pointer (&self->cache[i].data, g_bytes_unref);
    self->cache[i].index = NO_CHUNK;
    self->cache[i].last_use = 0;
  }
}

/* The chunk the worker should fetch now, or NO_CHUNK. */
static guint64
next_fetch (GstS3Src *self)
{
  if (self->wanted != NO_CHUNK && find_cached (self, self->wanted) == NULL
      && !(self->fetch_error && self->error_index == self->wanted))
    return self->wanted;
  if (self->prefetch != NO_CHUNK && find_cached (self, self->prefetch) == NULL
      && self->fetch_error == NULL)
    return self->prefetch;
  return NO_CHUNK;
}

static gpointer
fetch_thread (gpointer data)
{
  GstS3Src *self = data;

  S3_SRC_LOCK (self);
  for (;;) {
    GCancellable *cancellable;
    GError *error = NULL;
    GBytes *bytes;
    guint64 index = NO_CHUNK;
    guint64 offset;

    while (!self->shutdown && (index = next_fetch (self)) == NO_CHUNK)
      S3_SRC_WAIT (self);
    if (self->shutdown)
      break;

    self->fetching = index;
    cancellable = g_cancellable_new ();
    self->fetch_cancellable = g_object_ref (cancellable);
    S3_SRC_UNLOCK (self);

    offset = index * self->chunk;
    GST_DEBUG_OBJECT (self, "Fetching chunk %" G_GUINT64_FORMAT, index);
    bytes = cp_s3_client_get_range (self->client, &self->loc, offset,
        MIN (self->chunk, self->size - offset), self->etag, cancellable,
        &error);

    S3_SRC_LOCK (self);
    g_clear_object (&self->fetch_cancellable);
    g_object_unref (cancellable);
    self->fetching = NO_CHUNK;
    if (self->prefetch == index)
      self->prefetch = NO_CHUNK;
    if (bytes) {
      store_cached (self, index, bytes);
    } else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_error_free (error);
    } else {
      GST_WARNING_OBJECT (self, "%s", error->message);
      g_clear_error (&self->fetch_error);
      self->fetch_error = error;
      self->error_index = index;
    }
    S3_SRC_BROADCAST (self);
  }
  S3_SRC_UNLOCK (self);
  return NULL;
}

static void
post_error (GstS3Src *self, const GError *error)
{
  if (g_error_matches (error, CP_S3_ERROR, CP_S3_ERROR_NOT_FOUND))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", error->message),
        (NULL));
  else if (g_error_matches (error, CP_S3_ERROR, CP_S3_ERROR_ACCESS_DENIED))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("%s", error->message),
        (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("%s", error->message), (NULL));
}

/* Called with the lock held: waits until chunk @index is cached. */
static GstFlowReturn
get_chunk (GstS3Src *self, guint64 index, GBytes **data)
{
  for (;;) {
    CachedChunk *cached = find_cached (self, index);

    if (cached) {
      *data = g_bytes_ref (cached->data);
      return GST_FLOW_OK;
    }
    if (self->flushing)
      return GST_FLOW_FLUSHING;
    if (self->fetch_error && self->error_index == index) {
      GError *error = g_steal_pointer (&self->fetch_error);

      S3_SRC_UNLOCK (self);
      post_error (self, error);
      g_error_free (error);
      S3_SRC_LOCK (self);
      return GST_FLOW_ERROR;
    }
    if (self->wanted != index) {
      self->wanted = index;
      /* A read elsewhere (a seek) makes the fetch ahead useless. */
      if (self->fetching != NO_CHUNK && self->fetching != index)
        g_cancellable_cancel (self->fetch_cancellable);
      S3_SRC_BROADCAST (self);
    }
    S3_SRC_WAIT (self);
  }
}

static GstFlowReturn
gst_s3_src_create (GstBaseSrc *src, guint64 offset, guint length,
    GstBuffer **out)
{
  GstS3Src *self = GST_S3_SRC (src);
  GstFlowReturn ret = GST_FLOW_OK;
  GstBuffer *buffer = NULL;
  GstMapInfo map;
  guint64 first, last, index;

  if (offset >= self->size)
    return GST_FLOW_EOS;
  length = MIN (length, self->size - offset);
  first = offset / self->chunk;
  last = (offset + length - 1) / self->chunk;

  S3_SRC_LOCK (self);
  if (first == last) {
    GBytes *data = NULL;

    ret = get_chunk (self, first, &data);
    if (ret == GST_FLOW_OK) {
      GBytes *sub =
          g_bytes_new_from_bytes (data, offset - first * self->chunk, length);

      buffer = gst_buffer_new_wrapped_bytes (sub);
      g_bytes_unref (sub);
      g_bytes_unref (data);
    }
  } else {
    buffer = gst_buffer_new_allocate (NULL, length, NULL);
    gst_buffer_map (buffer, &map, GST_MAP_WRITE);
    for (index = first; index <= last && ret == GST_FLOW_OK; index++) {
      GBytes *data = NULL;
      guint64 start = MAX (offset, index * self->chunk);
      guint64 end = MIN (offset + length, (index + 1) * self->chunk);

      ret = get_chunk (self, index, &data);
      if (ret == GST_FLOW_OK) {
        memcpy (map.data + (start - offset),
            (const guint8 *) g_bytes_get_data (data, NULL)
                + (start - index * self->chunk),
            end - start);
        g_bytes_unref (data);
      }
    }
    gst_buffer_unmap (buffer, &map);
  }
  if (ret == GST_FLOW_OK && last + 1 < self->n_chunks
      && find_cached (self, last + 1) == NULL) {
    self->prefetch = last + 1;
    S3_SRC_BROADCAST (self);
  }
  S3_SRC_UNLOCK (self);

  if (ret != GST_FLOW_OK) {
    gst_clear_buffer (&buffer);
    return ret;
  }
  GST_BUFFER_OFFSET (buffer) = offset;
  GST_BUFFER_OFFSET_END (buffer) = offset + length;
  *out = buffer;
  return GST_FLOW_OK;
}

static gboolean
gst_s3_src_is_seekable (GstBaseSrc *src)
{
  return TRUE;
}

static gboolean
gst_s3_src_get_size (GstBaseSrc *src, guint64 *size)
{
  GstS3Src *self = GST_S3_SRC (src);

  if (self->client == NULL)
    return FALSE;
  *size = self->size;
  return TRUE;
}

static gboolean
gst_s3_src_unlock (GstBaseSrc *src)
{
  GstS3Src *self = GST_S3_SRC (src);

  S3_SRC_LOCK (self);
  self->flushing = TRUE;
  S3_SRC_BROADCAST (self);
  S3_SRC_UNLOCK (self);
  return TRUE;
}

static gboolean
gst_s3_src_unlock_stop (GstBaseSrc *src)
{
  GstS3Src *self = GST_S3_SRC (src);

  S3_SRC_LOCK (self);
  self->flushing = FALSE;
  S3_SRC_UNLOCK (self);
  return TRUE;
}

/* ---- start / stop ---- */

static void
reset_source (GstS3Src *self)
{
  clear_cache (self);
  g_clear_error (&self->fetch_error);
  self->wanted = NO_CHUNK;
  self->prefetch = NO_CHUNK;
  self->fetching = NO_CHUNK;
  self->shutdown = FALSE;
  self->size = 0;
  self->n_chunks = 0;
  g_clear_pointer (&self->etag, g_free);
  g_clear_pointer (&self->client, cp_s3_client_free);
  cp_s3_location_clear (&self->loc);
}

static gboolean
gst_s3_src_start (GstBaseSrc *src)
{
  GstS3Src *self = GST_S3_SRC (src);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *location = NULL;
  g_autofree gchar *endpoint = NULL;
  g_autofree gchar *region = NULL;
  g_autofree gchar *access_key = NULL;
  g_autofree gchar *secret_key = NULL;
  g_autofree gchar *session_token = NULL;
  CpS3ClientConfig config = {0};

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
  self->chunk = self->chunk_size;
  GST_OBJECT_UNLOCK (self);

  if (location == NULL)
    goto no_location;
  if (!cp_s3_location_parse (location, &self->loc, &error))
    goto bad_location;
  config.endpoint = endpoint;
  config.region = region;
  config.access_key = access_key;
  config.secret_key = secret_key;
  config.session_token = session_token;
  self->client = cp_s3_client_new (&config, &error);
  if (self->client == NULL)
    goto bad_location;
  /* start() runs on the state-change thread, which unlock() does not
   * reach; HeadObject is bounded by request-timeout and the retries. */
  if (!cp_s3_client_head_object (self->client, &self->loc, &self->size,
          &self->etag, NULL, &error))
    goto head_failed;

  self->n_chunks = (self->size + self->chunk - 1) / self->chunk;
  GST_INFO_OBJECT (self, "s3://%s/%s: %" G_GUINT64_FORMAT " bytes, ETag %s",
      self->loc.bucket, self->loc.key, self->size, self->etag);
  self->worker = g_thread_new ("s3src-fetch", fetch_thread, self);
  return TRUE;

  /* ERRORS */
no_location:
  GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
      ("No location set: set location=s3://bucket/key"), (NULL));
  reset_source (self);
  return FALSE;
bad_location:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", error->message), (NULL));
  reset_source (self);
  return FALSE;
head_failed:
  if (g_error_matches (error, CP_S3_ERROR, CP_S3_ERROR_NOT_FOUND)
      || g_error_matches (error, CP_S3_ERROR, CP_S3_ERROR_ACCESS_DENIED))
    post_error (self, error);
  else
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("%s", error->message),
        (NULL));
  reset_source (self);
  return FALSE;
}

static gboolean
gst_s3_src_stop (GstBaseSrc *src)
{
  GstS3Src *self = GST_S3_SRC (src);

  S3_SRC_LOCK (self);
  self->shutdown = TRUE;
  if (self->fetch_cancellable)
    g_cancellable_cancel (self->fetch_cancellable);
  S3_SRC_BROADCAST (self);
  S3_SRC_UNLOCK (self);
  if (self->worker)
    g_thread_join (g_steal_pointer (&self->worker));
  reset_source (self);
  return TRUE;
}

/* ---- URI handler ---- */

static GstURIType
gst_s3_src_uri_get_type (GType type)
{
  return GST_URI_SRC;
}

static const gchar *const *
gst_s3_src_uri_get_protocols (GType type)
{
  static const gchar *protocols[] = {"s3", NULL};

  return protocols;
}

static gchar *
gst_s3_src_uri_get_uri (GstURIHandler *handler)
{
  GstS3Src *self = GST_S3_SRC (handler);
  gchar *uri;

  GST_OBJECT_LOCK (self);
  uri = g_strdup (self->location);
  GST_OBJECT_UNLOCK (self);
  return uri;
}

static gboolean
gst_s3_src_uri_set_uri (GstURIHandler *handler, const gchar *uri,
    GError **error)
{
  GstS3Src *self = GST_S3_SRC (handler);
  g_auto (CpS3Location) loc = {0};

  if (GST_STATE (self) != GST_STATE_NULL
      && GST_STATE (self) != GST_STATE_READY) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
        "Changing the location of s3src while it runs is not supported");
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
gst_s3_src_uri_handler_init (gpointer g_iface, gpointer iface_data)
{
  GstURIHandlerInterface *iface = g_iface;

  iface->get_type = gst_s3_src_uri_get_type;
  iface->get_protocols = gst_s3_src_uri_get_protocols;
  iface->get_uri = gst_s3_src_uri_get_uri;
  iface->set_uri = gst_s3_src_uri_set_uri;
}

/* ---- properties ---- */

static void
replace_string (GstS3Src *self, gchar **field, const GValue *value)
{
  GST_OBJECT_LOCK (self);
  g_free (*field);
  *field = g_value_dup_string (value);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_s3_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstS3Src *self = GST_S3_SRC (object);

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
    case PROP_CHUNK_SIZE:
      GST_OBJECT_LOCK (self);
      self->chunk_size = g_value_get_uint (value);
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
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_s3_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstS3Src *self = GST_S3_SRC (object);

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
    case PROP_CHUNK_SIZE:
      g_value_set_uint (value, self->chunk_size);
      break;
    case PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, self->request_timeout);
      break;
    case PROP_RETRY_ATTEMPTS:
      g_value_set_uint (value, self->retry_attempts);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_s3_src_finalize (GObject *object)
{
  GstS3Src *self = GST_S3_SRC (object);

  reset_source (self);
  g_free (self->location);
  g_free (self->endpoint);
  g_free (self->region);
  g_free (self->access_key);
  g_free (self->secret_key);
  g_free (self->session_token);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_s3_src_init (GstS3Src *self)
{
  self->force_path_style = DEFAULT_FORCE_PATH_STYLE;
  self->chunk_size = DEFAULT_CHUNK_SIZE;
  self->request_timeout = DEFAULT_REQUEST_TIMEOUT;
  self->retry_attempts = DEFAULT_RETRY_ATTEMPTS;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  reset_source (self);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_BYTES);
  gst_base_src_set_blocksize (GST_BASE_SRC (self), DEFAULT_BLOCKSIZE);
}

static void
gst_s3_src_class_init (GstS3SrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  const GParamFlags flags =
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  GST_DEBUG_CATEGORY_INIT (gst_s3_src_debug, "s3src", 0,
      "S3 ranged-read source");

  gobject_class->set_property = gst_s3_src_set_property;
  gobject_class->get_property = gst_s3_src_get_property;
  gobject_class->finalize = gst_s3_src_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "The object to read, as s3://bucket/key", DEFAULT_LOCATION, flags));
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
  g_object_class_install_property (gobject_class, PROP_CHUNK_SIZE,
      g_param_spec_uint ("chunk-size", "Chunk size",
          "Bytes per ranged GET; one chunk is fetched ahead while the "
          "current one is read",
          MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, flags));
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

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "S3 source",
      "Source/Network",
      "Reads an S3 object with ranged GETs and read-ahead, "
      "seekable in bytes",
      "callpipe");

  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_s3_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_s3_src_stop);
  basesrc_class->create = GST_DEBUG_FUNCPTR (gst_s3_src_create);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_s3_src_is_seekable);
  basesrc_class->get_size = GST_DEBUG_FUNCPTR (gst_s3_src_get_size);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_s3_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_s3_src_unlock_stop);
}

/* KVS GetMedia stream parser (see kvsfragment.h).
 *
 * The stream is a sequence of MKV documents, one per fragment, whose
 * Segment and Cluster usually have unknown sizes. An unknown-size master
 * ends where an element arrives that the Matroska hierarchy places outside
 * it (a Tags after a Cluster, the next EBML header): decided from element
 * IDs at element boundaries, never by scanning payload bytes, because PCM
 * can contain any byte pattern. */
#include "kvsfragment.h"
#include "ebml.h"

#include <string.h>

GQuark
kvs_parser_error_quark (void)
{
  return g_quark_from_static_string ("kvs-parser-error-quark");
}

#define DEFAULT_TIMECODE_SCALE 1000000

typedef enum
{
  KIND_MASTER,
  KIND_UINT,
  KIND_FLOAT,
  KIND_STRING,
  KIND_BLOCK,
  KIND_SKIP
} ElementKind;

typedef struct
{
  guint32 id;
  guint32 parent; /* 0: top level */
  ElementKind kind;
  const gchar *name;
} ElementInfo;

/* The part of the Matroska hierarchy the parser needs: what it reads, and
 * the level-1 elements whose arrival closes an unknown-size Cluster. */
static const ElementInfo schema[] = {
    {KVS_EBML_ID_HEADER, 0, KIND_MASTER, "EBML"},
    {KVS_EBML_ID_DOCTYPE, KVS_EBML_ID_HEADER, KIND_STRING, "DocType"},
    {KVS_EBML_ID_SEGMENT, 0, KIND_MASTER, "Segment"},
    {KVS_EBML_ID_SEEKHEAD, KVS_EBML_ID_SEGMENT, KIND_SKIP, "SeekHead"},
    {KVS_EBML_ID_INFO, KVS_EBML_ID_SEGMENT, KIND_MASTER, "Info"},
    {KVS_EBML_ID_TIMECODESCALE, KVS_EBML_ID_INFO, KIND_UINT, "TimecodeScale"},
    {KVS_EBML_ID_TRACKS, KVS_EBML_ID_SEGMENT, KIND_MASTER, "Tracks"},
    {KVS_EBML_ID_TRACKENTRY, KVS_EBML_ID_TRACKS, KIND_MASTER, "TrackEntry"},
    {KVS_EBML_ID_TRACKNUMBER, KVS_EBML_ID_TRACKENTRY, KIND_UINT, "TrackNumber"},
    {KVS_EBML_ID_TRACKTYPE, KVS_EBML_ID_TRACKENTRY, KIND_UINT, "TrackType"},
    {KVS_EBML_ID_NAME, KVS_EBML_ID_TRACKENTRY, KIND_STRING, "Name"},
    {KVS_EBML_ID_CODECID, KVS_EBML_ID_TRACKENTRY, KIND_STRING, "CodecID"},
    {KVS_EBML_ID_AUDIO, KVS_EBML_ID_TRACKENTRY, KIND_MASTER, "Audio"},
    {KVS_EBML_ID_SAMPLINGFREQUENCY, KVS_EBML_ID_AUDIO, KIND_FLOAT,
        "SamplingFrequency"},
    {KVS_EBML_ID_CHANNELS, KVS_EBML_ID_AUDIO, KIND_UINT, "Channels"},
    {KVS_EBML_ID_BITDEPTH, KVS_EBML_ID_AUDIO, KIND_UINT, "BitDepth"},
    {KVS_EBML_ID_CLUSTER, KVS_EBML_ID_SEGMENT, KIND_MASTER, "Cluster"},
    {KVS_EBML_ID_TIMECODE, KVS_EBML_ID_CLUSTER, KIND_UINT, "Timecode"},
    {KVS_EBML_ID_SIMPLEBLOCK, KVS_EBML_ID_CLUSTER, KIND_BLOCK, "SimpleBlock"},
    {KVS_EBML_ID_BLOCKGROUP, KVS_EBML_ID_CLUSTER, KIND_MASTER, "BlockGroup"},
    {KVS_EBML_ID_BLOCK, KVS_EBML_ID_BLOCKGROUP, KIND_BLOCK, "Block"},
    {KVS_EBML_ID_CUES, KVS_EBML_ID_SEGMENT, KIND_SKIP, "Cues"},
    {KVS_EBML_ID_CHAPTERS, KVS_EBML_ID_SEGMENT, KIND_SKIP, "Chapters"},
    {KVS_EBML_ID_ATTACHMENTS, KVS_EBML_ID_SEGMENT, KIND_SKIP, "Attachments"},
    {KVS_EBML_ID_TAGS, KVS_EBML_ID_SEGMENT, KIND_MASTER, "Tags"},
    {KVS_EBML_ID_TAG, KVS_EBML_ID_TAGS, KIND_MASTER, "Tag"},
    {KVS_EBML_ID_SIMPLETAG, KVS_EBML_ID_TAG, KIND_MASTER, "SimpleTag"},
    {KVS_EBML_ID_TAGNAME, KVS_EBML_ID_SIMPLETAG, KIND_STRING, "TagName"},
    {KVS_EBML_ID_TAGSTRING, KVS_EBML_ID_SIMPLETAG, KIND_STRING, "TagString"},
};

typedef struct
{
  guint32 id;
  guint64 end; /* absolute offset or KVS_EBML_SIZE_UNKNOWN */
  gchar *tag_name; /* SimpleTag */
  gchar *tag_value;
  gboolean has_continuation; /* Tags */
} Frame;

struct _KvsParser
{
  guint64 offset; /* bytes consumed since the last reset */
  guint64 skip; /* payload bytes of a skipped element left */
  gsize needed;
  gboolean seen_header; /* since the last discontinuity */
  gboolean ever_header;

  Frame stack[KVS_MAX_DEPTH];
  guint depth;

  GPtrArray *tracks; /* the current Segment's tracks */
  KvsTrack *cur_track;
  guint64 timecode_scale;
  gboolean have_cluster_timecode;
  guint64 cluster_timecode;

  KvsFragment *frag;
  GQueue done;
  gboolean incremental;
  GQueue events; /* KvsEvent, in incremental mode */
};

static const ElementInfo *
lookup_element (guint32 id)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (schema); i++) {
    if (schema[i].id == id)
      return &schema[i];
  }
  return NULL;
}

static const gchar *
element_name (guint32 id)
{
  const ElementInfo *info = lookup_element (id);

  if (id == KVS_EBML_ID_VOID)
    return "Void";
  if (id == KVS_EBML_ID_CRC32)
    return "CRC-32";
  return info ? info->name : "unknown element";
}

static gboolean
is_child_of (const ElementInfo *info, guint32 parent)
{
  /* SimpleTag may nest; it is the only recursive element we read. */
  if (info->id == KVS_EBML_ID_SIMPLETAG && parent == KVS_EBML_ID_SIMPLETAG)
    return TRUE;
  return info->parent == parent;
}

static void
kvs_track_free (KvsTrack *track)
{
  g_free (track->name);
  g_free (track->codec_id);
  g_free (track);
}

static KvsTrack *
kvs_track_copy (const KvsTrack *track)
{
  KvsTrack *copy = g_memdup2 (track, sizeof (*track));

  copy->name = g_strdup (track->name);
  copy->codec_id = g_strdup (track->codec_id);
  return copy;
}

void
kvs_block_free (KvsBlock *block)
{
  g_bytes_unref (block->payload);
  g_free (block);
}

static void
kvs_tag_free (KvsTag *tag)
{
  g_free (tag->name);
  g_free (tag->value);
  g_free (tag);
}

static GPtrArray *
copy_tracks (GPtrArray *tracks)
{
  GPtrArray *copy =
      g_ptr_array_new_full (tracks->len, (GDestroyNotify) kvs_track_free);
  guint i;

  for (i = 0; i < tracks->len; i++)
    g_ptr_array_add (copy, kvs_track_copy (g_ptr_array_index (tracks, i)));
  return copy;
}

static void
queue_event (KvsParser *p, KvsEventType type, gpointer data)
{
  KvsEvent *ev = g_new0 (KvsEvent, 1);

  ev->type = type;
  switch (type) {
    case KVS_EVENT_TAG:
      ev->tag = data;
      break;
    case KVS_EVENT_CLUSTER:
      ev->tracks = data;
      break;
    case KVS_EVENT_BLOCK:
      ev->block = data;
      break;
    case KVS_EVENT_FRAGMENT:
      ev->fragment = data;
      break;
  }
  g_queue_push_tail (&p->events, ev);
}

void
kvs_event_free (KvsEvent *ev)
{
  if (ev == NULL)
    return;
  if (ev->tag)
    kvs_tag_free (ev->tag);
  if (ev->tracks)
    g_ptr_array_unref (ev->tracks);
  if (ev->block)
    kvs_block_free (ev->block);
  kvs_fragment_free (ev->fragment);
  g_free (ev);
}

static KvsFragment *
kvs_fragment_new (void)
{
  KvsFragment *frag = g_new0 (KvsFragment, 1);

  frag->tracks =
      g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_track_free);
  frag->blocks =
      g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_block_free);
  frag->tags = g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_tag_free);
  frag->timecode_scale = DEFAULT_TIMECODE_SCALE;
  frag->error_id = KVS_NONE;
  frag->producer_timestamp_ms = KVS_NONE;
  frag->server_timestamp_ms = KVS_NONE;
  frag->millis_behind_now = KVS_NONE;
  return frag;
}

void
kvs_fragment_free (KvsFragment *frag)
{
  if (frag == NULL)
    return;
  g_ptr_array_unref (frag->tracks);
  g_ptr_array_unref (frag->blocks);
  g_ptr_array_unref (frag->tags);
  g_free (frag->fragment_number);
  g_free (frag->continuation_token);
  g_free (frag->contact_id);
  g_free (frag->mime_type);
  g_free (frag->error_code);
  g_free (frag->error_message);
  g_free (frag);
}

const KvsTrack *
kvs_fragment_find_track (const KvsFragment *frag, guint64 number)
{
  guint i;

  for (i = 0; i < frag->tracks->len; i++) {
    const KvsTrack *t = g_ptr_array_index (frag->tracks, i);

    if (t->number == number)
      return t;
  }
  return NULL;
}

/* Connect writes TrackType 2 with a bogus A_AAC CodecID over raw PCM, so
 * the type decides; the CodecID prefix only stands in when it is absent. */
gboolean
kvs_track_is_audio (const KvsTrack *track)
{
  if (track->type != 0)
    return track->type == KVS_TRACK_TYPE_AUDIO;
  return g_str_has_prefix (track->codec_id, "A_");
}

static const KvsTrack *
find_segment_track (KvsParser *p, guint64 number)
{
  guint i;

  for (i = 0; i < p->tracks->len; i++) {
    const KvsTrack *t = g_ptr_array_index (p->tracks, i);

    if (t->number == number)
      return t;
  }
  return NULL;
}

/* "1726677688.724" (decimal seconds) -> 1726677688724. Digits past the
 * millisecond round up, as the AWS parser library's ceil(x * 1000) does. */
gboolean
kvs_parse_timestamp_ms (const gchar *str, guint64 *ms)
{
  guint64 secs = 0, frac = 0;
  guint n_frac = 0;
  gboolean round_up = FALSE;
  const gchar *s = str;

  if (!g_ascii_isdigit (*s))
    return FALSE;
  for (; g_ascii_isdigit (*s); s++) {
    if (secs > (G_MAXUINT64 / 1000 - 9) / 10)
      return FALSE;
    secs = secs * 10 + (*s - '0');
  }
  if (*s == '.') {
    for (s++; g_ascii_isdigit (*s); s++) {
      if (n_frac < 3) {
        frac = frac * 10 + (*s - '0');
        n_frac++;
      } else if (*s != '0') {
        round_up = TRUE;
      }
    }
  }
  if (*s != '\0')
    return FALSE;
  for (; n_frac < 3; n_frac++)
    frac *= 10;
  *ms = secs * 1000 + frac + (round_up ? 1 : 0);
  return TRUE;
}

static gboolean
fragment_has_content (const KvsFragment *frag)
{
  return frag->tags->len > 0 || frag->n_clusters > 0;
}

static void
finish_fragment (KvsParser *p, gboolean truncated)
{
  guint i;

  if (!fragment_has_content (p->frag))
    return;
  for (i = 0; i < p->tracks->len; i++)
    g_ptr_array_add (p->frag->tracks,
        kvs_track_copy (g_ptr_array_index (p->tracks, i)));
  p->frag->timecode_scale = p->timecode_scale;
  p->frag->truncated = truncated;
  if (p->incremental)
    queue_event (p, KVS_EVENT_FRAGMENT, p->frag);
  else
    g_queue_push_tail (&p->done, p->frag);
  p->frag = kvs_fragment_new ();
}

static void
reset_segment (KvsParser *p)
{
  g_ptr_array_set_size (p->tracks, 0);
  p->timecode_scale = DEFAULT_TIMECODE_SCALE;
  p->have_cluster_timecode = FALSE;
}

static void
clear_stack (KvsParser *p)
{
  while (p->depth > 0) {
    Frame *f = &p->stack[--p->depth];

    g_clear_pointer (&f->tag_name, g_free);
    g_clear_pointer (&f->tag_value, g_free);
  }
  g_clear_pointer (&p->cur_track, kvs_track_free);
}

KvsParser *
kvs_parser_new (void)
{
  KvsParser *p = g_new0 (KvsParser, 1);

  p->tracks = g_ptr_array_new_with_free_func ((GDestroyNotify) kvs_track_free);
  p->frag = kvs_fragment_new ();
  g_queue_init (&p->done);
  g_queue_init (&p->events);
  kvs_parser_reset (p);
  return p;
}

void
kvs_parser_reset (KvsParser *p)
{
  clear_stack (p);
  g_queue_clear_full (&p->done, (GDestroyNotify) kvs_fragment_free);
  g_queue_clear_full (&p->events, (GDestroyNotify) kvs_event_free);
  kvs_fragment_free (p->frag);
  p->frag = kvs_fragment_new ();
  reset_segment (p);
  p->offset = 0;
  p->skip = 0;
  p->needed = 1;
  p->seen_header = FALSE;
  p->ever_header = FALSE;
}

void
kvs_parser_free (KvsParser *p)
{
  if (p == NULL)
    return;
  clear_stack (p);
  g_queue_clear_full (&p->done, (GDestroyNotify) kvs_fragment_free);
  g_queue_clear_full (&p->events, (GDestroyNotify) kvs_event_free);
  kvs_fragment_free (p->frag);
  g_ptr_array_unref (p->tracks);
  g_free (p);
}

gsize
kvs_parser_get_needed (KvsParser *p)
{
  return p->needed;
}

guint64
kvs_parser_get_offset (KvsParser *p)
{
  return p->offset;
}

KvsFragment *
kvs_parser_pop_fragment (KvsParser *p)
{
  return g_queue_pop_head (&p->done);
}

/* Set before the first bytes are parsed; the caller drains the events
 * after each kvs_parser_parse() call, so they never hold more than the
 * bytes offered to it. */
void
kvs_parser_set_incremental (KvsParser *p, gboolean incremental)
{
  p->incremental = incremental;
}

KvsEvent *
kvs_parser_pop_event (KvsParser *p)
{
  return g_queue_pop_head (&p->events);
}

static void
mark_continuation (KvsParser *p)
{
  guint i;

  for (i = p->depth; i > 0; i--) {
    if (p->stack[i - 1].id == KVS_EBML_ID_TAGS) {
      p->stack[i - 1].has_continuation = TRUE;
      return;
    }
  }
}

static void
set_string (gchar **field, const gchar *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

static void
set_timestamp (guint64 *field, const gchar *value)
{
  guint64 ms;

  if (kvs_parse_timestamp_ms (value, &ms))
    *field = ms;
}

static void
set_uint (guint64 *field, const gchar *value)
{
  guint64 v;

  if (g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64 - 1, &v, NULL))
    *field = v;
}

/* The AWS tags: GetMedia's, and GetMediaForFragmentList's spellings. */
static void
interpret_tag (KvsParser *p, const gchar *name, const gchar *value)
{
  KvsFragment *f = p->frag;

  if (!strcmp (name, "AWS_KINESISVIDEO_FRAGMENT_NUMBER")) {
    set_string (&f->fragment_number, value);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_CONTINUATION_TOKEN")) {
    set_string (&f->continuation_token, value);
    mark_continuation (p);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_SERVER_TIMESTAMP")
      || !strcmp (name, "AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP")) {
    set_timestamp (&f->server_timestamp_ms, value);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP")
      || !strcmp (name, "AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP")) {
    set_timestamp (&f->producer_timestamp_ms, value);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW")) {
    set_uint (&f->millis_behind_now, value);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_ERROR_CODE")
      || !strcmp (name, "AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE")) {
    set_string (&f->error_code, value);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_ERROR_ID")) {
    set_uint (&f->error_id, value);
  } else if (!strcmp (name, "AWS_KINESISVIDEO_EXCEPTION_MESSAGE")) {
    set_string (&f->error_message, value);
  } else if (!strcmp (name, "ContactId")) {
    set_string (&f->contact_id, value);
  } else if (!strcmp (name, "MimeType")) {
    set_string (&f->mime_type, value);
  }
}

static gboolean
commit_simple_tag (KvsParser *p, Frame *f, GError **error)
{
  KvsTag *tag;

  if (f->tag_name == NULL)
    return TRUE;
  if (p->frag->tags->len >= KVS_MAX_FRAGMENT_TAGS) {
    g_set_error (error, KVS_PARSER_ERROR, KVS_PARSER_ERROR_TOO_LARGE,
        "more than %d tags in one fragment at offset %" G_GUINT64_FORMAT,
        KVS_MAX_FRAGMENT_TAGS, p->offset);
    return FALSE;
  }
  tag = g_new0 (KvsTag, 1);
  tag->name = g_steal_pointer (&f->tag_name);
  tag->value = f->tag_value ? g_steal_pointer (&f->tag_value) : g_strdup ("");
  g_ptr_array_add (p->frag->tags, tag);
  interpret_tag (p, tag->name, tag->value);
  if (p->incremental) {
    KvsTag *copy = g_new0 (KvsTag, 1);

    copy->name = g_strdup (tag->name);
    copy->value = g_strdup (tag->value);
    queue_event (p, KVS_EVENT_TAG, copy);
  }
  return TRUE;
}

static void
commit_track (KvsParser *p)
{
  KvsTrack *t = g_steal_pointer (&p->cur_track);

  if (t->number == 0 || find_segment_track (p, t->number) != NULL
      || p->tracks->len >= KVS_MAX_TRACKS) {
    kvs_track_free (t);
    return;
  }
  g_ptr_array_add (p->tracks, t);
}

static gboolean
end_master (KvsParser *p, GError **error)
{
  Frame *f = &p->stack[p->depth - 1];
  gboolean ok = TRUE;

  switch (f->id) {
    case KVS_EBML_ID_TRACKENTRY:
      if (p->cur_track)
        commit_track (p);
      break;
    case KVS_EBML_ID_SIMPLETAG:
      ok = commit_simple_tag (p, f, error);
      break;
    case KVS_EBML_ID_CLUSTER:
      p->have_cluster_timecode = FALSE;
      break;
    case KVS_EBML_ID_TAGS:
      /* GetMedia closes each document with the MILLIS_BEHIND_NOW and
       * CONTINUATION_TOKEN tags after the Cluster: the fragment is whole
       * then, without waiting for the next one's EBML header. Some
       * writers put the token before the Cluster, hence the check. */
      if (f->has_continuation && p->frag->n_clusters > 0)
        finish_fragment (p, FALSE);
      break;
    case KVS_EBML_ID_SEGMENT:
      finish_fragment (p, FALSE);
      break;
    default:
      break;
  }
  g_clear_pointer (&f->tag_name, g_free);
  g_clear_pointer (&f->tag_value, g_free);
  p->depth--;
  return ok;
}

static void
start_master (KvsParser *p, guint32 id)
{
  switch (id) {
    case KVS_EBML_ID_HEADER:
    case KVS_EBML_ID_SEGMENT:
      finish_fragment (p, FALSE);
      if (id == KVS_EBML_ID_HEADER)
        p->seen_header = p->ever_header = TRUE;
      reset_segment (p);
      break;
    case KVS_EBML_ID_TRACKS:
      g_ptr_array_set_size (p->tracks, 0);
      break;
    case KVS_EBML_ID_TRACKENTRY:
      g_clear_pointer (&p->cur_track, kvs_track_free);
      p->cur_track = g_new0 (KvsTrack, 1);
      p->cur_track->name = g_strdup ("");
      p->cur_track->codec_id = g_strdup ("");
      break;
    case KVS_EBML_ID_CLUSTER:
      p->frag->n_clusters++;
      p->have_cluster_timecode = FALSE;
      if (p->incremental)
        queue_event (p, KVS_EVENT_CLUSTER, copy_tracks (p->tracks));
      break;
    default:
      break;
  }
}

static gboolean
close_finished_masters (KvsParser *p, GError **error)
{
  while (p->depth > 0 && p->stack[p->depth - 1].end != KVS_EBML_SIZE_UNKNOWN
      && p->offset >= p->stack[p->depth - 1].end) {
    if (!end_master (p, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean fail (GError **error, gint code, const gchar *format, ...)
    G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError **error, gint code, const gchar *format, ...)
{
  g_autofree gchar *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, KVS_PARSER_ERROR, code, msg);
  return FALSE;
}

/* Where does element @id go? Closes the unknown-size masters it ends and
 * returns TRUE with *known set when it is a child of the new top; FALSE
 * with an error when it cannot appear there. An element the hierarchy puts
 * elsewhere inside a known-size master is foreign data: *known = FALSE and
 * the caller skips it by its size. */
static gboolean
place_element (KvsParser *p, guint32 id, const ElementInfo *info,
    gboolean *known, GError **error)
{
  guint target, i;

  *known = FALSE;
  if (p->depth == 0) {
    if (!p->seen_header && id != KVS_EBML_ID_HEADER)
      return fail (error, KVS_PARSER_ERROR_NOT_EBML,
          "not an MKV stream: it starts with ID 0x%X at offset "
          "%" G_GUINT64_FORMAT ", not an EBML header",
          id, p->offset);
    if (id != KVS_EBML_ID_HEADER && id != KVS_EBML_ID_SEGMENT)
      return fail (error, KVS_PARSER_ERROR_MALFORMED,
          "unexpected %s (ID 0x%X) outside a Segment at offset "
          "%" G_GUINT64_FORMAT,
          element_name (id), id, p->offset);
    *known = TRUE;
    return TRUE;
  }
  if (info == NULL)
    return TRUE;
  if (is_child_of (info, p->stack[p->depth - 1].id)) {
    *known = TRUE;
    return TRUE;
  }

  /* Find the open master it belongs to (0 = top level); every master in
   * between must have an unknown size, which this element then closes. */
  target = 0;
  if (info->parent != 0) {
    for (i = p->depth; i > 0; i--) {
      if (is_child_of (info, p->stack[i - 1].id)) {
        target = i;
        break;
      }
    }
    if (target == 0)
      return TRUE;
  }
  for (i = p->depth; i > target; i--) {
    if (p->stack[i - 1].end != KVS_EBML_SIZE_UNKNOWN)
      return TRUE;
  }
  while (p->depth > target) {
    if (!end_master (p, error))
      return FALSE;
  }
  return place_element (p, id, info, known, error);
}

static gboolean
check_fits_parent (KvsParser *p, guint32 id, guint hdr, guint64 size,
    GError **error)
{
  const Frame *parent;

  if (p->depth == 0)
    return TRUE;
  parent = &p->stack[p->depth - 1];
  if (parent->end == KVS_EBML_SIZE_UNKNOWN)
    return TRUE;
  if (size == KVS_EBML_SIZE_UNKNOWN || p->offset + hdr > parent->end
      || size > parent->end - p->offset - hdr)
    return fail (error, KVS_PARSER_ERROR_MALFORMED,
        "%s (ID 0x%X) at offset %" G_GUINT64_FORMAT " overflows its parent %s",
        element_name (id), id, p->offset, element_name (parent->id));
  return TRUE;
}

static gboolean
check_skip_size (KvsParser *p, guint32 id, guint64 size, GError **error)
{
  if (size == KVS_EBML_SIZE_UNKNOWN)
    return fail (error, KVS_PARSER_ERROR_MALFORMED,
        "%s (ID 0x%X) at offset %" G_GUINT64_FORMAT
        " has an unknown size, which only Segment and Cluster may have",
        element_name (id), id, p->offset);
  if (size > KVS_MAX_SKIP_SIZE)
    return fail (error, KVS_PARSER_ERROR_TOO_LARGE,
        "%s (ID 0x%X) at offset %" G_GUINT64_FORMAT " claims %" G_GUINT64_FORMAT
        " bytes, more than the %" G_GUINT64_FORMAT " allowed",
        element_name (id), id, p->offset, size, KVS_MAX_SKIP_SIZE);
  return TRUE;
}

static gboolean
push_master (KvsParser *p, guint32 id, guint hdr, guint64 size, GError **error)
{
  Frame *f;

  if (size == KVS_EBML_SIZE_UNKNOWN && id != KVS_EBML_ID_SEGMENT
      && id != KVS_EBML_ID_CLUSTER)
    return check_skip_size (p, id, size, error);
  if (size != KVS_EBML_SIZE_UNKNOWN && id != KVS_EBML_ID_SEGMENT
      && id != KVS_EBML_ID_CLUSTER && id != KVS_EBML_ID_BLOCKGROUP
      && size > KVS_MAX_MASTER_SIZE)
    return fail (error, KVS_PARSER_ERROR_TOO_LARGE,
        "%s at offset %" G_GUINT64_FORMAT " claims %" G_GUINT64_FORMAT
        " bytes, more than the %d allowed",
        element_name (id), p->offset, size, KVS_MAX_MASTER_SIZE);
  if (id == KVS_EBML_ID_BLOCKGROUP && !check_skip_size (p, id, size, error))
    return FALSE;
  if (p->depth >= KVS_MAX_DEPTH)
    return fail (error, KVS_PARSER_ERROR_MALFORMED,
        "elements nested deeper than %d at offset %" G_GUINT64_FORMAT,
        KVS_MAX_DEPTH, p->offset);

  start_master (p, id);
  f = &p->stack[p->depth++];
  memset (f, 0, sizeof (*f));
  f->id = id;
  f->end = size == KVS_EBML_SIZE_UNKNOWN ? KVS_EBML_SIZE_UNKNOWN
                                         : p->offset + hdr + size;
  return TRUE;
}

static gboolean
apply_leaf (KvsParser *p, const ElementInfo *info, const guint8 *data,
    gsize size, GError **error)
{
  guint64 u = 0;
  gdouble d = 0;
  g_autofree gchar *s = NULL;
  Frame *top = &p->stack[p->depth - 1];

  switch (info->kind) {
    case KIND_UINT:
      if (!kvs_ebml_parse_uint (data, size, &u))
        return fail (error, KVS_PARSER_ERROR_MALFORMED,
            "%s at offset %" G_GUINT64_FORMAT " has %" G_GSIZE_FORMAT
            " bytes, more than an integer's 8",
            info->name, p->offset, size);
      break;
    case KIND_FLOAT:
      if (!kvs_ebml_parse_float (data, size, &d))
        return fail (error, KVS_PARSER_ERROR_MALFORMED,
            "%s at offset %" G_GUINT64_FORMAT " has %" G_GSIZE_FORMAT
            " bytes; a float has 4 or 8",
            info->name, p->offset, size);
      break;
    default:
      s = kvs_ebml_parse_string (data, size);
      break;
  }

  switch (info->id) {
    case KVS_EBML_ID_DOCTYPE:
      if (strcmp (s, "matroska") && strcmp (s, "webm"))
        return fail (error, KVS_PARSER_ERROR_NOT_EBML,
            "not an MKV stream: EBML DocType is '%s'", s);
      break;
    case KVS_EBML_ID_TIMECODESCALE:
      p->timecode_scale = u ? u : DEFAULT_TIMECODE_SCALE;
      break;
    case KVS_EBML_ID_TIMECODE:
      p->cluster_timecode = u;
      p->have_cluster_timecode = TRUE;
      break;
    case KVS_EBML_ID_TRACKNUMBER:
      if (p->cur_track)
        p->cur_track->number = u;
      break;
    case KVS_EBML_ID_TRACKTYPE:
      if (p->cur_track)
        p->cur_track->type = u;
      break;
    case KVS_EBML_ID_NAME:
      if (p->cur_track)
        set_string (&p->cur_track->name, s);
      break;
    case KVS_EBML_ID_CODECID:
      if (p->cur_track)
        set_string (&p->cur_track->codec_id, s);
      break;
    case KVS_EBML_ID_SAMPLINGFREQUENCY:
      if (p->cur_track)
        p->cur_track->sampling_frequency = d;
      break;
    case KVS_EBML_ID_CHANNELS:
      if (p->cur_track)
        p->cur_track->channels = u;
      break;
    case KVS_EBML_ID_BITDEPTH:
      if (p->cur_track)
        p->cur_track->bit_depth = u;
      break;
    case KVS_EBML_ID_TAGNAME:
      g_free (top->tag_name);
      top->tag_name = g_steal_pointer (&s);
      break;
    case KVS_EBML_ID_TAGSTRING:
      g_free (top->tag_value);
      top->tag_value = g_steal_pointer (&s);
      break;
    default:
      break;
  }
  return TRUE;
}

static void
add_block (KvsParser *p, guint64 track, gint16 rel, const guint8 *data,
    gsize size)
{
  KvsBlock *b = g_new0 (KvsBlock, 1);
  guint64 tc = p->have_cluster_timecode ? p->cluster_timecode : 0;

  b->track_number = track;
  b->pts_ns = KVS_NONE;
  b->timecode = 0;
  if (tc <= (guint64) G_MAXINT64 - G_MAXINT16) {
    b->timecode = (gint64) tc + rel;
    if (b->timecode >= 0
        && (guint64) b->timecode <= G_MAXUINT64 / 2 / p->timecode_scale)
      b->pts_ns = (guint64) b->timecode * p->timecode_scale;
  }
  b->payload = g_bytes_new (data, size);
  p->frag->audio_bytes += size;
  if (p->incremental)
    queue_event (p, KVS_EVENT_BLOCK, b);
  else
    g_ptr_array_add (p->frag->blocks, b);
}

/* Returns the bytes used (0: p->needed set, waiting for more). Only the
 * blocks of audio tracks are kept; the others are skipped unread. */
static gboolean
handle_block (KvsParser *p, guint32 id, guint hdr, guint64 size,
    const guint8 *data, gsize avail, gsize *used, GError **error)
{
  guint64 track_number;
  guint vlen;
  const KvsTrack *track;
  const guint8 *body;
  guint8 flags;
  gint16 rel;

  *used = 0;
  if (!check_skip_size (p, id, size, error))
    return FALSE;
  /* The block header: track number vint, 16-bit timecode, flags. */
  if (size > 0 && avail < hdr + 1) {
    p->needed = hdr + 1;
    return TRUE;
  }
  vlen = size > 0 ? kvs_ebml_vint_length (data[hdr]) : 0;
  if (vlen != 0 && size >= (guint64) vlen + 3 && avail < hdr + vlen + 3) {
    p->needed = hdr + vlen + 3;
    return TRUE;
  }
  if (vlen == 0 || size < (guint64) vlen + 3
      || kvs_ebml_read_vint (data + hdr, vlen, &track_number, &vlen)
          != KVS_EBML_OK)
    return fail (error, KVS_PARSER_ERROR_MALFORMED,
        "%s at offset %" G_GUINT64_FORMAT " has a malformed header",
        element_name (id), p->offset);

  track = find_segment_track (p, track_number);
  if (track == NULL || !kvs_track_is_audio (track)) {
    p->frag->n_blocks++;
    *used = hdr;
    p->skip = size;
    return TRUE;
  }
  if (size > KVS_MAX_BLOCK_SIZE)
    return fail (error, KVS_PARSER_ERROR_TOO_LARGE,
        "%s at offset %" G_GUINT64_FORMAT " claims %" G_GUINT64_FORMAT
        " bytes, more than the %d allowed for audio",
        element_name (id), p->offset, size, KVS_MAX_BLOCK_SIZE);
  if (p->frag->audio_bytes + size > KVS_MAX_FRAGMENT_AUDIO)
    return fail (error, KVS_PARSER_ERROR_TOO_LARGE,
        "fragment holds more than %d bytes of audio at offset "
        "%" G_GUINT64_FORMAT,
        KVS_MAX_FRAGMENT_AUDIO, p->offset);
  if (avail < hdr + size) {
    p->needed = hdr + size;
    return TRUE;
  }
  body = data + hdr + vlen;
  rel = (gint16) (((guint16) body[0] << 8) | body[1]);
  flags = body[2];
  /* Lacing packs several frames in one block; PCM producers never lace,
   * and a laced audio block cannot be timed sample-exactly: dropped. */
  if ((flags & 0x06) == 0)
    add_block (p, track_number, rel, body + 3, size - vlen - 3);
  p->frag->n_blocks++;
  *used = hdr + size;
  return TRUE;
}

static gboolean
handle_element (KvsParser *p, guint32 id, guint hdr, guint64 size,
    const guint8 *data, gsize avail, gsize *used, GError **error)
{
  const ElementInfo *info = lookup_element (id);
  gboolean known = FALSE;

  *used = 0;
  if (id != KVS_EBML_ID_VOID && id != KVS_EBML_ID_CRC32
      && !place_element (p, id, info, &known, error))
    return FALSE;
  if (!check_fits_parent (p, id, hdr, size, error))
    return FALSE;

  if (!known || info->kind == KIND_SKIP) {
    if (!check_skip_size (p, id, size, error))
      return FALSE;
    *used = hdr;
    p->skip = size;
    return TRUE;
  }
  switch (info->kind) {
    case KIND_MASTER:
      if (!push_master (p, id, hdr, size, error))
        return FALSE;
      *used = hdr;
      return TRUE;
    case KIND_BLOCK:
      return handle_block (p, id, hdr, size, data, avail, used, error);
    default:
      if (size == KVS_EBML_SIZE_UNKNOWN || size > KVS_MAX_STRING_SIZE)
        return fail (error, KVS_PARSER_ERROR_TOO_LARGE,
            "%s at offset %" G_GUINT64_FORMAT " claims %s bytes", info->name,
            p->offset,
            size == KVS_EBML_SIZE_UNKNOWN ? "an unknown number of"
                                          : "too many");
      if (avail < hdr + size) {
        p->needed = hdr + size;
        return TRUE;
      }
      if (!apply_leaf (p, info, data + hdr, size, error))
        return FALSE;
      *used = hdr + size;
      return TRUE;
  }
}

gboolean
kvs_parser_parse (KvsParser *p, const guint8 *data, gsize len, gsize *consumed,
    GError **error)
{
  gsize pos = 0;
  gboolean ok = TRUE;

  while (ok) {
    KvsEbmlResult res;
    guint32 id;
    guint64 size;
    guint id_len, size_len;
    gsize used;

    if (p->skip > 0) {
      guint64 n = MIN (p->skip, (guint64) (len - pos));

      pos += n;
      p->offset += n;
      p->skip -= n;
      if (p->skip > 0) {
        p->needed = 1;
        break;
      }
    }
    if (!close_finished_masters (p, error)) {
      ok = FALSE;
      break;
    }
    if (pos == len) {
      p->needed = 1;
      break;
    }

    res = kvs_ebml_read_id (data + pos, len - pos, &id, &id_len);
    if (res == KVS_EBML_OK)
      res = kvs_ebml_read_size (data + pos + id_len, len - pos - id_len, &size,
          &size_len);
    if (res == KVS_EBML_NEED_MORE) {
      p->needed = len - pos + 1;
      break;
    }
    if (res == KVS_EBML_INVALID) {
      ok = fail (error,
          p->seen_header ? KVS_PARSER_ERROR_MALFORMED
                         : KVS_PARSER_ERROR_NOT_EBML,
          "invalid EBML element header (a vint of length 0 or over its "
          "maximum) at offset %" G_GUINT64_FORMAT,
          p->offset);
      break;
    }

    ok = handle_element (p, id, id_len + size_len, size, data + pos, len - pos,
        &used, error);
    if (ok && used == 0)
      break;
    pos += used;
    p->offset += used;
  }
  *consumed = pos;
  return ok;
}

void
kvs_parser_discont (KvsParser *p)
{
  clear_stack (p);
  finish_fragment (p, TRUE);
  kvs_fragment_free (p->frag);
  p->frag = kvs_fragment_new ();
  reset_segment (p);
  p->skip = 0;
  p->needed = 1;
  p->seen_header = FALSE;
}

gboolean
kvs_parser_finish (KvsParser *p, gsize pending, GError **error)
{
  guint64 at = p->offset;
  guint32 open_id = 0;
  guint i;

  for (i = 0; i < p->depth; i++) {
    if (p->stack[i].end != KVS_EBML_SIZE_UNKNOWN) {
      open_id = p->stack[i].id;
      break;
    }
  }

  if (pending > 0 || p->skip > 0 || open_id != 0) {
    kvs_parser_discont (p);
    if (pending > 0 || p->skip > 0)
      return fail (error, KVS_PARSER_ERROR_TRUNCATED,
          "stream truncated: it ends inside an element at offset "
          "%" G_GUINT64_FORMAT,
          at);
    return fail (error, KVS_PARSER_ERROR_TRUNCATED,
        "stream truncated: it ends inside %s at offset %" G_GUINT64_FORMAT,
        element_name (open_id), at);
  }
  while (p->depth > 0) {
    if (!end_master (p, error))
      return FALSE;
  }
  finish_fragment (p, FALSE);
  if (!p->ever_header)
    return fail (error, KVS_PARSER_ERROR_NOT_EBML,
        "not an MKV stream: no EBML header in %" G_GUINT64_FORMAT " bytes",
        p->offset);
  return TRUE;
}

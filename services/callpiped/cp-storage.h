/* callpiped — storage (a directory or S3) and its signed media links
 *
 * Objects are named by a relative path: recordings/<sessionId>.wav,
 * transcripts/<sessionId>.json, turns/<sessionId>/<n>.wav. With a
 * directory they live under it and callpiped hands them out as expiring
 * links, /media/<path>?expires=<unix s>&sig=<hex>, where sig is
 * HMAC-SHA256 over "<path>\n<expires>" with a per-install secret kept in
 * the data directory (created on first start, mode 0600). With S3
 * (cp_storage_set_s3) they are s3://bucket/prefix/<path>, written by
 * s3sink and read by s3src in the pipelines, and handed out as SigV4
 * presigned URLs (region, endpoint and credentials from the AWS chain:
 * AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, profile, ...). The
 * directory then only holds files on their way in or out (spool).
 *
 * After a crash, cp_storage_repair_wav() makes a recording whose header
 * was never finalized playable: the RIFF and data sizes are set from the
 * file's length (a partial last sample frame is cut off).
 * cp_storage_check_wav() only says whether the header is final.
 */
#ifndef CP_STORAGE_H
#define CP_STORAGE_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_STORAGE_ERROR (cp_storage_error_quark ())

typedef enum
{
  CP_STORAGE_ERROR_FORBIDDEN,   /* bad signature, expired, bad path */
  CP_STORAGE_ERROR_NOT_FOUND,
  CP_STORAGE_ERROR_FAILED,
} CpStorageError;

#define CP_STORAGE_SECRET_LEN 32

/* A WAV recording as wavenc left it: wavenc writes placeholder sizes
 * first and the real ones at EOS, so a crash leaves them wrong. */
typedef enum
{
  CP_STORAGE_WAV_COMPLETE,      /* the header agrees with the file */
  CP_STORAGE_WAV_REPAIRED,      /* the sizes were set from the file */
} CpStorageWavState;

typedef struct
{
  CpStorageWavState state;
  guint rate;
  guint64 frames;               /* whole sample frames in the data chunk */
  guint64 cut_bytes;            /* a partial last frame cut off */
} CpStorageWav;

typedef struct _CpStorage CpStorage;

GQuark     cp_storage_error_quark     (void);
CpStorage *cp_storage_new             (const gchar *root,
                                       const gchar *secret_file,
                                       GError **error);
CpStorage *cp_storage_new_with_secret (const gchar *root,
                                       const guint8 *secret, gsize len);
void       cp_storage_free            (CpStorage *storage);
const gchar *cp_storage_get_root      (CpStorage *storage);
void       cp_storage_set_s3          (CpStorage *storage,
                                       const gchar *s3_uri);
gboolean   cp_storage_is_s3           (CpStorage *storage);
const gchar *cp_storage_sink_element  (CpStorage *storage);
const gchar *cp_storage_source_element (CpStorage *storage);
gchar     *cp_storage_location        (CpStorage *storage,
                                       const gchar *rel_path);
gchar     *cp_storage_local_path      (CpStorage *storage,
                                       const gchar *rel_path);
gchar     *cp_storage_recording_path  (CpStorage *storage,
                                       const gchar *session_id);
gchar     *cp_storage_transcript_path (CpStorage *storage,
                                       const gchar *session_id);
gchar     *cp_storage_link            (CpStorage *storage,
                                       const gchar *location,
                                       const gchar *base_url,
                                       guint ttl,
                                       GError **error);
gboolean   cp_storage_rel_path_is_safe (const gchar *rel_path);
gchar     *cp_storage_relative_path   (CpStorage *storage,
                                       const gchar *abs_path);
gchar     *cp_storage_sign            (CpStorage *storage,
                                       const gchar *rel_path,
                                       gint64 expires);
gboolean   cp_storage_verify          (CpStorage *storage,
                                       const gchar *rel_path,
                                       const gchar *expires,
                                       const gchar *sig,
                                       gint64 now,
                                       GError **error);
gchar     *cp_storage_resolve         (CpStorage *storage,
                                       const gchar *rel_path,
                                       GError **error);
gboolean   cp_constant_time_equal     (const gchar *a, const gchar *b);
gboolean   cp_storage_check_wav       (const gchar *path,
                                       CpStorageWav *wav,
                                       GError **error);
gboolean   cp_storage_repair_wav      (const gchar *path,
                                       CpStorageWav *wav,
                                       GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpStorage, cp_storage_free)

G_END_DECLS

#endif /* CP_STORAGE_H */

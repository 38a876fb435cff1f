/* callpiped — the storage directory and its signed media links
 *
 * Recordings live under <storage>/recordings/<sessionId>.wav. callpiped
 * hands them out as expiring links, /media/<path>?expires=<unix s>&sig=<hex>,
 * where sig is HMAC-SHA256 over "<path>\n<expires>" with a per-install
 * secret kept in the data directory (created on first start, mode 0600).
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

typedef struct _CpStorage CpStorage;

GQuark     cp_storage_error_quark     (void);
CpStorage *cp_storage_new             (const gchar *root,
                                       const gchar *secret_file,
                                       GError **error);
CpStorage *cp_storage_new_with_secret (const gchar *root,
                                       const guint8 *secret, gsize len);
void       cp_storage_free            (CpStorage *storage);
const gchar *cp_storage_get_root      (CpStorage *storage);
gchar     *cp_storage_recording_path  (CpStorage *storage,
                                       const gchar *session_id);
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpStorage, cp_storage_free)

G_END_DECLS

#endif /* CP_STORAGE_H */

/* callpiped — session records in SQLite
 *
 * <data-dir>/callpiped.db keeps one row per session so that a restart
 * loses nothing: rows a crash left in a live state are marked failed
 * ("interrupted by restart") on the next start, and calls whose transcript
 * never reached storage are found again (cp_store_list_untranscribed).
 */
#ifndef CP_STORE_H
#define CP_STORE_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_STORE_ERROR (cp_store_error_quark ())

typedef enum
{
  CP_STORE_ERROR_FAILED,
} CpStoreError;

#define CP_STORE_INTERRUPTED_REASON "interrupted by restart"

typedef struct
{
  gchar *id;
  gchar *kind;
  gchar *contact_id;
  gchar *state;
  gchar *reason;                /* NULL while there is none */
  gchar *pipeline;
  gchar *recording_path;        /* where the recording goes: a path, or an
                                 * s3:// URI; NULL when nothing is recorded */
  gchar *attributes_json;       /* NULL or a JSON object */
  gint64 started_at;            /* µs since the epoch */
  gint64 ended_at;              /* µs since the epoch, 0 while running */
  gchar *transcript_path;       /* the transcript JSON written at the end
                                 * (path or s3:// URI), else NULL */
  gchar *conversation_json;     /* {transcript: [...], intents: [...]} or
                                 * NULL before the bot said anything */
} CpSessionRecord;

typedef struct _CpStore CpStore;

GQuark           cp_store_error_quark   (void);
CpStore         *cp_store_open          (const gchar *path, GError **error);
void             cp_store_close         (CpStore *store);
GPtrArray       *cp_store_recover       (CpStore *store, gint64 now,
                                         GError **error);
gboolean         cp_store_insert        (CpStore *store,
                                         const CpSessionRecord *rec,
                                         GError **error);
gboolean         cp_store_update        (CpStore *store,
                                         const CpSessionRecord *rec,
                                         GError **error);
CpSessionRecord *cp_store_get           (CpStore *store, const gchar *id,
                                         GError **error);
GPtrArray       *cp_store_list          (CpStore *store, guint limit,
                                         GError **error);
GPtrArray       *cp_store_list_untranscribed (CpStore *store, guint limit,
                                              GError **error);
gchar           *cp_session_record_transcript (const CpSessionRecord *rec);
CpSessionRecord *cp_session_record_copy (const CpSessionRecord *rec);
void             cp_session_record_free (CpSessionRecord *rec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpStore, cp_store_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSessionRecord, cp_session_record_free)

G_END_DECLS

#endif /* CP_STORE_H */

/* callpiped — pipeline factory
 *
 * The gst-rtsp-server pattern: a factory owns one pipeline description
 * (pipelines/<name>.pipeline), knows the variables it takes and the
 * elements it needs, and builds a fresh pipeline per session from the
 * substituted launch text. Which elements are missing is worked out once,
 * at load time, by parsing the description with sample values, so a session
 * that cannot run is refused up front with the names of the elements.
 */
#ifndef CP_FACTORY_H
#define CP_FACTORY_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define CP_FACTORY_ERROR (cp_factory_error_quark ())

typedef enum
{
  CP_FACTORY_ERROR_NOT_FOUND,
  CP_FACTORY_ERROR_INVALID,
  CP_FACTORY_ERROR_MISSING_ELEMENTS,
} CpFactoryError;

typedef struct _CpFactory CpFactory;

GQuark              cp_factory_error_quark      (void);
CpFactory          *cp_factory_load             (const gchar *dir,
                                                 const gchar *name,
                                                 GError **error);
CpFactory          *cp_factory_new_from_text    (const gchar *name,
                                                 const gchar *text,
                                                 GError **error);
void                cp_factory_free             (CpFactory *factory);
const gchar        *cp_factory_get_name         (CpFactory *factory);
const gchar *const *cp_factory_get_variables    (CpFactory *factory);
const gchar *const *cp_factory_get_missing      (CpFactory *factory);
gboolean            cp_factory_is_available     (CpFactory *factory);
gchar              *cp_factory_expand           (CpFactory *factory,
                                                 GHashTable *values,
                                                 GError **error);
GstElement         *cp_factory_create_pipeline  (CpFactory *factory,
                                                 const gchar *pipeline_name,
                                                 GHashTable *values,
                                                 GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpFactory, cp_factory_free)

G_END_DECLS

#endif /* CP_FACTORY_H */

/* callpiped — Prometheus metrics
 *
 * Counters and a duration histogram per session kind, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 */
#ifndef CP_METRICS_H
#define CP_METRICS_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CpMetrics CpMetrics;

CpMetrics *cp_metrics_new             (void);
void       cp_metrics_free            (CpMetrics *m);
void       cp_metrics_session_started (CpMetrics *m, const gchar *kind);
void       cp_metrics_session_ended   (CpMetrics *m, const gchar *kind,
                                       gboolean failed, gdouble seconds);
void       cp_metrics_pipeline_error  (CpMetrics *m, const gchar *pipeline);
gchar     *cp_metrics_render          (CpMetrics *m);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpMetrics, cp_metrics_free)

G_END_DECLS

#endif /* CP_METRICS_H */

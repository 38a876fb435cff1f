/* callpiped — Prometheus metrics
 *
 * Counters and a duration histogram per session kind, refusals by kind
 * and reason, and what browser sessions lost to slow or flooding
 * browsers, rendered in the Prometheus text exposition format (version
 * 0.0.4) for GET /metrics.
 */
#ifndef CP_METRICS_H
#define CP_METRICS_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CpMetrics CpMetrics;

/* Which way the audio of a browser session was going. */
typedef enum
{
  CP_METRICS_AUDIO_REPLY,       /* the bot's reply, to the browser */
  CP_METRICS_AUDIO_CALLER,      /* the caller's audio, from the browser */
  CP_METRICS_AUDIO_N,
} CpMetricsAudio;

CpMetrics *cp_metrics_new             (void);
void       cp_metrics_free            (CpMetrics *m);
void       cp_metrics_session_started (CpMetrics *m, const gchar *kind);
void       cp_metrics_session_ended   (CpMetrics *m, const gchar *kind,
                                       gboolean failed, gdouble seconds);
void       cp_metrics_pipeline_error  (CpMetrics *m, const gchar *pipeline);
void       cp_metrics_session_refused (CpMetrics *m, const gchar *kind,
                                       const gchar *reason);
void       cp_metrics_audio_dropped   (CpMetrics *m, CpMetricsAudio direction,
                                       gdouble seconds);
void       cp_metrics_browser_stalled (CpMetrics *m);
gchar     *cp_metrics_render          (CpMetrics *m);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpMetrics, cp_metrics_free)

G_END_DECLS

#endif /* CP_METRICS_H */

/* callpipe — transcripts: Transcribe streaming results and the batch
 * output document
 *
 * A result is one Transcribe streaming Result (first alternative only):
 * times in seconds, items in order, words ("pronunciation") with times and
 * punctuation without. The same type carries the offline engine's results,
 * so both backends post the same messages and write the same document.
 *
 * cp_transcript_event_parse() reads a TranscriptEvent payload, which comes
 * from the network: it never trusts a field's presence or type. A
 * CpTranscript collects final results and writes them in the Amazon
 * Transcribe batch output schema (jobName, status, results.transcripts,
 * results.items with string times and confidences, channel_labels when
 * there are two channels). No GStreamer here.
 */
#ifndef CP_TRANSCRIPT_H
#define CP_TRANSCRIPT_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_TRANSCRIPT_ERROR (cp_transcript_error_quark ())
GQuark cp_transcript_error_quark (void);

typedef enum
{
  CP_TRANSCRIPT_ERROR_PARSE,    /* not JSON, or not a TranscriptEvent */
  CP_TRANSCRIPT_ERROR_WRITE,    /* the document could not be written */
} CpTranscriptError;

/* Transcribe allows two channels with channel identification. */
#define CP_TRANSCRIPT_MAX_CHANNELS 2

typedef struct
{
  gchar *content;
  gdouble start;                /* seconds; unset (0) for punctuation */
  gdouble end;
  gdouble confidence;           /* 0..1, meaningful when has_confidence */
  gboolean has_confidence;
  gboolean is_punctuation;
  gboolean stable;              /* partial-results stabilization */
} CpTranscriptItem;

typedef struct
{
  gchar *result_id;
  gboolean is_partial;
  guint channel;                /* 0 for "ch_0" */
  gdouble start;                /* seconds */
  gdouble end;
  gchar *text;                  /* the alternative's transcript */
  GArray *items;                /* of CpTranscriptItem, in order */
} CpTranscriptResult;

CpTranscriptResult *cp_transcript_result_new  (const gchar *result_id,
                                               gboolean is_partial,
                                               guint channel);
CpTranscriptResult *cp_transcript_result_copy (const CpTranscriptResult *result);
void                cp_transcript_result_free (CpTranscriptResult *result);
/* Appends a word (is_punctuation FALSE) or a punctuation mark. */
void                cp_transcript_result_add_item
                                              (CpTranscriptResult *result,
                                               const gchar *content,
                                               gboolean is_punctuation,
                                               gdouble start,
                                               gdouble end,
                                               gdouble confidence,
                                               gboolean has_confidence);
/* Shifts every time by @offset seconds. */
void                cp_transcript_result_shift
                                              (CpTranscriptResult *result,
                                               gdouble offset);
/* Drops the words that start before @time (seconds, minus a millisecond
 * of rounding slack) and the punctuation that follows them, then rebuilds
 * text, start and end from what is left. Returns FALSE when nothing is
 * left, or when the result ends before @time. */
gboolean            cp_transcript_result_trim_before
                                              (CpTranscriptResult *result,
                                               gdouble time);
/* Words joined by spaces, punctuation attached to the word before. */
gchar              *cp_transcript_result_items_text
                                              (const CpTranscriptResult *result);
/* "ch_0", "ch_1": a static string. */
const gchar        *cp_transcript_channel_label (guint channel);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpTranscriptResult, cp_transcript_result_free)

/* Parses a TranscriptEvent payload ({"Transcript":{"Results":[...]}}).
 * Returns the results (of CpTranscriptResult, may be empty) or NULL with
 * CP_TRANSCRIPT_ERROR_PARSE. Unknown keys are ignored; a result without
 * alternatives has empty text and no items; a ChannelId other than ch_0 or
 * ch_1 is an error. */
GPtrArray *cp_transcript_event_parse (const gchar *json,
                                      gsize len,
                                      GError **error);

/* The final results of one stream, in time order per channel. */
typedef struct _CpTranscript CpTranscript;

CpTranscript *cp_transcript_new        (guint n_channels);
void          cp_transcript_free       (CpTranscript *transcript);
/* Takes the items of a final result (partials are ignored). */
void          cp_transcript_add        (CpTranscript *transcript,
                                        const CpTranscriptResult *result);
guint         cp_transcript_get_n_items (const CpTranscript *transcript);
/* The document in the Transcribe batch output schema, pretty-printed.
 * @job_name is validated by the caller; @language_code may be NULL. */
gchar        *cp_transcript_to_json    (const CpTranscript *transcript,
                                        const gchar *job_name,
                                        const gchar *language_code);
/* Writes the document to @path atomically (a temporary file renamed). */
gboolean      cp_transcript_write_file (const CpTranscript *transcript,
                                        const gchar *path,
                                        const gchar *job_name,
                                        const gchar *language_code,
                                        GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpTranscript, cp_transcript_free)

G_END_DECLS

#endif /* CP_TRANSCRIPT_H */

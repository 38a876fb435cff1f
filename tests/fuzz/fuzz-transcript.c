/* libFuzzer target for the TranscriptEvent parser.
 *
 * Whatever parses must survive what the client does with a result next:
 * trimming at a time taken from the input, and the batch document. */
#include "transcript.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GPtrArray) results = NULL;
  g_autoptr (CpTranscript) transcript = NULL;
  g_autofree gchar *json = NULL;
  guint i;

  results = cp_transcript_event_parse ((const gchar *) data, size, NULL);
  if (results == NULL)
    return 0;
  transcript = cp_transcript_new (CP_TRANSCRIPT_MAX_CHANNELS);
  for (i = 0; i < results->len; i++) {
    CpTranscriptResult *r = g_ptr_array_index (results, i);

    r->is_partial = FALSE;
    cp_transcript_add (transcript, r);
    cp_transcript_result_trim_before (r, size > 0 ? data[0] / 16.0 : 0.0);
  }
  json = cp_transcript_to_json (transcript, "fuzz", NULL);
  return 0;
}

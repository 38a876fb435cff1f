/* libFuzzer target for the Nova Sonic output-event parser.
 *
 * The input is the JSON of one event: it goes through the service's
 * wrapping (a chunk message whose payload is {"bytes":"<base64>"}), then
 * sonic_output_event_parse(), which must either return an event or fail
 * with SONIC_ERROR_MALFORMED. The raw input is parsed as a chunk payload
 * too, so the outer {"bytes":...} layer is fuzzed as well.
 */
#include "sonicprotocol.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
parse_payload (GBytes *owned)
{
  g_autoptr (GBytes) payload = owned;
  g_autoptr (CpAwsEventMessage) msg = cp_aws_event_message_new ();
  g_autoptr (SonicOutputEvent) ev = NULL;
  g_autoptr (GError) error = NULL;

  cp_aws_event_message_set_string (msg, ":message-type", "event");
  cp_aws_event_message_set_string (msg, ":event-type", "chunk");
  cp_aws_event_message_set_payload (msg, payload);
  ev = sonic_output_event_parse (msg, &error);
  g_assert (ev != NULL
      || g_error_matches (error, SONIC_ERROR, SONIC_ERROR_MALFORMED));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree gchar *b64 = g_base64_encode (data, size);
  gchar *wrapped = g_strdup_printf ("{\"bytes\":\"%s\"}", b64);

  parse_payload (g_bytes_new_take (wrapped, strlen (wrapped)));
  parse_payload (g_bytes_new (data, size));
  return 0;
}

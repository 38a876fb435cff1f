/* Voice activity detection.
 *
 * Each 10 ms frame is speech-like when its energy stands a
 * sensitivity-dependent margin above the noise floor. The floor is the
 * minimum frame energy over the last two seconds (minimum statistics), so
 * a constant line noise becomes the floor within that time instead of
 * counting as speech. Speech starts only after a run of speech-like frames
 * at least half of which have a voice-like zero-crossing rate, so hiss and
 * clicks do not trigger; it ends after the hangover without speech-like
 * frames, so pauses between words do not split an utterance. */
#include "speech/speechvad.h"

#include <math.h>

#define FRAMES_PER_SECOND 100
#define FLOOR_BLOCKS 8
#define FLOOR_BLOCK_FRAMES 25
/* Below this a frame is digital silence whatever the floor. */
#define ABSOLUTE_GATE_DBFS (-55.0)
/* Voiced speech crosses zero well below this rate at any sample rate;
 * white noise crosses at half the sample rate. */
#define VOICED_MAX_CROSSINGS_PER_SECOND 3000.0
#define MARGIN_DB_AT_ZERO_SENSITIVITY 20.0
#define MARGIN_DB_AT_FULL_SENSITIVITY 4.0

struct _CpSpeechVad
{
  guint rate;
  guint frame_len;
  gdouble margin_db;
  guint start_frames;
  guint hangover_frames;

  /* frame being accumulated */
  guint frame_fill;
  gdouble frame_sum_sq;
  guint frame_crossings;
  gboolean last_negative;

  guint64 position;

  gdouble block_min[FLOOR_BLOCKS];
  guint n_blocks;
  guint block_index;
  guint block_fill;
  gdouble current_block_min;

  gboolean in_speech;
  guint run;
  guint voiced_run;
  guint64 run_start;
  guint silence;
  guint64 last_active_end;
};

/**
 * cp_speech_vad_new:
 * @rate: sample rate of the audio, 8000 to 48000
 *
 * Returns: (transfer full): a detector with the default sensitivity, start
 * trigger and hangover.
 */
CpSpeechVad *
cp_speech_vad_new (guint rate)
{
  CpSpeechVad *vad;

  g_return_val_if_fail (rate >= 8000 && rate <= 48000, NULL);

  vad = g_new0 (CpSpeechVad, 1);
  vad->rate = rate;
  vad->frame_len = rate / FRAMES_PER_SECOND;
  cp_speech_vad_set_sensitivity (vad, CP_SPEECH_VAD_DEFAULT_SENSITIVITY);
  cp_speech_vad_set_start_ms (vad, CP_SPEECH_VAD_DEFAULT_START_MS);
  cp_speech_vad_set_hangover_ms (vad, CP_SPEECH_VAD_DEFAULT_HANGOVER_MS);
  cp_speech_vad_reset (vad);
  return vad;
}

void
cp_speech_vad_free (CpSpeechVad *vad)
{
  g_free (vad);
}

/**
 * cp_speech_vad_set_sensitivity:
 * @sensitivity: 0.0 (only loud speech) to 1.0 (anything a little above the
 * noise floor)
 */
void
cp_speech_vad_set_sensitivity (CpSpeechVad *vad, gdouble sensitivity)
{
  g_return_if_fail (vad != NULL);

  sensitivity = CLAMP (sensitivity, 0.0, 1.0);
  vad->margin_db = MARGIN_DB_AT_ZERO_SENSITIVITY
      + sensitivity
          * (MARGIN_DB_AT_FULL_SENSITIVITY - MARGIN_DB_AT_ZERO_SENSITIVITY);
}

/**
 * cp_speech_vad_set_start_ms:
 * @ms: how long speech must last before speech-start is reported
 */
void
cp_speech_vad_set_start_ms (CpSpeechVad *vad, guint ms)
{
  g_return_if_fail (vad != NULL);

  vad->start_frames = MAX (1, ms * FRAMES_PER_SECOND / 1000);
}

/**
 * cp_speech_vad_set_hangover_ms:
 * @ms: how long the audio must stay below the threshold before speech-end
 * is reported
 */
void
cp_speech_vad_set_hangover_ms (CpSpeechVad *vad, guint ms)
{
  g_return_if_fail (vad != NULL);

  vad->hangover_frames = MAX (1, ms * FRAMES_PER_SECOND / 1000);
}

/**
 * cp_speech_vad_reset:
 *
 * Forgets the noise floor and any speech in progress; sample counting
 * starts again at 0.
 */
void
cp_speech_vad_reset (CpSpeechVad *vad)
{
  g_return_if_fail (vad != NULL);

  vad->frame_fill = 0;
  vad->frame_sum_sq = 0.0;
  vad->frame_crossings = 0;
  vad->last_negative = FALSE;
  vad->position = 0;
  vad->n_blocks = 0;
  vad->block_index = 0;
  vad->block_fill = 0;
  vad->current_block_min = INFINITY;
  vad->in_speech = FALSE;
  vad->run = 0;
  vad->voiced_run = 0;
  vad->run_start = 0;
  vad->silence = 0;
  vad->last_active_end = 0;
}

gboolean
cp_speech_vad_in_speech (const CpSpeechVad *vad)
{
  g_return_val_if_fail (vad != NULL, FALSE);

  return vad->in_speech;
}

static gdouble
noise_floor (const CpSpeechVad *vad)
{
  gdouble floor_db = vad->current_block_min;
  guint i;

  for (i = 0; i < vad->n_blocks; i++)
    floor_db = MIN (floor_db, vad->block_min[i]);
  return floor_db;
}

static void
update_floor (CpSpeechVad *vad, gdouble energy_db)
{
  vad->current_block_min = MIN (vad->current_block_min, energy_db);
  if (++vad->block_fill < FLOOR_BLOCK_FRAMES)
    return;
  vad->block_min[vad->block_index] = vad->current_block_min;
  vad->block_index = (vad->block_index + 1) % FLOOR_BLOCKS;
  vad->n_blocks = MIN (vad->n_blocks + 1, FLOOR_BLOCKS);
  vad->block_fill = 0;
  vad->current_block_min = INFINITY;
}

static void
emit (GArray *events, CpSpeechVadEventType type, guint64 sample,
    guint64 detected_at)
{
  CpSpeechVadEvent ev = {type, sample, detected_at};

  if (events != NULL)
    g_array_append_val (events, ev);
}

/* Returns the number of events appended. */
static guint
end_frame (CpSpeechVad *vad, GArray *events)
{
  guint64 frame_end = vad->position;
  guint64 frame_start = frame_end - vad->frame_len;
  gdouble energy_db, crossings_per_second;
  gboolean active, voiced;
  guint n_events = 0;

  energy_db = 10.0 * log10 (vad->frame_sum_sq / vad->frame_len + 1e-3)
      - 20.0 * log10 (32768.0);
  crossings_per_second =
      (gdouble) vad->frame_crossings * vad->rate / vad->frame_len;
  active = energy_db > ABSOLUTE_GATE_DBFS
      && energy_db > noise_floor (vad) + vad->margin_db;
  voiced = crossings_per_second < VOICED_MAX_CROSSINGS_PER_SECOND;
  update_floor (vad, energy_db);

  if (!vad->in_speech) {
    if (!active) {
      vad->run = 0;
      vad->voiced_run = 0;
    } else {
      if (vad->run == 0)
        vad->run_start = frame_start;
      vad->run++;
      if (voiced)
        vad->voiced_run++;
      if (vad->run >= vad->start_frames && 2 * vad->voiced_run >= vad->run) {
        vad->in_speech = TRUE;
        vad->silence = 0;
        vad->last_active_end = frame_end;
        emit (events, CP_SPEECH_VAD_SPEECH_START, vad->run_start, frame_end);
        n_events++;
      }
    }
  } else if (active) {
    vad->silence = 0;
    vad->last_active_end = frame_end;
  } else if (++vad->silence >= vad->hangover_frames) {
    vad->in_speech = FALSE;
    vad->run = 0;
    vad->voiced_run = 0;
    emit (events, CP_SPEECH_VAD_SPEECH_END, vad->last_active_end, frame_end);
    n_events++;
  }

  vad->frame_fill = 0;
  vad->frame_sum_sq = 0.0;
  vad->frame_crossings = 0;
  return n_events;
}

/**
 * cp_speech_vad_process:
 * @samples: S16 mono samples in host byte order
 * @events: (element-type CpSpeechVadEvent) (nullable): where to append the
 * events the samples complete
 *
 * Returns: the number of events appended.
 */
guint
cp_speech_vad_process (CpSpeechVad *vad, const gint16 *samples, gsize n_samples,
    GArray *events)
{
  guint n_events = 0;
  gsize i;

  g_return_val_if_fail (vad != NULL, 0);
  g_return_val_if_fail (samples != NULL || n_samples == 0, 0);

  for (i = 0; i < n_samples; i++) {
    gint s = samples[i];
    gboolean negative = s < 0;

    vad->frame_sum_sq += (gdouble) s * s;
    if (vad->frame_fill > 0 && negative != vad->last_negative)
      vad->frame_crossings++;
    vad->last_negative = negative;
    vad->position++;
    if (++vad->frame_fill == vad->frame_len)
      n_events += end_frame (vad, events);
  }
  return n_events;
}

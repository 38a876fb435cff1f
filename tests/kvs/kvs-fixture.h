/* Writes Amazon Connect-shaped GetMedia streams with known PCM content,
 * for the kvsdemux tests (no binary fixtures in the repository). */
#ifndef KVS_FIXTURE_H
#define KVS_FIXTURE_H

#include <glib.h>

G_BEGIN_DECLS

#define KVS_FIXTURE_RATE 8000

typedef struct
{
  const gchar *number;          /* AWS_KINESISVIDEO_FRAGMENT_NUMBER */
  const gchar *contact_id;      /* NULL: no ContactId tag */
  guint64 timecode_ms;          /* Cluster Timecode (epoch ms) */
  guint from_blocks;
  guint to_blocks;
  guint block_samples;          /* a multiple of 8: whole ms at 8 kHz */
  guint last_block_samples;     /* 0: as block_samples */
  gboolean swap_tracks;         /* track 1 is AUDIO_TO_CUSTOMER */
  gboolean tags_before;         /* Connect tags before the Cluster too */
  const gchar *error_code;      /* an in-band error fragment, no Cluster */
  guint64 error_id;
} KvsFixtureFragment;

typedef struct
{
  guint64 from_pos;             /* samples written per direction so far */
  guint64 to_pos;
} KvsFixtureState;

gint16   kvs_fixture_sample          (gboolean from_customer, guint64 index);
void     kvs_fixture_write_fragment  (GByteArray * out,
                                      const KvsFixtureFragment * spec,
                                      KvsFixtureState * state);
guint    kvs_fixture_fragment_ms     (const KvsFixtureFragment * spec,
                                      gboolean from_customer);

/* EBML writing, for the hostile-input tests. */
void     kvs_fixture_put_id          (GByteArray * out, guint32 id);
void     kvs_fixture_put_size        (GByteArray * out, guint64 size);
void     kvs_fixture_put_ebml_header (GByteArray * out);

G_END_DECLS

#endif /* KVS_FIXTURE_H */

/* The GetMedia test peer (kvs-getmedia-peer.py, run with
 * /usr/bin/python3) and the Connect-shaped fixture it serves: fragments of
 * KVS_PEER_BLOCKS blocks of KVS_PEER_BLOCK_SAMPLES samples per direction,
 * each continuation token the fragment's number, as KVS writes it. */
#ifndef KVS_PEER_H
#define KVS_PEER_H

#include <glib.h>

#include "kvs-fixture.h"

G_BEGIN_DECLS

#define KVS_PEER_FRAGMENTS 6
#define KVS_PEER_BLOCKS 16
#define KVS_PEER_BLOCK_SAMPLES 512
#define KVS_PEER_FRAGMENT_SAMPLES (KVS_PEER_BLOCKS * KVS_PEER_BLOCK_SAMPLES)
#define KVS_PEER_FRAGMENT_MS \
  (KVS_PEER_FRAGMENT_SAMPLES * 1000 / KVS_FIXTURE_RATE)
#define KVS_PEER_BASE_MS G_GUINT64_CONSTANT (1726677688724)
#define KVS_PEER_SERVER_DELAY_MS 250
#define KVS_PEER_ACCESS_KEY "AKIDEXAMPLE"
#define KVS_PEER_SECRET_KEY "peer-secret"

typedef struct
{
  gchar *mkv;                   /* the stream */
  gchar *index;                 /* one line per fragment, for the peer */
  gsize offset[KVS_PEER_FRAGMENTS];
  gsize length[KVS_PEER_FRAGMENTS];
  gchar *number[KVS_PEER_FRAGMENTS];
} KvsPeerFixture;

typedef struct
{
  GPid pid;
  gint stdin_fd;
  guint port;
  gchar *log;                   /* the requests, one JSON line each */
} KvsPeer;

void        kvs_peer_fixture_write       (KvsPeerFixture * fixture);
void        kvs_peer_fixture_remove      (KvsPeerFixture * fixture);

/* Starts the peer with extra arguments (NULL-terminated); returns once it
 * listens on peer->port. */
void        kvs_peer_start               (KvsPeer * peer,
                                          const gchar * script,
                                          const KvsPeerFixture * fixture,
                                          ...) G_GNUC_NULL_TERMINATED;
void        kvs_peer_stop                (KvsPeer * peer);
/* The StartSelector of each GetMedia request the peer received, in
 * order, as JSON text; aborts if a request was not signed right. */
GPtrArray * kvs_peer_get_media_selectors (KvsPeer * peer);

G_END_DECLS

#endif /* KVS_PEER_H */

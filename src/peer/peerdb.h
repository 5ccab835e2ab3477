/* PeerGameDB: what the other peers have. Per peer: its id, address, name
 * and advertised games, and the file lists it last sent. The refusals: a
 * peer's advertised version whose file list was refused (the catalog's
 * pin, peer/gets.c) is no offer of it. Per game: the latest version offered
 * and which peers offer it. Plain data, loop thread only. */
#ifndef LS_PEER_PEERDB_H
#define LS_PEER_PEERDB_H

#include "proto/proto.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ls_peerdb ls_peerdb;

typedef struct ls_peerdb_peer {
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];
  char *name;
  char *addr;              /* "HOST:PORT" */
  ls_msg_game_list games;  /* as last advertised (ListGames) */
} ls_peerdb_peer;

ls_peerdb *ls_peerdb_new(void);
void ls_peerdb_free(ls_peerdb *db);

/* Adds or updates a peer (its games are kept). */
int ls_peerdb_put_peer(ls_peerdb *db, const char *peer_id, const char *name, const char *addr);
/* Replaces a peer's advertised games with a copy of list; returns true when
 * they differ from what was there. */
bool ls_peerdb_set_games(ls_peerdb *db, const char *peer_id, const ls_msg_game_list *list);
/* Forgets a peer and everything it advertised. */
void ls_peerdb_remove_peer(ls_peerdb *db, const char *peer_id);

size_t ls_peerdb_count(const ls_peerdb *db);
const ls_peerdb_peer *ls_peerdb_at(const ls_peerdb *db, size_t i);
const ls_peerdb_peer *ls_peerdb_find(const ls_peerdb *db, const char *peer_id);

/* The game as peer_id advertises it, or NULL. */
const ls_msg_game_info *ls_peerdb_game_of(const ls_peerdb_peer *peer, const char *game_id);

/* ---- refusals -------------------------------------------------------------
 * A refusal is the peer, the game and the advertised version whose file
 * list was refused, with the refusal's code (LS_EPIN) and sentence. It
 * lasts as long as the peer advertises that version of the game: a new
 * revision of the list under the same version is not asked for again (the
 * peer is no source of it). It is forgotten when the peer advertises
 * another version of the game or none, or leaves; a later advertisement of
 * the version is then an offer again, and its list is checked again when a
 * command asks for it. At most LS_PEERDB_MAX_REFUSALS are kept, the oldest
 * forgotten first: a forgotten one only counts as an offer again, the pin
 * still refuses its list. */
#define LS_PEERDB_MAX_REFUSALS 256

typedef struct ls_peerdb_refusal {
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];
  char *game_id, *version, *error;
  int code;
} ls_peerdb_refusal;

/* Records that peer_id's list of `version` of the game was refused with
 * code and error. LS_ENOENT (nothing kept) unless the peer advertises
 * exactly that version of the game now; LS_ENOMEM. */
int ls_peerdb_refuse(ls_peerdb *db, const char *peer_id, const char *game_id,
                     const char *version, int code, const char *error);
size_t ls_peerdb_refusal_count(const ls_peerdb *db);
const ls_peerdb_refusal *ls_peerdb_refusal_at(const ls_peerdb *db, size_t i);

/* The game as peer offers it: as it advertises it, unless that version is
 * refused (NULL then, and when it does not advertise the game). Every
 * count of offers below is of these. */
const ls_msg_game_info *ls_peerdb_offer_of(const ls_peerdb *db, const ls_peerdb_peer *peer,
                                           const char *game_id);

/* Per game: the highest version offered (NULL when no peer offers the
 * game), how many peers offer it in any version, the size of the latest,
 * and how many peers advertise it in a refused version. */
typedef struct ls_peerdb_game_view {
  const char *latest_version;
  size_t peers;
  uint64_t latest_size;
  size_t refused;
} ls_peerdb_game_view;
ls_peerdb_game_view ls_peerdb_view(const ls_peerdb *db, const char *game_id);

/* The ids of the peers offering exactly `version` of the game, in db
 * order; returns how many were written (at most max). */
size_t ls_peerdb_peers_with(const ls_peerdb *db, const char *game_id, const char *version,
                            const char **out, size_t max);

/* Every game id any peer advertises (each once, sorted), malloc'ed array of
 * pointers into the db: valid until the db changes. */
int ls_peerdb_game_ids(const ls_peerdb *db, const char ***ids, size_t *count);

/* File lists: the last GameFiles a peer sent for a game (copied). */
int ls_peerdb_set_files(ls_peerdb *db, const char *peer_id, const ls_msg_game_files *files);
const ls_msg_game_files *ls_peerdb_files(const ls_peerdb *db, const char *peer_id,
                                         const char *game_id);

#endif

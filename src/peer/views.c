/* Owns the JSON views of the runtime's state: the merged game library (local
 * library + PeerGameDB, one entry per catalog game present anywhere) and
 * the list of peers (docs/CLI.md, the games and peers replies). */
#include "peer/runtime.h"

#include <lanspread/version.h>
#include <string.h>

/* The entry of one catalog game. */
static json_t *game_json(const ls_catalog_game *cg, const ls_local_game *local,
                         ls_peerdb_game_view remote)
{
  const char *local_version = local && local->downloaded ? local->version : NULL;
  const char *latest = remote.latest_version;
  if (ls_version_cmp(local_version, latest) > 0)
    latest = local_version;
  uint64_t size = local && local_version && latest == local_version ? local->size
                  : remote.latest_version                           ? remote.latest_size
                  : local                                           ? local->size
                                                                    : 0;
  return json_pack("{s:s, s:s, s:b, s:b, s:s?, s:s?, s:I, s:I}", "id", cg->id, "name",
                   cg->name, "downloaded", local && local->downloaded, "installed",
                   local && local->installed, "local_version", local_version,
                   "latest_version", latest, "peers", (json_int_t)remote.peers, "size",
                   (json_int_t)size);
}

json_t *ls_rt_games_json(const ls_peer *p)
{
  json_t *games = json_array();
  const ls_library *lib = ls_monitor_library(p->monitor);
  for (size_t i = 0; i < ls_catalog_count(p->catalog); i++) {
    const ls_catalog_game *cg = ls_catalog_at(p->catalog, i);
    const ls_local_game *local = ls_library_find(lib, cg->id);
    ls_peerdb_game_view remote = ls_peerdb_view(p->peerdb, cg->id);
    if (local || remote.peers)
      json_array_append_new(games, game_json(cg, local, remote));
  }
  return games;
}

json_t *ls_rt_peers_json(const ls_peer *p)
{
  json_t *peers = json_array();
  for (size_t i = 0; i < ls_peerdb_count(p->peerdb); i++) {
    const ls_peerdb_peer *peer = ls_peerdb_at(p->peerdb, i);
    json_array_append_new(peers, json_pack("{s:s, s:s, s:s, s:I}", "peer_id", peer->peer_id,
                                           "addr", peer->addr, "name", peer->name, "games",
                                           (json_int_t)peer->games.count));
  }
  return peers;
}

void ls_rt_emit_games(ls_peer *p, json_t *changed)
{
  ls_rt_emit(p, json_pack("{s:s, s:o, s:o}", "type", "games-list-updated", "games",
                          ls_rt_games_json(p), "changed", changed ? changed : json_array()));
}

/* Owns the JSON views of the runtime's state: the merged game library (local
 * library + PeerGameDB, one entry per catalog game present anywhere, with
 * the versions peers offer, who offers them, and the offers refused) and
 * the list of peers (docs/CLI.md, the games and peers replies). */
#include "peer/runtime.h"

#include <lanspread/version.h>
#include <string.h>

/* What a game is now, from its local state, the latest version known and
 * its running operation: the one rule of "update available" and of which
 * commands can succeed, so no embedder derives them. */
typedef struct game_facts {
  bool downloaded, installed, update_available, paused;
  size_t peers;
  const ls_op *op;
} game_facts;

static const char *game_state(const game_facts *g)
{
  static const char *const busy[] = {
    [LS_OP_DOWNLOAD] = "downloading", [LS_OP_INSTALL] = "installing",
    [LS_OP_UNINSTALL] = "uninstalling", [LS_OP_REMOVE] = "removing",
    [LS_OP_VERIFY] = "verifying",
  };
  if (g->op)
    return busy[g->op->kind];
  if (g->paused)
    return "paused";
  if (g->installed)
    return g->update_available ? "update_available" : "installed";
  if (g->downloaded)
    return "downloaded";
  return g->peers ? "available" : "unavailable";
}

static void add(json_t *actions, const char *name)
{
  json_array_append_new(actions, json_string(name));
}

/* The actions a user may take: "update" is a download of a newer version
 * over what is here; "download" of a paused game resumes it and "cancel"
 * discards it; "verify" and "repair" check the payload against the file
 * list the peers serve for the version here. */
static json_t *game_actions(const game_facts *g)
{
  json_t *a = json_array();
  if (g->op) {
    if (g->op->cancellable && g->op->kind == LS_OP_DOWNLOAD)
      add(a, "pause");
    if (g->op->cancellable)
      add(a, "cancel");
  } else if (g->paused) {
    if (g->peers)
      add(a, "download");
    add(a, "cancel");
  } else if (g->installed) {
    if (g->update_available)
      add(a, "update");
    add(a, "uninstall");
  } else if (g->downloaded) {
    add(a, "install");
    if (g->update_available)
      add(a, "update");
    add(a, "remove");
  } else if (g->peers) {
    add(a, "download");
  }
  if (!g->op && !g->paused && g->downloaded && g->peers) {
    add(a, "verify");
    add(a, "repair");
  }
  return a;
}

/* {"state": "running" | "paused", "version", "bytes", "total_bytes"}, or
 * null when no download of the game is running or paused. */
static json_t *download_json(const ls_peer *p, const char *id, const ls_op *op)
{
  ls_paused_info paused;
  if (op && op->kind == LS_OP_DOWNLOAD && op->impl && op->total_bytes)
    return json_pack("{s:s, s:I, s:I}", "state", "running", "bytes", (json_int_t)op->bytes,
                     "total_bytes", (json_int_t)op->total_bytes);
  if (!op && ls_downloads_paused(p, id, &paused))
    return json_pack("{s:s, s:s, s:I, s:I}", "state", "paused", "version", paused.version,
                     "bytes", (json_int_t)paused.bytes, "total_bytes",
                     (json_int_t)paused.total_bytes);
  return json_null();
}

/* One version the peers offer: who offers it (ids and names), whether the
 * catalog pins it, and whether only peers first seen in this session offer
 * it (known.c): a stranger's newer version is shown as such. */
static json_t *offer_json(const ls_peer *p, const ls_catalog_game *cg, const char *version)
{
  json_t *peers = json_array();
  bool new_only = true;
  for (size_t i = 0; i < ls_peerdb_count(p->peerdb); i++) {
    const ls_peerdb_peer *peer = ls_peerdb_at(p->peerdb, i);
    const ls_msg_game_info *g = ls_peerdb_offer_of(p->peerdb, peer, cg->id);
    if (!g || strcmp(g->version, version) != 0)
      continue;
    new_only = new_only && !ls_known_before(p, peer->peer_id);
    json_array_append_new(peers, json_pack("{s:s, s:s}", "peer_id", peer->peer_id, "name",
                                           peer->name));
  }
  return json_pack("{s:s, s:b, s:b, s:o}", "version", version, "pinned",
                   ls_catalog_pin_of(cg, version) != NULL, "new_peers_only", new_only, "peers",
                   peers);
}

/* Every version peers offer of the game (the first 64 found), the newest
 * first; a refused one is no offer (refused_json). */
static json_t *offers_json(const ls_peer *p, const ls_catalog_game *cg)
{
  const char *versions[64];
  size_t n = 0;
  for (size_t i = 0; i < ls_peerdb_count(p->peerdb); i++) {
    const ls_msg_game_info *g = ls_peerdb_offer_of(p->peerdb, ls_peerdb_at(p->peerdb, i), cg->id);
    bool seen = false;
    for (size_t k = 0; g && k < n && !seen; k++)
      seen = strcmp(versions[k], g->version) == 0;
    if (g && !seen && n < sizeof versions / sizeof versions[0])
      versions[n++] = g->version;
  }
  for (size_t i = 1; i < n; i++) /* insertion sort, newest first */
    for (size_t k = i; k > 0 && ls_version_cmp(versions[k - 1], versions[k]) < 0; k--) {
      const char *t = versions[k];
      versions[k] = versions[k - 1];
      versions[k - 1] = t;
    }
  json_t *offers = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(offers, offer_json(p, cg, versions[i]));
  return offers;
}

/* The versions of the game whose file list was refused, oldest refusal
 * first: {"version", "peer_id", "name", "code", "error"} (PeerGameDB
 * keeps them while the peer advertises that version). */
static json_t *refused_json(const ls_peer *p, const char *id)
{
  json_t *refused = json_array();
  for (size_t i = 0; i < ls_peerdb_refusal_count(p->peerdb); i++) {
    const ls_peerdb_refusal *r = ls_peerdb_refusal_at(p->peerdb, i);
    const ls_peerdb_peer *peer = ls_peerdb_find(p->peerdb, r->peer_id);
    if (strcmp(r->game_id, id) == 0 && peer)
      json_array_append_new(refused, json_pack("{s:s, s:s, s:s, s:s, s:s}", "version",
                                               r->version, "peer_id", r->peer_id, "name",
                                               peer->name, "code", ls_error_name(r->code),
                                               "error", r->error));
  }
  return refused;
}

/* The entry of one catalog game. */
static json_t *game_json(const ls_peer *p, const ls_catalog_game *cg, const ls_local_game *local,
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
  game_facts g = {.downloaded = local && local->downloaded,
                  .installed = local && local->installed,
                  .peers = remote.peers,
                  .op = ls_ops_find(p, cg->id),
                  .paused = ls_downloads_paused(p, cg->id, NULL)};
  g.update_available = (g.downloaded || g.installed) && remote.peers && latest &&
                       ls_version_cmp(latest, local_version) > 0;
  return json_pack("{s:s, s:s, s:b, s:b, s:s?, s:s?, s:I, s:I, s:s, s:b, s:o, s:o, s:o, s:o, "
                   "s:o}",
                   "id", cg->id, "name", cg->name, "downloaded", g.downloaded, "installed",
                   g.installed, "local_version", local_version, "latest_version", latest,
                   "peers", (json_int_t)remote.peers, "size", (json_int_t)size, "state",
                   game_state(&g), "update_available", g.update_available, "actions",
                   game_actions(&g), "operation", g.op ? ls_ops_json(g.op) : json_null(),
                   "download", download_json(p, cg->id, g.op), "offers",
                   offers_json(p, cg), "refused_offers", refused_json(p, cg->id));
}

json_t *ls_rt_games_json(const ls_peer *p)
{
  json_t *games = json_array();
  const ls_library *lib = ls_monitor_library(p->monitor);
  for (size_t i = 0; i < ls_catalog_count(p->catalog); i++) {
    const ls_catalog_game *cg = ls_catalog_at(p->catalog, i);
    const ls_local_game *local = ls_library_find(lib, cg->id);
    ls_peerdb_game_view remote = ls_peerdb_view(p->peerdb, cg->id);
    if (local || remote.peers || remote.refused || ls_ops_find(p, cg->id) ||
        ls_downloads_paused(p, cg->id, NULL))
      json_array_append_new(games, game_json(p, cg, local, remote));
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
  json_t *others = ls_links_other_party_json(p);
  json_array_extend(peers, others);
  json_decref(others);
  return peers;
}

void ls_rt_emit_games(ls_peer *p, json_t *changed)
{
  ls_rt_emit(p, LS_EVENT_GAMES_LIST_UPDATED,
             json_pack("{s:o, s:o}", "games", ls_rt_games_json(p), "changed",
                       changed ? changed : json_array()));
}

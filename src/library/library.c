/* Owns the ls_library container: lookup, replacement of one game's entry,
 * and the protocol summaries derived from it. */
#include "library/library.h"

#include <stdlib.h>
#include <string.h>

void ls_local_game_clear(ls_local_game *game)
{
  free(game->id);
  free(game->version);
  for (size_t i = 0; i < game->file_count; i++)
    free(game->files[i].path);
  free(game->files);
  memset(game, 0, sizeof *game);
}

void ls_library_clear(ls_library *lib)
{
  for (size_t i = 0; i < lib->count; i++)
    ls_local_game_clear(&lib->games[i]);
  free(lib->games);
  memset(lib, 0, sizeof *lib);
}

static size_t find_pos(const ls_library *lib, const char *id, bool *found)
{
  size_t lo = 0, hi = lib->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(lib->games[mid].id, id);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

const ls_local_game *ls_library_find(const ls_library *lib, const char *id)
{
  bool found;
  size_t pos = find_pos(lib, id, &found);
  return found ? &lib->games[pos] : NULL;
}

static void remove_at(ls_library *lib, size_t pos)
{
  ls_local_game_clear(&lib->games[pos]);
  memmove(&lib->games[pos], &lib->games[pos + 1], (lib->count - pos - 1) * sizeof *lib->games);
  lib->count--;
}

static int insert_at(ls_library *lib, size_t pos, ls_local_game *game)
{
  ls_local_game *games = realloc(lib->games, (lib->count + 1) * sizeof *games);
  if (!games)
    return LS_ENOMEM;
  lib->games = games;
  memmove(&games[pos + 1], &games[pos], (lib->count - pos) * sizeof *games);
  games[pos] = *game;
  lib->count++;
  return LS_OK;
}

bool ls_local_game_is_present(const ls_local_game *game)
{
  return game->downloaded || game->installed || game->file_count > 0;
}

int ls_library_put(ls_library *lib, ls_local_game *game)
{
  bool found;
  size_t pos = find_pos(lib, game->id, &found);
  if (!ls_local_game_is_present(game)) {
    if (found)
      remove_at(lib, pos);
    ls_local_game_clear(game);
    return LS_OK;
  }
  if (found) {
    ls_local_game_clear(&lib->games[pos]);
    lib->games[pos] = *game;
  } else {
    int rc = insert_at(lib, pos, game);
    if (rc != LS_OK)
      return rc;
  }
  memset(game, 0, sizeof *game);
  return LS_OK;
}

int ls_library_summaries(const ls_library *lib, const ls_catalog *catalog,
                         ls_game_summary **out, size_t *count)
{
  *out = NULL;
  *count = 0;
  ls_game_summary *s = calloc(lib->count ? lib->count : 1, sizeof *s);
  if (!s)
    return LS_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < lib->count; i++) {
    const ls_local_game *g = &lib->games[i];
    const ls_catalog_game *cg = ls_catalog_find(catalog, g->id);
    if (!g->downloaded || !cg)
      continue;
    s[n++] = (ls_game_summary){g->id, cg->name, g->version, g->size};
  }
  *out = s;
  *count = n;
  return LS_OK;
}

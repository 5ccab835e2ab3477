/* Owns the GameList bodies of gamelists.h. */
#include "gamelists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *evil_game_list_body(const char *prefix, size_t n, size_t name_len)
{
  size_t cap = n * (name_len + strlen(prefix) + 96) + 64, len = 0;
  char *body = malloc(cap), *name = malloc(name_len + 1);
  if (!body || !name) {
    free(body);
    free(name);
    return NULL;
  }
  memset(name, 'n', name_len);
  name[name_len] = '\0';
  len += (size_t)snprintf(body, cap, "{\"type\":\"GameList\",\"games\":[");
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(body + len, cap - len,
                            "%s{\"id\":\"%s%zu\",\"name\":\"%s\",\"version\":\"1\",\"size\":1}",
                            i ? "," : "", prefix, i, name);
  snprintf(body + len, cap - len, "]}");
  free(name);
  return body;
}

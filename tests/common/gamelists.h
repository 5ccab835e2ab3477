/* GameList frame bodies for the malicious peer of evilpeer.h to answer
 * ListGames with (evil_config.game_list): used by test_hostile and
 * bench/hostile.c, so the attacks they play are the same lists. */
#ifndef LS_TEST_GAMELISTS_H
#define LS_TEST_GAMELISTS_H

#include <stddef.h>

/* {"type":"GameList","games":[...]}: n games with ids PREFIX0, PREFIX1, ...,
 * names of name_len 'n's, version "1", size 1 (n 0: an empty list).
 * malloc'ed, NUL-terminated; NULL when out of memory. */
char *evil_game_list_body(const char *prefix, size_t n, size_t name_len);

#endif

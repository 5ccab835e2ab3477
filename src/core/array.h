/* Growing arrays: the one doubling rule for every array we append to. */
#ifndef LS_CORE_ARRAY_H
#define LS_CORE_ARRAY_H

#include <stddef.h>

/* Returns `items` with room for at least `need` elements of `elem_size`
 * bytes, reallocated (doubling, from 16) when *cap is smaller, and updates
 * *cap. Returns NULL when out of memory; `items` and *cap are then
 * unchanged and still valid. */
void *ls_array_reserve(void *items, size_t *cap, size_t need, size_t elem_size);

#endif

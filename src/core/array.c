/* Owns ls_array_reserve (core/array.h). */
#include "core/array.h"

#include <stdint.h>
#include <stdlib.h>

#define FIRST_CAPACITY 16

void *ls_array_reserve(void *items, size_t *cap, size_t need, size_t elem_size)
{
  if (need <= *cap)
    return items;
  size_t ncap = *cap ? *cap : FIRST_CAPACITY;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2)
      return NULL;
    ncap *= 2;
  }
  if (elem_size && ncap > SIZE_MAX / elem_size)
    return NULL;
  void *grown = realloc(items, ncap * elem_size);
  if (grown)
    *cap = ncap;
  return grown;
}

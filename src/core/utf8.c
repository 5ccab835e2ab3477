/* Owns the UTF-8 validity rule of core/utf8.h. */
#include "core/utf8.h"

#include <stdint.h>

size_t ls_utf8_char_len(const unsigned char *s, size_t n)
{
  size_t len;
  uint32_t min;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF)
    len = 2, min = 0x80;
  else if ((s[0] & 0xF0) == 0xE0)
    len = 3, min = 0x800;
  else if (s[0] >= 0xF0 && s[0] <= 0xF4)
    len = 4, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  uint32_t cp = s[0] & (0x7Fu >> len);
  for (size_t i = 1; i < len; i++) {
    if (!ls_utf8_is_continuation((char)s[i]))
      return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

bool ls_utf8_valid(const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t n = ls_utf8_char_len(p + i, len - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

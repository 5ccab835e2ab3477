/* Owns the UTF-8 validity rule of core/utf8.h. */
#include "core/utf8.h"

#include "core/error.h"

#include <stdint.h>

/* Decodes the character at s (n >= 1 bytes available) into *out; its
 * length, or 0 when s does not start a valid one. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *out)
{
  size_t len;
  uint32_t min;
  if (s[0] < 0x80) {
    *out = s[0];
    return 1;
  }
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
  *out = cp;
  return len;
}

size_t ls_utf8_char_len(const unsigned char *s, size_t n)
{
  uint32_t cp;
  return decode(s, n, &cp);
}

bool ls_utf8_is_hidden_control(uint32_t cp)
{
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E ||
         cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

bool ls_utf8_displayable(const char *s, size_t len, size_t *at, uint32_t *cp)
{
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    uint32_t c = 0;
    size_t n = decode(p + i, len - i, &c);
    if (n == 0 || ls_utf8_is_hidden_control(c)) {
      if (at)
        *at = i;
      if (cp)
        *cp = n ? c : 0;
      return false;
    }
    i += n;
  }
  return true;
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

int ls_utf8_check_displayable(const char *s, size_t len, const char *what, int err,
                              ls_diag *diag)
{
  size_t at;
  uint32_t cp;
  if (ls_utf8_displayable(s, len, &at, &cp))
    return LS_OK;
  const char *sep = what[0] ? ": " : "";
  if (cp)
    return ls_diag_set(diag, err, "%s%scontrol character U+%04X at byte %zu", what, sep,
                       (unsigned)cp, at);
  return ls_diag_set(diag, err, "%s%snot valid UTF-8", what, sep);
}

/* UTF-8: the one validity rule (RFC 3629: shortest form only, no
 * surrogates, nothing above U+10FFFF) for every text we check. */
#ifndef LS_CORE_UTF8_H
#define LS_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1 to 4) of the valid UTF-8 character at s, n bytes available;
 * 0 when s does not start one (n must be at least 1). */
size_t ls_utf8_char_len(const unsigned char *s, size_t n);

/* True when the len bytes at s are valid UTF-8 (NUL is a valid character:
 * callers that refuse it check it themselves). */
bool ls_utf8_valid(const char *s, size_t len);

/* True for a continuation byte (10xxxxxx): not the start of a character. */
static inline bool ls_utf8_is_continuation(char c)
{
  return ((unsigned char)c & 0xC0) == 0x80;
}

#endif

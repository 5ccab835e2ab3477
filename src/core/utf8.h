/* UTF-8: the one validity rule (RFC 3629: shortest form only, no
 * surrogates, nothing above U+10FFFF) for every text we check, and the one
 * rule for text shown to a user (names, paths from a peer): valid, and no
 * character that hides or reorders what is around it. */
#ifndef LS_CORE_UTF8_H
#define LS_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1 to 4) of the valid UTF-8 character at s, n bytes available;
 * 0 when s does not start one (n must be at least 1). */
size_t ls_utf8_char_len(const unsigned char *s, size_t n);

/* True when the len bytes at s are valid UTF-8 (NUL is a valid character:
 * callers that refuse it check it themselves). */
bool ls_utf8_valid(const char *s, size_t len);

/* True for a C0 or C1 control, DEL, a line or paragraph separator, or a
 * bidirectional formatting character (LRM, RLM, ALM, the embeddings,
 * overrides and isolates): what makes "evil\u202Eexe.txt" read as
 * "eviltxt.exe". */
bool ls_utf8_is_hidden_control(uint32_t cp);

/* True when the len bytes at s are valid UTF-8 without any character of
 * ls_utf8_is_hidden_control. On false, *at (when not NULL) gets the byte
 * offset of the first offending character or invalid sequence, and *cp
 * (when not NULL) its code point, or 0 for an invalid sequence. */
bool ls_utf8_displayable(const char *s, size_t len, size_t *at, uint32_t *cp);

/* The same rule as a check: LS_OK, or `err` with "WHAT: control character
 * U+XXXX at byte N" or "WHAT: not valid UTF-8" in diag (no "WHAT: " when
 * what is ""). */
struct ls_diag;
int ls_utf8_check_displayable(const char *s, size_t len, const char *what, int err,
                              struct ls_diag *diag);

/* True for a continuation byte (10xxxxxx): not the start of a character. */
static inline bool ls_utf8_is_continuation(char c)
{
  return ((unsigned char)c & 0xC0) == 0x80;
}

#endif

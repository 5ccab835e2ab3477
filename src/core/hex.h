/* Lower-case hexadecimal, the form of peer ids, chunk hashes on the wire and
 * the daemon's API key: one encoder, one check and one decoder, on nettle's
 * base16 (whose encoder writes lower case). */
#ifndef LS_CORE_HEX_H
#define LS_CORE_HEX_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the 2 * len lower-case hex digits of in, then a NUL, to out
 * (2 * len + 1 bytes). Cannot fail. */
void ls_hex_encode(const uint8_t *in, size_t len, char *out);

/* True when the n characters at s are lower-case hex digits; a string
 * shorter than n is not (its NUL is no digit). */
bool ls_hex_is_lower(const char *s, size_t n);

/* Decodes the 2 * len lower-case hex digits at hex into len bytes;
 * LS_EFORMAT when they are not exactly that. */
int ls_hex_decode(const char *hex, uint8_t *out, size_t len);

#endif

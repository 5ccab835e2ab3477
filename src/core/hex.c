/* Owns the lower-case hex helpers of core/hex.h. */
#include "core/hex.h"

#include <nettle/base16.h>

void ls_hex_encode(const uint8_t *in, size_t len, char *out)
{
  base16_encode_update(out, len, in);
  out[BASE16_ENCODE_LENGTH(len)] = '\0';
}

bool ls_hex_is_lower(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

/* nettle's decoder also takes upper case and skips white space: the check
 * before it keeps the one form. */
int ls_hex_decode(const char *hex, uint8_t *out, size_t len)
{
  if (!ls_hex_is_lower(hex, 2 * len))
    return LS_EFORMAT;
  struct base16_decode_ctx ctx;
  size_t got = len;
  base16_decode_init(&ctx);
  if (!base16_decode_update(&ctx, &got, out, 2 * len, hex) || !base16_decode_final(&ctx) ||
      got != len)
    return LS_EFORMAT;
  return LS_OK;
}

/* Owns the daemon's party key setting (partykey.h): STATE_DIR/party-key,
 * written atomically with mode 0600 and removed to clear, the checks of a
 * key the UI sends (the rule itself is the runtime's, ls_party_key_check),
 * and the API's view of it: set, fingerprint, fixed by --party-key-file. */
#include "partykey.h"

#include "core/error.h"
#include "core/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void key_path(const char *state_dir, char *out, size_t size)
{
  snprintf(out, size, "%s/%s", state_dir, LSD_PARTY_KEY_FILE);
}

void lsd_party_init(lsd_party *p, const char *state_dir, const char *cmdline_file)
{
  memset(p, 0, sizeof *p);
  p->fixed = cmdline_file != NULL;
  if (cmdline_file)
    snprintf(p->file, sizeof p->file, "%s", cmdline_file);
  else
    key_path(state_dir, p->file, sizeof p->file);
  if (!p->fixed && access(p->file, F_OK) != 0) {
    p->file[0] = '\0';
    return;
  }
  ls_diag diag; /* an unreadable key: the runtime's start says why */
  if (ls_party_key_file_fingerprint(p->file, p->fingerprint, &diag) != LS_OK)
    p->fingerprint[0] = '\0';
}

int lsd_party_check(json_t *value, const char **secret,
                    char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1], ls_diag *diag)
{
  *secret = NULL;
  fingerprint[0] = '\0';
  if (json_is_null(value) || (json_is_string(value) && json_string_length(value) == 0))
    return LS_OK;
  if (!json_is_string(value))
    return ls_diag_set(diag, LS_EINVAL, "'party_key' must be a string (null or \"\" clears it)");
  const char *s = json_string_value(value);
  size_t len = json_string_length(value);
  if (len > LSD_PARTY_KEY_MAX)
    return ls_diag_set(diag, LS_EINVAL, "the party key has %zu bytes; at most %d", len,
                       LSD_PARTY_KEY_MAX);
  if (strlen(s) != len)
    return ls_diag_set(diag, LS_EINVAL, "the party key must not contain a NUL character");
  int rc = ls_party_key_check(s, len, fingerprint, diag);
  if (rc == LS_OK)
    *secret = s;
  return rc;
}

bool lsd_party_changes(const lsd_party *p, const char *fingerprint)
{
  if (!fingerprint[0])
    return p->file[0] != '\0';
  return !p->file[0] || strcmp(p->fingerprint, fingerprint) != 0;
}

int lsd_party_store(lsd_party *p, const char *state_dir, const char *secret,
                    const char *fingerprint, ls_diag *diag)
{
  char path[4096];
  key_path(state_dir, path, sizeof path);
  if (!secret) {
    if (unlink(path) != 0 && errno != ENOENT)
      return ls_diag_errno(diag, errno, "cannot remove", path);
    p->file[0] = p->fingerprint[0] = '\0';
    return LS_OK;
  }
  size_t len = strlen(secret);
  char *line = malloc(len + 2);
  if (!line)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  memcpy(line, secret, len);
  line[len] = '\n';
  int rc = ls_write_file_atomic(path, line, len + 1, 0600, diag);
  explicit_bzero(line, len + 1);
  free(line);
  if (rc != LS_OK)
    return rc;
  snprintf(p->file, sizeof p->file, "%s", path);
  snprintf(p->fingerprint, sizeof p->fingerprint, "%s", fingerprint);
  return LS_OK;
}

json_t *lsd_party_json(const lsd_party *p)
{
  return json_pack("{s:b, s:s?, s:b}", "set", p->file[0] != '\0', "fingerprint",
                   p->fingerprint[0] ? p->fingerprint : NULL, "fixed", p->fixed);
}

/* Owns the libFuzzer target of the mDNS TXT parser (src/net/mdns.c,
 * ls_mdns_parse_txt and ls_mdns_parse_txt_list): what a peer's service
 * record says about it (id=, v=, name=, rev=).
 *
 * The input is read twice:
 * - as TXT rdata off the wire (length-prefixed strings). When avahi can
 *   parse it into a string list, that list, parsed the way the resolver
 *   does, must give the same answer as the rdata itself;
 * - as TXT strings separated by '\n', in a list built as avahi builds one
 *   (strings of any length, so the resolver's cuts at 255 bytes a string
 *   and 9000 bytes in all are reached).
 * A record that parses has a 64-hex id, a version >= 0 and a name of valid
 * UTF-8 without control characters within LS_MDNS_NAME_MAX bytes; written
 * back as we advertise ours, it parses to the same record. A refusal is
 * LS_EFORMAT with a reason. */
#include "fuzz_util.h"

#include "core/hex.h"
#include "core/utf8.h"
#include "net/mdns.h"

#include <avahi-common/strlst.h>
#include <string.h>

static bool records_equal(const ls_mdns_txt *a, const ls_mdns_txt *b)
{
  return strcmp(a->peer_id, b->peer_id) == 0 && strcmp(a->name, b->name) == 0 &&
         a->protocol_version == b->protocol_version && a->rev == b->rev;
}

/* Appends one length-prefixed TXT string. */
static size_t put_string(uint8_t *out, size_t len, const char *s)
{
  size_t n = strlen(s);
  FUZZ_CHECK(n <= 255);
  out[len] = (uint8_t)n;
  memcpy(out + len + 1, s, n);
  return len + 1 + n;
}

static void check_record(const ls_mdns_txt *t)
{
  FUZZ_CHECK(strlen(t->peer_id) == 64 && ls_hex_is_lower(t->peer_id, 64));
  FUZZ_CHECK(t->protocol_version >= 0);
  size_t n = strlen(t->name);
  FUZZ_CHECK(n <= LS_MDNS_NAME_MAX && ls_utf8_valid(t->name, n));
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK((unsigned char)t->name[i] >= 0x20 && t->name[i] != 0x7f);

  /* The four strings we advertise for such a peer. */
  char id[80], v[32], name[8 + LS_MDNS_NAME_MAX], rev[32];
  snprintf(id, sizeof id, "id=%s", t->peer_id);
  snprintf(v, sizeof v, "v=%d", t->protocol_version);
  snprintf(name, sizeof name, "name=%s", t->name);
  snprintf(rev, sizeof rev, "rev=%u", (unsigned)t->rev);
  uint8_t rdata[4 * 256];
  size_t len = put_string(rdata, 0, id);
  len = put_string(rdata, len, v);
  len = put_string(rdata, len, name);
  len = put_string(rdata, len, rev);
  ls_mdns_txt again;
  ls_diag diag;
  FUZZ_CHECK(ls_mdns_parse_txt(rdata, len, &again, &diag) == LS_OK);
  FUZZ_CHECK(records_equal(t, &again));
}

static int check_parse(int rc, const ls_mdns_txt *t, const ls_diag *diag)
{
  if (rc == LS_OK)
    check_record(t);
  else
    FUZZ_CHECK(rc == LS_EFORMAT && diag->text[0] != '\0');
  return rc;
}

/* The input as rdata, directly and through avahi's list. */
static void parse_rdata(const uint8_t *data, size_t size)
{
  ls_mdns_txt direct, listed;
  ls_diag diag = {{0}};
  int rc = check_parse(ls_mdns_parse_txt(data, size, &direct, &diag), &direct, &diag);
  AvahiStringList *list = NULL;
  if (avahi_string_list_parse(data, size, &list) != 0)
    return;
  diag.text[0] = '\0';
  int lrc = check_parse(ls_mdns_parse_txt_list(list, &listed, &diag), &listed, &diag);
  avahi_string_list_free(list);
  if (size <= 9000) { /* the resolver's buffer: larger records are cut */
    FUZZ_CHECK(lrc == rc);
    FUZZ_CHECK(rc != LS_OK || records_equal(&direct, &listed));
  }
}

/* The input as '\n'-separated strings, in order. */
static void parse_lines(const uint8_t *data, size_t size)
{
  AvahiStringList *list = NULL;
  for (size_t start = 0, i = 0; i <= size; i++) {
    if (i < size && data[i] != '\n')
      continue;
    list = avahi_string_list_add_arbitrary(list, data + start, i - start);
    FUZZ_CHECK(list != NULL);
    start = i + 1;
  }
  ls_mdns_txt t;
  ls_diag diag = {{0}};
  check_parse(ls_mdns_parse_txt_list(list, &t, &diag), &t, &diag);
  avahi_string_list_free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  parse_rdata(data, size);
  parse_lines(data, size);
  return 0;
}

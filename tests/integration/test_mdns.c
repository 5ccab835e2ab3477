/* Tests of mDNS discovery (src/net/mdns.c): TXT parsing, config checks, and
 * real discovery between instances in network namespaces (tests/common/
 * netns.h). Each instance runs in a forked child that entered its
 * namespace, runs a uv loop with ls_mdns and prints one line per event on
 * its stdout pipe:
 *   ready | error <code> <diag>
 *   found id=<peer id> addr=<ip>:<port> rev=<n> v=<n> name=<name>
 *   lost id=<peer id>
 * It reads commands on stdin: "rev N", "ping", "stop" (end of input stops
 * too). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "netns.h"
#include "testutil.h"

#include "net/mdns.h"

#include <avahi-common/strlst.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_INST 4
#define MAX_LINES 512
#define DISCOVERY_MS 5000

/* ---- TXT parsing ---- */

/* TXT rdata from NULL-terminated strings. */
static size_t rdata_of(uint8_t *out, size_t cap, ...)
{
  va_list ap;
  size_t len = 0;
  va_start(ap, cap);
  for (const char *s; (s = va_arg(ap, const char *));) {
    size_t n = strlen(s);
    assert_true(n < 256 && len + 1 + n <= cap);
    out[len++] = (uint8_t)n;
    memcpy(out + len, s, n);
    len += n;
  }
  va_end(ap);
  return len;
}

#define ID_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void test_parse_txt_valid(void **state)
{
  (void)state;
  uint8_t rd[1024];
  ls_mdns_txt t;
  ls_diag d;
  size_t n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=3", "name=Alice's PC", "rev=42", NULL);
  assert_int_equal(ls_mdns_parse_txt(rd, n, &t, &d), LS_OK);
  assert_string_equal(t.peer_id, ID_A);
  assert_int_equal(t.protocol_version, 3);
  assert_string_equal(t.name, "Alice's PC");
  assert_int_equal(t.rev, 42);

  /* Keys are case-insensitive, the first occurrence wins, others ignored. */
  n = rdata_of(rd, sizeof rd, "flag", "", "=x", "ID=" ID_B, "id=" ID_A, "V=1", "v=x",
               "other=1", NULL);
  assert_int_equal(ls_mdns_parse_txt(rd, n, &t, &d), LS_OK);
  assert_string_equal(t.peer_id, ID_B);
  assert_int_equal(t.protocol_version, 1);
  assert_string_equal(t.name, "");
  assert_int_equal(t.rev, 0);

  /* The largest rev. */
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=0", "rev=4294967295", NULL);
  assert_int_equal(ls_mdns_parse_txt(rd, n, &t, &d), LS_OK);
  assert_int_equal(t.rev, 4294967295u);
}

static void test_parse_txt_names_are_sanitized(void **state)
{
  (void)state;
  uint8_t rd[1024];
  ls_mdns_txt t;
  ls_diag d;
  /* A control character, a lone continuation byte, an overlong encoding, a
   * truncated sequence; valid multibyte characters survive. */
  size_t n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=1",
                      "name=a\tb\x80" "c\xc0\xaf" "d\xc3\xa9" "e\xe2\x82", NULL);
  assert_int_equal(ls_mdns_parse_txt(rd, n, &t, &d), LS_OK);
  assert_string_equal(t.name, "a?b?c??d\xc3\xa9" "e??");

  /* An embedded NUL becomes '?', not the end of the name. */
  uint8_t nul[] = {7, 'n', 'a', 'm', 'e', '=', 0, 'x'};
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=1", NULL);
  memcpy(rd + n, nul, sizeof nul);
  assert_int_equal(ls_mdns_parse_txt(rd, n + sizeof nul, &t, &d), LS_OK);
  assert_string_equal(t.name, "?x");

  /* 255-byte item: the name is cut to LS_MDNS_NAME_MAX. */
  char big[256] = "name=";
  memset(big + 5, 'x', 250);
  big[255] = '\0';
  n = rdata_of(rd, sizeof rd, big, "id=" ID_A, "v=1", NULL);
  assert_int_equal(ls_mdns_parse_txt(rd, n, &t, &d), LS_OK);
  assert_int_equal(strlen(t.name), LS_MDNS_NAME_MAX);
}

static void expect_bad_txt(const uint8_t *rd, size_t n, const char *why)
{
  ls_mdns_txt t;
  ls_diag d = {{0}};
  assert_int_equal(ls_mdns_parse_txt(rd, n, &t, &d), LS_EFORMAT);
  if (!strstr(d.text, why))
    fail_msg("diag \"%s\" does not mention \"%s\"", d.text, why);
}

static void test_parse_txt_rejects_bad_records(void **state)
{
  (void)state;
  uint8_t rd[1024];
  size_t n;
  n = rdata_of(rd, sizeof rd, "v=1", "name=x", NULL);
  expect_bad_txt(rd, n, "no id");
  n = rdata_of(rd, sizeof rd, "id=" ID_A, NULL);
  expect_bad_txt(rd, n, "no v");
  n = rdata_of(rd, sizeof rd, "id=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
               "v=1", NULL);
  expect_bad_txt(rd, n, "id");
  n = rdata_of(rd, sizeof rd, "id=0123", "v=1", NULL);
  expect_bad_txt(rd, n, "id");
  n = rdata_of(rd, sizeof rd, "id=" ID_A "0", "v=1", NULL);
  expect_bad_txt(rd, n, "id");
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=-1", NULL);
  expect_bad_txt(rd, n, "v");
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=", NULL);
  expect_bad_txt(rd, n, "v");
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=99999999999", NULL);
  expect_bad_txt(rd, n, "v");
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=1", "rev=4294967296", NULL);
  expect_bad_txt(rd, n, "rev");
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=1", "rev= 1", NULL);
  expect_bad_txt(rd, n, "rev");
  expect_bad_txt(rd, 0, "no id");
  /* A length byte that runs past the end. */
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=1", NULL);
  rd[n] = 10;
  rd[n + 1] = 'x';
  expect_bad_txt(rd, n + 2, "past the end");
  /* Every prefix of a valid record is rejected or accepted, never a crash. */
  n = rdata_of(rd, sizeof rd, "id=" ID_A, "v=1", "name=n", "rev=1", NULL);
  for (size_t k = 0; k < n; k++) {
    ls_mdns_txt t;
    int r = ls_mdns_parse_txt(rd, k, &t, NULL);
    assert_true(r == LS_OK || r == LS_EFORMAT);
  }
}

/* The list as the resolver gets it: order kept, each string cut at 255
 * bytes, and nothing past 9000 bytes of rdata. */
static void test_parse_txt_list_as_resolved(void **state)
{
  (void)state;
  char name[301] = "name=";
  memset(name + 5, 'x', 295);
  name[300] = '\0';
  AvahiStringList *list = avahi_string_list_new("id=" ID_A, "v=1", name, "id=" ID_B, NULL);
  ls_mdns_txt t;
  ls_diag d;
  assert_int_equal(ls_mdns_parse_txt_list(list, &t, &d), LS_OK);
  assert_string_equal(t.peer_id, ID_A);
  assert_int_equal(strlen(t.name), LS_MDNS_NAME_MAX); /* 255 - "name=" */
  /* The list is left as it was: a second parse reads it the same way. */
  assert_int_equal(ls_mdns_parse_txt_list(list, &t, &d), LS_OK);
  assert_string_equal(t.peer_id, ID_A);
  avahi_string_list_free(list);

  /* 40 strings of 255 bytes fill the 9000 bytes: the id after them is lost. */
  char filler[256];
  memset(filler, 'f', 255);
  filler[255] = '\0';
  list = avahi_string_list_new("v=1", NULL);
  for (int i = 0; i < 40; i++)
    list = avahi_string_list_add(list, filler);
  list = avahi_string_list_add(list, "id=" ID_A);
  assert_int_equal(ls_mdns_parse_txt_list(list, &t, &d), LS_EFORMAT);
  assert_non_null(strstr(d.text, "no id"));
  avahi_string_list_free(list);
}

static void test_start_rejects_bad_config(void **state)
{
  (void)state;
  uv_loop_t loop;
  ls_mdns *m = (ls_mdns *)1;
  ls_diag d;
  assert_int_equal(uv_loop_init(&loop), 0);
  ls_mdns_config c = {.loop = &loop, .peer_id = "abc", .port = 1, .protocol_version = 1};
  assert_int_equal(ls_mdns_start(&c, &m, &d), LS_EINVAL);
  assert_null(m);
  c.peer_id = ID_A;
  c.port = 0;
  assert_int_equal(ls_mdns_start(&c, &m, &d), LS_EINVAL);
  c.port = 1;
  c.loop = NULL;
  assert_int_equal(ls_mdns_start(&c, &m, &d), LS_EINVAL);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the child: one ls_mdns instance on a uv loop ---- */

typedef struct child_args {
  char peer_id[65];
  char name[400];
  uint16_t port;
} child_args;

typedef struct child_state {
  ls_mdns *m;
  uv_poll_t in;
  char buf[4096];
  size_t len;
} child_state;

static void child_on_found(void *user, const ls_mdns_peer *p)
{
  (void)user;
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&p->addr;
  char ip[INET_ADDRSTRLEN] = "?";
  if (p->addr.ss_family == AF_INET)
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
  dprintf(1, "found id=%s addr=%s:%u rev=%u v=%d name=%s\n", p->peer_id, ip,
          (unsigned)ntohs(sin->sin_port), (unsigned)p->rev, p->protocol_version, p->name);
}

static void child_on_lost(void *user, const char *peer_id)
{
  (void)user;
  dprintf(1, "lost id=%s\n", peer_id);
}

static void child_stop(child_state *st)
{
  if (!st->m)
    return;
  ls_mdns_stop(st->m);
  st->m = NULL;
  dprintf(1, "stopped\n");
  uv_close((uv_handle_t *)&st->in, NULL);
}

static void child_command(child_state *st, const char *line)
{
  unsigned rev;
  if (sscanf(line, "rev %u", &rev) == 1 && st->m) {
    int r = ls_mdns_set_revision(st->m, rev);
    dprintf(1, "ok rev %u %d\n", rev, r);
  } else if (strcmp(line, "ping") == 0) {
    dprintf(1, "pong\n");
  } else if (strcmp(line, "stop") == 0) {
    child_stop(st);
  }
}

static void child_on_stdin(uv_poll_t *h, int status, int events)
{
  child_state *st = h->data;
  (void)events;
  ssize_t n = status < 0 ? 0 : read(0, st->buf + st->len, sizeof st->buf - st->len - 1);
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0) {
    child_stop(st);
    return;
  }
  st->len += (size_t)n;
  char *nl;
  while (st->m && (nl = memchr(st->buf, '\n', st->len))) {
    *nl = '\0';
    child_command(st, st->buf);
    st->len -= (size_t)(nl + 1 - st->buf);
    memmove(st->buf, nl + 1, st->len);
  }
}

static int mdns_child(void *arg)
{
  child_args *a = arg;
  child_state st;
  uv_loop_t loop;
  ls_diag d = {{0}};
  memset(&st, 0, sizeof st);
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  ls_mdns_config c = {.loop = &loop, .peer_id = a->peer_id, .name = a->name, .port = a->port,
                      .protocol_version = 1, .on_found = child_on_found,
                      .on_lost = child_on_lost};
  int r = ls_mdns_start(&c, &st.m, &d);
  if (r < 0) {
    dprintf(1, "error %d %s\n", r, d.text);
    uv_loop_close(&loop);
    return 3;
  }
  dprintf(1, "ready\n");
  uv_poll_init(&loop, &st.in, 0);
  st.in.data = &st;
  uv_poll_start(&st.in, UV_READABLE, child_on_stdin);
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? 0 : 4;
}

/* ---- the parent's view of an instance ---- */

typedef struct inst {
  pid_t pid;
  int to, from;
  child_args args;
  char buf[8192];
  size_t len;
  bool eof;
  char *lines[MAX_LINES];
  int n_lines;
} inst;

static ls_netns *topo;
static inst insts[MAX_INST];
static int n_insts;

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_peer_id(char out[65], int n)
{
  static const char fill[] = "0123456789abcdef";
  snprintf(out, 65, "%08x%04x", (unsigned)getpid(), (unsigned)n);
  for (int i = 12; i < 64; i++)
    out[i] = fill[(i * 7 + n) % 16];
  out[64] = '\0';
}

static ls_netns *topology_or_skip(int hosts)
{
  char why[256];
  topo = ls_netns_create(hosts, why, sizeof why);
  if (!topo)
    ls_skip("%s", why);
  return topo;
}

/* Starts an instance in host; id NULL: a fresh peer id. */
static inst *start_inst_as(int host, const char *name, const char *id)
{
  assert_true(n_insts < MAX_INST);
  inst *p = &insts[n_insts];
  memset(p, 0, sizeof *p);
  if (id)
    snprintf(p->args.peer_id, sizeof p->args.peer_id, "%s", id);
  else
    make_peer_id(p->args.peer_id, n_insts);
  snprintf(p->args.name, sizeof p->args.name, "%s", name ? name : "peer");
  p->args.port = (uint16_t)(7000 + n_insts);
  p->pid = ls_netns_fork(topo, host, mdns_child, &p->args, &p->to, &p->from);
  assert_true(p->pid > 0);
  n_insts++;
  return p;
}

static inst *start_inst(int host, const char *name)
{
  return start_inst_as(host, name, NULL);
}

/* Reads one more line into p->lines; false at timeout or end of output. */
static bool read_line(inst *p, long long deadline)
{
  for (;;) {
    char *nl = memchr(p->buf, '\n', p->len);
    if (nl) {
      assert_true(p->n_lines < MAX_LINES);
      p->lines[p->n_lines++] = strndup(p->buf, (size_t)(nl - p->buf));
      p->len -= (size_t)(nl + 1 - p->buf);
      memmove(p->buf, nl + 1, p->len);
      return true;
    }
    long long left = deadline - now_ms();
    if (p->eof || left <= 0)
      return false;
    struct pollfd pfd = {.fd = p->from, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) <= 0)
      continue;
    ssize_t n = read(p->from, p->buf + p->len, sizeof p->buf - p->len);
    if (n <= 0)
      p->eof = true;
    else
      p->len += (size_t)n;
  }
}

static const char *match(const char *line, const char *prefix, const char *needle)
{
  if (strncmp(line, prefix, strlen(prefix)) != 0)
    return NULL;
  return !needle || strstr(line, needle) ? line : NULL;
}

/* A line (seen before or arriving before the deadline) that starts with
 * prefix and contains needle (if not NULL); NULL at the deadline. */
static const char *wait_for(inst *p, const char *prefix, const char *needle, long long deadline)
{
  for (int i = 0; i < p->n_lines; i++)
    if (match(p->lines[i], prefix, needle))
      return p->lines[i];
  while (read_line(p, deadline))
    if (match(p->lines[p->n_lines - 1], prefix, needle))
      return p->lines[p->n_lines - 1];
  return NULL;
}

static void expect_line(inst *p, const char *prefix, const char *needle, long long deadline)
{
  if (!wait_for(p, prefix, needle, deadline)) {
    for (int i = 0; i < p->n_lines; i++)
      print_message("  instance %.12s said: %s\n", p->args.peer_id, p->lines[i]);
    fail_msg("instance %.12s: no \"%s%s%s\" line in time", p->args.peer_id, prefix,
             needle ? "..." : "", needle ? needle : "");
  }
}

static bool said(const inst *p, const char *prefix, const char *needle)
{
  for (int i = 0; i < p->n_lines; i++)
    if (match(p->lines[i], prefix, needle))
      return true;
  return false;
}

static void send_line(inst *p, const char *line)
{
  size_t n = strlen(line);
  assert_int_equal(write(p->to, line, n), (ssize_t)n);
  assert_int_equal(write(p->to, "\n", 1), 1);
}

static void wait_ready(int first, int count)
{
  for (int i = first; i < first + count; i++)
    expect_line(&insts[i], "ready", NULL, now_ms() + 5000);
}

/* Waits until instance i reported every other instance of [0, count);
 * returns the time it took from `since`. */
static long long wait_discovery(int i, int count, long long since)
{
  char prefix[128];
  for (int j = 0; j < count; j++) {
    if (j == i)
      continue;
    snprintf(prefix, sizeof prefix, "found id=%s ", insts[j].args.peer_id);
    expect_line(&insts[i], prefix, NULL, since + DISCOVERY_MS);
  }
  return now_ms() - since;
}

static void check_addr(int i, int j, int host_of_j)
{
  char prefix[128], needle[64];
  snprintf(prefix, sizeof prefix, "found id=%s ", insts[j].args.peer_id);
  snprintf(needle, sizeof needle, " addr=%s:%u ", ls_netns_addr(topo, host_of_j),
           (unsigned)insts[j].args.port);
  if (!said(&insts[i], prefix, needle))
    fail_msg("instance %d reported instance %d with a wrong address (want%s)", i, j, needle);
}

static void check_never_self(int i)
{
  char prefix[128];
  snprintf(prefix, sizeof prefix, "found id=%s ", insts[i].args.peer_id);
  assert_false(said(&insts[i], prefix, NULL));
}

static void stop_inst(inst *p)
{
  send_line(p, "stop");
  expect_line(p, "stopped", NULL, now_ms() + 5000);
  assert_int_equal(ls_netns_wait(topo, p->pid, 10000), 0);
  p->pid = 0;
}

static int teardown(void **state)
{
  (void)state;
  ls_netns_destroy(topo); /* kills what is left */
  topo = NULL;
  for (int i = 0; i < n_insts; i++) {
    close(insts[i].to);
    close(insts[i].from);
    for (int k = 0; k < insts[i].n_lines; k++)
      free(insts[i].lines[k]);
  }
  n_insts = 0;
  return 0;
}

/* Starts one instance per host of a fresh topology and waits until each
 * found all others; returns the slowest discovery time. */
static long long start_and_discover(int hosts)
{
  topology_or_skip(hosts);
  for (int h = 0; h < hosts; h++)
    start_inst(h, NULL);
  wait_ready(0, hosts);
  long long t0 = now_ms(), worst = 0;
  for (int i = 0; i < hosts; i++) {
    long long t = wait_discovery(i, hosts, t0);
    worst = t > worst ? t : worst;
  }
  for (int i = 0; i < hosts; i++) {
    check_never_self(i);
    for (int j = 0; j < hosts; j++)
      if (j != i)
        check_addr(i, j, j);
  }
  return worst;
}

/* ---- discovery cases ---- */

static void test_three_instances_discover_each_other(void **state)
{
  (void)state;
  long long t = start_and_discover(3);
  print_message("discovery of 3 instances: %lld ms\n", t);
  for (int i = 0; i < 3; i++) {
    check_never_self(i);
    assert_false(said(&insts[i], "lost ", NULL));
  }
  for (int i = 0; i < 3; i++)
    stop_inst(&insts[i]);
}

static void test_killed_instance_changes_nothing_else(void **state)
{
  (void)state;
  start_and_discover(3);
  kill(insts[2].pid, SIGKILL);
  assert_int_equal(ls_netns_wait(topo, insts[2].pid, 5000), 128 + SIGKILL);
  /* No goodbye: the others keep it (TTL), and must carry on normally. */
  long long until = now_ms() + 3000;
  while (read_line(&insts[0], until) || read_line(&insts[1], until))
    ;
  for (int i = 0; i < 2; i++) {
    char prefix[128];
    snprintf(prefix, sizeof prefix, "lost id=%s", insts[1 - i].args.peer_id);
    assert_false(said(&insts[i], prefix, NULL));
    check_never_self(i);
    send_line(&insts[i], "ping");
    expect_line(&insts[i], "pong", NULL, now_ms() + 2000);
  }
  stop_inst(&insts[0]);
  stop_inst(&insts[1]);
}

static void test_clean_stop_is_reported_as_lost(void **state)
{
  (void)state;
  start_and_discover(3);
  stop_inst(&insts[2]);
  long long t0 = now_ms();
  char prefix[128];
  snprintf(prefix, sizeof prefix, "lost id=%s", insts[2].args.peer_id);
  for (int i = 0; i < 2; i++)
    expect_line(&insts[i], prefix, NULL, t0 + 5000);
  print_message("goodbye seen after %lld ms\n", now_ms() - t0);
  for (int i = 0; i < 2; i++) {
    snprintf(prefix, sizeof prefix, "lost id=%s", insts[1 - i].args.peer_id);
    assert_false(said(&insts[i], prefix, NULL));
  }
  stop_inst(&insts[0]);
  stop_inst(&insts[1]);
}

static void test_revision_bump_is_seen(void **state)
{
  (void)state;
  start_and_discover(3);
  send_line(&insts[0], "rev 7");
  expect_line(&insts[0], "ok rev 7 0", NULL, now_ms() + 2000);
  long long t0 = now_ms();
  char prefix[128];
  snprintf(prefix, sizeof prefix, "found id=%s ", insts[0].args.peer_id);
  for (int i = 1; i < 3; i++)
    expect_line(&insts[i], prefix, " rev=7 ", t0 + 5000);
  print_message("revision bump seen after %lld ms\n", now_ms() - t0);
  /* The address did not change with it. */
  for (int i = 1; i < 3; i++)
    check_addr(i, 0, 0);
  for (int i = 0; i < 3; i++)
    stop_inst(&insts[i]);
}

static void test_same_namespace_instances_find_each_other(void **state)
{
  (void)state;
  topology_or_skip(2);
  start_inst(0, NULL); /* two in host 0 */
  start_inst(0, NULL);
  start_inst(1, NULL);
  wait_ready(0, 3);
  long long t0 = now_ms(), worst = 0;
  for (int i = 0; i < 3; i++) {
    long long t = wait_discovery(i, 3, t0);
    worst = t > worst ? t : worst;
  }
  print_message("discovery with two instances in one namespace: %lld ms\n", worst);
  static const int host_of[] = {0, 0, 1};
  for (int i = 0; i < 3; i++) {
    check_never_self(i);
    for (int j = 0; j < 3; j++)
      if (j != i)
        check_addr(i, j, host_of[j]);
  }
  for (int i = 0; i < 3; i++)
    stop_inst(&insts[i]);
}

static void test_long_name_is_cut_to_fit(void **state)
{
  (void)state;
  char name[400] = "";
  /* 150 x "é" (2 bytes each): the TXT must stay <= 200 bytes, cut at a
   * character boundary. */
  for (int i = 0; i < 150; i++)
    strcat(name, "\xc3\xa9");
  topology_or_skip(2);
  start_inst(0, name);
  start_inst(1, "short");
  wait_ready(0, 2);
  long long t0 = now_ms();
  wait_discovery(1, 2, t0);
  char prefix[128];
  snprintf(prefix, sizeof prefix, "found id=%s ", insts[0].args.peer_id);
  const char *line = wait_for(&insts[1], prefix, NULL, t0);
  const char *got = strstr(line, " name=") + 6;
  size_t n = strlen(got);
  assert_true(n > 50 && n <= 110);
  assert_int_equal(n % 2, 0);
  assert_memory_equal(got, name, n);
  wait_discovery(0, 2, t0);
  stop_inst(&insts[0]);
  stop_inst(&insts[1]);
}

static void test_address_change_is_republished(void **state)
{
  (void)state;
  start_and_discover(2);
  /* Host 0 moves to another address of its subnet. */
  char addr[40], old[40], needle[64], prefix[128];
  snprintf(old, sizeof old, "%s/24", ls_netns_addr(topo, 0));
  snprintf(addr, sizeof addr, "%.*s.200", (int)(strrchr(old, '.') - old), old);
  char *add[] = {"ip", "addr", "add", addr, "dev", "eth0", NULL};
  char *del[] = {"ip", "addr", "del", old, "dev", "eth0", NULL};
  strcat(addr, "/24");
  /* Deleting the primary address would take secondaries of its subnet
   * with it: delete first, then add. */
  assert_int_equal(ls_netns_exec(topo, 0, del), 0);
  assert_int_equal(ls_netns_exec(topo, 0, add), 0);
  addr[strlen(addr) - 3] = '\0';
  long long t0 = now_ms();
  snprintf(prefix, sizeof prefix, "found id=%s ", insts[0].args.peer_id);
  snprintf(needle, sizeof needle, " addr=%s:%u ", addr, (unsigned)insts[0].args.port);
  expect_line(&insts[1], prefix, needle, t0 + 15000);
  print_message("address change seen after %lld ms\n", now_ms() - t0);
  stop_inst(&insts[0]);
  stop_inst(&insts[1]);
}

/* Two processes with one identity (a copied state directory): same host
 * name, same service name. The collision handling renames one of them; a
 * third instance reports that peer id once, and nobody crashes. */
static void test_duplicate_identity_collides_safely(void **state)
{
  (void)state;
  topology_or_skip(3);
  start_inst(0, "twin");
  start_inst_as(1, "twin", insts[0].args.peer_id);
  start_inst(2, NULL);
  wait_ready(0, 3);
  char prefix[128];
  snprintf(prefix, sizeof prefix, "found id=%s ", insts[0].args.peer_id);
  expect_line(&insts[2], prefix, NULL, now_ms() + 10000);
  /* Let the renaming settle, then everyone is still alive and well. */
  long long until = now_ms() + 4000;
  while (read_line(&insts[2], until))
    ;
  for (int i = 0; i < 3; i++) {
    send_line(&insts[i], "ping");
    expect_line(&insts[i], "pong", NULL, now_ms() + 2000);
  }
  for (int i = 0; i < 2; i++)
    check_never_self(i); /* the twin is "us" to each of them */
  for (int i = 0; i < 3; i++)
    stop_inst(&insts[i]);
}

static void test_no_usable_interface_is_an_error(void **state)
{
  (void)state;
  topology_or_skip(1);
  char *down[] = {"ip", "link", "set", "eth0", "down", NULL};
  assert_int_equal(ls_netns_exec(topo, 0, down), 0);
  inst *p = start_inst(0, NULL);
  expect_line(p, "error ", "no usable IPv4 interface", now_ms() + 5000);
  assert_int_equal(ls_netns_wait(topo, p->pid, 5000), 3);
  p->pid = 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_txt_valid),
    cmocka_unit_test(test_parse_txt_names_are_sanitized),
    cmocka_unit_test(test_parse_txt_rejects_bad_records),
    cmocka_unit_test(test_parse_txt_list_as_resolved),
    cmocka_unit_test(test_start_rejects_bad_config),
    cmocka_unit_test_teardown(test_three_instances_discover_each_other, teardown),
    cmocka_unit_test_teardown(test_killed_instance_changes_nothing_else, teardown),
    cmocka_unit_test_teardown(test_clean_stop_is_reported_as_lost, teardown),
    cmocka_unit_test_teardown(test_revision_bump_is_seen, teardown),
    cmocka_unit_test_teardown(test_same_namespace_instances_find_each_other, teardown),
    cmocka_unit_test_teardown(test_long_name_is_cut_to_fit, teardown),
    cmocka_unit_test_teardown(test_address_change_is_republished, teardown),
    cmocka_unit_test_teardown(test_duplicate_identity_collides_safely, teardown),
    cmocka_unit_test_teardown(test_no_usable_interface_is_an_error, teardown),
  };
  if (getenv("LS_TEST_FILTER")) /* e.g. LS_TEST_FILTER='*address*' */
    cmocka_set_test_filter(getenv("LS_TEST_FILTER"));
  return ls_run_tests(tests, NULL, NULL);
}

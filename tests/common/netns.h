/* Network namespaces for integration tests: a LAN of N hosts on one bridge,
 * built only from namespaces this process creates (the host's own
 * interfaces are never touched), with a way to run a function or a program
 * inside host i, and tbf shaping of a host's link.
 *
 * Layout: a hub namespace holds bridge br0; host i is a namespace whose
 * "eth0" is a veth pair with "v<i>" on the bridge; eth0 has
 * 10.213.<subnet>.<i+1>/24 (subnet differs per topology of this process;
 * topologies are separate L2 domains anyway), eth0 and lo are up.
 *
 * Names carry the creating pid ("lsnt<pid>-<k>-..."), so parallel test runs
 * do not clash. Namespaces and forked children are removed by
 * ls_netns_destroy, at exit, and on SIGINT/SIGTERM/SIGHUP/SIGQUIT; leftovers
 * of dead test processes (say, killed by SIGKILL) are reaped by the next
 * ls_netns_create. Children also get SIGKILL when the test process dies. */
#ifndef LS_TEST_NETNS_H
#define LS_TEST_NETNS_H

#include "peerproc.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ls_netns ls_netns;

/* Creates the topology. Returns NULL when namespaces cannot be made (not
 * root, no ip(8), no kernel support); `why` then says why, for ls_skip. */
ls_netns *ls_netns_create(int n_hosts, char *why, size_t why_size);
/* Kills the children forked into it, removes its namespaces (with their
 * veths and bridge) and frees it. NULL is a no-op. */
void ls_netns_destroy(ls_netns *t);

int ls_netns_count(const ls_netns *t);
/* The namespace name of host i (for `ip netns exec NAME ...`). */
const char *ls_netns_name(const ls_netns *t, int host);
/* Host i's IPv4 address, dotted. */
const char *ls_netns_addr(const ls_netns *t, int host);

/* Moves the calling (single-threaded) process into host i's network
 * namespace. 0 or -errno. */
int ls_netns_enter(const ls_netns *t, int host);

/* Forks a child that enters host i's namespace and exits with fn(arg) (via
 * exit(), so sanitizer leak checks run in the child). Its stdin and stdout
 * are pipes: *to_child gets the write end, *from_child the read end (pass
 * NULL to leave that one alone). The child is killed by destroy. Returns the
 * pid, or -1. */
pid_t ls_netns_fork(ls_netns *t, int host, int (*fn)(void *arg), void *arg, int *to_child,
                    int *from_child);
/* Waits for a child of ls_netns_fork: its exit code, 128+signal, or -1 after
 * timeout_ms (it is then killed). */
int ls_netns_wait(ls_netns *t, pid_t pid, int timeout_ms);

/* Starts a program of the build inside host i (pp_start_in_netns). */
peerproc *ls_netns_start(const ls_netns *t, int host, char *const argv[]);

/* Runs argv (argv[0] looked up in PATH) inside host i and waits; its exit
 * code, or -1. Output goes to the test's stderr. */
int ls_netns_exec(const ls_netns *t, int host, char *const argv[]);

/* Shapes host i's link with tbf: up_mbit limits what the host sends,
 * down_mbit what it receives (Mbit/s; 0 removes that limit). 0 or -1. */
int ls_netns_shape(const ls_netns *t, int host, double up_mbit, double down_mbit);

/* Takes host i's link down or up (a pulled cable). 0 or -1. */
int ls_netns_link(const ls_netns *t, int host, bool up);

#endif

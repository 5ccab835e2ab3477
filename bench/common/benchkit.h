/* What every benchmark needs besides its measurement: a work directory and
 * child processes that go away at exit and on SIGINT/SIGTERM/SIGHUP, fatal
 * and usage errors, option parsing, time, statistics, and the programs
 * built next to the benchmark. Linked into every bench_* executable. */
#ifndef LS_BENCH_BENCHKIT_H
#define LS_BENCH_BENCHKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Names the program in messages; arms the cleanup at exit and on signals. */
void bench_init(const char *prog);
/* The work directory, removed (rm -rf) by the cleanup. */
void bench_remove_at_exit(const char *dir);
/* rm -rf PATH. */
void bench_remove_tree(const char *path);

/* fork(): the child forgets the parent's cleanup duties and signal
 * handlers; the parent tracks the child, which the cleanup kills. */
pid_t bench_fork(void);
/* A tracked child has been reaped. */
void bench_forget_child(pid_t pid);
/* Runs argv (PATH lookup) to its end, stdout to /dev/null when
 * quiet_stdout. Returns its exit status, or 128 + the signal. */
int bench_run(char *const argv[], bool quiet_stdout);

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* In a forked child that gives up: the message, then _exit(1) (no atexit
 * handlers while its threads run; the parent reports the status). */
void bench_child_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Exit status 2 with a pointer to --help. */
void bench_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *bench_calloc(size_t n, size_t size); /* dies when out of memory */
/* A decimal integer from min to max, else a usage error naming opt. */
unsigned long bench_parse_count(const char *opt, const char *s, unsigned long min,
                                unsigned long max);

double bench_now_s(void); /* monotonic */
double bench_median(const double *v, size_t n);
double bench_min(const double *v, size_t n);

/* DIR/NAME into out; dies when it does not fit. */
void bench_join_path(char *out, size_t cap, const char *dir, const char *name);
/* The program NAME in the directory of this executable; dies when it is
 * not there (build its target). */
void bench_sibling(const char *name, char *out, size_t cap);

#endif

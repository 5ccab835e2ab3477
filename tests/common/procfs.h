/* Reading a number of another process from /proc, for the tests and the
 * benchmarks (which link it without the rest of tests/common). Files under
 * /proc report a size of 0, so they are read line by line. */
#ifndef LS_TEST_PROCFS_H
#define LS_TEST_PROCFS_H

/* The first integer after `prefix` on the line of /proc/PID/FILE that starts
 * with it (e.g. "status", "VmRSS:" for kB; "limits", "Max open files" for
 * the soft limit), or -1 when the process, file or line is not there. */
long t_proc_number(int pid, const char *file, const char *prefix);

#endif

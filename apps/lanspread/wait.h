/* Timed waits on condition variables, on the monotonic clock (a clock
 * change must not stretch or cut a wait). */
#ifndef LSD_WAIT_H
#define LSD_WAIT_H

#include <pthread.h>
#include <time.h>

void lsd_cond_init_monotonic(pthread_cond_t *cond);
/* The moment ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec lsd_deadline_in(unsigned ms);

#endif

/*
 * thread.h: the calling thread's name (so `top -H`, /proc/PID/task/N/comm
 * and the benches' per-thread CPU table tell ccm-host's threads apart) and
 * its CPU clock, which the controllers use to split reconcile CPU; and
 * monotonic condition-variable waits.
 */
#ifndef CCM_THREAD_H
#define CCM_THREAD_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* At most 15 characters are kept (the kernel's limit); failure is ignored. */
void thread_name(const char *name);
/* CPU time the calling thread has used, in ns (0 if the clock fails). */
uint64_t thread_cpu_ns(void);

/* A condition variable whose timed waits use CLOCK_MONOTONIC, so that a
 * wall-clock step neither stretches nor cuts a wait. 0, or -1 when it
 * cannot be made. */
int thread_cond_init_mono(pthread_cond_t *cv);
/* CLOCK_MONOTONIC deadlines for pthread_cond_timedwait on such a variable:
 * ms from now, or at mono_ms (milliseconds of CLOCK_MONOTONIC). */
struct timespec thread_deadline_in(uint32_t ms);
struct timespec thread_deadline_at(int64_t mono_ms);
/* Wait on cv (initialised by thread_cond_init_mono, mu held) for at most
 * ms milliseconds. */
void thread_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu,
                         uint32_t ms);

#endif

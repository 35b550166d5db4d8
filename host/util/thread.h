/*
 * thread.h: the calling thread's name (so `top -H`, /proc/PID/task/N/comm
 * and the benches' per-thread CPU table tell ccm-host's threads apart) and
 * its CPU clock, which the controllers use to split reconcile CPU.
 */
#ifndef CCM_THREAD_H
#define CCM_THREAD_H

#include <stdint.h>

/* At most 15 characters are kept (the kernel's limit); failure is ignored. */
void thread_name(const char *name);
/* CPU time the calling thread has used, in ns (0 if the clock fails). */
uint64_t thread_cpu_ns(void);

#endif

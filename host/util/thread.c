/*
 * thread.c: thread naming through prctl(PR_SET_NAME), which needs no
 * _GNU_SOURCE (best effort: a name is a diagnostic, never a requirement),
 * the thread CPU clock and monotonic condition-variable waits.
 */
#include "util/thread.h"

#include <string.h>
#include <sys/prctl.h>
#include <time.h>

void thread_name(const char *name)
{
  char buf[16];
  size_t n = strlen(name);

  if (n > sizeof(buf) - 1)
    n = sizeof(buf) - 1;
  memcpy(buf, name, n);
  buf[n] = '\0';
  (void)prctl(PR_SET_NAME, buf, 0, 0, 0);
}

uint64_t thread_cpu_ns(void)
{
  struct timespec ts;

  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int thread_cond_init_mono(pthread_cond_t *cv)
{
  pthread_condattr_t ca;
  int rc;

  if (pthread_condattr_init(&ca) != 0)
    return -1;
  rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
               pthread_cond_init(cv, &ca) == 0
           ? 0
           : -1;
  pthread_condattr_destroy(&ca);
  return rc;
}

struct timespec thread_deadline_in(uint32_t ms)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += (time_t)(ms / 1000u);
  ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

struct timespec thread_deadline_at(int64_t mono_ms)
{
  struct timespec ts;

  ts.tv_sec = (time_t)(mono_ms / 1000);
  ts.tv_nsec = (long)(mono_ms % 1000) * 1000000L;
  return ts;
}

void thread_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu,
                         uint32_t ms)
{
  struct timespec ts = thread_deadline_in(ms);

  pthread_cond_timedwait(cv, mu, &ts);
}

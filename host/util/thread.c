/*
 * thread.c: thread naming through prctl(PR_SET_NAME), which needs no
 * _GNU_SOURCE (best effort: a name is a diagnostic, never a requirement),
 * and the thread CPU clock.
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

/*
 * limiter.c: token bucket with reservations. Tokens refill at qps up to
 * burst; a reservation may push the count below zero, and the caller
 * sleeps (outside the lock) until its token exists.
 */
#include "kube/limiter.h"

#include <time.h>

int64_t limiter_now_us(void *ud)
{
  struct timespec ts;

  (void)ud;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void limiter_init(struct limiter *l, double qps, int burst,
                  limiter_clock_fn *clock, void *clock_ud)
{
  pthread_mutex_init(&l->lock, NULL);
  l->qps = qps;
  l->burst = burst < 1 ? 1.0 : (double)burst;
  l->tokens = l->burst;
  l->clock = clock != NULL ? clock : limiter_now_us;
  l->clock_ud = clock_ud;
  l->last_us = l->clock(l->clock_ud);
}

void limiter_destroy(struct limiter *l)
{
  pthread_mutex_destroy(&l->lock);
}

/* Called with the lock held. */
static void limiter_refill(struct limiter *l, int64_t now)
{
  if (now > l->last_us) {
    l->tokens += (double)(now - l->last_us) * l->qps / 1e6;
    if (l->tokens > l->burst)
      l->tokens = l->burst;
    l->last_us = now;
  }
}

int64_t limiter_reserve(struct limiter *l)
{
  int64_t wait = 0;

  if (l->qps <= 0)
    return 0;
  pthread_mutex_lock(&l->lock);
  limiter_refill(l, l->clock(l->clock_ud));
  l->tokens -= 1.0;
  if (l->tokens < 0)
    wait = (int64_t)(-l->tokens * 1e6 / l->qps + 0.5);
  pthread_mutex_unlock(&l->lock);
  return wait;
}

int limiter_try(struct limiter *l)
{
  int rc = -1;

  if (l->qps <= 0)
    return 0;
  pthread_mutex_lock(&l->lock);
  limiter_refill(l, l->clock(l->clock_ud));
  if (l->tokens >= 1.0) {
    l->tokens -= 1.0;
    rc = 0;
  }
  pthread_mutex_unlock(&l->lock);
  return rc;
}

void limiter_wait(struct limiter *l)
{
  int64_t us = limiter_reserve(l);
  struct timespec ts;

  if (us <= 0)
    return;
  ts.tv_sec = (time_t)(us / 1000000);
  ts.tv_nsec = (long)(us % 1000000) * 1000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
}

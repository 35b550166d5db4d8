/*
 * limiter.h: the client-side token bucket (QPS and burst, as client-go's
 * flowcontrol.NewTokenBucketRateLimiter). It owns a bucket and a clock; it
 * knows nothing about HTTP. The lock is held for arithmetic only.
 */
#ifndef CCM_KUBE_LIMITER_H
#define CCM_KUBE_LIMITER_H

#include <pthread.h>
#include <stdint.h>

#define CCM_LIMITER_DEFAULT_QPS 20.0
#define CCM_LIMITER_DEFAULT_BURST 30

/* Monotonic microseconds; tests inject their own. */
typedef int64_t limiter_clock_fn(void *ud);

struct limiter {
  pthread_mutex_t lock;
  double qps;     /* <= 0: unlimited */
  double burst;
  double tokens;  /* may go negative: reservations in the future */
  int64_t last_us;
  limiter_clock_fn *clock;
  void *clock_ud;
};

/* qps <= 0 disables the limit; burst < 1 is taken as 1. clock NULL: the
 * monotonic clock. The bucket starts full. */
void limiter_init(struct limiter *l, double qps, int burst,
                  limiter_clock_fn *clock, void *clock_ud);
void limiter_destroy(struct limiter *l);

/* Take one token and return how long the caller must wait before using
 * it, in microseconds (0: now). Never blocks. */
int64_t limiter_reserve(struct limiter *l);

/* Take one token without waiting; returns 0, or -1 (nothing taken) when
 * the bucket is empty. */
int limiter_try(struct limiter *l);

/* limiter_reserve, then sleep (no lock held) for the wait. */
void limiter_wait(struct limiter *l);

/* The monotonic clock in microseconds (the default clock). */
int64_t limiter_now_us(void *ud);

#endif

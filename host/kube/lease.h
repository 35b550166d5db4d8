/*
 * lease.h: leader election on a coordination.k8s.io/v1 Lease, as
 * client-go's leaderelection with ReleaseOnCancel. It owns one thread that
 * acquires and renews; it knows nothing about controllers, which check
 * lease_is_leader before every mutating action.
 */
#ifndef CCM_KUBE_LEASE_H
#define CCM_KUBE_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/client.h"

#define CCM_LEASE_DEFAULT_NAME "cloud-controller-manager"
#define CCM_LEASE_DEFAULT_NS "kube-system"
#define CCM_LEASE_DEFAULT_LEASE_MS 15000
#define CCM_LEASE_DEFAULT_RENEW_MS 10000
#define CCM_LEASE_DEFAULT_RETRY_MS 2000

struct lease_opts {
  const char *name;     /* NULL: CCM_LEASE_DEFAULT_NAME */
  const char *ns;       /* NULL: CCM_LEASE_DEFAULT_NS */
  const char *identity; /* NULL: "<hostname>_<uuid>" */
  uint32_t lease_ms;    /* 0: 15000 (rounded up to whole seconds) */
  uint32_t renew_ms;    /* 0: 10000; must be < lease_ms */
  uint32_t retry_ms;    /* 0: 2000; must be < renew_ms */
  /* Called from the lease thread; they must return quickly. */
  void (*on_started_leading)(void *ud);
  void (*on_stopped_leading)(void *ud);
  void *ud;
};

struct lease;

/* Check the options and build the elector (no thread yet). Returns 0, or
 * -1 with err. */
int lease_new(struct kube_client *c, const struct lease_opts *opts,
              struct lease **out, char *err, size_t errlen);

/* Start the thread: acquire (retry_ms, jittered), then renew every
 * retry_ms. After losing the lease it calls on_stopped_leading and goes
 * back to acquiring. Returns 0 or -1. */
int lease_start(struct lease *l);

/* Stop the thread. release true (a graceful stop): a leader first stops
 * being one (lease_is_leader false), then writes holderIdentity "" and
 * leaseDurationSeconds 1 so another candidate takes over at once. release
 * false simulates a crash: nothing is written. on_stopped_leading runs if
 * this elector was leading. */
void lease_stop(struct lease *l, bool release);

/* Stops (with release) if running, and frees. */
void lease_free(struct lease *l);

/* True while this elector holds the lease AND the renew deadline (last
 * successful renew attempt's start + renew_ms, monotonic clock) has not
 * passed. Lock-free; call it before every mutating action. */
bool lease_is_leader(const struct lease *l);

const char *lease_identity(const struct lease *l);

/* One acquire-or-renew attempt, as the thread makes it (for tests and
 * callers that drive the elector themselves). Returns true on success. */
bool lease_try_acquire_or_renew(struct lease *l);

#endif

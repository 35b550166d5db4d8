/*
 * workqueue.c: the controllers' rate-limited work queue (workqueue.h).
 * It owns keys, their states and their delays under one mutex; it never
 * calls out while holding it and knows nothing about objects.
 */
#include "controllers/workqueue.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "modules/host_api.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_WQ_BUCKETS_MIN 64

/* One key. It lives while it is queued, held, delayed or has failures. */
struct wq_item {
  char *key;
  struct wq_item *hnext;  /* hash chain */
  struct wq_item *qnext;  /* ready FIFO */
  uint32_t failures;
  bool queued;            /* in the ready FIFO */
  bool processing;        /* held by a worker */
  bool dirty;             /* added while held: queue again on wq_done */
  bool delayed;           /* in the delay heap */
  int64_t due_ms;         /* when delayed: monotonic time it becomes ready */
  size_t heap_idx;
};

struct workqueue {
  char name[32];
  uint32_t base_delay_ms;
  uint32_t max_delay_ms;

  pthread_mutex_t lock;
  pthread_cond_t cond;    /* CLOCK_MONOTONIC */

  struct wq_item **buckets;
  size_t nbuckets;
  size_t nitems;

  struct wq_item *head, *tail; /* ready FIFO */
  size_t depth;

  struct wq_item **heap;  /* min-heap on due_ms */
  size_t heap_len, heap_cap;

  size_t processing;
  uint64_t adds, retries;
  bool shutdown, drain;
};

static size_t wq_hash(const char *s)
{
  size_t h = 1469598103934665603ULL; /* FNV-1a */

  while (*s) {
    h ^= (unsigned char)*s++;
    h *= 1099511628211ULL;
  }
  return h;
}

/* ---- key table ---- */

static struct wq_item *wq_find(struct workqueue *q, const char *key)
{
  struct wq_item *it = q->buckets[wq_hash(key) & (q->nbuckets - 1)];

  while (it && strcmp(it->key, key) != 0)
    it = it->hnext;
  return it;
}

static void wq_grow(struct workqueue *q)
{
  size_t n = q->nbuckets * 2, i;
  struct wq_item **nb = mem_calloc(n, sizeof(*nb));

  if (!nb)
    return; /* longer chains, still correct */
  for (i = 0; i < q->nbuckets; i++) {
    struct wq_item *it = q->buckets[i];

    while (it) {
      struct wq_item *next = it->hnext;
      size_t b = wq_hash(it->key) & (n - 1);

      it->hnext = nb[b];
      nb[b] = it;
      it = next;
    }
  }
  mem_free(q->buckets);
  q->buckets = nb;
  q->nbuckets = n;
}

/* Find or create key's item; NULL only when out of memory. */
static struct wq_item *wq_lookup(struct workqueue *q, const char *key)
{
  struct wq_item *it = wq_find(q, key);
  size_t b;

  if (it)
    return it;
  it = mem_calloc(1, sizeof(*it));
  if (!it)
    goto fail;
  it->key = mem_strdup(key);
  if (!it->key)
    goto fail;
  if (q->nitems >= q->nbuckets)
    wq_grow(q);
  b = wq_hash(key) & (q->nbuckets - 1);
  it->hnext = q->buckets[b];
  q->buckets[b] = it;
  q->nitems++;
  return it;
fail:
  if (it)
    mem_free(it);
  log_msg(CCM_LOG_ERROR, "workqueue", "%s: out of memory, key %s dropped",
          q->name, key);
  return NULL;
}

/* Free the item when nothing refers to it any more. */
static void wq_maybe_release(struct workqueue *q, struct wq_item *it)
{
  struct wq_item **pp;

  if (it->queued || it->processing || it->delayed || it->failures > 0)
    return;
  pp = &q->buckets[wq_hash(it->key) & (q->nbuckets - 1)];
  while (*pp != it)
    pp = &(*pp)->hnext;
  *pp = it->hnext;
  q->nitems--;
  mem_free(it->key);
  mem_free(it);
}

/* ---- delay heap ---- */

static void wq_heap_set(struct workqueue *q, size_t i, struct wq_item *it)
{
  q->heap[i] = it;
  it->heap_idx = i;
}

static void wq_heap_up(struct workqueue *q, size_t i)
{
  struct wq_item *it = q->heap[i];

  while (i > 0) {
    size_t parent = (i - 1) / 2;

    if (q->heap[parent]->due_ms <= it->due_ms)
      break;
    wq_heap_set(q, i, q->heap[parent]);
    i = parent;
  }
  wq_heap_set(q, i, it);
}

static void wq_heap_down(struct workqueue *q, size_t i)
{
  struct wq_item *it = q->heap[i];

  for (;;) {
    size_t l = 2 * i + 1, m = i;
    int64_t best = it->due_ms;

    if (l < q->heap_len && q->heap[l]->due_ms < best) {
      m = l;
      best = q->heap[l]->due_ms;
    }
    if (l + 1 < q->heap_len && q->heap[l + 1]->due_ms < best)
      m = l + 1;
    if (m == i)
      break;
    wq_heap_set(q, i, q->heap[m]);
    i = m;
  }
  wq_heap_set(q, i, it);
}

static bool wq_heap_push(struct workqueue *q, struct wq_item *it)
{
  if (q->heap_len == q->heap_cap) {
    size_t cap = q->heap_cap ? q->heap_cap * 2 : 16;
    struct wq_item **nh = mem_realloc(q->heap, cap * sizeof(*nh));

    if (!nh)
      return false;
    q->heap = nh;
    q->heap_cap = cap;
  }
  q->heap[q->heap_len] = it;
  it->heap_idx = q->heap_len++;
  it->delayed = true;
  wq_heap_up(q, it->heap_idx);
  return true;
}

static void wq_heap_remove(struct workqueue *q, struct wq_item *it)
{
  size_t i = it->heap_idx;
  struct wq_item *last = q->heap[--q->heap_len];

  it->delayed = false;
  if (last == it)
    return;
  wq_heap_set(q, i, last);
  if (i > 0 && q->heap[(i - 1) / 2]->due_ms > last->due_ms)
    wq_heap_up(q, i);
  else
    wq_heap_down(q, i);
}

/* ---- ready FIFO ---- */

static void wq_push_ready(struct workqueue *q, struct wq_item *it)
{
  it->queued = true;
  it->qnext = NULL;
  if (q->tail)
    q->tail->qnext = it;
  else
    q->head = it;
  q->tail = it;
  q->depth++;
  pthread_cond_signal(&q->cond);
}

static struct wq_item *wq_pop_ready(struct workqueue *q)
{
  struct wq_item *it = q->head;

  q->head = it->qnext;
  if (!q->head)
    q->tail = NULL;
  it->qnext = NULL;
  it->queued = false;
  q->depth--;
  return it;
}

/* Make item ready now (or dirty when a worker holds it); the caller holds
 * the lock. Returns true when the call queued something new. */
static bool wq_ready_locked(struct workqueue *q, struct wq_item *it)
{
  if (it->delayed)
    wq_heap_remove(q, it); /* now is earlier than any pending time */
  if (it->processing) {
    if (it->dirty)
      return false;
    it->dirty = true;
    return true;
  }
  if (it->queued)
    return false;
  wq_push_ready(q, it);
  return true;
}

/* Move every due delayed key to the ready FIFO. */
static void wq_promote_due(struct workqueue *q, int64_t now)
{
  while (q->heap_len > 0 && q->heap[0]->due_ms <= now) {
    struct wq_item *it = q->heap[0];

    wq_heap_remove(q, it);
    wq_ready_locked(q, it);
  }
}

static void wq_add_after_locked(struct workqueue *q, const char *key,
                                uint32_t delay_ms)
{
  struct wq_item *it;
  int64_t due;

  if (q->shutdown)
    return;
  it = wq_lookup(q, key);
  if (!it)
    return;
  if (delay_ms == 0) {
    if (wq_ready_locked(q, it))
      q->adds++;
    return;
  }
  /* Ready now or re-queued on done is sooner than any delay. */
  if (it->queued || it->dirty)
    return;
  due = call_now_ms() + delay_ms;
  if (it->delayed) {
    if (due < it->due_ms) {
      it->due_ms = due;
      wq_heap_up(q, it->heap_idx);
      pthread_cond_broadcast(&q->cond); /* a waiter's timeout got shorter */
    }
    return;
  }
  it->due_ms = due;
  if (!wq_heap_push(q, it)) {
    log_msg(CCM_LOG_ERROR, "workqueue", "%s: out of memory, key %s dropped",
            q->name, key);
    wq_maybe_release(q, it);
    return;
  }
  q->adds++;
  if (it->heap_idx == 0)
    pthread_cond_broadcast(&q->cond);
}

/* ---- public ---- */

struct workqueue *wq_new(const struct wq_opts *opts)
{
  struct workqueue *q = mem_calloc(1, sizeof(*q));
  bool lock_ok = false;

  if (!q)
    return NULL;
  snprintf(q->name, sizeof(q->name), "%s",
           opts && opts->name ? opts->name : "queue");
  q->base_delay_ms = opts ? opts->base_delay_ms : 0;
  q->max_delay_ms = opts ? opts->max_delay_ms : 0;
  if (q->max_delay_ms < q->base_delay_ms)
    q->max_delay_ms = q->base_delay_ms;
  q->nbuckets = CCM_WQ_BUCKETS_MIN;
  q->buckets = mem_calloc(q->nbuckets, sizeof(*q->buckets));
  if (!q->buckets)
    goto fail;
  if (pthread_mutex_init(&q->lock, NULL) != 0)
    goto fail;
  lock_ok = true;
  if (thread_cond_init_mono(&q->cond) != 0)
    goto fail;
  return q;
fail:
  if (lock_ok)
    pthread_mutex_destroy(&q->lock);
  mem_free(q->buckets);
  mem_free(q);
  return NULL;
}

void wq_free(struct workqueue *q)
{
  size_t i;

  if (!q)
    return;
  for (i = 0; i < q->nbuckets; i++) {
    struct wq_item *it = q->buckets[i];

    while (it) {
      struct wq_item *next = it->hnext;

      mem_free(it->key);
      mem_free(it);
      it = next;
    }
  }
  mem_free(q->buckets);
  mem_free(q->heap);
  pthread_cond_destroy(&q->cond);
  pthread_mutex_destroy(&q->lock);
  mem_free(q);
}

void wq_add(struct workqueue *q, const char *key)
{
  pthread_mutex_lock(&q->lock);
  wq_add_after_locked(q, key, 0);
  pthread_mutex_unlock(&q->lock);
}

void wq_add_after(struct workqueue *q, const char *key, uint32_t delay_ms)
{
  pthread_mutex_lock(&q->lock);
  wq_add_after_locked(q, key, delay_ms);
  pthread_mutex_unlock(&q->lock);
}

void wq_add_rate_limited(struct workqueue *q, const char *key)
{
  struct wq_item *it;
  uint64_t delay;
  uint32_t exp;

  pthread_mutex_lock(&q->lock);
  if (q->shutdown)
    goto out;
  it = wq_lookup(q, key);
  if (!it)
    goto out;
  /* client-go's exponential limiter: base * 2^(failures so far). */
  exp = it->failures;
  if (it->failures < UINT32_MAX)
    it->failures++;
  q->retries++;
  delay = q->base_delay_ms;
  while (exp-- > 0 && delay < q->max_delay_ms)
    delay *= 2;
  if (delay > q->max_delay_ms)
    delay = q->max_delay_ms;
  wq_add_after_locked(q, key, (uint32_t)delay);
out:
  pthread_mutex_unlock(&q->lock);
}

void wq_forget(struct workqueue *q, const char *key)
{
  struct wq_item *it;

  pthread_mutex_lock(&q->lock);
  it = wq_find(q, key);
  if (it) {
    it->failures = 0;
    wq_maybe_release(q, it);
  }
  pthread_mutex_unlock(&q->lock);
}

uint32_t wq_failures(struct workqueue *q, const char *key)
{
  struct wq_item *it;
  uint32_t n = 0;

  pthread_mutex_lock(&q->lock);
  it = wq_find(q, key);
  if (it)
    n = it->failures;
  pthread_mutex_unlock(&q->lock);
  return n;
}

bool wq_get(struct workqueue *q, const char **key)
{
  struct wq_item *it;

  pthread_mutex_lock(&q->lock);
  for (;;) {
    if (q->shutdown && !q->drain)
      goto done;
    if (!q->shutdown)
      wq_promote_due(q, call_now_ms());
    if (q->head)
      break;
    if (q->shutdown)
      goto done;
    if (q->heap_len > 0) {
      struct timespec ts = thread_deadline_at(q->heap[0]->due_ms);

      pthread_cond_timedwait(&q->cond, &q->lock, &ts);
    } else {
      pthread_cond_wait(&q->cond, &q->lock);
    }
  }
  it = wq_pop_ready(q);
  it->processing = true;
  q->processing++;
  *key = it->key;
  if (q->head)
    pthread_cond_signal(&q->cond); /* more ready keys for other waiters */
  pthread_mutex_unlock(&q->lock);
  return true;
done:
  pthread_mutex_unlock(&q->lock);
  *key = NULL;
  return false;
}

void wq_done(struct workqueue *q, const char *key)
{
  struct wq_item *it;

  pthread_mutex_lock(&q->lock);
  it = wq_find(q, key);
  if (!it || !it->processing) {
    log_msg(CCM_LOG_ERROR, "workqueue", "%s: done for key %s not held",
            q->name, key ? key : "(null)");
    goto out;
  }
  it->processing = false;
  q->processing--;
  if (it->dirty) {
    it->dirty = false;
    /* Added before shutdown: a draining queue still hands it out. */
    if (!(q->shutdown && !q->drain))
      wq_push_ready(q, it);
  }
  wq_maybe_release(q, it);
out:
  pthread_mutex_unlock(&q->lock);
}

void wq_shutdown(struct workqueue *q, bool drain)
{
  pthread_mutex_lock(&q->lock);
  q->shutdown = true;
  q->drain = drain;
  /* Delayed keys are dropped; their failure counts stay until wq_free. */
  while (q->heap_len > 0) {
    struct wq_item *it = q->heap[0];

    wq_heap_remove(q, it);
    wq_maybe_release(q, it);
  }
  if (!drain) {
    while (q->head) {
      struct wq_item *it = wq_pop_ready(q);

      wq_maybe_release(q, it);
    }
  }
  pthread_cond_broadcast(&q->cond);
  pthread_mutex_unlock(&q->lock);
}

void wq_get_stats(struct workqueue *q, struct wq_stats *out)
{
  pthread_mutex_lock(&q->lock);
  out->depth = q->depth;
  out->delayed = q->heap_len;
  out->processing = q->processing;
  out->adds = q->adds;
  out->retries = q->retries;
  pthread_mutex_unlock(&q->lock);
}

/*
 * service_tail.c: the writes that end a successful ensure (the status
 * and the input-fingerprint record: svc_kube_ensured) on a writer thread,
 * so that a worker takes its next Service while they go out. One tail per
 * key at most: a new sync of that key first finishes it (svc_tail_flush),
 * so the writes of one Service stay in order. It never calls a provider.
 */
#include <string.h>

#include "controllers/service_int.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

struct svc_tail {
  struct svc_tail *next;
  char *key;
  const struct obj_meta *obj; /* the Service that was ensured (a ref) */
  struct ccm_lb_status st;    /* owned */
  bool patch_status;
  bool record;                /* write fp after the status */
  char fp[CCM_SVC_FPRINT_HEX];
  bool running;               /* the writer holds it */
  bool claimed;               /* a flush waits for it: the flusher frees */
  bool done;
  bool recorded;              /* fp landed */
};

static void tail_free(struct svc_tail *t)
{
  if (t == NULL)
    return;
  lb_status_clear(&t->st);
  obj_unref(t->obj);
  mem_free(t->key);
  mem_free(t);
}

/* The writes; false (and msg) when the status write failed. Sets
 * t->recorded when the fingerprint landed. */
static bool tail_write(struct svc_ctrl *c, struct svc_tail *t, char *msg,
                       size_t msglen)
{
  int rc = svc_kube_ensured(c, obj_as_service(t->obj), &t->st,
                            t->patch_status, t->record ? t->fp : NULL,
                            &t->recorded, msg, msglen);

  if (rc != KUBE_OK && msg[0] == '\0')
    snprintf(msg, msglen, "%s", kube_status_name(rc));
  return rc == KUBE_OK;
}

/* On the writer thread: a failed status write is retried as a failed
 * sync would be (upstream retries the whole syncService). */
static void tail_run_async(struct svc_ctrl *c, struct svc_tail *t)
{
  char msg[512];
  struct svc_cpu_mark cpu;
  bool ok;

  if (!runtime_is_leader(c->env.rt)) {
    /* The next leader lists every Service; no fingerprint was recorded,
     * so it ensures this one again. */
    atomic_fetch_add(&c->m.tail_dropped, 1);
    return;
  }
  svc_cpu_begin(&cpu);
  ok = tail_write(c, t, msg, sizeof(msg));
  svc_cpu_end(&c->m, &cpu);
  if (ok) {
    atomic_fetch_add(&c->m.tail_ok, 1);
    return;
  }
  atomic_fetch_add(&c->m.tail_errors, 1);
  log_msg(CCM_LOG_WARN, "service", "%s: failed to update load balancer "
          "status: %s (retry with backoff)", t->key, msg);
  svc_event(c, obj_as_service(t->obj), "Warning", "SyncLoadBalancerFailed",
            "Error syncing load balancer: failed to update load balancer "
            "status: %s", msg);
  svc_requeue_failed(c, t->key);
}

static void *tail_main(void *arg)
{
  struct svc_ctrl *c = arg;
  uint32_t quiet = CCM_SVC_TAIL_LINGER_ROUNDS;

  thread_name("svc-writer");
  pthread_mutex_lock(&c->tail_lock);
  for (;;) {
    struct svc_tail *t = c->tail_head;

    if (t == NULL) {
      if (c->tail_stopping)
        break;
      /* While Services are being ensured, look for tails every few ms
       * rather than being woken for each (the wake-up is the worker's
       * cost); after a quiet second, sleep until woken. */
      if (quiet >= CCM_SVC_TAIL_LINGER_ROUNDS) {
        c->tail_sleeping = true;
        pthread_cond_wait(&c->tail_wake, &c->tail_lock);
        c->tail_sleeping = false;
      } else {
        thread_cond_wait_ms(&c->tail_wake, &c->tail_lock,
                            CCM_SVC_TAIL_LINGER_MS);
        quiet++;
      }
      continue;
    }
    quiet = 0;
    t->running = true;
    pthread_mutex_unlock(&c->tail_lock);
    tail_run_async(c, t);
    pthread_mutex_lock(&c->tail_lock);
    c->tail_head = t->next;
    if (c->tail_head == NULL)
      c->tail_last = NULL;
    c->n_tails--;
    t->done = true;
    if (t->claimed)
      pthread_cond_broadcast(&c->tail_idle);
    else
      tail_free(t);
  }
  pthread_mutex_unlock(&c->tail_lock);
  return NULL;
}

int svc_tail_start(struct svc_ctrl *c)
{
  c->tail_stopping = false;
  if (pthread_create(&c->tail_thread, NULL, tail_main, c) != 0)
    return -1;
  c->tail_started = true;
  return 0;
}

/* Drains: the tails left are finished ensures whose status is owed. The
 * queue is short (CCM_SVC_TAIL_MAX), and each write has its deadline. */
void svc_tail_stop(struct svc_ctrl *c)
{
  if (!c->tail_started)
    return;
  pthread_mutex_lock(&c->tail_lock);
  c->tail_stopping = true;
  pthread_cond_broadcast(&c->tail_wake);
  pthread_mutex_unlock(&c->tail_lock);
  pthread_join(c->tail_thread, NULL);
  c->tail_started = false;
}

bool svc_tail_queue(struct svc_ctrl *c, const char *key,
                    const struct obj_service *s, struct ccm_lb_status *st,
                    bool patch_status, const char *fp)
{
  struct svc_tail *t = mem_calloc(1, sizeof(*t));
  bool queued = false;

  if (t != NULL)
    t->key = mem_strdup(key);
  if (t == NULL || t->key == NULL) {
    mem_free(t);
    return false;
  }
  t->patch_status = patch_status;
  t->record = fp != NULL;
  if (fp != NULL)
    snprintf(t->fp, sizeof(t->fp), "%s", fp);
  pthread_mutex_lock(&c->tail_lock);
  /* Back-pressure: when the writer falls behind (a slow or rate-limited
   * API server), the worker writes itself, as without a writer. */
  if (c->tail_started && !c->tail_stopping &&
      c->n_tails < CCM_SVC_TAIL_MAX) {
    t->obj = obj_ref(&s->meta);
    t->st = *st;
    memset(st, 0, sizeof(*st)); /* moved */
    if (c->tail_last != NULL)
      c->tail_last->next = t;
    else
      c->tail_head = t;
    c->tail_last = t;
    c->n_tails++;
    queued = true;
    if (c->tail_sleeping)
      pthread_cond_signal(&c->tail_wake);
  }
  pthread_mutex_unlock(&c->tail_lock);
  if (!queued) {
    atomic_fetch_add(&c->m.tail_inline, 1);
    tail_free(t);
  }
  return queued;
}

/* Unlink t, which the writer has not taken (tail_lock held). */
static void tail_unlink(struct svc_ctrl *c, struct svc_tail *t)
{
  struct svc_tail **pp = &c->tail_head, *prev = NULL;

  while (*pp != t) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  *pp = t->next;
  if (c->tail_last == t)
    c->tail_last = prev;
  c->n_tails--;
}

bool svc_tail_flush(struct svc_ctrl *c, const char *key,
                    char fp[CCM_SVC_FPRINT_HEX])
{
  struct svc_tail *t;
  bool recorded;
  char msg[512];

  pthread_mutex_lock(&c->tail_lock);
  for (t = c->tail_head; t != NULL; t = t->next)
    if (strcmp(t->key, key) == 0)
      break;
  if (t == NULL) {
    pthread_mutex_unlock(&c->tail_lock);
    return false;
  }
  if (t->running) {
    t->claimed = true;
    while (!t->done)
      pthread_cond_wait(&c->tail_idle, &c->tail_lock);
    pthread_mutex_unlock(&c->tail_lock);
  } else {
    /* Not started: this worker writes it now, before its own sync. A
     * failure is this sync's to mend: it sees no record and ensures. */
    tail_unlink(c, t);
    pthread_mutex_unlock(&c->tail_lock);
    if (!runtime_is_leader(c->env.rt))
      atomic_fetch_add(&c->m.tail_dropped, 1);
    else if (tail_write(c, t, msg, sizeof(msg)))
      atomic_fetch_add(&c->m.tail_ok, 1);
    else
      atomic_fetch_add(&c->m.tail_errors, 1);
  }
  recorded = t->recorded;
  if (recorded)
    memcpy(fp, t->fp, CCM_SVC_FPRINT_HEX);
  tail_free(t);
  return recorded;
}

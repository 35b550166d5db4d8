/*
 * lease.c: the leader elector. Expiry of another holder is judged by our
 * own monotonic clock from when we last saw the record change (never by
 * the wall-clock renewTime), as client-go does. The lock guards flags and
 * the condition variable only; network calls run without it.
 */
#include "kube/lease.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "kube/limiter.h"
#include "kube/writes.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_LEASE_LOG "lease"

struct lease {
  struct kube_client *client;
  char *name;
  char *ns;
  char *identity;
  char path[512];
  char collection[512];
  uint32_t lease_ms, renew_ms, retry_ms;
  void (*on_started)(void *ud);
  void (*on_stopped)(void *ud);
  void *ud;

  /* Read by any thread. */
  atomic_bool leader;
  atomic_llong deadline_us; /* monotonic; leadership ends here */

  /* Lease thread only. */
  char *observed_raw;
  int64_t observed_us;
  long transitions;
  uint64_t jitter;

  pthread_mutex_t lock; /* stop flag and cond only */
  pthread_cond_t cond;
  bool stop;
  bool running;
  pthread_t thread;
};

static int64_t lease_now_us(void)
{
  return limiter_now_us(NULL);
}

static void lease_micro_time(char *buf, size_t len)
{
  struct timespec ts;
  struct tm tm;
  char base[32];

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

static char *lease_default_identity(void)
{
  unsigned char r[16];
  char host[256], id[512];
  size_t i;
  int n;

  if (gethostname(host, sizeof host) != 0)
    snprintf(host, sizeof host, "unknown");
  host[sizeof host - 1] = '\0';
  if (RAND_bytes(r, sizeof r) != 1) {
    int64_t t = lease_now_us() ^ (int64_t)getpid();

    for (i = 0; i < sizeof r; i++)
      r[i] = (unsigned char)(t >> ((i % 8) * 8));
  }
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  n = snprintf(id, sizeof id, "%s_", host);
  for (i = 0; i < sizeof r && n > 0 && (size_t)n < sizeof id - 3; i++) {
    n += snprintf(id + n, sizeof id - (size_t)n, "%s%02x",
                  i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", r[i]);
  }
  return mem_strdup(id);
}

int lease_new(struct kube_client *c, const struct lease_opts *o,
              struct lease **out, char *err, size_t errlen)
{
  struct lease *l;

  *out = NULL;
  l = mem_calloc(1, sizeof *l);
  if (l == NULL)
    goto oom;
  pthread_mutex_init(&l->lock, NULL);
  thread_cond_init_mono(&l->cond);
  l->client = c;
  l->lease_ms = o->lease_ms != 0 ? o->lease_ms : CCM_LEASE_DEFAULT_LEASE_MS;
  l->renew_ms = o->renew_ms != 0 ? o->renew_ms : CCM_LEASE_DEFAULT_RENEW_MS;
  l->retry_ms = o->retry_ms != 0 ? o->retry_ms : CCM_LEASE_DEFAULT_RETRY_MS;
  if (l->renew_ms >= l->lease_ms || l->retry_ms >= l->renew_ms) {
    snprintf(err, errlen, "leader election: need retry (%u ms) < renew "
             "deadline (%u ms) < lease duration (%u ms)", l->retry_ms,
             l->renew_ms, l->lease_ms);
    lease_free(l);
    return -1;
  }
  l->name = mem_strdup(o->name != NULL ? o->name : CCM_LEASE_DEFAULT_NAME);
  l->ns = mem_strdup(o->ns != NULL ? o->ns : CCM_LEASE_DEFAULT_NS);
  l->identity = o->identity != NULL ? mem_strdup(o->identity)
                                    : lease_default_identity();
  if (l->name == NULL || l->ns == NULL || l->identity == NULL)
    goto oom;
  if (kube_path(l->path, sizeof l->path, "/apis/coordination.k8s.io/v1",
                "leases", l->ns, l->name, NULL) != 0 ||
      kube_path(l->collection, sizeof l->collection,
                "/apis/coordination.k8s.io/v1", "leases", l->ns, NULL,
                NULL) != 0) {
    snprintf(err, errlen, "leader election: lease name too long");
    lease_free(l);
    return -1;
  }
  l->on_started = o->on_started_leading;
  l->on_stopped = o->on_stopped_leading;
  l->ud = o->ud;
  l->jitter = (uint64_t)lease_now_us() | 1;
  atomic_init(&l->leader, false);
  atomic_init(&l->deadline_us, 0);
  *out = l;
  return 0;
oom:
  snprintf(err, errlen, "leader election: out of memory");
  lease_free(l);
  return -1;
}

bool lease_is_leader(const struct lease *l)
{
  if (!atomic_load(&l->leader))
    return false;
  return lease_now_us() < atomic_load(&l->deadline_us);
}

const char *lease_identity(const struct lease *l)
{
  return l->identity;
}

static long lease_num(const cJSON *spec, const char *key)
{
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(spec, key);

  return cJSON_IsNumber(n) ? (long)n->valuedouble : 0;
}

static const char *lease_str(const cJSON *spec, const char *key)
{
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(spec, key);

  return cJSON_IsString(s) ? s->valuestring : "";
}

/* Set spec to our record. acquire: a new term (acquireTime, transitions). */
static int lease_fill_spec(struct lease *l, cJSON *spec, const char *holder,
                           long duration_s, long transitions, bool acquire)
{
  char now[48];
  static const char *const keys[] = {"holderIdentity", "leaseDurationSeconds",
                                     "renewTime", "leaseTransitions"};
  size_t i;

  lease_micro_time(now, sizeof now);
  for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
    cJSON_DeleteItemFromObjectCaseSensitive(spec, keys[i]);
  if (acquire)
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "acquireTime");
  (void)l;
  if (cJSON_AddStringToObject(spec, "holderIdentity", holder) == NULL ||
      cJSON_AddNumberToObject(spec, "leaseDurationSeconds",
                              (double)duration_s) == NULL ||
      cJSON_AddStringToObject(spec, "renewTime", now) == NULL ||
      cJSON_AddNumberToObject(spec, "leaseTransitions",
                              (double)transitions) == NULL)
    return -1;
  if ((acquire || !cJSON_HasObjectItem(spec, "acquireTime")) &&
      cJSON_AddStringToObject(spec, "acquireTime", now) == NULL)
    return -1;
  return 0;
}

static long lease_duration_s(const struct lease *l)
{
  return (long)((l->lease_ms + 999) / 1000);
}

static bool lease_create(struct lease *l)
{
  cJSON *obj = cJSON_CreateObject(), *meta, *spec;
  char msg[256];
  bool ok = false;
  int st;

  meta = cJSON_AddObjectToObject(obj, "metadata");
  spec = cJSON_AddObjectToObject(obj, "spec");
  if (meta == NULL || spec == NULL ||
      cJSON_AddStringToObject(obj, "apiVersion",
                              "coordination.k8s.io/v1") == NULL ||
      cJSON_AddStringToObject(obj, "kind", "Lease") == NULL ||
      cJSON_AddStringToObject(meta, "name", l->name) == NULL ||
      cJSON_AddStringToObject(meta, "namespace", l->ns) == NULL ||
      lease_fill_spec(l, spec, l->identity, lease_duration_s(l), 0,
                      true) != 0)
    goto fail;
  st = kube_create(l->client, l->collection, obj, NULL, msg, sizeof msg);
  if (st == KUBE_OK) {
    ok = true;
    l->transitions = 0;
  } else {
    log_msg(CCM_LOG_DEBUG, CCM_LEASE_LOG, "create %s/%s: %s", l->ns,
            l->name, msg);
  }
fail:
  cJSON_Delete(obj);
  return ok;
}

/* GET the lease with the elector's short deadline. */
static int lease_get(struct lease *l, cJSON **out)
{
  struct kube_request_opts ro = {.timeout_ms = l->renew_ms, .max_tries = 1};
  struct kube_response resp;
  int st;

  *out = NULL;
  st = kube_request_ex(l->client, "GET", l->path, NULL, NULL, 0, &ro,
                       &resp);
  if (st == KUBE_OK) {
    *out = cJSON_ParseWithLength(resp.body, resp.len);
    if (*out == NULL)
      st = KUBE_ERROR;
  } else if (st != KUBE_NOT_FOUND) {
    log_msg(CCM_LOG_DEBUG, CCM_LEASE_LOG, "get %s/%s: %s", l->ns, l->name,
            resp.message);
  }
  kube_response_free(&resp);
  return st;
}

static int lease_put(struct lease *l, const cJSON *obj)
{
  struct kube_request_opts ro = {.timeout_ms = l->renew_ms, .max_tries = 1};
  struct kube_response resp;
  char *text = cJSON_PrintUnformatted(obj);
  int st;

  if (text == NULL)
    return KUBE_ERROR;
  st = kube_request_ex(l->client, "PUT", l->path, "application/json", text,
                       strlen(text), &ro, &resp);
  if (st != KUBE_OK)
    log_msg(CCM_LOG_DEBUG, CCM_LEASE_LOG, "update %s/%s: %s", l->ns, l->name,
            resp.message);
  kube_response_free(&resp);
  cJSON_free(text);
  return st;
}

bool lease_try_acquire_or_renew(struct lease *l)
{
  cJSON *obj = NULL, *spec;
  char *raw = NULL;
  const char *holder;
  long dur, trans;
  int64_t now = lease_now_us();
  bool ok = false, mine;
  int st;

  st = lease_get(l, &obj);
  if (st == KUBE_NOT_FOUND) {
    ok = lease_create(l);
    goto done;
  }
  if (st != KUBE_OK)
    goto done;
  spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
  if (spec == NULL)
    spec = cJSON_AddObjectToObject(obj, "spec");
  if (spec == NULL)
    goto done;
  raw = cJSON_PrintUnformatted(spec);
  if (raw == NULL)
    goto done;
  if (l->observed_raw == NULL || strcmp(l->observed_raw, raw) != 0) {
    cJSON_free(l->observed_raw);
    l->observed_raw = raw;
    raw = NULL;
    l->observed_us = now;
  }
  holder = lease_str(spec, "holderIdentity");
  dur = lease_num(spec, "leaseDurationSeconds");
  trans = lease_num(spec, "leaseTransitions");
  mine = strcmp(holder, l->identity) == 0;
  if (!mine && holder[0] != '\0' &&
      l->observed_us + (int64_t)dur * 1000000 > now) {
    if (atomic_load(&l->leader)) {
      /* Someone else holds it: we are no longer leading, whatever our
       * deadline says. */
      atomic_store(&l->leader, false);
    }
    goto done;
  }
  if (!mine)
    trans++;
  if (lease_fill_spec(l, spec, l->identity, lease_duration_s(l), trans,
                      !mine) != 0)
    goto done;
  st = lease_put(l, obj);
  if (st == KUBE_OK) {
    ok = true;
    l->transitions = trans;
  }
done:
  cJSON_free(raw);
  cJSON_Delete(obj);
  return ok;
}

static void lease_release(struct lease *l)
{
  cJSON *obj = NULL, *spec;
  int st;

  st = lease_get(l, &obj);
  if (st != KUBE_OK)
    goto done;
  spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
  if (spec == NULL ||
      strcmp(lease_str(spec, "holderIdentity"), l->identity) != 0)
    goto done;
  if (lease_fill_spec(l, spec, "", 1, lease_num(spec, "leaseTransitions"),
                      true) != 0)
    goto done;
  st = lease_put(l, obj);
  if (st == KUBE_OK)
    log_msg(CCM_LOG_INFO, CCM_LEASE_LOG, "released lease %s/%s", l->ns,
            l->name);
  else
    log_msg(CCM_LOG_WARN, CCM_LEASE_LOG, "could not release lease %s/%s: %s",
            l->ns, l->name, kube_status_name(st));
done:
  cJSON_Delete(obj);
}

/* Wait ms or until stopped; returns true when stopped. */
static bool lease_wait(struct lease *l, int64_t ms)
{
  struct timespec ts;
  bool stop;

  ts = thread_deadline_in(ms > 0 ? (uint32_t)ms : 0);
  pthread_mutex_lock(&l->lock);
  while (!l->stop) {
    if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) != 0)
      break;
  }
  stop = l->stop;
  pthread_mutex_unlock(&l->lock);
  return stop;
}

static void lease_lost(struct lease *l, const char *why)
{
  atomic_store(&l->leader, false);
  log_msg(CCM_LOG_WARN, CCM_LEASE_LOG, "lost lease %s/%s: %s", l->ns,
          l->name, why);
  if (l->on_stopped != NULL)
    l->on_stopped(l->ud);
}

static void *lease_main(void *arg)
{
  struct lease *l = arg;
  bool was_leader = false;
  int64_t t0, wait;

  thread_name("lease");

  for (;;) {
    t0 = lease_now_us();
    if (lease_try_acquire_or_renew(l)) {
      atomic_store(&l->deadline_us, t0 + (int64_t)l->renew_ms * 1000);
      if (!was_leader) {
        atomic_store(&l->leader, true);
        was_leader = true;
        log_msg(CCM_LOG_INFO, CCM_LEASE_LOG,
                "became leader of %s/%s as %s (transitions %ld)", l->ns,
                l->name, l->identity, l->transitions);
        if (l->on_started != NULL)
          l->on_started(l->ud);
      }
    } else if (was_leader && !lease_is_leader(l)) {
      was_leader = false;
      lease_lost(l, atomic_load(&l->leader) ? "renew deadline passed"
                                            : "held by another");
    }
    wait = l->retry_ms;
    if (!was_leader) {
      /* client-go's JitterUntil with factor 1.2 while acquiring. */
      l->jitter ^= l->jitter << 13;
      l->jitter ^= l->jitter >> 7;
      l->jitter ^= l->jitter << 17;
      wait += (int64_t)(l->jitter % ((uint64_t)l->retry_ms * 12 / 10 + 1));
    }
    if (lease_wait(l, wait))
      break;
  }
  return (void *)(uintptr_t)was_leader;
}

int lease_start(struct lease *l)
{
  pthread_mutex_lock(&l->lock);
  if (l->running) {
    pthread_mutex_unlock(&l->lock);
    return -1;
  }
  l->stop = false;
  if (pthread_create(&l->thread, NULL, lease_main, l) != 0) {
    pthread_mutex_unlock(&l->lock);
    return -1;
  }
  l->running = true;
  pthread_mutex_unlock(&l->lock);
  return 0;
}

void lease_stop(struct lease *l, bool release)
{
  void *ret = NULL;
  bool was_leader;

  pthread_mutex_lock(&l->lock);
  if (!l->running) {
    pthread_mutex_unlock(&l->lock);
    return;
  }
  l->stop = true;
  pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(&l->lock);
  pthread_join(l->thread, &ret);
  pthread_mutex_lock(&l->lock);
  l->running = false;
  pthread_mutex_unlock(&l->lock);
  was_leader = ret != NULL;
  atomic_store(&l->leader, false);
  if (was_leader && release)
    lease_release(l);
  if (was_leader && l->on_stopped != NULL)
    l->on_stopped(l->ud);
}

void lease_free(struct lease *l)
{
  if (l == NULL)
    return;
  lease_stop(l, true);
  pthread_cond_destroy(&l->cond);
  pthread_mutex_destroy(&l->lock);
  cJSON_free(l->observed_raw);
  mem_free(l->name);
  mem_free(l->ns);
  mem_free(l->identity);
  mem_free(l);
}

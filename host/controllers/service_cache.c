/*
 * service_cache.c: the key -> entry map of the service controller
 * (chained hash, grows by doubling). It must not lock, call providers or
 * talk to Kubernetes.
 */
#include "controllers/service_cache.h"

#include <stdint.h>
#include <string.h>

#include "util/mem.h"

#define CCM_SVC_CACHE_BUCKETS 256u

static size_t svc_hash(const char *s)
{
  uint64_t h = 1469598103934665603ull; /* FNV-1a */

  while (*s != '\0') {
    h ^= (unsigned char)*s++;
    h *= 1099511628211ull;
  }
  return (size_t)h;
}

int svc_cache_init(struct svc_cache *c)
{
  c->n = 0;
  c->n_buckets = CCM_SVC_CACHE_BUCKETS;
  c->buckets = mem_calloc(c->n_buckets, sizeof(*c->buckets));
  return c->buckets != NULL ? 0 : -1;
}

static void svc_entry_free(struct svc_entry *e)
{
  mem_free(e->key);
  obj_unref(e->obj);
  mem_free(e->lb_name);
  mem_free(e->lb_class);
  svc_nodes_unref(e->synced);
  mem_free(e);
}

void svc_cache_free(struct svc_cache *c)
{
  size_t i;

  if (c->buckets == NULL)
    return;
  for (i = 0; i < c->n_buckets; i++) {
    struct svc_entry *e = c->buckets[i];

    while (e != NULL) {
      struct svc_entry *next = e->next;

      svc_entry_free(e);
      e = next;
    }
  }
  mem_free(c->buckets);
  c->buckets = NULL;
  c->n = 0;
}

struct svc_entry *svc_cache_get(struct svc_cache *c, const char *key)
{
  struct svc_entry *e = c->buckets[svc_hash(key) % c->n_buckets];

  while (e != NULL && strcmp(e->key, key) != 0)
    e = e->next;
  return e;
}

static void svc_cache_grow(struct svc_cache *c)
{
  size_t nb = c->n_buckets * 2, i;
  struct svc_entry **b = mem_calloc(nb, sizeof(*b));

  if (b == NULL)
    return; /* stay at this size: slower, still correct */
  for (i = 0; i < c->n_buckets; i++) {
    struct svc_entry *e = c->buckets[i];

    while (e != NULL) {
      struct svc_entry *next = e->next;
      size_t h = svc_hash(e->key) % nb;

      e->next = b[h];
      b[h] = e;
      e = next;
    }
  }
  mem_free(c->buckets);
  c->buckets = b;
  c->n_buckets = nb;
}

struct svc_entry *svc_cache_put(struct svc_cache *c, const char *key)
{
  struct svc_entry *e = svc_cache_get(c, key);
  size_t h;

  if (e != NULL)
    return e;
  e = mem_calloc(1, sizeof(*e));
  if (e == NULL)
    return NULL;
  e->key = mem_strdup(key);
  if (e->key == NULL) {
    mem_free(e);
    return NULL;
  }
  if (c->n >= c->n_buckets * 2)
    svc_cache_grow(c);
  h = svc_hash(key) % c->n_buckets;
  e->next = c->buckets[h];
  c->buckets[h] = e;
  c->n++;
  return e;
}

void svc_cache_del(struct svc_cache *c, const char *key)
{
  struct svc_entry **pp = &c->buckets[svc_hash(key) % c->n_buckets];

  while (*pp != NULL) {
    struct svc_entry *e = *pp;

    if (strcmp(e->key, key) == 0) {
      *pp = e->next;
      svc_entry_free(e);
      c->n--;
      return;
    }
    pp = &e->next;
  }
}

int svc_entry_set_str(char **field, const char *value)
{
  char *copy = NULL;

  if (*field != NULL && value != NULL && strcmp(*field, value) == 0)
    return 0;
  if (value != NULL) {
    copy = mem_strdup(value);
    if (copy == NULL)
      return -1;
  }
  mem_free(*field);
  *field = copy;
  return 0;
}

void svc_cache_foreach(struct svc_cache *c, svc_cache_each_fn *fn, void *ud)
{
  size_t i;

  for (i = 0; i < c->n_buckets; i++) {
    struct svc_entry *e;

    for (e = c->buckets[i]; e != NULL; e = e->next) {
      if (fn(e, ud) != 0)
        return;
    }
  }
}

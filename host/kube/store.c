/*
 * store.c: an open-addressing hash index (linear probing, backward-shift
 * deletion) of reference-counted objects under a pthread rwlock. It owns
 * the index and one reference per stored object; nothing else.
 */
#include "kube/store.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "util/mem.h"

struct slot {
  uint64_t hash; /* 0 = empty */
  struct obj_meta *obj;
};

struct store {
  pthread_rwlock_t lock;
  struct slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t len;
};

#define STORE_MIN_CAP 64

/* FNV-1a over "ns/name"; never 0 (0 marks an empty slot). */
static uint64_t key_hash(const char *ns, size_t ns_len, const char *name,
                         size_t name_len)
{
  uint64_t h = 1469598103934665603ULL;
  size_t i;

  for (i = 0; i < ns_len; i++) {
    h ^= (unsigned char)ns[i];
    h *= 1099511628211ULL;
  }
  if (ns != NULL) {
    h ^= '/';
    h *= 1099511628211ULL;
  }
  for (i = 0; i < name_len; i++) {
    h ^= (unsigned char)name[i];
    h *= 1099511628211ULL;
  }
  h ^= h >> 29;
  return h == 0 ? 1 : h;
}

static bool key_eq(const struct obj_meta *o, const char *ns, size_t ns_len,
                   const char *name, size_t name_len)
{
  if ((o->ns == NULL) != (ns == NULL))
    return false;
  if (ns != NULL && (strlen(o->ns) != ns_len || memcmp(o->ns, ns, ns_len)))
    return false;
  return strlen(o->name) == name_len && memcmp(o->name, name, name_len) == 0;
}

static uint64_t obj_hash(const struct obj_meta *o)
{
  return key_hash(o->ns, o->ns != NULL ? strlen(o->ns) : 0, o->name,
                  strlen(o->name));
}

/* Index of the slot holding the key, or of the empty slot ending its run. */
static size_t find_slot(const struct store *s, uint64_t h, const char *ns,
                        size_t ns_len, const char *name, size_t name_len)
{
  size_t mask = s->cap - 1;
  size_t i = (size_t)h & mask;

  while (s->slots[i].hash != 0) {
    if (s->slots[i].hash == h &&
        key_eq(s->slots[i].obj, ns, ns_len, name, name_len))
      return i;
    i = (i + 1) & mask;
  }
  return i;
}

struct store *store_new(void)
{
  struct store *s = mem_calloc(1, sizeof(*s));

  if (s == NULL)
    return NULL;
  if (pthread_rwlock_init(&s->lock, NULL) != 0) {
    mem_free(s);
    return NULL;
  }
  return s;
}

void store_free(struct store *s)
{
  size_t i;

  if (s == NULL)
    return;
  for (i = 0; i < s->cap; i++)
    if (s->slots[i].hash != 0)
      obj_unref(s->slots[i].obj);
  mem_free(s->slots);
  pthread_rwlock_destroy(&s->lock);
  mem_free(s);
}

static struct obj_meta *lookup(struct store *s, const char *ns, size_t ns_len,
                               const char *name, size_t name_len)
{
  struct obj_meta *found = NULL;
  uint64_t h = key_hash(ns, ns_len, name, name_len);

  pthread_rwlock_rdlock(&s->lock);
  if (s->cap > 0) {
    size_t i = find_slot(s, h, ns, ns_len, name, name_len);

    if (s->slots[i].hash != 0)
      found = obj_ref(s->slots[i].obj);
  }
  pthread_rwlock_unlock(&s->lock);
  return found;
}

struct obj_meta *store_get(struct store *s, const char *ns, const char *name)
{
  if (s == NULL || name == NULL)
    return NULL;
  return lookup(s, ns, ns != NULL ? strlen(ns) : 0, name, strlen(name));
}

struct obj_meta *store_get_key(struct store *s, const char *key)
{
  const char *slash;

  if (s == NULL || key == NULL)
    return NULL;
  slash = strchr(key, '/');
  if (slash == NULL)
    return lookup(s, NULL, 0, key, strlen(key));
  return lookup(s, key, (size_t)(slash - key), slash + 1, strlen(slash + 1));
}

/* Rehash into a table of new_cap slots; caller holds the write lock. */
static int grow(struct store *s, size_t new_cap)
{
  struct slot *old = s->slots;
  size_t old_cap = s->cap;
  struct slot *slots = mem_calloc(new_cap, sizeof(*slots));
  size_t i;

  if (slots == NULL)
    return -1;
  s->slots = slots;
  s->cap = new_cap;
  for (i = 0; i < old_cap; i++) {
    size_t j;

    if (old[i].hash == 0)
      continue;
    j = (size_t)old[i].hash & (new_cap - 1);
    while (slots[j].hash != 0)
      j = (j + 1) & (new_cap - 1);
    slots[j] = old[i];
  }
  mem_free(old);
  return 0;
}

struct obj_meta *store_put(struct store *s, struct obj_meta *obj, int *err)
{
  struct obj_meta *old = NULL;
  uint64_t h;
  size_t i;
  size_t ns_len;

  *err = 0;
  if (s == NULL || obj == NULL || obj->name == NULL) {
    *err = -1;
    return NULL;
  }
  h = obj_hash(obj);
  ns_len = obj->ns != NULL ? strlen(obj->ns) : 0;
  pthread_rwlock_wrlock(&s->lock);
  /* Keep the load at or below 1/2: probes stay short. */
  if ((s->len + 1) * 2 > s->cap &&
      grow(s, s->cap == 0 ? STORE_MIN_CAP : s->cap * 2) != 0) {
    pthread_rwlock_unlock(&s->lock);
    *err = -1;
    return NULL;
  }
  i = find_slot(s, h, obj->ns, ns_len, obj->name, strlen(obj->name));
  if (s->slots[i].hash != 0) {
    old = s->slots[i].obj;
  } else {
    s->slots[i].hash = h;
    s->len++;
  }
  s->slots[i].obj = obj;
  pthread_rwlock_unlock(&s->lock);
  return old;
}

struct obj_meta *store_remove(struct store *s, const char *ns,
                              const char *name)
{
  struct obj_meta *old = NULL;
  size_t ns_len = ns != NULL ? strlen(ns) : 0;
  uint64_t h;
  size_t i;
  size_t j;
  size_t mask;

  if (s == NULL || name == NULL)
    return NULL;
  h = key_hash(ns, ns_len, name, strlen(name));
  pthread_rwlock_wrlock(&s->lock);
  if (s->cap == 0)
    goto out;
  mask = s->cap - 1;
  i = find_slot(s, h, ns, ns_len, name, strlen(name));
  if (s->slots[i].hash == 0)
    goto out;
  old = s->slots[i].obj;
  s->slots[i].hash = 0;
  s->slots[i].obj = NULL;
  s->len--;
  /* Backward-shift: move later entries of the run into the hole when
   * their home slot does not lie cyclically in (hole, j]. */
  j = i;
  for (;;) {
    size_t home;

    j = (j + 1) & mask;
    if (s->slots[j].hash == 0)
      break;
    home = (size_t)s->slots[j].hash & mask;
    if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
      continue;
    s->slots[i] = s->slots[j];
    s->slots[j].hash = 0;
    s->slots[j].obj = NULL;
    i = j;
  }
out:
  pthread_rwlock_unlock(&s->lock);
  return old;
}

size_t store_len(struct store *s)
{
  size_t n;

  if (s == NULL)
    return 0;
  pthread_rwlock_rdlock(&s->lock);
  n = s->len;
  pthread_rwlock_unlock(&s->lock);
  return n;
}

int store_list(struct store *s, struct obj_meta ***out, size_t *n)
{
  struct obj_meta **v;
  size_t i;
  size_t k = 0;

  *out = NULL;
  *n = 0;
  pthread_rwlock_rdlock(&s->lock);
  v = mem_calloc(s->len > 0 ? s->len : 1, sizeof(*v));
  if (v == NULL) {
    pthread_rwlock_unlock(&s->lock);
    return -1;
  }
  for (i = 0; i < s->cap; i++)
    if (s->slots[i].hash != 0)
      v[k++] = obj_ref(s->slots[i].obj);
  pthread_rwlock_unlock(&s->lock);
  *out = v;
  *n = k;
  return 0;
}

void store_list_free(struct obj_meta **v, size_t n)
{
  size_t i;

  if (v == NULL)
    return;
  for (i = 0; i < n; i++)
    obj_unref(v[i]);
  mem_free(v);
}

void store_foreach(struct store *s, store_each_fn *fn, void *ud)
{
  size_t i;

  pthread_rwlock_rdlock(&s->lock);
  for (i = 0; i < s->cap; i++)
    if (s->slots[i].hash != 0 && fn(s->slots[i].obj, ud) != 0)
      break;
  pthread_rwlock_unlock(&s->lock);
}

size_t store_index_bytes(struct store *s)
{
  size_t b;

  pthread_rwlock_rdlock(&s->lock);
  b = sizeof(*s) + s->cap * sizeof(struct slot);
  pthread_rwlock_unlock(&s->lock);
  return b;
}

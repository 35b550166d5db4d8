/*
 * mem.c: the host allocator, thin wrappers over libc plus a fail-after
 * counter for allocation-failure injection in tests. It must not keep any
 * bookkeeping of its own: memory from mem_* is plain libc memory.
 */
#include "util/mem.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before failing; < 0 means never fail. */
static atomic_long mem_budget = -1;

static bool mem_should_fail(void)
{
  long v = atomic_load(&mem_budget);

  while (v >= 0) {
    if (v == 0)
      return true;
    if (atomic_compare_exchange_weak(&mem_budget, &v, v - 1))
      return false;
  }
  return false;
}

void mem_fail_after(long n)
{
  atomic_store(&mem_budget, n < 0 ? -1 : n);
}

void *mem_alloc(size_t size)
{
  if (mem_should_fail())
    return NULL;
  /* size 0 still returns a unique pointer, so NULL always means failure. */
  return malloc(size ? size : 1);
}

void *mem_calloc(size_t n, size_t size)
{
  if (mem_should_fail())
    return NULL;
  if (n == 0 || size == 0)
    return calloc(1, 1);
  return calloc(n, size);
}

void *mem_realloc(void *ptr, size_t size)
{
  if (mem_should_fail())
    return NULL;
  /* realloc(p, 0) may free p and return NULL; keep NULL meaning failure. */
  return realloc(ptr, size ? size : 1);
}

void mem_free(void *ptr)
{
  free(ptr);
}

char *mem_strndup(const char *s, size_t n)
{
  size_t len = 0;
  char *copy;

  if (s == NULL)
    return NULL;
  while (len < n && s[len] != '\0')
    len++;
  copy = mem_alloc(len + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *mem_join(const char *const *parts, size_t n, char sep)
{
  size_t len = 0, i, k;
  char *out, *p;

  for (i = 0; i < n; i++)
    len += strlen(parts[i]) + (sep != '\0' && i > 0);
  out = mem_alloc(len + 1);
  if (out == NULL)
    return NULL;
  for (i = 0, p = out; i < n; i++) {
    if (sep != '\0' && i > 0)
      *p++ = sep;
    k = strlen(parts[i]);
    memcpy(p, parts[i], k);
    p += k;
  }
  *p = '\0';
  return out;
}

char *mem_strdup(const char *s)
{
  if (s == NULL)
    return NULL;
  return mem_strndup(s, strlen(s));
}

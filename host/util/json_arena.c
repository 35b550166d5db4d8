/*
 * json_arena.c: see json_arena.h. Chunks double up to CHUNK_MAX; a reset
 * keeps the newest chunk when it is at most KEEP_MAX, so that a steady
 * stream of events parses without calling malloc at all.
 */
#include "util/json_arena.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>

#include "util/mem.h"

/* Under ASan, memory of dropped trees is poisoned until reused, so a
 * pointer kept past json_arena_reset still fails loudly. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define JA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define JA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define JA_POISON(p, n) ((void)(p), (void)(n))
#define JA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK_MIN (16 * 1024)
#define CHUNK_MAX (1024 * 1024)
#define KEEP_MAX (256 * 1024)

struct json_arena_chunk {
  struct json_arena_chunk *next;
  size_t cap;
  size_t used;
  alignas(max_align_t) unsigned char data[];
};

/* The arena of the parse running on this thread, if any. */
static _Thread_local struct json_arena *ja_parsing;
static pthread_once_t ja_once = PTHREAD_ONCE_INIT;

static void *ja_bump(struct json_arena *a, size_t size)
{
  const size_t align = alignof(max_align_t);
  struct json_arena_chunk *c = a->chunks;
  size_t need = (size + align - 1) & ~(align - 1), cap;

  if (need < size)
    return NULL;
  if (c == NULL || c->cap - c->used < need) {
    cap = c == NULL ? CHUNK_MIN : c->cap < CHUNK_MAX ? c->cap * 2 : CHUNK_MAX;
    if (cap < need)
      cap = need;
    if (cap > SIZE_MAX - sizeof *c)
      return NULL;
    c = mem_alloc(sizeof *c + cap);
    if (c == NULL)
      return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = a->chunks;
    a->chunks = c;
    JA_POISON(c->data, cap);
  }
  c->used += need;
  JA_UNPOISON(c->data + c->used - need, size);
  return c->data + c->used - need;
}

static void *ja_malloc(size_t size)
{
  return ja_parsing != NULL ? ja_bump(ja_parsing, size) : mem_alloc(size);
}

/* Inside a parse, cJSON frees only what that parse allocated (a failed
 * parse drops its partial tree): arena memory, released by the reset. */
static void ja_free(void *p)
{
  if (ja_parsing == NULL)
    mem_free(p);
}

static void ja_install(void)
{
  cJSON_Hooks hooks = {.malloc_fn = ja_malloc, .free_fn = ja_free};

  cJSON_InitHooks(&hooks);
}

void json_arena_setup(void)
{
  pthread_once(&ja_once, ja_install);
}

cJSON *json_arena_parse(struct json_arena *a, const char *text, size_t len)
{
  cJSON *tree;

  json_arena_setup();
  ja_parsing = a;
  tree = cJSON_ParseWithLength(text, len);
  ja_parsing = NULL;
  return tree;
}

static void ja_free_chunks(struct json_arena_chunk *c)
{
  while (c != NULL) {
    struct json_arena_chunk *next = c->next;

    JA_UNPOISON(c->data, c->cap);
    mem_free(c);
    c = next;
  }
}

void json_arena_reset(struct json_arena *a)
{
  struct json_arena_chunk *keep = a->chunks;

  if (keep == NULL)
    return;
  ja_free_chunks(keep->next);
  keep->next = NULL;
  keep->used = 0;
  if (keep->cap > KEEP_MAX) {
    mem_free(keep);
    keep = NULL;
  } else {
    JA_POISON(keep->data, keep->cap);
  }
  a->chunks = keep;
}

void json_arena_free(struct json_arena *a)
{
  ja_free_chunks(a->chunks);
  a->chunks = NULL;
}

/*
 * json_arena.h: cJSON trees that live for one call, allocated from a bump
 * arena instead of one malloc per node and string, and dropped all at once.
 * A watch event is parsed, decoded into a compact object and thrown away;
 * with malloc, allocating and freeing its ~100 nodes was a third of its
 * handling.
 *
 * The arena takes over cJSON's allocation hooks for the process (once;
 * json_arena_setup). Outside json_arena_parse every cJSON allocation goes
 * to mem_alloc and mem_free, on every thread.
 */
#ifndef CCM_JSON_ARENA_H
#define CCM_JSON_ARENA_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct json_arena_chunk;

/* Zero-initialised is ready to use; owned by one thread at a time. */
struct json_arena {
  struct json_arena_chunk *chunks; /* newest first */
};

/* Install cJSON's hooks. Call once before threads start; json_arena_parse
 * also calls it, for programs that do not. */
void json_arena_setup(void);

/* cJSON_ParseWithLength into the arena: NULL when text is not JSON or
 * memory ran out. The tree stays valid until json_arena_reset; never pass
 * it to cJSON_Delete, and do not add malloc'ed items to it. */
cJSON *json_arena_parse(struct json_arena *a, const char *text, size_t len);

/* Drop every tree parsed into a, keeping one chunk of moderate size for the
 * next parse. */
void json_arena_reset(struct json_arena *a);

/* Drop every tree and all memory. */
void json_arena_free(struct json_arena *a);

#endif

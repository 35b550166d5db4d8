/*
 * mem.h: the host allocator. All host and module allocations go through it
 * so that tests can fail the Nth allocation (curl's "torture" idea).
 * It owns nothing else; callers check every NULL.
 */
#ifndef CCM_MEM_H
#define CCM_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *ptr, size_t size);
void mem_free(void *ptr);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
/* The n strings joined, with sep between them ('\0': none), in a new
 * string; NULL when out of memory. */
char *mem_join(const char *const *parts, size_t n, char sep);

/* Fail every allocation after the next n succeed; n < 0 disables. */
void mem_fail_after(long n);

#endif

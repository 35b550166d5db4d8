/*
 * curl_pool.h: idle libcurl easy handles kept for reuse, so that their
 * connections (and TLS sessions) serve the next request. Its lock is held
 * only to take or return a handle, never across a transfer. It knows
 * nothing of what the handles are used for.
 */
#ifndef CCM_CURL_POOL_H
#define CCM_CURL_POOL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>

#define CCM_CURL_POOL_MAX 8 /* idle handles kept */

struct curl_pool {
  pthread_mutex_t lock;
  CURL *idle[CCM_CURL_POOL_MAX];
  size_t n;
};

void curl_pool_init(struct curl_pool *p);
/* Clean up every idle handle. */
void curl_pool_destroy(struct curl_pool *p);
/* An idle handle (options still set from its last use: reset what you
 * need), or a new one; NULL when libcurl is out of memory. */
CURL *curl_pool_take(struct curl_pool *p);
/* Keep h for reuse, or clean it up when the pool is full. NULL is ignored. */
void curl_pool_give(struct curl_pool *p, CURL *h);

#endif

/*
 * curl_pool.c: a bounded stack of idle easy handles behind one mutex.
 * It never performs a transfer and never holds its lock across one.
 */
#include "util/curl_pool.h"

void curl_pool_init(struct curl_pool *p)
{
  pthread_mutex_init(&p->lock, NULL);
  p->n = 0;
}

void curl_pool_destroy(struct curl_pool *p)
{
  for (size_t i = 0; i < p->n; i++)
    curl_easy_cleanup(p->idle[i]);
  p->n = 0;
  pthread_mutex_destroy(&p->lock);
}

CURL *curl_pool_take(struct curl_pool *p)
{
  CURL *h = NULL;

  pthread_mutex_lock(&p->lock);
  if (p->n > 0)
    h = p->idle[--p->n];
  pthread_mutex_unlock(&p->lock);
  return h != NULL ? h : curl_easy_init();
}

void curl_pool_give(struct curl_pool *p, CURL *h)
{
  if (h == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  if (p->n < CCM_CURL_POOL_MAX) {
    p->idle[p->n++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  if (h != NULL)
    curl_easy_cleanup(h);
}

/*
 * informer_client.c: the informer's real transport, a thin adapter from
 * struct informer_ops to kube_request (GET) and kube_watch. Kept apart so
 * the informer's unit tests link without a client.
 */
#include "kube/informer.h"

static int client_list(void *ctx, const char *path, struct kube_response *out)
{
  return kube_request(ctx, "GET", path, NULL, NULL, 0, out);
}

static int client_watch(void *ctx, const char *path, kube_line_fn *fn,
                        void *ud, atomic_bool *stop, struct kube_response *out)
{
  return kube_watch(ctx, path, fn, ud, stop, out);
}

static void client_response_free(void *ctx, struct kube_response *r)
{
  (void)ctx;
  kube_response_free(r);
}

void informer_ops_from_client(struct kube_client *c, struct informer_ops *ops)
{
  ops->list = client_list;
  ops->watch = client_watch;
  ops->response_free = client_response_free;
  ops->ctx = c;
}

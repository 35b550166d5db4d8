/*
 * double.h: start and stop tests/doubles/kube_apiserver.py for the kube
 * integration tests, and talk to its control endpoint. Test code only.
 */
#ifndef CCM_TESTS_KUBE_DOUBLE_H
#define CCM_TESTS_KUBE_DOUBLE_H

#include <stdbool.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "kube/client.h"

struct kdouble {
  pid_t pid;
  int port;
  char dir[256];        /* private temp dir */
  char kubeconfig[320]; /* written by the double */
  char token_file[320]; /* when started with a token file */
  char ca[320];         /* when TLS */
};

/* True when the double's script exists (else the test exits 77). */
bool kdouble_available(void);

/* Start with extra arguments (NULL-terminated list). tls and token_file
 * select the double's --tls and --token-file. Returns 0 or -1. */
int kdouble_start(struct kdouble *d, bool tls, bool token_file);
void kdouble_stop(struct kdouble *d);

/* A client on the double's kubeconfig with small, fast retries. */
struct kube_client *kdouble_client(const struct kdouble *d);

/* POST /_control/<op> with a JSON body (may be NULL); returns the reply
 * (cJSON_Delete it) or NULL. */
cJSON *kdouble_control(struct kube_client *c, const char *op,
                       const char *json);

/* Count requests in the double's log matching method and path part. */
int kdouble_count_requests(struct kube_client *c, const char *method,
                           const char *path_part, long status);

#endif

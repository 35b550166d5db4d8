/*
 * kube_writes.c: the write helpers against the API double: create, get,
 * update, merge and JSON patch, status, finalizers, delete, and the
 * conflict loop with a stale copy and with two concurrent writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "double.h"
#include "kube/writes.h"

static struct kdouble d;
static struct kube_client *kc;

#define SVC "/api/v1/namespaces/default/services/s1"

static int setup(void **state)
{
  cJSON *svc;
  char msg[256];
  int st;

  (void)state;
  if (kdouble_start(&d, false, false) != 0)
    return -1;
  kc = kdouble_client(&d);
  if (kc == NULL)
    return -1;
  svc = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\","
                    "\"metadata\":{\"name\":\"s1\",\"annotations\":"
                    "{\"n\":\"0\"}},\"spec\":{\"type\":\"LoadBalancer\","
                    "\"ports\":[{\"port\":80}]}}");
  st = kube_create(kc, "/api/v1/namespaces/default/services", svc, NULL, msg,
                   sizeof msg);
  cJSON_Delete(svc);
  return st == KUBE_OK ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  kube_client_free(kc);
  kdouble_stop(&d);
  return 0;
}

static const char *ann(const cJSON *obj, const char *key)
{
  const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"),
                                       "annotations");
  const cJSON *v = cJSON_GetObjectItem(a, key);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_path(void **state)
{
  char p[128];

  (void)state;
  assert_int_equal(kube_path(p, sizeof p, "/api/v1", "services", "ns", "a",
                             "status"), 0);
  assert_string_equal(p, "/api/v1/namespaces/ns/services/a/status");
  assert_int_equal(kube_path(p, sizeof p, "/api/v1", "nodes", NULL, NULL,
                             NULL), 0);
  assert_string_equal(p, "/api/v1/nodes");
  assert_int_equal(kube_path(p, 8, "/api/v1", "nodes", NULL, NULL, NULL), -1);
}

static void test_patches_and_status(void **state)
{
  cJSON *patch, *out = NULL, *ing;
  char msg[256];

  (void)state;
  patch = cJSON_Parse("{\"metadata\":{\"annotations\":{\"m\":\"merge\"}}}");
  assert_int_equal(kube_patch_merge(kc, SVC, patch, &out, msg, sizeof msg),
                   KUBE_OK);
  assert_string_equal(ann(out, "m"), "merge");
  cJSON_Delete(out);
  cJSON_Delete(patch);

  patch = cJSON_Parse("[{\"op\":\"add\",\"path\":\"/metadata/annotations/j\","
                      "\"value\":\"json\"}]");
  assert_int_equal(kube_patch_json(kc, SVC, patch, &out, msg, sizeof msg),
                   KUBE_OK);
  assert_string_equal(ann(out, "j"), "json");
  assert_string_equal(ann(out, "m"), "merge");
  cJSON_Delete(out);
  cJSON_Delete(patch);

  patch = cJSON_Parse("{\"op\":\"add\"}");
  assert_int_equal(kube_patch_json(kc, SVC, patch, NULL, msg, sizeof msg),
                   KUBE_INVALID);
  cJSON_Delete(patch);

  patch = cJSON_Parse("{\"status\":{\"loadBalancer\":{\"ingress\":"
                      "[{\"ip\":\"192.0.2.10\"}]}}}");
  assert_int_equal(kube_patch_status(kc, SVC, patch, NULL, msg, sizeof msg),
                   KUBE_OK);
  cJSON_Delete(patch);
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_OK);
  ing = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(out,
                            "status"), "loadBalancer"), "ingress");
  assert_int_equal(cJSON_GetArraySize(ing), 1);
  /* PUT on status with the fresh copy. */
  cJSON_ReplaceItemInObject(cJSON_GetArrayItem(ing, 0), "ip",
                            cJSON_CreateString("192.0.2.11"));
  assert_int_equal(kube_update_status(kc, SVC, out, NULL, msg, sizeof msg),
                   KUBE_OK);
  cJSON_Delete(out);
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_OK);
  ing = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(out,
                            "status"), "loadBalancer"), "ingress");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ing, 0),
                                          "ip")->valuestring, "192.0.2.11");
  cJSON_Delete(out);
}

static void test_finalizers(void **state)
{
  cJSON *out = NULL;
  char msg[256];

  (void)state;
  assert_int_equal(kube_finalizer_add(kc, SVC, "service.kubernetes.io/"
                                      "load-balancer-cleanup", msg,
                                      sizeof msg), KUBE_OK);
  assert_int_equal(kube_finalizer_add(kc, SVC, "service.kubernetes.io/"
                                      "load-balancer-cleanup", msg,
                                      sizeof msg), KUBE_OK);
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_OK);
  assert_true(kube_has_finalizer(out, "service.kubernetes.io/"
                                 "load-balancer-cleanup"));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
                       cJSON_GetObjectItem(out, "metadata"), "finalizers")),
                   1);
  cJSON_Delete(out);
  assert_int_equal(kube_finalizer_remove(kc, SVC, "service.kubernetes.io/"
                                         "load-balancer-cleanup", msg,
                                         sizeof msg), KUBE_OK);
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_OK);
  assert_false(kube_has_finalizer(out, "service.kubernetes.io/"
                                  "load-balancer-cleanup"));
  cJSON_Delete(out);
  assert_int_equal(kube_finalizer_remove(kc, "/api/v1/namespaces/default/"
                                         "services/ghost", "x/y", msg,
                                         sizeof msg), KUBE_OK);
}

/* Add one to annotation n. */
static int bump(cJSON *obj, void *ud)
{
  int *calls = ud;
  const char *v = ann(obj, "n");
  cJSON *a;
  char buf[32];

  (*calls)++;
  if (v == NULL)
    return KUBE_ERROR;
  snprintf(buf, sizeof buf, "%ld", strtol(v, NULL, 10) + 1);
  a = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"),
                          "annotations");
  cJSON_ReplaceItemInObject(a, "n", cJSON_CreateString(buf));
  return 0;
}

static void test_conflict_stale_copy(void **state)
{
  cJSON *stale = NULL, *out = NULL;
  char msg[256];
  int calls = 0, before;

  (void)state;
  assert_int_equal(kube_get(kc, SVC, &stale, msg, sizeof msg), KUBE_OK);
  before = (int)strtol(ann(stale, "n"), NULL, 10);
  /* Another writer moves the object on. */
  calls = 0;
  assert_int_equal(kube_update_retry(kc, SVC, NULL, false, bump, &calls, 0,
                                     NULL, msg, sizeof msg), KUBE_OK);
  assert_int_equal(calls, 1);
  /* Our stale copy conflicts once, then the fresh copy wins. */
  calls = 0;
  assert_int_equal(kube_update_retry(kc, SVC, stale, false, bump, &calls, 0,
                                     &out, msg, sizeof msg), KUBE_OK);
  assert_int_equal(calls, 2);
  assert_int_equal((int)strtol(ann(out, "n"), NULL, 10), before + 2);
  cJSON_Delete(out);
  /* Bounded: with one try, the stale copy is a conflict. */
  calls = 0;
  assert_int_equal(kube_update_retry(kc, SVC, stale, false, bump, &calls, 1,
                                     NULL, msg, sizeof msg), KUBE_CONFLICT);
  assert_int_equal(calls, 1);
  cJSON_Delete(stale);
}

#define WRITERS 2
#define BUMPS 15

static void *writer(void *arg)
{
  int *ok = arg, i, calls = 0;
  char msg[256];

  for (i = 0; i < BUMPS; i++) {
    if (kube_update_retry(kc, SVC, NULL, false, bump, &calls, 50, NULL, msg,
                          sizeof msg) == KUBE_OK)
      (*ok)++;
  }
  return NULL;
}

static void test_two_writers(void **state)
{
  pthread_t th[WRITERS];
  int ok[WRITERS] = {0}, i, before, after;
  cJSON *out = NULL;
  char msg[256];

  (void)state;
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_OK);
  before = (int)strtol(ann(out, "n"), NULL, 10);
  cJSON_Delete(out);
  for (i = 0; i < WRITERS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, writer, &ok[i]), 0);
  for (i = 0; i < WRITERS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(ok[0] + ok[1], WRITERS * BUMPS);
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_OK);
  after = (int)strtol(ann(out, "n"), NULL, 10);
  cJSON_Delete(out);
  /* No lost update. */
  assert_int_equal(after, before + WRITERS * BUMPS);
}

static void test_delete(void **state)
{
  cJSON *out = NULL;
  char msg[256];

  (void)state;
  assert_int_equal(kube_delete(kc, SVC, "not-the-uid", msg, sizeof msg),
                   KUBE_CONFLICT);
  assert_int_equal(kube_delete(kc, SVC, NULL, msg, sizeof msg), KUBE_OK);
  assert_int_equal(kube_get(kc, SVC, &out, msg, sizeof msg), KUBE_NOT_FOUND);
  assert_null(out);
  assert_int_equal(kube_delete(kc, SVC, NULL, msg, sizeof msg), KUBE_OK);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path),
      cmocka_unit_test(test_patches_and_status),
      cmocka_unit_test(test_finalizers),
      cmocka_unit_test(test_conflict_stale_copy),
      cmocka_unit_test(test_two_writers),
      cmocka_unit_test(test_delete),
  };

  if (!kdouble_available()) {
    fprintf(stderr, "FAIL: tests/doubles/kube_apiserver.py not found (it ships with the tree)\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, setup, teardown);
}

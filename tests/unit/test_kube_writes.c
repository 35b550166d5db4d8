/*
 * test_kube_writes.c: unit tests of host/kube/writes.c that need no server:
 * paths, finalizer lookup, the JSON text writer, argument checks, and how
 * errors from an
 * unreachable server come back (the double-backed tests are in
 * tests/kube/kube_writes.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "kube/jsonw.h"
#include "kube/writes.h"

static void test_paths(void **state)
{
  char p[256];

  (void)state;
  assert_int_equal(kube_path(p, sizeof p, "/api/v1", "services", "default",
                             "web", NULL), 0);
  assert_string_equal(p, "/api/v1/namespaces/default/services/web");
  assert_int_equal(kube_path(p, sizeof p, "/apis/coordination.k8s.io/v1",
                             "leases", "kube-system", NULL, NULL), 0);
  assert_string_equal(p,
                      "/apis/coordination.k8s.io/v1/namespaces/kube-system/"
                      "leases");
  assert_int_equal(kube_path(p, sizeof p, "/api/v1", "nodes", NULL, "n1",
                             "status"), 0);
  assert_string_equal(p, "/api/v1/nodes/n1/status");
  assert_int_equal(kube_path(p, 10, "/api/v1", "nodes", NULL, "n1", NULL),
                   -1);
  /* "/api/v1/nodes/n1" is 16 bytes: it needs 17 with the NUL. */
  assert_int_equal(kube_path(p, 17, "/api/v1", "nodes", NULL, "n1", NULL), 0);
  assert_string_equal(p, "/api/v1/nodes/n1");
  assert_int_equal(kube_path(p, 16, "/api/v1", "nodes", NULL, "n1", NULL),
                   -1);
  assert_int_equal(kube_path(p, 0, "/api/v1", "nodes", NULL, NULL, NULL), -1);
}

/* Escapes as RFC 8259 asks, and moves from the stack to the heap intact. */
static void test_jsonw(void **state)
{
  static const char *strs[] = {"plain", "q\"uo\\te", "tab\tnl\nctl\x01\x1f",
                               "utf-8 \xc3\xa9", ""};
  char small[8], big[3000];
  struct jsonw w;
  cJSON *doc;
  size_t i;

  (void)state;
  jsonw_init(&w, small, sizeof small);
  jsonw_raw(&w, "{");
  jsonw_str(&w, "k\"");
  jsonw_pair(&w, ":", strs[2]);
  jsonw_pair(&w, ",\"n\":", NULL);
  jsonw_raw(&w, "}");
  assert_true(jsonw_ok(&w));
  assert_string_equal(w.p,
                      "{\"k\\\"\":\"tab\\tnl\\nctl\\u0001\\u001f\",\"n\":null}");
  assert_int_equal(w.len, strlen(w.p));
  jsonw_free(&w);

  /* Every string parses back to itself, past the stack buffer's size. */
  jsonw_init(&w, small, sizeof small);
  jsonw_raw(&w, "[");
  for (i = 0; i < 200; i++) {
    jsonw_raw(&w, i > 0 ? "," : "");
    jsonw_str(&w, strs[i % 5]);
  }
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  jsonw_raw(&w, ",");
  jsonw_str(&w, big);
  jsonw_raw(&w, "]");
  assert_true(jsonw_ok(&w));
  doc = cJSON_Parse(w.p);
  assert_non_null(doc);
  assert_int_equal(cJSON_GetArraySize(doc), 201);
  for (i = 0; i < 200; i++)
    assert_string_equal(cJSON_GetArrayItem(doc, (int)i)->valuestring,
                        strs[i % 5]);
  assert_string_equal(cJSON_GetArrayItem(doc, 200)->valuestring, big);
  cJSON_Delete(doc);
  jsonw_free(&w);
}

static void test_has_finalizer(void **state)
{
  cJSON *o;

  (void)state;
  o = cJSON_Parse("{\"metadata\":{\"finalizers\":[\"a/b\",\"c/d\"]}}");
  assert_true(kube_has_finalizer(o, "a/b"));
  assert_true(kube_has_finalizer(o, "c/d"));
  assert_false(kube_has_finalizer(o, "a"));
  cJSON_Delete(o);
  o = cJSON_Parse("{\"metadata\":{}}");
  assert_false(kube_has_finalizer(o, "a/b"));
  cJSON_Delete(o);
  assert_false(kube_has_finalizer(NULL, "a/b"));
}

static int never(cJSON *obj, void *ud)
{
  (void)obj;
  (*(int *)ud)++;
  return 0;
}

static int give_up(cJSON *obj, void *ud)
{
  (void)obj;
  (void)ud;
  return KUBE_INVALID;
}

static int nothing(cJSON *obj, void *ud)
{
  (void)obj;
  (void)ud;
  return 1;
}

static void test_offline(void **state)
{
  struct kube_client_opts o = {.master = "http://127.0.0.1:1",
                               .max_tries = 1};
  struct kube_client *c = NULL;
  cJSON *obj, *out = NULL;
  char err[256], msg[256];
  int calls = 0;

  (void)state;
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  obj = cJSON_Parse("{\"metadata\":{\"name\":\"x\"}}");
  /* A JSON patch must be an array; nothing is sent. */
  assert_int_equal(kube_patch_json(c, "/api/v1/nodes/x", obj, NULL, msg,
                                   sizeof msg), KUBE_INVALID);
  assert_int_equal(kube_create(c, "/api/v1/nodes", obj, &out, msg,
                               sizeof msg), KUBE_UNAVAILABLE);
  assert_null(out);
  assert_true(strlen(msg) > 0);
  /* The GET fails before mutate runs. */
  assert_int_equal(kube_update_retry(c, "/api/v1/nodes/x", NULL, false, never,
                                     &calls, 3, NULL, msg, sizeof msg),
                   KUBE_UNAVAILABLE);
  assert_int_equal(calls, 0);
  /* With a copy in hand, mutate runs once, then the PUT fails. */
  assert_int_equal(kube_update_retry(c, "/api/v1/nodes/x", obj, true, never,
                                     &calls, 3, NULL, msg, sizeof msg),
                   KUBE_UNAVAILABLE);
  assert_int_equal(calls, 1);
  /* mutate decides: give up, or nothing to write (no request at all). */
  assert_int_equal(kube_update_retry(c, "/api/v1/nodes/x", obj, false,
                                     give_up, NULL, 3, NULL, msg, sizeof msg),
                   KUBE_INVALID);
  assert_int_equal(kube_update_retry(c, "/api/v1/nodes/x", obj, false,
                                     nothing, NULL, 3, &out, msg, sizeof msg),
                   KUBE_OK);
  assert_non_null(out);
  cJSON_Delete(out);
  cJSON_Delete(obj);
  kube_client_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_jsonw),
      cmocka_unit_test(test_has_finalizer),
      cmocka_unit_test(test_offline),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}

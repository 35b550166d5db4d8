/*
 * test_kube_store.c: unit tests of host/kube/store.c: put, replace, get by
 * name and by key, remove (backward-shift deletion under heavy churn),
 * snapshots, references, and readers running beside a writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/store.h"
#include "util/mem.h"

static struct obj_meta *make(const char *ns, const char *name, int rv)
{
  char json[512];
  struct obj_meta *m = NULL;
  char err[128];

  if (ns != NULL)
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
             "\"resourceVersion\":\"%d\"}}",
             name, ns, rv);
  else
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"%s\",\"resourceVersion\":\"%d\"}}",
             name, rv);
  assert_int_equal(obj_decode_text(ns != NULL ? OBJ_KIND_SERVICE
                                              : OBJ_KIND_NODE,
                                   json, strlen(json), &m, err, sizeof(err)),
                   OBJ_OK);
  return m;
}

static void put(struct store *s, struct obj_meta *m)
{
  int err = 0;
  struct obj_meta *old = store_put(s, m, &err);

  assert_int_equal(err, 0);
  obj_unref(old);
}

static void test_basic(void **state)
{
  struct store *s = store_new();
  struct obj_meta *a = make("ns1", "web", 1);
  struct obj_meta *b = make("ns2", "web", 2);
  struct obj_meta *a2 = make("ns1", "web", 3);
  struct obj_meta *got;
  struct obj_meta *old;
  int err = 0;

  (void)state;
  assert_non_null(s);
  put(s, a);
  put(s, b);
  assert_int_equal(store_len(s), 2);
  got = store_get(s, "ns1", "web");
  assert_ptr_equal(got, a);
  obj_unref(got);
  got = store_get_key(s, "ns2/web");
  assert_ptr_equal(got, b);
  obj_unref(got);
  assert_null(store_get(s, "ns3", "web"));
  assert_null(store_get(s, NULL, "web"));
  assert_null(store_get_key(s, "web"));
  /* Hold a: it must survive its replacement. */
  got = store_get(s, "ns1", "web");
  old = store_put(s, a2, &err);
  assert_int_equal(err, 0);
  assert_ptr_equal(old, a);
  obj_unref(old);
  assert_string_equal(got->resource_version, "1");
  obj_unref(got);
  assert_int_equal(store_len(s), 2);
  old = store_remove(s, "ns1", "web");
  assert_ptr_equal(old, a2);
  obj_unref(old);
  assert_null(store_remove(s, "ns1", "web"));
  assert_int_equal(store_len(s), 1);
  store_free(s);
}

static void test_churn(void **state)
{
  struct store *s = store_new();
  char name[32];
  bool present[2000];
  int i;
  int round;
  unsigned int seed = 7;

  (void)state;
  memset(present, 0, sizeof(present));
  for (round = 0; round < 20000; round++) {
    int k = (int)(rand_r(&seed) % 2000);

    snprintf(name, sizeof(name), "node-%d", k);
    if (present[k] && rand_r(&seed) % 2 == 0) {
      struct obj_meta *old = store_remove(s, NULL, name);

      assert_non_null(old);
      obj_unref(old);
      present[k] = false;
    } else {
      put(s, make(NULL, name, round));
      present[k] = true;
    }
  }
  for (i = 0; i < 2000; i++) {
    struct obj_meta *m;

    snprintf(name, sizeof(name), "node-%d", i);
    m = store_get_key(s, name);
    assert_int_equal(m != NULL, present[i]);
    obj_unref(m);
  }
  {
    struct obj_meta **v = NULL;
    size_t n = 0;
    size_t want = 0;

    for (i = 0; i < 2000; i++)
      want += present[i];
    assert_int_equal(store_list(s, &v, &n), 0);
    assert_int_equal(n, want);
    assert_int_equal(store_len(s), want);
    store_list_free(v, n);
  }
  assert_true(store_index_bytes(s) > 0);
  store_free(s);
}

static int count_fn(const struct obj_meta *obj, void *ud)
{
  (void)obj;
  (*(int *)ud)++;
  return 0;
}

static void test_foreach_and_oom(void **state)
{
  struct store *s = store_new();
  struct obj_meta *m = make(NULL, "a", 1);
  int n = 0;
  int err = 0;

  (void)state;
  put(s, make(NULL, "b", 1));
  store_foreach(s, count_fn, &n);
  assert_int_equal(n, 1);
  /* Fill to the growth point, then fail the growth allocation. */
  {
    char name[16];
    int i;

    for (i = 0; i < 31; i++) {
      snprintf(name, sizeof(name), "x%d", i);
      put(s, make(NULL, name, 1));
    }
  }
  mem_fail_after(0);
  assert_null(store_put(s, m, &err));
  mem_fail_after(-1);
  assert_int_equal(err, -1);
  assert_null(store_get(s, NULL, "a"));
  obj_unref(m);
  store_free(s);
}

struct reader_arg {
  struct store *s;
  atomic_bool stop;
  atomic_long hits;
};

static void *reader(void *p)
{
  struct reader_arg *r = p;

  while (!atomic_load(&r->stop)) {
    struct obj_meta *m = store_get(r->s, NULL, "hot");

    if (m != NULL && strcmp(m->name, "hot") == 0)
      atomic_fetch_add(&r->hits, 1);
    obj_unref(m);
  }
  return NULL;
}

static void test_concurrent_readers(void **state)
{
  struct reader_arg r = {.s = store_new()};
  pthread_t t[2];
  int i;

  (void)state;
  atomic_init(&r.stop, false);
  atomic_init(&r.hits, 0);
  put(r.s, make(NULL, "hot", 0));
  for (i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
  for (i = 1; i < 20000; i++) {
    char name[16];

    put(r.s, make(NULL, "hot", i));
    snprintf(name, sizeof(name), "c%d", i % 300);
    put(r.s, make(NULL, name, i));
  }
  atomic_store(&r.stop, true);
  for (i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  assert_true(atomic_load(&r.hits) > 0);
  store_free(r.s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic),
      cmocka_unit_test(test_churn),
      cmocka_unit_test(test_foreach_and_oom),
      cmocka_unit_test(test_concurrent_readers),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_json_arena.c: unit tests of host/util/json_arena.c: trees parsed
 * into an arena stay valid together until the reset, large documents span
 * chunks, bad JSON and a failed allocation return NULL and leave the arena
 * usable, a reset keeps a moderate chunk (so the next parse allocates
 * nothing) and drops a large one, and cJSON outside the arena still uses
 * malloc and free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_arena.h"
#include "util/mem.h"

static const char SERVICE[] =
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"default\",\"resourceVersion\":\"42\","
    "\"annotations\":{\"a\":\"\\u00e9t\\u00e9\"}},"
    "\"spec\":{\"ports\":[{\"port\":80},{\"port\":443}]}}}";

static const char *str_at(const cJSON *root, const char *a, const char *b,
                          const char *c)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, a);

  v = cJSON_GetObjectItemCaseSensitive(v, b);
  v = cJSON_GetObjectItemCaseSensitive(v, c);
  return cJSON_GetStringValue(v);
}

/* A JSON array of n objects, each about 60 bytes. */
static char *big_doc(int n, size_t *len)
{
  size_t cap = (size_t)n * 64 + 16, off = 0;
  char *s = malloc(cap);
  int i;

  assert_non_null(s);
  s[off++] = '[';
  for (i = 0; i < n; i++)
    off += (size_t)snprintf(s + off, cap - off,
                            "%s{\"name\":\"item-%06d\",\"port\":%d}",
                            i > 0 ? "," : "", i, i % 65536);
  s[off++] = ']';
  s[off] = '\0';
  *len = off;
  return s;
}

static void test_trees_live_until_reset(void **state)
{
  struct json_arena a = {0};
  cJSON *t1, *t2;

  (void)state;
  t1 = json_arena_parse(&a, SERVICE, strlen(SERVICE));
  t2 = json_arena_parse(&a, SERVICE, strlen(SERVICE) - 2); /* cut short */
  assert_non_null(t1);
  assert_null(t2);
  t2 = json_arena_parse(&a, "{\"x\":[1,2,3]}", 13);
  assert_non_null(t2);
  /* The failed parse dropped its partial tree without touching t1. */
  assert_string_equal(str_at(t1, "object", "metadata", "name"), "web");
  assert_string_equal(
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t1, "type")),
      "MODIFIED");
  assert_string_equal(str_at(t1, "object", "metadata", "namespace"),
                      "default");
  assert_int_equal(cJSON_GetArraySize(
                       cJSON_GetObjectItemCaseSensitive(t2, "x")), 3);
  json_arena_reset(&a);
  t1 = json_arena_parse(&a, SERVICE, strlen(SERVICE));
  assert_non_null(t1);
  assert_string_equal(str_at(t1, "object", "metadata", "resourceVersion"),
                      "42");
  json_arena_free(&a);
}

static void test_large_document_spans_chunks(void **state)
{
  struct json_arena a = {0};
  size_t len;
  char *doc = big_doc(20000, &len); /* ~1.2 MB of JSON, several chunks */
  cJSON *t, *last;

  (void)state;
  t = json_arena_parse(&a, doc, len);
  assert_non_null(t);
  assert_int_equal(cJSON_GetArraySize(t), 20000);
  last = cJSON_GetArrayItem(t, 19999);
  assert_string_equal(
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "name")),
      "item-019999");
  json_arena_reset(&a);
  json_arena_free(&a);
  free(doc);
}

static void test_reset_keeps_a_moderate_chunk(void **state)
{
  struct json_arena a = {0};
  size_t len;
  char *doc;

  (void)state;
  assert_non_null(json_arena_parse(&a, SERVICE, strlen(SERVICE)));
  json_arena_reset(&a);
  /* The kept chunk serves the next event with no allocation at all. */
  mem_fail_after(0);
  assert_non_null(json_arena_parse(&a, SERVICE, strlen(SERVICE)));
  mem_fail_after(-1);
  json_arena_reset(&a);

  /* A tree bigger than the kept size is given back on reset: the next
   * parse needs memory again, and fails cleanly without it. */
  doc = big_doc(20000, &len);
  assert_non_null(json_arena_parse(&a, doc, len));
  json_arena_reset(&a);
  mem_fail_after(0);
  assert_null(json_arena_parse(&a, SERVICE, strlen(SERVICE)));
  mem_fail_after(-1);
  assert_non_null(json_arena_parse(&a, SERVICE, strlen(SERVICE)));
  json_arena_free(&a);
  free(doc);
}

static void test_malloc_outside_the_arena(void **state)
{
  struct json_arena a = {0};
  cJSON *heap, *arena_tree;
  char *printed;

  (void)state;
  json_arena_setup();
  heap = cJSON_Parse(SERVICE);
  assert_non_null(heap);
  arena_tree = json_arena_parse(&a, SERVICE, strlen(SERVICE));
  assert_non_null(arena_tree);
  json_arena_reset(&a);
  /* Built and printed outside a parse: malloc'ed, freed by cJSON. */
  cJSON_AddStringToObject(heap, "extra", "value");
  printed = cJSON_PrintUnformatted(heap);
  assert_non_null(printed);
  assert_non_null(strstr(printed, "\"extra\":\"value\""));
  cJSON_free(printed);
  cJSON_Delete(heap);
  json_arena_free(&a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trees_live_until_reset),
      cmocka_unit_test(test_large_document_spans_chunks),
      cmocka_unit_test(test_reset_keeps_a_moderate_chunk),
      cmocka_unit_test(test_malloc_outside_the_arena),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}

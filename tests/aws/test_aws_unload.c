/*
 * test_aws_unload.c: build/modules/ccm-aws.so loaded through the real
 * loader into a process that does not link libxml2 itself, used from a
 * worker thread, unloaded (dlclose), and only then the worker exits. A
 * library the module pulled in must not leave a thread-exit destructor
 * pointing into unmapped code (libxml2 keeps per-thread state).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libconfig.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccm_provider.h"
#include "modules/host_api.h"
#include "modules/http.h"
#include "modules/loader.h"
#include "util/log.h"

#define AWS_SO CCM_MODULE_DIR "/ccm-aws.so"

struct worker {
  const struct ccm_provider *p;
  void *inst;
  int status;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool called, may_exit;
};

static void *work(void *arg) {
  struct worker *w = arg;
  struct ccm_node n = {sizeof(n), "i-0abc", "u", NULL, NULL, 0, NULL, 0};
  struct ccm_call call;
  bool exists = true;

  call_init(&call, 30000);
  w->status = w->p->instance_exists(w->inst, &call, &n, &exists);
  pthread_mutex_lock(&w->mu);
  w->called = true;
  pthread_cond_broadcast(&w->cv);
  while (!w->may_exit)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  return NULL; /* thread-exit destructors run here, after the unload */
}

static void test_unload_then_thread_exit(void **state) {
  char dir[64], err[256];
  config_t cfg;
  struct http_settings http = {0};
  struct ccm_host *host;
  struct module *mod = NULL;
  struct ccm_call call;
  struct worker w;
  pthread_t t;
  struct http_fault fault = {0};
  (void)state;

  setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
         1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  snprintf(dir, sizeof(dir), "/tmp/ccm-test-awsu-XXXXXX");
  assert_non_null(mkdtemp(dir));
  config_init(&cfg);
  assert_int_equal(config_read_string(&cfg,
                   "aws = { region = \"us-east-1\"; cluster_id = \"c\";\n"
                   " endpoints = { ec2 = \"http://127.0.0.1:9\"; }; };"),
                   CONFIG_TRUE);
  http.burst = 10;
  http.timeout_ms = 2000;
  host = host_new("aws", config_lookup(&cfg, "aws"), &http, err, sizeof(err));
  assert_non_null(host);
  /* Every request gets an EC2 error document: the module parses XML in
   * the worker thread, and nothing leaves the process. */
  fault.url_part = "127.0.0.1:9";
  fault.status = 400;
  fault.body = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound"
               "</Code><Message>x</Message></Error></Errors></Response>";
  fault.count = -1;
  assert_int_equal(http_fault_add(host->http, &fault), 0);
  if (loader_open(AWS_SO, dir, &mod, err, sizeof(err)) != 0)
    fail_msg("loader_open: %s", err);
  memset(&w, 0, sizeof(w));
  w.p = mod->provider;
  call_init(&call, 30000);
  if (w.p->init(host_api(), host, &call, &w.inst) != CCM_OK)
    fail_msg("init: %s", call.error);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  assert_int_equal(pthread_create(&t, NULL, work, &w), 0);
  pthread_mutex_lock(&w.mu);
  while (!w.called)
    pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  assert_int_equal(w.status, CCM_OK);

  w.p->destroy(w.inst);
  loader_close(mod); /* dlclose: the module's libraries may go too */
  pthread_mutex_lock(&w.mu);
  w.may_exit = true;
  pthread_cond_broadcast(&w.cv);
  pthread_mutex_unlock(&w.mu);
  assert_int_equal(pthread_join(t, NULL), 0); /* a crash would be here */

  host_free(host);
  config_destroy(&cfg);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unload_then_thread_exit),
  };
  int rc;
  if (http_global_init() != 0)
    return 1;
  log_set_level(CCM_LOG_ERROR);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  http_global_cleanup();
  return rc;
}

/*
 * test_kube_client_retry.c: host/kube/client.c against a one-thread HTTP
 * stub on 127.0.0.1 that answers 503 with a huge Retry-After: the wait is
 * capped without overflow, and the server URL's credentials never reach
 * a log line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kube/client.h"
#include "util/log.h"

struct stub {
  int fd;
  int port;
  int served;
  pthread_t th;
};

static bool cap_canary;
static bool cap_capped;
static bool cap_negative;

static void cap_sink(int level, const char *line, void *ud)
{
  (void)level;
  (void)ud;
  if (strstr(line, "CANARY") != NULL)
    cap_canary = true;
  if (strstr(line, "retrying in 7 ms") != NULL)
    cap_capped = true;
  if (strstr(line, "retrying in -") != NULL)
    cap_negative = true;
}

/* Serve connections until the listening socket is shut down: read one
 * request head, answer 503 with Retry-After far beyond any cap, close. */
static void *stub_main(void *arg)
{
  static const char resp[] =
      "HTTP/1.1 503 Service Unavailable\r\n"
      "Retry-After: 99999999999999999999\r\n"
      "Content-Length: 0\r\nConnection: close\r\n\r\n";
  struct stub *s = arg;
  char buf[4096];
  size_t got;
  ssize_t n;
  int cfd;

  for (;;) {
    cfd = accept(s->fd, NULL, NULL);
    if (cfd < 0)
      break;
    got = 0;
    while (got < sizeof buf - 1) {
      n = read(cfd, buf + got, sizeof buf - 1 - got);
      if (n <= 0)
        break;
      got += (size_t)n;
      buf[got] = '\0';
      if (strstr(buf, "\r\n\r\n") != NULL)
        break;
    }
    if (write(cfd, resp, sizeof resp - 1) < 0) {
      /* The client gave up; nothing to do. */
    }
    s->served++;
    close(cfd);
  }
  return NULL;
}

static void stub_start(struct stub *s)
{
  struct sockaddr_in a;
  socklen_t alen = sizeof a;

  memset(s, 0, sizeof *s);
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->fd, 8), 0);
  assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
  s->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&s->th, NULL, stub_main, s), 0);
}

static void stub_stop(struct stub *s)
{
  shutdown(s->fd, SHUT_RDWR);
  close(s->fd);
  pthread_join(s->th, NULL);
}

static void test_huge_retry_after_capped(void **state)
{
  struct kube_client_opts o = {.max_tries = 3, .retry_after_max_ms = 7};
  struct kube_client *c = NULL;
  struct kube_response r;
  struct stub s;
  char master[128], err[256];
  int st;

  (void)state;
  stub_start(&s);
  /* Credentials in the URL: the client logs the server at INFO. */
  snprintf(master, sizeof master, "http://ccm:CANARY-url-pw-5@127.0.0.1:%d",
           s.port);
  o.master = master;
  cap_canary = cap_capped = cap_negative = false;
  log_set_sink(cap_sink, NULL);
  log_set_level(CCM_LOG_DEBUG);
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  st = kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r);
  kube_response_free(&r);
  kube_client_free(c);
  log_set_sink(NULL, NULL);
  log_set_level(CCM_LOG_INFO);
  stub_stop(&s);
  assert_int_equal(st, KUBE_UNAVAILABLE);
  assert_int_equal(s.served, 3);
  /* Each retry waited the 7 ms cap, not a wrapped-around product. */
  assert_true(cap_capped);
  assert_false(cap_negative);
  assert_false(cap_canary);
  log_secrets_clear();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_huge_retry_after_capped),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}

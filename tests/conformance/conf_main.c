/*
 * conf_main.c: ccm-conformance's command line, config file, module loading
 * (through the registry, into a private temporary directory) and the run of
 * the check groups with one line per check and one summary line. It must
 * not judge the module itself: the conf_<group>.c files do.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conformance.h"
#include "modules/http.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/mem.h"

#define EXIT_USAGE 2

static const struct conf_group *const GROUPS[] = {
    &conf_group_lb, &conf_group_instances, &conf_group_routes,
    &conf_group_contract};
#define N_GROUPS (sizeof GROUPS / sizeof GROUPS[0])

static void usage(FILE *out) {
  fputs("usage: ccm-conformance --module PATH --config FILE [--only GROUP]\n"
        "                       [--cluster NAME] [--verbose]\n"
        "\n"
        "Runs the provider contract checks against one module (.so) and\n"
        "prints one line per check (ok / FAIL / skip) and a summary.\n"
        "FILE is libconfig: group `config` is handed to the module as its\n"
        "configuration; group `conformance` holds the kit's settings\n"
        "(known_nodes, cluster, iterations). GROUP: lb, instances, routes,\n"
        "contract. Exit status 0 iff no check failed.\n",
        out);
}

/* ---- temporary directory ------------------------------------------------ */

static void rm_tree(const char *path, int depth) {
  DIR *d;
  struct dirent *e;

  if (depth > 8)
    return;
  d = opendir(path);
  if (d == NULL)
    return;
  for (e = readdir(d); e != NULL; e = readdir(d)) {
    char sub[PATH_MAX];
    struct stat sb;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
      continue;
    if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
      rm_tree(sub, depth + 1);
    else
      unlink(sub);
  }
  closedir(d);
  rmdir(path);
}

static int make_private_dir(char *out, size_t cap) {
  const char *base = getenv("TMPDIR");

  if (base == NULL || base[0] == '\0')
    base = "/tmp";
  if (snprintf(out, cap, "%s/ccm-conformance.XXXXXX", base) >= (int)cap)
    return -1;
  return mkdtemp(out) ? 0 : -1;
}

/* ---- config file -------------------------------------------------------- */

static int known_node_parse(const config_setting_t *e, size_t i,
                            struct conf_node *out, char *err, size_t cap) {
  const char *name = NULL, *pid = NULL, *addr = NULL, *uid = NULL;
  char uid_buf[40];

  if (config_setting_type(e) == CONFIG_TYPE_STRING) {
    name = config_setting_get_string(e);
  } else if (config_setting_is_group(e)) {
    config_setting_lookup_string(e, "name", &name);
    config_setting_lookup_string(e, "provider_id", &pid);
    config_setting_lookup_string(e, "address", &addr);
    config_setting_lookup_string(e, "uid", &uid);
  }
  if (name == NULL || name[0] == '\0' || strlen(name) > CCM_MAX_NAME) {
    snprintf(err, cap, "line %d: conformance.known_nodes.[%zu]: want a node "
             "name or a group with name (and optional provider_id, "
             "address, uid)", config_setting_source_line(e), i);
    return -1;
  }
  if (uid == NULL) {
    snprintf(uid_buf, sizeof uid_buf, "0c0f0000-0000-4000-8000-%012zx",
             0x100 + i);
    uid = uid_buf;
  }
  conf_node_make(out, name, uid, pid, addr);
  return 0;
}

static int kit_settings(struct conf_run *run, config_t *lc, bool cluster_set,
                        char *err, size_t cap) {
  const config_setting_t *known, *mod;
  const char *cluster = NULL;
  int iterations = 0;

  mod = config_lookup(lc, "config");
  if (mod && !config_setting_is_group(mod)) {
    snprintf(err, cap, "line %d: `config` must be a group (the module's "
             "configuration)", config_setting_source_line(mod));
    return -1;
  }
  run->module_cfg = mod;
  if (!cluster_set && config_lookup_string(lc, "conformance.cluster",
                                           &cluster) == CONFIG_TRUE)
    run->cluster = cluster;
  if (config_lookup_int(lc, "conformance.iterations", &iterations) ==
      CONFIG_TRUE) {
    if (iterations < 1 || iterations > 100000) {
      snprintf(err, cap, "conformance.iterations must be 1..100000");
      return -1;
    }
    run->iterations = (unsigned)iterations;
  }
  known = config_lookup(lc, "conformance.known_nodes");
  if (known == NULL)
    return 0;
  if (!config_setting_is_aggregate(known) || config_setting_is_group(known)) {
    snprintf(err, cap, "line %d: conformance.known_nodes must be a list",
             config_setting_source_line(known));
    return -1;
  }
  run->n_known = (size_t)config_setting_length(known);
  if (run->n_known == 0)
    return 0;
  run->known = mem_calloc(run->n_known, sizeof *run->known);
  if (run->known == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < run->n_known; i++)
    if (known_node_parse(config_setting_get_elem(known, (unsigned)i), i,
                         &run->known[i], err, cap) != 0)
      return -1;
  return 0;
}

/* ---- loading ------------------------------------------------------------ */

/* "path/ccm-fake.so" -> "fake": the registry slot and log prefix. */
static void slot_name_from(const char *path, char *out, size_t cap) {
  const char *base = strrchr(path, '/');
  size_t j = 0;

  base = base ? base + 1 : path;
  if (strncmp(base, "ccm-", 4) == 0)
    base += 4;
  for (const char *p = base; *p && *p != '.' && j + 1 < cap; p++) {
    char c = *p;
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
      out[j++] = c;
    else if (c == '_')
      out[j++] = '-';
  }
  out[j] = '\0';
  if (j == 0)
    snprintf(out, cap, "module");
}

static int module_load(struct conf_run *run, const char *private_dir,
                       const char *cfg_path, char *err, size_t cap) {
  struct provider_config pc;
  char cwd[PATH_MAX];
  int rc;

  memset(&pc, 0, sizeof pc);
  slot_name_from(run->module_path, run->slot_name, sizeof run->slot_name);
  pc.name = run->slot_name;
  pc.module = run->module_path;
  pc.is_default = true;
  pc.lb_class = NULL;
  pc.config = run->module_cfg;
  pc.http.burst = 1;
  pc.http.timeout_ms = CCM_CONF_CALL_TIMEOUT_MS;
  pc.call_timeout_ms = CCM_CONF_CALL_TIMEOUT_MS;
  hash_buf(cfg_path, strlen(cfg_path), pc.config_hash);
  if (run->module_path[0] == '/') {
    rc = snprintf(pc.module_abs, sizeof pc.module_abs, "%s", run->module_path);
  } else {
    if (getcwd(cwd, sizeof cwd) == NULL) {
      snprintf(err, cap, "getcwd: %s", strerror(errno));
      return -1;
    }
    rc = snprintf(pc.module_abs, sizeof pc.module_abs, "%s/%s", cwd,
                  run->module_path);
  }
  if (rc < 0 || (size_t)rc >= sizeof pc.module_abs) {
    snprintf(err, cap, "module path too long");
    return -1;
  }

  run->reg = registry_new(private_dir, 5000);
  if (run->reg == NULL) {
    snprintf(err, cap, "registry_new failed");
    return -1;
  }
  if (registry_swap(run->reg, &pc, err, cap) != 0)
    return -1;
  if (registry_acquire(run->reg, run->slot_name, &run->ref) != CCM_OK) {
    snprintf(err, cap, "the registry does not serve the loaded module");
    return -1;
  }
  run->mod = run->ref.gen->mod;
  run->prov = run->mod->provider;
  run->instance = run->ref.gen->instance;
  run->serial = run->prov->thread_safety == CCM_THREAD_SAFE
                    ? NULL
                    : &run->ref.gen->serial;
  return 0;
}

/* ---- running ------------------------------------------------------------ */

static void report(struct conf_run *run, const char *group, const char *check,
                   int res, const char *why) {
  switch (res) {
  case CONF_PASS:
    printf("ok   %s/%s\n", group, check);
    run->passed++;
    break;
  case CONF_SKIP:
    printf("skip %s/%s: %s\n", group, check, why);
    run->skipped++;
    break;
  default:
    printf("FAIL %s/%s: %s\n", group, check, why[0] ? why : "failed");
    run->failed++;
    break;
  }
  fflush(stdout);
}

static void group_run(struct conf_run *run, const struct conf_group *g) {
  char why[CCM_CONF_WHY];
  bool supported;

  why[0] = '\0';
  supported = g->supported(run, why, sizeof why);
  for (const struct conf_check *c = g->checks; c->name; c++) {
    int res = CONF_SKIP;
    if (supported) {
      why[0] = '\0';
      res = c->fn(run, why, sizeof why);
    }
    report(run, g->name, c->name, res, why);
  }
}

static void summary(const struct conf_run *run) {
  printf("%u passed, %u failed", run->passed, run->failed);
  if (run->skipped)
    printf(", %u skipped", run->skipped);
  printf("\n");
  fflush(stdout);
}

static bool group_known(const char *name) {
  for (size_t i = 0; i < N_GROUPS; i++)
    if (strcmp(GROUPS[i]->name, name) == 0)
      return true;
  return false;
}

static int args_parse(struct conf_run *run, int argc, char **argv,
                      const char **cfg_path, bool *cluster_set) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      return 1;
    } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
      run->verbose = true;
    } else if (strcmp(a, "--module") == 0 && has_value) {
      run->module_path = argv[++i];
    } else if (strcmp(a, "--config") == 0 && has_value) {
      *cfg_path = argv[++i];
    } else if (strcmp(a, "--only") == 0 && has_value) {
      run->only = argv[++i];
    } else if (strcmp(a, "--cluster") == 0 && has_value) {
      run->cluster = argv[++i];
      *cluster_set = true;
    } else {
      fprintf(stderr, "ccm-conformance: unknown or incomplete argument "
              "\"%s\"\n", a);
      return -1;
    }
  }
  if (run->module_path == NULL || *cfg_path == NULL) {
    fprintf(stderr, "ccm-conformance: --module and --config are required\n");
    return -1;
  }
  if (run->only && !group_known(run->only)) {
    fprintf(stderr, "ccm-conformance: unknown group \"%s\" (lb, instances, "
            "routes, contract)\n", run->only);
    return -1;
  }
  if (run->cluster[0] == '\0') {
    fprintf(stderr, "ccm-conformance: --cluster must not be empty\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct conf_run run;
  config_t lc;
  const char *cfg_path = NULL;
  bool cluster_set = false, have_ref = false, curl_up = false;
  char private_dir[PATH_MAX] = "";
  char err[1024] = "";
  int rc = 1;

  memset(&run, 0, sizeof run);
  run.cluster = "conformance";
  run.iterations = CCM_CONF_ITERATIONS;
  pthread_mutex_init(&run.ev.lock, NULL);
  config_init(&lc);
  rc = args_parse(&run, argc, argv, &cfg_path, &cluster_set);
  if (rc != 0) {
    usage(rc > 0 ? stdout : stderr);
    config_destroy(&lc);
    pthread_mutex_destroy(&run.ev.lock);
    return rc > 0 ? 0 : EXIT_USAGE;
  }
  rc = 1;
  log_set_level(run.verbose ? CCM_LOG_DEBUG : CCM_LOG_WARN);

  if (config_read_file(&lc, cfg_path) != CONFIG_TRUE) {
    if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
      snprintf(err, sizeof err, "%s: cannot read the config file", cfg_path);
    else
      snprintf(err, sizeof err, "%s:%d: %s", cfg_path,
               config_error_line(&lc), config_error_text(&lc));
    goto setup_failed;
  }
  if (kit_settings(&run, &lc, cluster_set, err, sizeof err) != 0)
    goto setup_failed;
  if (http_global_init() != 0) {
    snprintf(err, sizeof err, "libcurl global init failed");
    goto setup_failed;
  }
  curl_up = true;
  if (make_private_dir(private_dir, sizeof private_dir) != 0) {
    snprintf(err, sizeof err, "cannot create a private directory: %s",
             strerror(errno));
    private_dir[0] = '\0';
    goto setup_failed;
  }
  if (module_load(&run, private_dir, cfg_path, err, sizeof err) != 0)
    goto setup_failed;
  have_ref = true;
  conf_fixtures_init(&run);
  if (run.verbose)
    printf("     # module %s: provider %s %s, cluster %s, %zu known nodes\n",
           run.module_path, run.prov->name, run.prov->version, run.cluster,
           run.n_known);

  for (size_t i = 0; i < N_GROUPS; i++)
    if (run.only == NULL || strcmp(run.only, GROUPS[i]->name) == 0)
      group_run(&run, GROUPS[i]);
  summary(&run);
  rc = run.failed ? 1 : 0;
  goto out;

setup_failed:
  printf("FAIL setup/load: %s\n", err);
  run.failed++;
  summary(&run);
  rc = 1;
out:
  if (have_ref)
    registry_release(&run.ref);
  if (run.reg)
    registry_free(run.reg);
  if (curl_up)
    http_global_cleanup();
  if (private_dir[0])
    rm_tree(private_dir, 0);
  mem_free(run.known);
  config_destroy(&lc);
  pthread_mutex_destroy(&run.ev.lock);
  return rc;
}

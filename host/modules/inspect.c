/*
 * inspect.c: open a module for inspection and print its declarations (see
 * inspect.h). It must not call init or any provider operation.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modules/inspect.h"

/* A field of a module's struct, read only when its declared size covers
 * it (ABI rule: size first). */
#define INSPECT_HAS(ptr, type, field)                                        \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof((ptr)->field))
#define INSPECT_MAX_OPTIONS 1024

/* Best effort: the loader removes its copy; anything else left goes too. */
static void inspect_rmdir(const char *dir)
{
  char path[4352];
  struct dirent *e;
  DIR *d = opendir(dir);

  if (d != NULL) {
    for (e = readdir(d); e != NULL; e = readdir(d)) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

int module_inspect_open(const char *path, struct module_inspect *mi,
                        char *err, size_t errlen)
{
  const char *tmp = getenv("TMPDIR");
  int n;

  memset(mi, 0, sizeof(*mi));
  if (tmp == NULL || tmp[0] == '\0')
    tmp = "/tmp";
  n = snprintf(mi->dir, sizeof mi->dir, "%s/ccm-check-XXXXXX", tmp);
  if (n < 0 || (size_t)n >= sizeof mi->dir || mkdtemp(mi->dir) == NULL) {
    snprintf(err, errlen, "cannot create a scratch directory in %s: %s",
             tmp, strerror(errno));
    mi->dir[0] = '\0';
    return -1;
  }
  if (loader_open(path, mi->dir, &mi->m, err, errlen) != 0) {
    mi->m = NULL;
    module_inspect_close(mi);
    return -1;
  }
  return 0;
}

void module_inspect_close(struct module_inspect *mi)
{
  if (mi->m != NULL)
    loader_close(mi->m);
  mi->m = NULL;
  if (mi->dir[0] != '\0')
    inspect_rmdir(mi->dir);
  mi->dir[0] = '\0';
}

static const char *inspect_str(const char *s)
{
  return s == NULL ? "(none)" : s;
}

static const char *inspect_type(uint32_t type)
{
  switch (type) {
  case CCM_OPT_STRING: return "string";
  case CCM_OPT_INT: return "integer";
  case CCM_OPT_BOOL: return "boolean";
  case CCM_OPT_STRING_LIST: return "list of strings";
  default: return "unknown";
  }
}

void module_print_decls(FILE *out, const struct ccm_provider *p)
{
  const struct ccm_name_rules *r = p->lb_name_rules;
  size_t n = 0;

  while (p->options != NULL && n < INSPECT_MAX_OPTIONS &&
         p->options[n] != NULL)
    n++;
  fprintf(out, "options: %zu\n", n);
  for (size_t i = 0; i < n; i++) {
    const struct ccm_option_decl *d = p->options[i];
    const char *def = NULL;

    if (!INSPECT_HAS(d, struct ccm_option_decl, help)) {
      fprintf(out, "  (option %zu: struct_size %u too small)\n", i,
              (unsigned)d->struct_size);
      continue;
    }
    if (INSPECT_HAS(d, struct ccm_option_decl, default_value))
      def = d->default_value;
    fprintf(out, "  %s (%s%s%s): %s\n", inspect_str(d->name),
            inspect_type(d->type), def != NULL ? ", default " : "",
            def != NULL ? def : "", inspect_str(d->help));
  }
  if (r == NULL) {
    fprintf(out, "lb name rules: none (1..253 of [a-z0-9-])\n");
    return;
  }
  if (!INSPECT_HAS(r, struct ccm_name_rules, allowed_last)) {
    fprintf(out, "lb name rules: struct_size %u too small\n",
            (unsigned)r->struct_size);
    return;
  }
  fprintf(out, "lb name rules: length %u..%u, allowed \"%s\", first \"%s\", "
          "last \"%s\"\n", (unsigned)r->min_length,
          (unsigned)r->max_length, r->allowed ? r->allowed : "any",
          r->allowed_first ? r->allowed_first : "any",
          r->allowed_last ? r->allowed_last : "any");
}

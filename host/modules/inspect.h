/*
 * inspect.h: a module file opened for inspection only (--check-module and
 * --check-policy --provider): a private copy in a scratch directory,
 * negotiated like any load, and a printout of what it declares. It never
 * calls init or any provider operation.
 */
#ifndef CCM_MODULES_INSPECT_H
#define CCM_MODULES_INSPECT_H

#include <stddef.h>
#include <stdio.h>

#include "ccm_provider.h"
#include "modules/loader.h"

struct module_inspect {
  struct module *m;   /* NULL until opened */
  char dir[4096];     /* the scratch directory, "" when none */
};

/* Open path (scratch directory under $TMPDIR, else /tmp). On failure
 * returns -1 with one line in err and leaves nothing behind. */
int module_inspect_open(const char *path, struct module_inspect *mi,
                        char *err, size_t errlen);
/* Close the module and remove the scratch directory; safe when not open. */
void module_inspect_close(struct module_inspect *mi);

/* "options: N", one "  name (type[, default X]): help" line each, and the
 * load-balancer name rules, reading only fields the module's struct_size
 * covers. */
void module_print_decls(FILE *out, const struct ccm_provider *p);

#endif

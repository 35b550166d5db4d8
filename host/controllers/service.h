/*
 * service.h: the service load-balancer controller (upstream
 * service-lb-controller, ccm-semantics section 2). Its one public symbol
 * is the controller table; everything else is private to service*.c.
 */
#ifndef CCM_SERVICE_H
#define CCM_SERVICE_H

#include "controllers/controller.h"

extern const struct controller_ops service_controller_ops;

#endif

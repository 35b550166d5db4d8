/*
 * route.h: the route controller (upstream's node-route-controller): cloud
 * routes for every Node's podCIDRs and the NetworkUnavailable condition.
 * Its decisions live in route_plan.h; this header exports the ops only.
 */
#ifndef CCM_ROUTE_H
#define CCM_ROUTE_H

#include "controllers/controller.h"

extern const struct controller_ops route_controller_ops;

#endif

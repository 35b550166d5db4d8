/*
 * nodelifecycle.h: the cloud node lifecycle controller (upstream
 * cloud-node-lifecycle-controller): deletes NotReady Nodes whose instance
 * the provider says is gone, and manages the shutdown taint.
 */
#ifndef CCM_NODELIFECYCLE_H
#define CCM_NODELIFECYCLE_H

#include "controllers/controller.h"

extern const struct controller_ops node_lifecycle_controller_ops;

#endif

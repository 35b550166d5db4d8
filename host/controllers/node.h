/*
 * node.h: the cloud node controller (upstream cloud-node-controller):
 * initialises Nodes that carry the uninitialized taint from the provider's
 * instance metadata and keeps the addresses of initialised Nodes current.
 */
#ifndef CCM_NODE_H
#define CCM_NODE_H

#include "controllers/controller.h"

extern const struct controller_ops node_controller_ops;

#endif

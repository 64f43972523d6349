/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Restore from a kybernated checkpoint: the reference a container's spec names
 * (RESTORE_FROM in its environment or the kybernate.io/restore-from
 * annotation), its resolution by kybernated at Create with the identity
 * kybernated checks it against, the checkpoint's files put back into the
 * rootfs, and runc restore at Start. */

#include "kybernate/v1/daemon.pb-c.h"
#include "process.h"
#include "spec.h"

#define RESTORE_ENV "RESTORE_FROM"
#define RESTORE_ANNOTATION "kybernate.io/restore-from"
#define RESTORE_REFERENCE_MAX 512

/* The restore reference of a container: NULL (0) when it names none or is a
 * pod's sandbox, -EINVAL when the value is empty, overlong or has control
 * characters. */
int restore_reference(const Spec *spec, const char **ret);

/* Fills t (pointers borrowed from spec and the arguments) with the restoring
 * container's identity: containerd namespace, and from the CRI annotations its
 * Kubernetes namespace, pod, container name and image. */
void restore_target_from_spec(const Spec *spec, const char *ns, const char *id,
                              Kybernate__V1__RestoreTarget *t);

/* Create of c (already listed) with a restore reference: asks kybernated for
 * the images, applies the rootfs diff, then calls ready (Create's reply). Every failure fails
 * Create and removes c; always returns 0 (the reply is sent). */
int restore_resolve(Container *c, Op *op, const char *ref, void (*ready)(Op *op, Container *c));

/* Start of an init created from a checkpoint: runc restore, then done. */
int restore_start(Container *c, Op *op, RuncDoneFn done);

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Client of kybernated (proto/kybernate/v1/daemon.proto): AF_UNIX
 * SOCK_SEQPACKET, one packed message per datagram, at most KYB_MSG_MAX bytes.
 *
 * Blocking API (kybernatectl):
 *
 *     _cleanup_(kyb_client_freep) KybClient *c = NULL;
 *     r = kyb_client_connect(NULL, &c);              // NULL: $KYBERNATE_SOCKET or the default
 *     Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
 *     Kybernate__V1__StatusRequest st = KYBERNATE__V1__STATUS_REQUEST__INIT;
 *     req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
 *     req.status = &st;
 *     _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
 *     r = kyb_client_call(c, &req, NULL, NULL, &resp);
 *
 * kyb_client_call() fills in version and id. It returns 0 when the daemon
 * answered success, -error when the daemon answered with an error (then *ret is
 * still set so resp->message can be shown), and another negative errno with
 * *ret = NULL when the transport failed (-ECONNRESET: the daemon went away).
 * Intermediate responses (progress, list pages) go to on_message.
 *
 * Async API (shim, sd-event): kyb_client_call_async() connects, sends and
 * calls done() once with the final response, never blocking the loop. */

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "kybernate/v1/daemon.pb-c.h"

#define KYB_PROTOCOL_VERSION 1u
#define KYB_MSG_MAX ((size_t)128 * 1024)
#define KYB_SOCKET_DEFAULT "/run/kybernate/kybernated.sock"
#define KYB_SOCKET_ENV "KYBERNATE_SOCKET"

typedef struct KybClient KybClient;
typedef struct KybAsyncCall KybAsyncCall;

/* Called for each intermediate response (more = true). Return 0 to let the
 * library free resp, 1 when the callback took ownership of resp, negative to
 * abort the call (the connection is then unusable). */
typedef int (*KybMessageFn)(Kybernate__V1__Response *resp, void *userdata);

/* Called exactly once per async call, unless cancelled. r: 0 success, -error
 * from the daemon (resp set), or a transport error (resp NULL). resp is freed
 * after done returns; copy what you need. The call object is freed too. */
typedef void (*KybDoneFn)(int r, const Kybernate__V1__Response *resp, void *userdata);

/* $KYBERNATE_SOCKET if set and non-empty, else KYB_SOCKET_DEFAULT. */
const char *kyb_socket_path(void);

int kyb_client_connect(const char *path, KybClient **ret);
KybClient *kyb_client_free(KybClient *c);
static inline void kyb_client_freep(KybClient **c) {
        kyb_client_free(*c);
}
int kyb_client_fd(KybClient *c);
int kyb_client_call(KybClient *c, Kybernate__V1__Request *req, KybMessageFn on_message, void *userdata,
                    Kybernate__V1__Response **ret);

/* timeout_usec: 0 = none, else the call fails with -ETIMEDOUT. on_message may
 * be NULL (intermediate responses are then dropped). ret (may be NULL) can be
 * used with kyb_async_call_cancel() until done has been called. A negative
 * return (e.g. -ENOENT or -ECONNREFUSED: no daemon) means the call never
 * started and done will not be called; on success done is called exactly
 * once, from the loop, never from within this function. */
int kyb_client_call_async(sd_event *e, const char *path, Kybernate__V1__Request *req, uint64_t timeout_usec,
                          KybMessageFn on_message, KybDoneFn done, void *userdata, KybAsyncCall **ret);
/* Cancels a pending call: done is not called. Returns NULL. */
KybAsyncCall *kyb_async_call_cancel(KybAsyncCall *call);

Kybernate__V1__Response *kyb_response_free(Kybernate__V1__Response *r);
static inline void kyb_response_freep(Kybernate__V1__Response **r) {
        kyb_response_free(*r);
}
Kybernate__V1__Request *kyb_request_free(Kybernate__V1__Request *r);
static inline void kyb_request_freep(Kybernate__V1__Request **r) {
        kyb_request_free(*r);
}

/* Wire helpers shared with the daemon. kyb_send_message() packs m into one
 * datagram (-EMSGSIZE if bigger than KYB_MSG_MAX; -EAGAIN on a full
 * non-blocking socket). kyb_recv_datagram() reads one datagram into a new
 * buffer: 0 and *ret_len = 0 on EOF; -EMSGSIZE after discarding one that is
 * too big. */
int kyb_send_message(int fd, const ProtobufCMessage *m);
int kyb_recv_datagram(int fd, uint8_t **ret, size_t *ret_len);

/* Human name of a state ("pending", "ready", "failed", "unknown"). */
const char *kyb_state_to_string(Kybernate__V1__CheckpointState s);

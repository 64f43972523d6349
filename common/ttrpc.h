/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* ttrpc (containerd's RPC over Unix sockets) on an sd-event loop.
 *
 * Server: many requests on one connection are served concurrently. A method
 * handler either replies before it returns, or keeps the TtrpcCall and replies
 * later from another event (Wait does this); replies go out tagged with the
 * request's stream id, in the order they are made. Frame rules follow
 * shared/docs/PROTOCOL.md section 1.
 *
 * Client: asynchronous unary calls, one connection, replies matched to calls by
 * stream id; used to forward events to containerd. */

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define TTRPC_HEADER_SIZE 10
#define TTRPC_MAX_MESSAGE_SIZE (4u << 20)
#define TTRPC_TYPE_REQUEST 0x01
#define TTRPC_TYPE_RESPONSE 0x02
#define TTRPC_TYPE_DATA 0x03

/* gRPC status codes. */
enum {
        TTRPC_OK = 0,
        TTRPC_CANCELLED = 1,
        TTRPC_UNKNOWN = 2,
        TTRPC_INVALID_ARGUMENT = 3,
        TTRPC_DEADLINE_EXCEEDED = 4,
        TTRPC_NOT_FOUND = 5,
        TTRPC_ALREADY_EXISTS = 6,
        TTRPC_PERMISSION_DENIED = 7,
        TTRPC_RESOURCE_EXHAUSTED = 8,
        TTRPC_FAILED_PRECONDITION = 9,
        TTRPC_ABORTED = 10,
        TTRPC_OUT_OF_RANGE = 11,
        TTRPC_UNIMPLEMENTED = 12,
        TTRPC_INTERNAL = 13,
        TTRPC_UNAVAILABLE = 14,
        TTRPC_DATA_LOSS = 15,
        TTRPC_UNAUTHENTICATED = 16,
};

typedef struct TtrpcFrameHeader {
        uint32_t length;
        uint32_t stream_id;
        uint8_t type;
        uint8_t flags;
} TtrpcFrameHeader;

void ttrpc_header_encode(const TtrpcFrameHeader *h, uint8_t out[TTRPC_HEADER_SIZE]);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], TtrpcFrameHeader *ret);

/* Maps an errno (either sign) to the gRPC code containerd's errdefs expect:
 * 0 OK; ENOENT, ESRCH NotFound; EEXIST AlreadyExists; EINVAL, EBADMSG
 * InvalidArgument; EOPNOTSUPP, ENOSYS Unimplemented; EBUSY, EALREADY
 * FailedPrecondition; ECANCELED Cancelled; ETIMEDOUT DeadlineExceeded; EPERM,
 * EACCES PermissionDenied; ENOMEM, ENOSPC, EMSGSIZE ResourceExhausted; ERANGE
 * OutOfRange; ECONNREFUSED, ECONNRESET, ENOTCONN, EPIPE, EAGAIN, ESHUTDOWN
 * Unavailable; anything else Unknown. */
int ttrpc_code_from_errno(int negative_errno);

typedef struct TtrpcServer TtrpcServer;
typedef struct TtrpcCall TtrpcCall;

/* req is the decoded request, freed after the handler returns. Return 0 when
 * the call was replied to or will be later; a negative errno makes the server
 * reply with ttrpc_code_from_errno() and strerror(), unless the handler has
 * replied already (then the return value is ignored). */
typedef int (*TtrpcMethodFn)(TtrpcCall *call, const ProtobufCMessage *req, void *userdata);

typedef struct TtrpcMethod {
        const char *name;
        const ProtobufCMessageDescriptor *input;
        TtrpcMethodFn handler;
} TtrpcMethod;

int ttrpc_server_new(sd_event *event, TtrpcServer **ret);
TtrpcServer *ttrpc_server_free(TtrpcServer *s);
/* methods must stay valid for the server's lifetime. */
int ttrpc_server_add_service(TtrpcServer *s, const char *service, const TtrpcMethod *methods,
                             size_t n_methods, void *userdata);
/* Takes ownership of a listening SOCK_STREAM socket (one per server). */
int ttrpc_server_listen_fd(TtrpcServer *s, int fd);
/* Takes ownership of one already connected socket (tests, socketpairs), also
 * on failure. */
int ttrpc_server_add_connection(TtrpcServer *s, int fd);
/* When on (the default), peers whose uid/gid (SO_PEERCRED) differ from our
 * effective ones are dropped; ttrpc_server_add_connection() returns -EPERM. */
void ttrpc_server_set_check_peer(TtrpcServer *s, bool check);
/* Stops accepting; existing connections keep being served. */
void ttrpc_server_stop_listening(TtrpcServer *s);
size_t ttrpc_server_connection_count(TtrpcServer *s);

/* Replies free the call: after any of these the pointer is gone, whatever
 * they return. msg NULL is google.protobuf.Empty (a zero-length frame). If the
 * connection died in the meantime the reply is dropped silently (returns 0).
 * A reply over TTRPC_MAX_MESSAGE_SIZE is replaced by a ResourceExhausted
 * error and returns -EMSGSIZE. Messages are cut at 16 KiB. Frames are queued
 * and written as the socket accepts them; they never block the loop. */
int ttrpc_call_reply(TtrpcCall *call, const ProtobufCMessage *msg);
int ttrpc_call_reply_error(TtrpcCall *call, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Replies with ttrpc_code_from_errno(r) and the message given. */
int ttrpc_call_reply_errno(TtrpcCall *call, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Metadata value for a (lower-case) key, or NULL. */
const char *ttrpc_call_metadata(TtrpcCall *call, const char *key);
const char *ttrpc_call_method(TtrpcCall *call);
/* The request's timeout_nano (0: none); the server does not enforce it. */
int64_t ttrpc_call_timeout_nano(TtrpcCall *call);
/* Whether the connection the call came on is still open. */
bool ttrpc_call_connected(TtrpcCall *call);

typedef struct TtrpcClient TtrpcClient;

typedef struct TtrpcKeyValuePair {
        const char *key;
        const char *value;
} TtrpcKeyValuePair;

/* code is TTRPC_OK with the reply payload, a gRPC code with its message, or
 * TTRPC_UNAVAILABLE when the connection failed or closed before the reply. */
typedef void (*TtrpcReplyFn)(TtrpcClient *c, int code, const char *message, const uint8_t *payload,
                             size_t len, void *userdata);

/* address: a socket path, "unix://" prefix optional. Connects lazily. */
int ttrpc_client_new(sd_event *event, const char *address, TtrpcClient **ret);
TtrpcClient *ttrpc_client_free(TtrpcClient *c);
/* Sends a unary request (req NULL: empty payload). On success cb runs exactly
 * once, never from inside this call: with the reply, TTRPC_DEADLINE_EXCEEDED
 * after timeout_usec (0: none), TTRPC_UNAVAILABLE when the connection fails
 * or closes (the next call reconnects), TTRPC_CANCELLED from
 * ttrpc_client_free(). Returns a negative errno, and cb is not called, when
 * the request cannot be sent (connect failed: -ENOENT, -ECONNREFUSED...). */
int ttrpc_client_call(TtrpcClient *c, const char *service, const char *method, const ProtobufCMessage *req,
                      const TtrpcKeyValuePair *metadata, size_t n_metadata, uint64_t timeout_usec,
                      TtrpcReplyFn cb, void *userdata);
/* Number of calls sent and not yet answered. */
size_t ttrpc_client_pending(TtrpcClient *c);

/* Blocking, one-shot call on a connected fd, for tests and tools: writes the
 * request with stream id 1 and reads the reply, skipping other frames.
 * Returns 0 and fills the code, the message (malloc'd, NULL when OK) and the
 * payload (malloc'd, NULL when empty), or a negative errno on transport
 * failure. Every ret_ pointer may be NULL. */
int ttrpc_call_sync(int fd, const char *service, const char *method, const ProtobufCMessage *req,
                    int *ret_code, char **ret_message, uint8_t **ret_payload, size_t *ret_len);

/*
 * The C API's entry points: each passes its call on to its .NET body (OssuaryExports, compiled
 * under the name dotnet_ossuary_*, which neither library exports), once the .NET runtime is
 * running or can start.
 *
 * The runtime starts in the process's first call into .NET code, and it needs a thread of its own
 * for that (its finalizer thread). When no thread can be created (RLIMIT_NPROC reached, a cgroup's
 * pids.max, no memory for a stack), it cannot start, and it does not fail that call: it prints
 * "Fatal error. .NET runtime failed to initialize." and aborts the host program. So before the
 * first call goes in, ossuary_create_connection() and ossuary_generate_auth_keypair() (the two
 * calls that can do anything without a connection) try to create a thread; if that fails they
 * return NULL or -1, say why on stderr (once), and leave the runtime unstarted, to be tried again
 * by the next call. Every other call needs a connection, which cannot exist before the runtime has
 * started: until then they answer as for any handle that names no connection, without going in.
 * A child made by fork() inherits the flag with the running runtime.
 *
 * Each call that goes in is counted in and out by the fork gate (fork_gate.c), which the first
 * call sets up once the runtime has started; until it is set up, the two calls that make
 * something fail, as for a runtime that cannot start.
 *
 * Once the runtime is running, each call costs one more load of a flag and the gate's count.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../include/ossuary.h"
#include "fork_gate.h"

OssuaryConnection *dotnet_ossuary_create_connection(ossuary_conn_type_t type, const uint8_t auth_key[32]);
void dotnet_ossuary_destroy_connection(OssuaryConnection **conn);
int32_t dotnet_ossuary_set_secret_key(OssuaryConnection *conn, const uint8_t key[32]);
int32_t dotnet_ossuary_add_authorized_key(OssuaryConnection *conn, const uint8_t key[32]);
int32_t dotnet_ossuary_add_authorized_keys(OssuaryConnection *conn, uint8_t *key[], uint8_t count);
int32_t dotnet_ossuary_remote_public_key(OssuaryConnection *conn, uint8_t *key_buf, uint16_t key_buf_len);
int32_t dotnet_ossuary_generate_auth_keypair(uint8_t *secret_buf, uint16_t secret_buf_len,
                                             uint8_t *public_buf, uint16_t public_buf_len);
int32_t dotnet_ossuary_recv_handshake(OssuaryConnection *conn, uint8_t *in_buf, uint16_t *in_buf_len);
int32_t dotnet_ossuary_send_handshake(OssuaryConnection *conn, uint8_t *out_buf, uint16_t *out_buf_len);
int32_t dotnet_ossuary_handshake_done(OssuaryConnection *conn);
int32_t dotnet_ossuary_send_data(OssuaryConnection *conn, uint8_t *in_buf, uint16_t in_buf_len,
                                 uint8_t *out_buf, uint16_t *out_buf_len);
int32_t dotnet_ossuary_recv_data(OssuaryConnection *conn, uint8_t *in_buf, uint16_t *in_buf_len,
                                 uint8_t *out_buf, uint16_t *out_buf_len);
int32_t dotnet_ossuary_flush(OssuaryConnection *conn, uint8_t *out_buf, uint16_t out_buf_len);
int32_t dotnet_ossuary_disconnect(OssuaryConnection *conn, uint8_t error);

/* Set once a call has gone in to start the runtime (or found it running). */
static int runtime_started;
static int start_failure_reported;
static int gate_failure_reported;

static int runtime_running(void) { return __atomic_load_n(&runtime_started, __ATOMIC_ACQUIRE); }

static void *thread_probe(void *argument) { return argument; }

/*
 * Writes `length` bytes of `line` to stderr, whole or as much as it takes: the library's reasons,
 * this file's and the .NET side's (StandardError.cs calls it). write(2), not stdio: the program's
 * stderr buffer and locks are its own, and .NET's Console would take SIGINT, SIGQUIT and SIGCONT
 * from the program. A reason is said once, so a write a signal interrupts (EINTR: a handler without
 * SA_RESTART while stderr is a full pipe) is made again, a short one goes on with the rest, and one
 * that finds a non-blocking stderr full (EAGAIN: the program set O_NONBLOCK on it, a logger is
 * behind) waits for room as a blocking stderr would; any other failure (no stderr) gives up, as
 * there is nowhere else to say it. Hidden: neither library exports it.
 */
__attribute__((visibility("hidden"))) void libossuary_write_stderr(const char *line, size_t length) {
  const char *next = line;
  size_t left = length;
  while (left > 0) {
    ssize_t written = write(STDERR_FILENO, next, left);
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd room = {.fd = STDERR_FILENO, .events = POLLOUT};
      if (poll(&room, 1, -1) >= 0 || errno == EINTR) {
        continue;
      }
      return;
    }
    if (written <= 0) {
      return;
    }
    next += written;
    left -= (size_t)written;
  }
}

/* Writes the first `length` bytes of `line` to stderr, once per `reported` flag. */
static void say_once(int *reported, const char *line, int length) {
  if (length > 0 && !__atomic_exchange_n(reported, 1, __ATOMIC_RELAXED)) {
    libossuary_write_stderr(line, (size_t)length);
  }
}

/* snprintf's length of a line cut to fit `size`; 0 (nothing to say) for its failure. */
static int fitted(int length, size_t size) {
  return length < 0 ? 0 : (size_t)length < size ? length : (int)size - 1;
}

/* 1 when the runtime is running or a thread can be created for it to start; 0 (said once) otherwise. */
static int runtime_can_start(void) {
  if (runtime_running()) {
    return 1;
  }
  pthread_attr_t attributes;
  pthread_t probe;
  int error = pthread_attr_init(&attributes);
  if (error == 0) {
    /* The smallest stack: the probe only returns, and a default stack would be 8 MiB to map. */
    pthread_attr_setstacksize(&attributes, PTHREAD_STACK_MIN);
    error = pthread_create(&probe, &attributes, thread_probe, NULL);
    pthread_attr_destroy(&attributes);
  }
  if (error != 0) {
    char line[256];
    int length = snprintf(line, sizeof(line),
                          "libossuary: cannot start the .NET runtime: no thread can be created (%s); "
                          "ossuary_create_connection() returns NULL until one can.\n",
                          strerror(error));
    say_once(&start_failure_reported, line, fitted(length, sizeof(line)));
    return 0;
  }
  pthread_join(probe, NULL);
  __atomic_store_n(&runtime_started, 1, __ATOMIC_RELEASE);
  return 1;
}

/*
 * 1 when a call that makes something may go in: the runtime can start, and the fork gate is set
 * up (said once when it cannot be; see ossuary.h). Without the gate a fork would copy calls of
 * other threads half-done into the child, whose next call on such a connection never returns.
 */
static int library_ready(void) {
  if (!runtime_can_start()) {
    return 0;
  }
  if (!fork_gate_is_set_up()) {
    /* The runtime starts first (in any call that goes in): it takes a pthread key as it starts, and
       aborts the program without one; the gate's key comes after it, and fails without harm. */
    (void)dotnet_ossuary_handshake_done(NULL);
  }
  const char *failed;
  int error;
  if (fork_gate_set_up(&failed, &error)) {
    return 1;
  }
  char line[320];
  int length = failed == NULL
                   ? snprintf(line, sizeof(line),
                              "libossuary: cannot protect calls from fork(): another thread's set-up of the handlers "
                              "had not ended after 1 s; ossuary_create_connection() returns NULL and "
                              "ossuary_generate_auth_keypair() -1 until it ends.\n")
                   : snprintf(line, sizeof(line),
                              "libossuary: cannot protect calls from fork(): %s failed (%s); "
                              "ossuary_create_connection() returns NULL and ossuary_generate_auth_keypair() -1 until it succeeds.\n",
                              failed, strerror(error));
  say_once(&gate_failure_reported, line, fitted(length, sizeof(line)));
  return 0;
}

/* What a call that takes a connection answers for a handle that names none: the in/out lengths say nothing moved. */
static int32_t refuse(uint16_t *length, uint16_t *other) {
  if (length != NULL) {
    *length = 0;
  }
  if (other != NULL) {
    *other = 0;
  }
  return OSSUARY_ERR_OTHER;
}

/* The .NET body of a call, counted in and out by the fork gate. */
#define GATED(type, call)                 \
  ({                                      \
    int entered_ = fork_gate_enter();     \
    type result_ = (call);                \
    fork_gate_leave(entered_);            \
    result_;                              \
  })

OssuaryConnection *ossuary_create_connection(ossuary_conn_type_t type, const uint8_t auth_key[32]) {
  return library_ready() ? GATED(OssuaryConnection *, dotnet_ossuary_create_connection(type, auth_key)) : NULL;
}

int32_t ossuary_generate_auth_keypair(uint8_t *secret_buf, uint16_t secret_buf_len,
                                      uint8_t *public_buf, uint16_t public_buf_len) {
  return library_ready()
             ? GATED(int32_t, dotnet_ossuary_generate_auth_keypair(secret_buf, secret_buf_len, public_buf, public_buf_len))
             : OSSUARY_ERR_OTHER;
}

void ossuary_destroy_connection(OssuaryConnection **conn) {
  if (runtime_running()) {
    int entered = fork_gate_enter();
    dotnet_ossuary_destroy_connection(conn);
    fork_gate_leave(entered);
  } else if (conn != NULL) {
    *conn = NULL;
  }
}

int32_t ossuary_set_secret_key(OssuaryConnection *conn, const uint8_t key[32]) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_set_secret_key(conn, key)) : OSSUARY_ERR_OTHER;
}

int32_t ossuary_add_authorized_key(OssuaryConnection *conn, const uint8_t key[32]) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_add_authorized_key(conn, key)) : OSSUARY_ERR_OTHER;
}

int32_t ossuary_add_authorized_keys(OssuaryConnection *conn, uint8_t *key[], uint8_t count) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_add_authorized_keys(conn, key, count)) : OSSUARY_ERR_OTHER;
}

int32_t ossuary_remote_public_key(OssuaryConnection *conn, uint8_t *key_buf, uint16_t key_buf_len) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_remote_public_key(conn, key_buf, key_buf_len))
                           : OSSUARY_ERR_OTHER;
}

int32_t ossuary_recv_handshake(OssuaryConnection *conn, uint8_t *in_buf, uint16_t *in_buf_len) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_recv_handshake(conn, in_buf, in_buf_len))
                           : refuse(in_buf_len, NULL);
}

int32_t ossuary_send_handshake(OssuaryConnection *conn, uint8_t *out_buf, uint16_t *out_buf_len) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_send_handshake(conn, out_buf, out_buf_len))
                           : refuse(out_buf_len, NULL);
}

int32_t ossuary_handshake_done(OssuaryConnection *conn) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_handshake_done(conn)) : OSSUARY_ERR_OTHER;
}

int32_t ossuary_send_data(OssuaryConnection *conn, uint8_t *in_buf, uint16_t in_buf_len,
                          uint8_t *out_buf, uint16_t *out_buf_len) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_send_data(conn, in_buf, in_buf_len, out_buf, out_buf_len))
                           : refuse(out_buf_len, NULL);
}

int32_t ossuary_recv_data(OssuaryConnection *conn, uint8_t *in_buf, uint16_t *in_buf_len,
                          uint8_t *out_buf, uint16_t *out_buf_len) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_recv_data(conn, in_buf, in_buf_len, out_buf, out_buf_len))
                           : refuse(in_buf_len, out_buf_len);
}

int32_t ossuary_flush(OssuaryConnection *conn, uint8_t *out_buf, uint16_t out_buf_len) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_flush(conn, out_buf, out_buf_len)) : OSSUARY_ERR_OTHER;
}

int32_t ossuary_disconnect(OssuaryConnection *conn, uint8_t error) {
  return runtime_running() ? GATED(int32_t, dotnet_ossuary_disconnect(conn, error)) : OSSUARY_ERR_OTHER;
}

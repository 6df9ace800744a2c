/*
 * The library's fork handlers (native/fork_gate.c) cannot be set up: the calls that make something
 * (ossuary_create_connection, ossuary_generate_auth_keypair) must fail, the library must say why
 * on stderr, and once the cause is gone the next call must set them up and succeed.
 *
 *   fork_gate_setup keys    every pthread key taken but one before the first call: the .NET
 *                           runtime takes that one as it starts, and the library's own
 *                           pthread_key_create fails (EAGAIN), as in a program that uses them all.
 *                           The keys are then given back.
 *   fork_gate_setup atfork  pthread_atfork fails (ENOMEM), through this program's
 *                           __register_atfork (what pthread_atfork calls, in glibc's
 *                           libc_nonshared.a): glibc makes it fail only when it has no memory
 *                           for one more handler. It then goes through.
 *   fork_gate_setup concurrent
 *                           one thread's first call is held inside pthread_atfork (200 ms) while
 *                           the main thread makes its own first call: it must wait for that
 *                           set-up and succeed, not fail without a word because another thread
 *                           was at it (two threads' first calls meet there as the runtime's
 *                           start releases them together).
 *   fork_gate_setup stalled the same, held 1.5 s: past its 1 s wait the main thread's call fails
 *                           and says why; its next call, once the other's set-up is done, succeeds.
 *
 * ForkGateSetupTests reads the reason on stderr. Prints "ok fork_gate_setup"; exits non-zero on a
 * failed expectation.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

static int refuse_atfork;
static int atfork_refused;
static int atfork_registered;
static int hold_atfork_ms;
static int atfork_held;

int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso);

int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso) {
  static int (*real)(void (*)(void), void (*)(void), void (*)(void), void *);
  if (refuse_atfork) {
    atfork_refused++;
    return ENOMEM;
  }
  if (real == NULL) {
    real = (int (*)(void (*)(void), void (*)(void), void (*)(void), void *))dlsym(RTLD_NEXT, "__register_atfork");
  }
  if (hold_atfork_ms > 0) {
    __atomic_store_n(&atfork_held, 1, __ATOMIC_SEQ_CST);
    usleep((useconds_t)hold_atfork_ms * 1000);
  }
  atfork_registered++;
  return real(prepare, parent, child, dso);
}

/* The library refuses to make anything: NULL and -1. */
static int refused(void) {
  uint8_t secret[32], public_key[32];
  EXPECT(ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL) == NULL, "a connection without fork handlers");
  EXPECT(ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) == OSSUARY_ERR_OTHER,
         "a key pair without fork handlers");
  return 0;
}

/* The library works again, and a child made by fork() can use what the parent made. */
static int recovered(void) {
  uint8_t secret[32], public_key[32];
  EXPECT(ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) == 0, "a key pair");
  OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER, secret);
  EXPECT(conn != NULL, "a connection once the cause is gone");
  fflush(stdout);
  pid_t pid = fork();
  EXPECT(pid >= 0, "fork");
  if (pid == 0) {
    _exit(ossuary_handshake_done(conn) == 0 ? 0 : 1);
  }
  int status;
  EXPECT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's call");
  ossuary_destroy_connection(&conn);
  return 0;
}

static int keys(void) {
  static pthread_key_t taken[PTHREAD_KEYS_MAX];
  int count = 0;
  while (count < PTHREAD_KEYS_MAX && pthread_key_create(&taken[count], NULL) == 0) {
    count++;
  }
  EXPECT(count > 1, "only %d pthread keys", count);
  EXPECT(pthread_key_delete(taken[--count]) == 0, "a key for the runtime");
  if (refused() != 0) {
    return 1;
  }
  while (count > 0) {
    EXPECT(pthread_key_delete(taken[--count]) == 0, "giving the keys back");
  }
  return recovered();
}

static int atfork(void) {
  refuse_atfork = 1;
  if (refused() != 0) {
    return 1;
  }
  EXPECT(atfork_refused >= 2, "pthread_atfork was tried %d time(s): once as the library started, again at each call", atfork_refused);
  refuse_atfork = 0;
  if (recovered() != 0 || recovered() != 0) {
    return 1;
  }
  EXPECT(atfork_registered == 1, "the handlers were registered %d times", atfork_registered);
  return 0;
}

static void *first_call(void *result) {
  *(OssuaryConnection **)result = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  return NULL;
}

/* Another thread's first call is held inside pthread_atfork for `hold_ms` while this thread makes its first call. */
static int concurrent(int hold_ms) {
  hold_atfork_ms = hold_ms;
  OssuaryConnection *theirs = NULL;
  pthread_t other;
  EXPECT(pthread_create(&other, NULL, first_call, &theirs) == 0, "a thread for the other first call");
  for (int waited_ms = 0; !__atomic_load_n(&atfork_held, __ATOMIC_SEQ_CST); waited_ms++) {
    EXPECT(waited_ms < 30 * 1000, "the other thread's first call never reached pthread_atfork");
    usleep(1000);
  }
  uint8_t secret[32], public_key[32];
  int ours = ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key));
  EXPECT(pthread_join(other, NULL) == 0, "joining the other thread");
  if (hold_ms > 1000) {
    EXPECT(ours == OSSUARY_ERR_OTHER, "a key pair made while another thread's set-up stalled past the wait: %d", ours);
    ours = ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key));
  }
  EXPECT(ours == 0, "a key pair made once another thread set up the fork handlers: %d", ours);
  EXPECT(theirs != NULL, "the other thread's connection");
  EXPECT(atfork_registered == 1, "the handlers were registered %d times", atfork_registered);
  ossuary_destroy_connection(&theirs);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  int failed = strcmp(mode, "keys") == 0     ? keys()
               : strcmp(mode, "atfork") == 0 ? atfork()
               : strcmp(mode, "concurrent") == 0 ? concurrent(200)
               : strcmp(mode, "stalled") == 0    ? concurrent(1500)
                                                 : 2;
  if (failed == 0) {
    printf("ok fork_gate_setup\n");
  }
  return failed;
}

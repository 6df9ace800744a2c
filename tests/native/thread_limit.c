/*
 * The library's first call when no thread can be created: it must fail, not abort the program.
 *
 * The .NET runtime starts in the first call and needs a thread for that; without one it used to
 * print "Fatal error. .NET runtime failed to initialize." and abort() the host. A child process
 * sets RLIMIT_NPROC to 0 (after giving up root, which the limit does not bind) and checks that
 * thread creation really fails there, that ossuary_create_connection() returns NULL and
 * ossuary_generate_auth_keypair() -1, and that the calls a program makes when cleaning up after
 * that (destroy, handshake_done on the NULL it got) return normally. The parent, whose limit is
 * untouched, then makes a connection as usual.
 *
 * Prints "ok thread_limit"; exits non-zero on a failed expectation (the child's exit status or
 * signal is reported).
 */
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

/* nobody: RLIMIT_NPROC does not bind a process with CAP_SYS_RESOURCE or CAP_SYS_ADMIN. */
#define UNPRIVILEGED_ID 65534

static void *nothing(void *argument) { return argument; }

static int child(void) {
  if (geteuid() == 0) {
    EXPECT(setgroups(0, NULL) == 0 && setgid(UNPRIVILEGED_ID) == 0 && setuid(UNPRIVILEGED_ID) == 0, "giving up root");
  }
  struct rlimit limit;
  EXPECT(getrlimit(RLIMIT_NPROC, &limit) == 0, "getrlimit");
  limit.rlim_cur = 0;
  EXPECT(setrlimit(RLIMIT_NPROC, &limit) == 0, "setrlimit");

  /* Otherwise this test would prove nothing. */
  pthread_t thread;
  EXPECT(pthread_create(&thread, NULL, nothing, NULL) != 0, "a thread could still be created");

  OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(conn == NULL, "ossuary_create_connection returned a connection without a runtime");
  uint8_t secret[32], public_key[32];
  EXPECT(ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) == -1,
         "ossuary_generate_auth_keypair did not fail");
  EXPECT(ossuary_handshake_done(conn) == -1, "handshake_done on NULL");
  ossuary_destroy_connection(&conn);
  EXPECT(conn == NULL, "destroy");
  printf("child: refused without aborting\n");
  fflush(stdout);
  return 0;
}

int main(void) {
  fflush(stdout);
  pid_t pid = fork();
  EXPECT(pid >= 0, "fork");
  if (pid == 0) {
    _exit(child());
  }
  int status;
  EXPECT(waitpid(pid, &status, 0) == pid, "waitpid");
  EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child %s %d",
         WIFSIGNALED(status) ? "was killed by signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));

  OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(conn != NULL, "the parent's ossuary_create_connection");
  EXPECT(ossuary_handshake_done(conn) == 0, "a new connection is handshaking");
  ossuary_destroy_connection(&conn);
  printf("ok thread_limit\n");
  return 0;
}

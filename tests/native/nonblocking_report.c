/*
 * The library's one-line reason on stderr when stderr is non-blocking and full.
 *
 * When its first call cannot start (no thread for the runtime, or no libsodium) the library says
 * why on stderr, once per process: the C API can only return NULL. A program may have made its
 * stderr non-blocking (an event loop that set O_NONBLOCK on a pipe or terminal it shares with it),
 * and a logger reading that pipe may be behind: write(2) then fails with EAGAIN at once, and the
 * library gave up, so the only reason the program would ever get was lost.
 *
 * A child process points its stderr at a full, non-blocking pipe and has a second thread wait
 * until the first is either waiting for the pipe (in poll(2) or ppoll(2), read from
 * /proc/self/task/TID/syscall, no timing) or back from its call, then drain the pipe to its end;
 * the line must be in what it drained.
 *
 *   nonblocking_report thread    the first call in a child that can create no thread (RLIMIT_NPROC 0)
 *   nonblocking_report sodium    the first call of a program whose library has no libsodium.so beside it
 *
 * Prints "ok nonblocking_report"; exits non-zero on a failed expectation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

/* nobody: RLIMIT_NPROC does not bind a process with CAP_SYS_RESOURCE or CAP_SYS_ADMIN. */
#define UNPRIVILEGED_ID 65534

static pid_t caller_tid;
static int drain_end;
static char drained[1 << 18];
static size_t drained_len;
static int drainer_failed;
static volatile int call_returned;

/* 1 when the calling thread waits in poll(2) or ppoll(2), 0 when not (yet), -1 if that cannot be told. */
static int waiting_in_poll(void) {
  char path[64], text[256];
  snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)caller_tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    return -1;
  }
  ssize_t n = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (n <= 0) {
    return 0;
  }
  text[n] = '\0';
  long number = strtol(text, NULL, 10);
  return number == SYS_poll || number == SYS_ppoll;
}

static void *drainer(void *argument) {
  int waiting;
  while ((waiting = waiting_in_poll()) == 0 && !call_returned) {
    sched_yield();
  }
  if (waiting < 0) {
    drainer_failed = 1;
  }
  /* Everything the pipe held, then whatever the caller writes until it closes its end. */
  for (;;) {
    ssize_t n = read(drain_end, drained + drained_len, sizeof(drained) - 1 - drained_len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    drained_len += (size_t)n;
  }
  drained[drained_len] = '\0';
  return argument;
}

static void *nothing(void *argument) { return argument; }

static int child(int no_thread) {
  if (no_thread && geteuid() == 0) {
    EXPECT(setgroups(0, NULL) == 0 && setgid(UNPRIVILEGED_ID) == 0 && setuid(UNPRIVILEGED_ID) == 0, "giving up root");
  }
  /* Giving up root made the process undumpable, which hides its /proc/self/task files from itself. */
  EXPECT(prctl(PR_SET_DUMPABLE, 1) == 0, "dumpable");

  /* stderr: a non-blocking pipe with no room left. */
  int ends[2];
  EXPECT(pipe(ends) == 0, "pipe");
  drain_end = ends[0];
  EXPECT(fcntl(ends[1], F_SETFL, O_NONBLOCK) == 0, "non-blocking");
  static char filler[4096];
  memset(filler, '.', sizeof(filler));
  while (write(ends[1], filler, sizeof(filler)) > 0) {
  }
  while (write(ends[1], filler, 1) > 0) {
  }
  int saved_stderr = dup(STDERR_FILENO);
  EXPECT(saved_stderr >= 0 && dup2(ends[1], STDERR_FILENO) == STDERR_FILENO, "dup2");

  caller_tid = (pid_t)syscall(SYS_gettid);
  pthread_t thread;
  EXPECT(pthread_create(&thread, NULL, drainer, NULL) == 0, "the draining thread");

  if (no_thread) {
    struct rlimit limit;
    EXPECT(getrlimit(RLIMIT_NPROC, &limit) == 0, "getrlimit");
    limit.rlim_cur = 0;
    EXPECT(setrlimit(RLIMIT_NPROC, &limit) == 0, "setrlimit");
    pthread_t probe;
    EXPECT(pthread_create(&probe, NULL, nothing, NULL) != 0, "a thread could still be created");
  }

  OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  call_returned = 1;
  /* The program's stderr back (closing the pipe's copy), then the pipe's last end: the drain ends. */
  dup2(saved_stderr, STDERR_FILENO);
  close(ends[1]);
  pthread_join(thread, NULL);
  EXPECT(conn == NULL, "ossuary_create_connection returned a connection");
  EXPECT(!drainer_failed, "cannot read /proc/self/task/%d/syscall", (int)caller_tid);
  /* Without libsodium: "cannot load libsodium", or "libsodium could not be started" where the
     system has one too old for the library. */
  const char *said = strstr(drained, "libossuary: ");
  const char *expected = no_thread ? "libossuary: cannot start the .NET runtime" : "libsodium";
  EXPECT(said != NULL && strstr(said, expected) != NULL, "the reason was lost; the pipe held %zu bytes after the filler: \"%s\"",
         drained_len - strspn(drained, "."), drained + strspn(drained, "."));
  return 0;
}

int main(int argc, char **argv) {
  int no_thread = argc > 1 && strcmp(argv[1], "thread") == 0;
  fflush(stdout);
  pid_t pid = fork();
  EXPECT(pid >= 0, "fork");
  if (pid == 0) {
    _exit(child(no_thread));
  }
  int status;
  EXPECT(waitpid(pid, &status, 0) == pid, "waitpid");
  EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child %s %d",
         WIFSIGNALED(status) ? "was killed by signal" : "exited with", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  printf("ok nonblocking_report\n");
  return 0;
}

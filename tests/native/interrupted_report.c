/*
 * The library's one-line reason on stderr, written while a signal interrupts the write.
 *
 * When its first call cannot start (no thread for the runtime, or no libsodium) the library says
 * why on stderr, once per process: the C API can only return NULL. stderr may be a pipe to a
 * logger that is behind, so the write blocks, and a program's signal handler installed without
 * SA_RESTART (a timer, SIGCHLD) then makes it fail with EINTR before a byte went out: the reason
 * was lost for good, since it is said only once.
 *
 * A child process points its stderr at a full pipe, has a second thread wait until the first is
 * blocked in write(2, ...) (read from /proc/self/task/TID/syscall, no timing), interrupt it with
 * a signal whose handler does not restart calls, wait for the handler to have run (the write has
 * returned by then), then drain the pipe to its end; the line must be in what it drained.
 *
 *   interrupted_report thread    the first call in a child that can create no thread (RLIMIT_NPROC 0)
 *   interrupted_report sodium    the first call of a program whose library has no libsodium.so beside it
 *
 * Prints "ok interrupted_report"; exits non-zero on a failed expectation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
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

static pthread_t caller;
static pid_t caller_tid;
static int drain_end;
static char drained[1 << 18];
static size_t drained_len;
static int interrupter_failed;
static volatile int call_returned; /* the call came back without writing: nothing to interrupt */

static volatile sig_atomic_t handled;

static void interrupted(int signal_number) {
  (void)signal_number;
  handled = 1;
}

/* 1 when the calling thread is blocked in write(2, ...), 0 when not (yet), -1 if that cannot be told. */
static int blocked_writing_stderr(void) {
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
  char expected[32];
  snprintf(expected, sizeof(expected), "%d 0x2 ", (int)SYS_write);
  return strncmp(text, expected, strlen(expected)) == 0;
}

static void *interrupter(void *argument) {
  int blocked;
  while ((blocked = blocked_writing_stderr()) == 0 && !call_returned) {
    sched_yield();
  }
  if (blocked == 0) {
    /* No write to interrupt (the library did not fail, or said nothing): the checks below say so. */
  } else if (blocked < 0) {
    interrupter_failed = 1;
  } else {
    pthread_kill(caller, SIGUSR1);
    /* The handler runs as the interrupted write returns: draining before that would let the write
       go through instead (the kernel copies into room it finds before it looks at the signal). */
    while (!handled) {
      sched_yield();
    }
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

  /* stderr: a pipe with no room left, blocking, as a logger that has fallen behind leaves it. */
  int ends[2];
  EXPECT(pipe(ends) == 0, "pipe");
  drain_end = ends[0];
  EXPECT(fcntl(ends[1], F_SETFL, O_NONBLOCK) == 0, "non-blocking to fill it");
  static char filler[4096];
  memset(filler, '.', sizeof(filler));
  while (write(ends[1], filler, sizeof(filler)) > 0) {
  }
  while (write(ends[1], filler, 1) > 0) {
  }
  EXPECT(fcntl(ends[1], F_SETFL, 0) == 0, "blocking again");
  int saved_stderr = dup(STDERR_FILENO);
  EXPECT(saved_stderr >= 0 && dup2(ends[1], STDERR_FILENO) == STDERR_FILENO, "dup2");

  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = interrupted; /* no SA_RESTART: an interrupted write fails with EINTR */
  EXPECT(sigaction(SIGUSR1, &action, NULL) == 0, "sigaction");

  caller = pthread_self();
  caller_tid = (pid_t)syscall(SYS_gettid);
  pthread_t thread;
  EXPECT(pthread_create(&thread, NULL, interrupter, NULL) == 0, "the interrupting thread");

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
  EXPECT(!interrupter_failed, "cannot read /proc/self/task/%d/syscall", (int)caller_tid);
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
  printf("ok interrupted_report\n");
  return 0;
}

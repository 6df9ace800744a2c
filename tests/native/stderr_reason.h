/*
 * What interrupted_report.c and nonblocking_report.c share: a child process whose first library
 * call cannot start (no thread for the runtime, or no libsodium) while its stderr is a full pipe,
 * and a second thread that watches the calling thread in /proc (no timing), then drains the pipe;
 * the library's one-line reason must be in what it drained. Each program says what the watching
 * thread waits for and does before it drains. Header-only, as test_support.h.
 */
#ifndef OSSUARY_STDERR_REASON_H
#define OSSUARY_STDERR_REASON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
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

static pid_t caller_tid;
static int drain_end;
static char drained[1 << 18];
static size_t drained_len;
static volatile int call_returned; /* the call came back: nothing more to wait for */

/*
 * The calling thread's line of /proc/self/task/TID/syscall (the system call's number, then its
 * arguments) in text: 1 when read, 0 when it is in none (yet), -1 if it cannot be told.
 */
static int caller_syscall(char *text, size_t size) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)caller_tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    return -1;
  }
  ssize_t n = read(fd, text, size - 1);
  close(fd);
  if (n <= 0) {
    return 0;
  }
  text[n] = '\0';
  return 1;
}

/* Everything the pipe held, then whatever the caller writes until it closes its end. */
static void drain_to_end(void) {
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
}

static void *nothing(void *argument) { return argument; }

/*
 * The child's set-up up to the call: unprivileged where RLIMIT_NPROC is to bind, stderr a full pipe
 * (left non-blocking or made blocking again), the watching thread started. *saved_stderr and
 * *write_end are for finish_call().
 */
static int start_watched_call(int no_thread, int nonblocking, void *(*watch)(void *), pthread_t *watcher,
                              int *saved_stderr, int *write_end) {
  if (no_thread && geteuid() == 0) {
    EXPECT(setgroups(0, NULL) == 0 && setgid(UNPRIVILEGED_ID) == 0 && setuid(UNPRIVILEGED_ID) == 0, "giving up root");
  }
  /* Giving up root made the process undumpable, which hides its /proc/self/task files from itself. */
  EXPECT(prctl(PR_SET_DUMPABLE, 1) == 0, "dumpable");

  int ends[2];
  EXPECT(pipe(ends) == 0, "pipe");
  drain_end = ends[0];
  *write_end = ends[1];
  EXPECT(fcntl(ends[1], F_SETFL, O_NONBLOCK) == 0, "non-blocking to fill it");
  static char filler[4096];
  memset(filler, '.', sizeof(filler));
  while (write(ends[1], filler, sizeof(filler)) > 0) {
  }
  while (write(ends[1], filler, 1) > 0) {
  }
  if (!nonblocking) {
    EXPECT(fcntl(ends[1], F_SETFL, 0) == 0, "blocking again");
  }
  *saved_stderr = dup(STDERR_FILENO);
  EXPECT(*saved_stderr >= 0 && dup2(ends[1], STDERR_FILENO) == STDERR_FILENO, "dup2");

  caller_tid = (pid_t)syscall(SYS_gettid);
  EXPECT(pthread_create(watcher, NULL, watch, NULL) == 0, "the watching thread");

  if (no_thread) {
    struct rlimit limit;
    EXPECT(getrlimit(RLIMIT_NPROC, &limit) == 0, "getrlimit");
    limit.rlim_cur = 0;
    EXPECT(setrlimit(RLIMIT_NPROC, &limit) == 0, "setrlimit");
    pthread_t probe;
    EXPECT(pthread_create(&probe, NULL, nothing, NULL) != 0, "a thread could still be created");
  }
  return 0;
}

/* The call, then the drain's end, then the reason in what was drained. */
static int finish_call(int no_thread, pthread_t watcher, int saved_stderr, int write_end, const volatile int *watcher_failed) {
  OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  call_returned = 1;
  /* The program's stderr back (closing the pipe's copy), then the pipe's last end: the drain ends. */
  dup2(saved_stderr, STDERR_FILENO);
  close(write_end);
  pthread_join(watcher, NULL);
  EXPECT(conn == NULL, "ossuary_create_connection returned a connection");
  EXPECT(!*watcher_failed, "cannot read /proc/self/task/%d/syscall", (int)caller_tid);
  /* Without libsodium: "cannot load libsodium", or "libsodium could not be started" where the
     system has one too old for the library. */
  const char *said = strstr(drained, "libossuary: ");
  const char *expected = no_thread ? "libossuary: cannot start the .NET runtime" : "libsodium";
  EXPECT(said != NULL && strstr(said, expected) != NULL, "the reason was lost; the pipe held %zu bytes after the filler: \"%s\"",
         drained_len - strspn(drained, "."), drained + strspn(drained, "."));
  return 0;
}

/* main(): the scenario ("thread" or "sodium") in a child process, which must exit 0. */
static int run_in_child(int argc, char **argv, int (*child)(int no_thread), const char *name) {
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
  printf("ok %s\n", name);
  return 0;
}

#endif

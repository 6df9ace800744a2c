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
#include <signal.h>

#include "stderr_reason.h"

static pthread_t caller;
static int interrupter_failed;
static volatile sig_atomic_t handled;

static void interrupted(int signal_number) {
  (void)signal_number;
  handled = 1;
}

/* 1 when the calling thread is blocked in write(2, ...), 0 when not (yet), -1 if that cannot be told. */
static int blocked_writing_stderr(void) {
  char text[256];
  int known = caller_syscall(text, sizeof(text));
  if (known <= 0) {
    return known;
  }
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
    /* No write to interrupt (the library did not fail, or said nothing): the checks after the call say so. */
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
  drain_to_end();
  return argument;
}

/* stderr: a pipe with no room left, blocking, as a logger that has fallen behind leaves it. */
static int child(int no_thread) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = interrupted; /* no SA_RESTART: an interrupted write fails with EINTR */
  EXPECT(sigaction(SIGUSR1, &action, NULL) == 0, "sigaction");
  caller = pthread_self();

  pthread_t thread;
  int saved_stderr, write_end;
  if (start_watched_call(no_thread, 0, interrupter, &thread, &saved_stderr, &write_end) != 0) {
    return 1;
  }
  return finish_call(no_thread, thread, saved_stderr, write_end, &interrupter_failed);
}

int main(int argc, char **argv) { return run_in_child(argc, argv, child, "interrupted_report"); }

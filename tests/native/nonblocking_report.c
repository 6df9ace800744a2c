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
#include "stderr_reason.h"

static int drainer_failed;

/* 1 when the calling thread waits in poll(2) or ppoll(2), 0 when not (yet), -1 if that cannot be told. */
static int waiting_in_poll(void) {
  char text[256];
  int known = caller_syscall(text, sizeof(text));
  if (known <= 0) {
    return known;
  }
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
  drain_to_end();
  return argument;
}

/* stderr: a non-blocking pipe with no room left. */
static int child(int no_thread) {
  pthread_t thread;
  int saved_stderr, write_end;
  if (start_watched_call(no_thread, 1, drainer, &thread, &saved_stderr, &write_end) != 0) {
    return 1;
  }
  return finish_call(no_thread, thread, saved_stderr, write_end, &drainer_failed);
}

int main(int argc, char **argv) { return run_in_child(argc, argv, child, "nonblocking_report"); }

/*
 * fork() while other threads are making their first call into the library: the child must find
 * the library usable.
 *
 * A thread's first call attaches it to the .NET runtime (it joins the runtime's list of threads),
 * and every call enters the runtime's cooperative mode on its way in; both come before the call's
 * own code. Three threads keep starting threads that make one call each and then wait for ever
 * (they never leave, so only the attach and the call are in play), while the main thread forks,
 * again and again. Each child starts a thread of its own that calls in (an attach, which walks the
 * runtime's thread list) and then makes and destroys enough connections for the runtime to
 * collect garbage (which needs every thread the runtime knows to be outside managed code). A
 * child that inherited a thread half attached or inside the runtime crashes or hangs (its alarm
 * ends it); the parent counts them.
 *
 * Prints "ok fork_during_first_call"; exits non-zero on a failed expectation.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

#define FORKS 200
#define STARTERS 3
/* Threads started in all, a bound on what the parked threads hold (64 KiB of stack each). */
#define MOST_THREADS 6000
/* Only a child that hangs meets it: each finishes in well under a second, however loaded the machine. */
#define CHILD_LIMIT_SECONDS 30

static OssuaryConnection *shared_conn;
static volatile int stop;
static int started;

static void *first_call_then_park(void *unused) {
  (void)unused;
  ossuary_handshake_done(shared_conn);
  for (;;) {
    pause();
  }
  return NULL;
}

static void *first_call(void *unused) {
  (void)unused;
  return ossuary_handshake_done(shared_conn) == 0 ? NULL : (void *)1;
}

/* Starts threads that make their first call, one after another, until told to stop. */
static void *starter(void *unused) {
  (void)unused;
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, 1 << 16);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  while (!stop && __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST) <= MOST_THREADS) {
    pthread_t thread;
    if (pthread_create(&thread, &attributes, first_call_then_park, NULL) != 0) {
      break;
    }
    /* Let the thread get going before the next: one start at a time per starter. */
    sched_yield();
  }
  pthread_attr_destroy(&attributes);
  return NULL;
}

/* The child's part: a new thread's first call, then enough garbage for a collection. */
static int child(void) {
  alarm(CHILD_LIMIT_SECONDS);
  pthread_t thread;
  void *failed = (void *)1;
  EXPECT(pthread_create(&thread, NULL, first_call, NULL) == 0 && pthread_join(thread, &failed) == 0, "a new thread");
  EXPECT(failed == NULL, "a new thread's first call in the child");
  for (int i = 0; i < 300; i++) {
    OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
    EXPECT(conn != NULL, "created");
    uint8_t out[512];
    uint16_t out_len = sizeof(out);
    EXPECT(ossuary_send_handshake(conn, out, &out_len) == 0, "a server has nothing to say first");
    ossuary_destroy_connection(&conn);
  }
  return 0;
}

static int fork_during_first_call(void) {
  shared_conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(shared_conn != NULL, "created");
  pthread_t starters[STARTERS];
  for (int i = 0; i < STARTERS; i++) {
    EXPECT(pthread_create(&starters[i], NULL, starter, NULL) == 0, "starter");
  }

  int hung = 0, crashed = 0, failed = 0, forks = 0;
  for (; forks < FORKS && hung == 0; forks++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    EXPECT(pid >= 0, "fork");
    if (pid == 0) {
      _exit(child());
    }
    int status;
    EXPECT(waitpid(pid, &status, 0) == pid, "waitpid");
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      hung++; /* one is enough, and each costs the whole limit */
    } else if (WIFSIGNALED(status)) {
      crashed++;
      fprintf(stderr, "child %d: signal %d\n", forks, WTERMSIG(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failed++;
    }
  }
  stop = 1;
  for (int i = 0; i < STARTERS; i++) {
    EXPECT(pthread_join(starters[i], NULL) == 0, "join");
  }
  EXPECT(hung == 0 && crashed == 0 && failed == 0,
         "of %d children forked while threads made their first call, %d hung, %d crashed and %d failed", forks, hung,
         crashed, failed);
  return 0;
}

int main(void) {
  if (fork_during_first_call() != 0) {
    printf("failed fork_during_first_call\n");
    return 1;
  }
  printf("ok fork_during_first_call\n");
  return 0;
}

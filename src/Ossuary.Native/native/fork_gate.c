/*
 * Keeps fork() from copying a call in progress into the child: a pthread_atfork handler makes
 * fork wait until no other thread is inside a call of the C API, and holds calls that start
 * meanwhile until the fork is done, as glibc's malloc does with its arenas.
 *
 * fork() copies only the thread that calls it. A call under way on another thread holds its
 * connection's lock and runs managed code, so in the child that lock was held for ever by a thread
 * that does not exist (the next call on the connection never returned). Every entry point counts
 * itself in and out; the cost is two atomic operations and two pthread_setspecific() per call.
 *
 * In C, not in .NET: the handlers run on whichever thread forks, often one that never called the
 * library, and the child handler runs in the child. .NET code entered there first waits for any
 * garbage collection under way, and in the child the thread collecting does not exist: a fork
 * made while the runtime's finalizer thread collected (as it does on a full heap, giving caches
 * back) would leave a child that never returns from its fork(), and a parent waiting for it. When
 * the handlers were .NET code, HeapFullTests' fork_from_another_thread hung past 120 s in 3 of
 * about 8 full test runs; the cause was never caught in the act (none in 105 runs of the program
 * alone, under load), and this is the one way found for the handlers to wait on something that
 * the fork leaves behind. Here nothing of the runtime's is touched, and nothing is allocated.
 */
#include "fork_gate.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

enum { NOT_SET_UP, SETTING_UP, READY };

/* Calls under way, each counted once on its thread (a nested one, from a signal handler, is not counted again). */
static int calls_inside;

/* Forks under way (several threads may fork at once): while above zero, calls wait to start. */
static int forks;

/*
 * Each thread's depth in calls of the C API: 0 outside, 1 inside one, more when a signal handler
 * called in again. A pthread key, whose value needs no allocation for the first 32 keys (glibc
 * keeps them in the thread), not a thread_local, which glibc allocates for a library loaded by
 * dlopen() at the thread's first use: in a fork handler, on a thread that never called in.
 */
static pthread_key_t depth_key;
static int depth_kept;

/* pthread_atfork() cannot take handlers back: never registered twice. */
static int handlers_registered;

static int state = NOT_SET_UP;

static intptr_t depth(void) {
  return __atomic_load_n(&depth_kept, __ATOMIC_ACQUIRE) ? (intptr_t)pthread_getspecific(depth_key) : 0;
}

/* 0 when the depth could not be kept (no key, or no memory for this thread's value of it). */
static int set_depth(intptr_t value) {
  return __atomic_load_n(&depth_kept, __ATOMIC_ACQUIRE) && pthread_setspecific(depth_key, (void *)value) == 0;
}

static void prepare(void) {
  __atomic_add_fetch(&forks, 1, __ATOMIC_SEQ_CST);
  /* A signal handler that forks while its thread is inside a call cannot wait for that call. */
  int own = depth() > 0 ? 1 : 0;
  while (__atomic_load_n(&calls_inside, __ATOMIC_SEQ_CST) > own) {
    sched_yield();
  }
}

static void after_in_parent(void) { __atomic_sub_fetch(&forks, 1, __ATOMIC_SEQ_CST); }

/* The child has only this thread: no other call is under way, and no other fork. */
static void after_in_child(void) {
  __atomic_store_n(&calls_inside, depth() > 0 ? 1 : 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&forks, 0, __ATOMIC_SEQ_CST);
}

int fork_gate_is_set_up(void) { return __atomic_load_n(&state, __ATOMIC_ACQUIRE) == READY; }

/* How long a thread waits for another one's set-up: two calls, microseconds unless a fork copied it half done. */
static const long longest_wait_ns = 1000L * 1000 * 1000;

static long nanoseconds_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1000L * 1000 * 1000 + (now.tv_nsec - start->tv_nsec);
}

/*
 * Both steps fail only for want of something the program may free (pthread_key_create: EAGAIN,
 * every key taken; pthread_atfork: ENOMEM), hence a try at each call until they succeed. A thread
 * that finds another one trying waits for it, as its first call would otherwise fail for no reason
 * of its own (two threads' first calls meet here as the runtime's start releases them together).
 * The wait is bounded and takes no lock: a fork during the try copies SETTING_UP into a child that
 * lacks the thread at it, and a lock would be held there for ever.
 */
int fork_gate_set_up(const char **failed, int *error) {
  *failed = NULL;
  *error = 0;
  if (fork_gate_is_set_up()) {
    return 1; /* every call after the first: a load, not the exchange's locked write */
  }
  struct timespec waiting_since;
  int waiting = 0;
  for (;;) {
    int expected = NOT_SET_UP;
    if (__atomic_compare_exchange_n(&state, &expected, SETTING_UP, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      break;
    }
    if (expected == READY) {
      return 1;
    }
    if (!waiting) {
      clock_gettime(CLOCK_MONOTONIC, &waiting_since);
      waiting = 1;
    } else if (nanoseconds_since(&waiting_since) > longest_wait_ns) {
      *error = ETIMEDOUT;
      return 0;
    }
    sched_yield();
  }
  if (!__atomic_load_n(&depth_kept, __ATOMIC_ACQUIRE)) {
    *error = pthread_key_create(&depth_key, NULL);
    if (*error == 0) {
      __atomic_store_n(&depth_kept, 1, __ATOMIC_RELEASE);
    } else {
      *failed = "pthread_key_create";
    }
  }
  if (*error == 0 && !handlers_registered) {
    *error = pthread_atfork(prepare, after_in_parent, after_in_child);
    handlers_registered = *error == 0;
    *failed = *error == 0 ? NULL : "pthread_atfork";
  }
  __atomic_store_n(&state, *error == 0 ? READY : NOT_SET_UP, __ATOMIC_RELEASE);
  return *error == 0;
}

int fork_gate_enter(void) {
  intptr_t outer = depth();
  /* A depth that could not be kept is not taken back either (fork_gate_leave): a thread whose depth
     went below zero would never count its calls again, and forks would stop waiting for them. */
  int kept = set_depth(outer + 1);
  int outermost = outer == 0;
  if (outermost) {
    for (;;) {
      __atomic_add_fetch(&calls_inside, 1, __ATOMIC_SEQ_CST);
      if (__atomic_load_n(&forks, __ATOMIC_SEQ_CST) == 0) {
        break;
      }
      /* A fork began: step out of its way until it is done. */
      __atomic_sub_fetch(&calls_inside, 1, __ATOMIC_SEQ_CST);
      while (__atomic_load_n(&forks, __ATOMIC_SEQ_CST) != 0) {
        sched_yield();
      }
    }
  }
  return (outermost ? 1 : 0) | (kept ? 2 : 0);
}

void fork_gate_leave(int entered) {
  if (entered & 2) {
    set_depth(depth() - 1);
  }
  if (entered & 1) {
    __atomic_sub_fetch(&calls_inside, 1, __ATOMIC_SEQ_CST);
  }
}

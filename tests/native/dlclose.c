/*
 * A program that loads libossuary with dlopen() and closes it with dlclose() once it is done with
 * it, as plugin hosts and language bindings do. The library holds the .NET runtime, whose own
 * thread (the finalizer's) and per-thread clean-up (run when a thread that called in exits) live
 * in the library's code: unmapped by dlclose(), a thread that had made a call crashed the host
 * as it exited. libossuary 0.5 survives this.
 *
 *   dlclose PATH_TO_LIBOSSUARY_SO
 *
 * A thread creates and destroys a connection and waits; the main thread closes the library, then
 * lets the thread exit. Prints "ok dlclose"; exits non-zero on a failed expectation.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

#include "ossuary.h"
#include "test_support.h"

static OssuaryConnection *(*create)(ossuary_conn_type_t, const uint8_t *);
static void (*destroy)(OssuaryConnection **);
static sem_t called, closed;
static int created;

static void *caller(void *unused) {
  (void)unused;
  OssuaryConnection *conn = create(OSSUARY_CONN_TYPE_CLIENT, NULL);
  created = conn != NULL;
  destroy(&conn);
  sem_post(&called);
  sem_wait(&closed);
  return NULL; /* the thread exits after the library was closed */
}

static int dlclose_scenario(const char *path) {
  void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  EXPECT(library != NULL, "dlopen: %s", dlerror());
  create = (OssuaryConnection * (*)(ossuary_conn_type_t, const uint8_t *)) dlsym(library, "ossuary_create_connection");
  destroy = (void (*)(OssuaryConnection **))dlsym(library, "ossuary_destroy_connection");
  EXPECT(create != NULL && destroy != NULL, "dlsym");
  EXPECT(sem_init(&called, 0, 0) == 0 && sem_init(&closed, 0, 0) == 0, "semaphores");
  pthread_t thread;
  EXPECT(pthread_create(&thread, NULL, caller, NULL) == 0, "thread");
  sem_wait(&called);
  EXPECT(created, "the thread created a connection");
  EXPECT(dlclose(library) == 0, "dlclose: %s", dlerror());
  sem_post(&closed);
  EXPECT(pthread_join(thread, NULL) == 0, "join");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: dlclose PATH_TO_LIBOSSUARY_SO\n");
    return 2;
  }
  if (dlclose_scenario(argv[1]) != 0) {
    printf("failed dlclose\n");
    return 1;
  }
  printf("ok dlclose\n");
  return 0;
}

/*
 * ossuary.h: handles are drawn from a permutation keyed afresh in each process, so another
 * process's handle names no connection here. A child made by fork() (a pre-forking server's
 * workers) inherits the parent's key and serial number: without a key of its own, every child
 * handed out the very handles its siblings and its parent handed out next.
 *
 * The parent starts the library and creates a connection, then forks two children; each creates
 * a connection, reports its handle through a pipe, and checks that its own connection and the
 * one it inherited both work. The parent then creates one more and compares the three handles.
 *
 * Prints "ok forked_handles"; exits non-zero on a failed expectation.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

/* The child's part: a new connection whose handle goes to the parent, and both connections usable. */
static int child(OssuaryConnection *inherited, int report) {
  OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(conn != NULL, "the child creates a connection");
  uintptr_t handle = (uintptr_t)conn;
  EXPECT(write(report, &handle, sizeof(handle)) == (ssize_t)sizeof(handle), "report");
  EXPECT(conn != inherited, "a new handle");
  uint8_t out[512];
  uint16_t out_len = sizeof(out);
  EXPECT(ossuary_send_handshake(conn, out, &out_len) == 92, "the child's connection works");
  out_len = sizeof(out);
  EXPECT(ossuary_send_handshake(inherited, out, &out_len) == 92, "so does the one it inherited");
  ossuary_destroy_connection(&conn);
  ossuary_destroy_connection(&inherited);
  return 0;
}

static int forked_handles(void) {
  OssuaryConnection *first = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(first != NULL, "created");
  uintptr_t handles[2];
  for (int i = 0; i < 2; i++) {
    int report[2];
    EXPECT(pipe(report) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    EXPECT(pid >= 0, "fork");
    if (pid == 0) {
      close(report[0]);
      _exit(child(first, report[1]));
    }
    close(report[1]);
    EXPECT(read(report[0], &handles[i], sizeof(handles[i])) == (ssize_t)sizeof(handles[i]), "child %d reported its handle", i);
    close(report[0]);
    int status;
    EXPECT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d succeeded", i);
  }
  OssuaryConnection *next = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(next != NULL, "created after the children");
  EXPECT(handles[0] != handles[1], "two children handed out the same handle %#llx", (unsigned long long)handles[0]);
  EXPECT(handles[0] != (uintptr_t)next && handles[1] != (uintptr_t)next,
         "a child handed out the parent's next handle %#llx", (unsigned long long)(uintptr_t)next);
  EXPECT(ossuary_handshake_done(first) == 0 && ossuary_handshake_done(next) == 0, "the parent's connections work");
  ossuary_destroy_connection(&first);
  ossuary_destroy_connection(&next);
  return 0;
}

int main(void) {
  if (forked_handles() != 0) {
    printf("failed forked_handles\n");
    return 1;
  }
  printf("ok forked_handles\n");
  return 0;
}

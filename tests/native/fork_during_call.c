/*
 * fork() while another thread is inside a call: the child must find the library usable.
 *
 * The child starts no thread: one that did (after a parent whose other threads had called in)
 * could hang or crash at its next garbage collection, on the runtime's records of the parent's
 * threads, which the library cannot remove (the README's fork() paragraph); that is documented
 * as unsupported, not checked here.
 *
 * A thread keeps sealing 16 KiB messages with ossuary_send_data() on one established connection
 * (each call holds the connection's lock while it encrypts) while the main thread forks, again
 * and again.
 * Each child calls on that same connection, which needs its lock, and then makes and destroys
 * enough connections for the runtime to collect garbage, which needs every thread the runtime
 * knows to be outside managed code. A child that finds the lock or the runtime held by a thread
 * that did not follow it into the child (fork copies only the calling thread) never returns: its
 * alarm ends it, and the parent reports it.
 *
 * Prints "ok fork_during_call"; exits non-zero on a failed expectation.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

#define FORKS 20
/* Only a child that hangs meets it: each finishes in milliseconds, however loaded the machine. */
#define CHILD_LIMIT_SECONDS 30

static OssuaryConnection *shared_conn;
static volatile int stop;
static volatile int calls;
static uint8_t key[32];

static void *caller(void *unused) {
  (void)unused;
  static uint8_t message[16384], packet[16384 + 28];
  while (!stop) {
    uint16_t packet_len = sizeof(packet);
    if (ossuary_send_data(shared_conn, message, sizeof(message), packet, &packet_len) != (int)sizeof(packet)) {
      fprintf(stderr, "FAIL: ossuary_send_data failed in the parent\n");
      _exit(2);
    }
    __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

/* Runs the handshake between two connections in this process, whole packets at a time. */
static int handshake(OssuaryConnection *client, OssuaryConnection *server) {
  OssuaryConnection *ends[2] = {client, server};
  for (int round = 0; round < 20; round++) {
    int client_done = ossuary_handshake_done(client);
    if (client_done == OSSUARY_ERR_UNTRUSTED_SERVER) {
      uint8_t server_key[32];
      EXPECT(ossuary_remote_public_key(client, server_key, sizeof(server_key)) == 0, "the server's key");
      EXPECT(ossuary_add_authorized_key(client, server_key) == 0, "trusted on first use");
    }
    if (client_done == 1 && ossuary_handshake_done(server) == 1) {
      return 0;
    }
    for (int i = 0; i < 2; i++) {
      uint8_t out[1024];
      uint16_t out_len = sizeof(out);
      EXPECT(ossuary_send_handshake(ends[i], out, &out_len) >= 0, "send_handshake");
      for (uint16_t at = 0; at < out_len;) {
        uint16_t in_len = (uint16_t)(out_len - at);
        EXPECT(ossuary_recv_handshake(ends[1 - i], out + at, &in_len) >= 0, "recv_handshake");
        at = (uint16_t)(at + in_len);
      }
    }
  }
  EXPECT(0, "the handshake did not finish");
}

/* The child's part: the connection the other thread was using, then enough garbage for a collection. */
static int child(void) {
  alarm(CHILD_LIMIT_SECONDS);
  EXPECT(ossuary_handshake_done(shared_conn) == 1, "the inherited connection answers");
  for (int i = 0; i < 1000; i++) {
    OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, key);
    EXPECT(conn != NULL, "created");
    uint8_t out[512];
    uint16_t out_len = sizeof(out);
    EXPECT(ossuary_send_handshake(conn, out, &out_len) == 92, "the child's connection works");
    ossuary_destroy_connection(&conn);
  }
  return 0;
}

static int fork_during_call(void) {
  uint8_t public_key[32];
  EXPECT(ossuary_generate_auth_keypair(key, sizeof(key), public_key, sizeof(public_key)) == 0, "key");
  shared_conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER, NULL);
  EXPECT(shared_conn != NULL && server != NULL, "created");
  EXPECT(ossuary_add_authorized_key(server, public_key) == 0 && ossuary_set_secret_key(shared_conn, key) == 0, "keys");
  EXPECT(handshake(shared_conn, server) == 0, "handshake");
  pthread_t thread;
  EXPECT(pthread_create(&thread, NULL, caller, NULL) == 0, "thread");
  while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) < 10) {
    usleep(100);
  }

  int hung = 0, failed = 0;
  for (int i = 0; i < FORKS; i++) {
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
      hung++;
      break; /* one is enough, and each costs the whole limit */
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failed++;
    }
  }
  stop = 1;
  EXPECT(pthread_join(thread, NULL) == 0, "join");
  EXPECT(hung == 0 && failed == 0, "of up to %d children forked while a thread was inside a call, %d hung and %d failed", FORKS, hung, failed);
  ossuary_destroy_connection(&shared_conn);
  ossuary_destroy_connection(&server);
  return 0;
}

int main(void) {
  if (fork_during_call() != 0) {
    printf("failed fork_during_call\n");
    return 1;
  }
  printf("ok fork_during_call\n");
  return 0;
}

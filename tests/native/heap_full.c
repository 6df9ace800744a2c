/*
 * The library when its managed heap is full, run under an address-space limit (ulimit -v, as
 * AddressSpaceLimitTests does), which makes the heap small enough to fill in a test.
 *
 *   heap_full fill       creates connections until ossuary_create_connection() returns NULL, as
 *                        ossuary.h promises when the library cannot make one; then destroys them
 *                        and runs a handshake over a fresh pair, to show the library recovered.
 *   heap_full recv_data  an established pair; the client's two messages wait for the server while
 *                        the heap is full, so the server's ossuary_recv_data() fails; the program
 *                        then frees the heap and carries on by ossuary.h's contract (drop exactly
 *                        *in_buf_len bytes, whatever the call returned), and both messages must
 *                        come out, intact and in order.
 *
 *   heap_full recv_handshake
 *                        a client with a key has sent its ClientAuthentication; the server takes its
 *                        header, then the rest with the heap full, so the server's ossuary_recv_handshake()
 *                        fails where it makes the client's key; the program frees the heap and hands
 *                        the same bytes in again, and the handshake must complete, the channel carrying
 *                        a message.
 *
 *   heap_full recv_server_handshake
 *                        the client takes the header of the server's ServerHandshake, then the rest with
 *                        the heap full, so its ossuary_recv_handshake() fails after the key agreement
 *                        (making the cipher for the agreed key, or the server's identity key); the program
 *                        frees the heap and hands the same bytes in again, and the handshake must
 *                        complete, the channel carrying a message.
 *
 *   heap_full thread_called_before
 *                        ossuary.h's advice for threads: a thread that made one call as it started, while
 *                        there was room and before the first connection existed
 *                        (ossuary_generate_auth_keypair(NULL, 0, NULL, 0)), calls again with the heap full,
 *                        and gets its answer; it ends only once the heap has been freed. A thread whose first call
 *                        comes with the heap full kills the program (SIGSEGV): the runtime cannot make the
 *                        thread's storage, and its out-of-memory path asks for that storage again, a
 *                        collection each time, until the stack runs out (with a 1 MiB stack in seconds;
 *                        with the default 8 MiB, after minutes). A thread that ends with the heap full
 *                        kills it too (SIGABRT, or a hang in collections), on the runtime's finalizer
 *                        thread, which needs memory to give the ended thread's id back.
 *
 *   heap_full fork_from_another_thread
 *                        a thread that never called the library forks with the heap full; the child
 *                        exits at once, and the fork must return. The library's fork handler ran .NET
 *                        code on that thread that read a thread static, whose storage the runtime then
 *                        made on the full heap, and its out-of-memory path asked for it again, a
 *                        collection each time: fork() did not return for minutes, then the stack ran out.
 *
 * Prints "ok NAME"; exits non-zero on a failed expectation.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

/* Far more connections than a heap under the test's limit holds: reaching it means NULL never came. */
#define MOST_CONNECTIONS 4000000
#define BIG_MESSAGE 16384
/*
 * The top-up ends after this many refused keys in a row. Not one: the library frees memory of its
 * own after the first refusal (caches given back on the finalizer thread, which the next collection
 * reclaims), and with a single refusal the call under test found room in 4 of 15 runs under load.
 * Each refusal costs a full collection, so the run stays short (none in 30 runs with 4 in a row).
 */
#define RUN_OF_REFUSALS 8
/* Bounds the top-up whatever the heap does: some 11,000 keys fill it under the test's limit. */
#define MOST_KEYS 1000000

static wire_t to_server, to_client;
static uint8_t scratch[65535];
static OssuaryConnection **fillers;
static size_t filler_count;

/* Runs both handshake loops until both ends are established; the client trusts the server on first use. */
static int handshake(OssuaryConnection *client, OssuaryConnection *server) {
  OssuaryConnection *ends[2] = {client, server};
  wire_t *in[2] = {&to_client, &to_server};
  wire_t *out[2] = {&to_server, &to_client};
  for (int round = 0; round < 50; round++) {
    int done[2];
    for (int i = 0; i < 2; i++) {
      done[i] = ossuary_handshake_done(ends[i]);
      if (done[i] == OSSUARY_ERR_UNTRUSTED_SERVER) {
        uint8_t key[32];
        EXPECT(ossuary_remote_public_key(ends[i], key, sizeof(key)) == 0, "server key");
        EXPECT(ossuary_add_authorized_key(ends[i], key) == 0, "trust the server");
      } else if (done[i] == 0) {
        uint16_t written = sizeof(scratch);
        EXPECT(ossuary_send_handshake(ends[i], scratch, &written) >= 0, "send_handshake");
        wire_push(out[i], scratch, written);
        if (in[i]->len > 0) {
          uint16_t consumed = (uint16_t)in[i]->len;
          EXPECT(ossuary_recv_handshake(ends[i], in[i]->data, &consumed) >= 0 || consumed > 0, "recv_handshake");
          wire_drop(in[i], consumed);
        }
      } else {
        EXPECT(done[i] == 1, "handshake failed: %d", done[i]);
      }
    }
    if (done[0] == 1 && done[1] == 1) {
      return 0;
    }
  }
  EXPECT(0, "no handshake in 50 rounds");
}

static int send_message(OssuaryConnection *from, wire_t *to, const uint8_t *message, uint16_t length) {
  uint16_t written = sizeof(scratch);
  EXPECT(ossuary_send_data(from, (uint8_t *)message, length, scratch, &written) == written, "send_data");
  wire_push(to, scratch, written);
  return 0;
}

/*
 * Fills the managed heap with connections; fails if NULL never comes (or the process dies first).
 * With top_up, then fills what a connection was too big for with trusted keys (a few dozen bytes
 * each) until RUN_OF_REFUSALS connections in a row could not take one more; fails if that does
 * not come within MOST_KEYS keys.
 */
static int fill_heap(int top_up) {
  fillers = malloc(MOST_CONNECTIONS * sizeof(*fillers));
  EXPECT(fillers != NULL, "malloc");
  filler_count = 0;
  while (filler_count < MOST_CONNECTIONS &&
         (fillers[filler_count] = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL)) != NULL) {
    filler_count++;
  }
  EXPECT(filler_count < MOST_CONNECTIONS, "ossuary_create_connection never returned NULL");
  EXPECT(filler_count > 0, "not even one connection");
  static const uint8_t key[32] = {9};
  size_t keys = 0, refused = 0;
  for (size_t i = 0; top_up && refused < RUN_OF_REFUSALS && keys < MOST_KEYS; i = (i + 1) % filler_count) {
    if (ossuary_add_authorized_key(fillers[i], key) == 0) {
      keys++;
      refused = 0;
    } else {
      refused++;
    }
  }
  EXPECT(!top_up || refused == RUN_OF_REFUSALS, "%zu keys added and still no run of refusals", keys);
  return 0;
}

static void free_heap(void) {
  for (size_t i = 0; i < filler_count; i++) {
    ossuary_destroy_connection(&fillers[i]);
  }
  free(fillers);
  fillers = NULL;
  filler_count = 0;
}

static int fill(void) {
  EXPECT(fill_heap(0) == 0, "filling the heap");
  printf("filled with %zu connections\n", filler_count);
  free_heap();

  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
  EXPECT(client != NULL && server != NULL, "no connection once the heap was freed");
  EXPECT(handshake(client, server) == 0, "handshake once the heap was freed");
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return 0;
}

static int recv_data(void) {
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
  EXPECT(client != NULL && server != NULL, "create");
  EXPECT(handshake(client, server) == 0, "handshake");

  static uint8_t big[BIG_MESSAGE];
  for (size_t i = 0; i < sizeof(big); i++) {
    big[i] = (uint8_t)(i * 7);
  }
  static const uint8_t small[] = "the message after";
  EXPECT(send_message(client, &to_server, big, sizeof(big)) == 0, "first message");
  EXPECT(send_message(client, &to_server, small, sizeof(small)) == 0, "second message");

  EXPECT(fill_heap(1) == 0, "filling the heap");
  static uint8_t message[BIG_MESSAGE];
  uint16_t consumed = (uint16_t)to_server.len;
  uint16_t length = sizeof(message);
  int rc = ossuary_recv_data(server, to_server.data, &consumed, message, &length);
  printf("with the heap full: %d, %u consumed, %u out\n", rc, consumed, length);
  /* Otherwise this test would prove nothing: the call must have met the full heap. */
  EXPECT(rc == OSSUARY_ERR_OTHER, "ossuary_recv_data succeeded with the heap full");
  EXPECT(length == 0, "a failed call wrote %u bytes of message", length);
  wire_drop(&to_server, consumed);
  free_heap();

  /* What a program does after a failure it may retry: go on with exactly the bytes it still holds. */
  const uint8_t *expected[2] = {big, small};
  uint16_t expected_length[2] = {sizeof(big), sizeof(small)};
  for (int i = 0; i < 2; i++) {
    consumed = (uint16_t)to_server.len;
    length = sizeof(message);
    rc = ossuary_recv_data(server, to_server.data, &consumed, message, &length);
    wire_drop(&to_server, consumed);
    EXPECT(rc > 0, "message %d: ossuary_recv_data returned %d (%u consumed, %u out)", i + 1, rc, consumed, length);
    EXPECT(length == expected_length[i] && memcmp(message, expected[i], length) == 0,
           "message %d differs: %u bytes, expected %u", i + 1, length, expected_length[i]);
  }
  EXPECT(to_server.len == 0, "%zu bytes left over", to_server.len);
  EXPECT(ossuary_handshake_done(server) == 1, "the channel is no longer up");
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return 0;
}

/*
 * Hands `receiver` the packet waiting on `wire` with the heap full: the header first, while there is room
 * (its packet buffer is made now), then the rest, which must fail (-1) having consumed nothing; then the
 * same bytes again once the heap is freed, retried a bounded number of times while the collector catches
 * up, as a program retries. Returns the last call's result; a reset, the defect, consumes the packet.
 */
static int recv_handshake_past_full_heap(OssuaryConnection *receiver, wire_t *wire) {
  uint16_t consumed = 8;
  EXPECT(ossuary_recv_handshake(receiver, wire->data, &consumed) == OSSUARY_ERR_WOULDBLOCK && consumed == 8, "header");
  wire_drop(wire, consumed);

  EXPECT(fill_heap(1) == 0, "filling the heap");
  consumed = (uint16_t)wire->len;
  int rc = ossuary_recv_handshake(receiver, wire->data, &consumed);
  printf("with the heap full: %d, %u consumed\n", rc, consumed);
  /* Otherwise this test would prove nothing: the call must have met the full heap. */
  EXPECT(rc == OSSUARY_ERR_OTHER, "ossuary_recv_handshake succeeded with the heap full");
  wire_drop(wire, consumed);
  free_heap();

  for (int attempt = 0; attempt < 10; attempt++) {
    consumed = (uint16_t)wire->len;
    rc = ossuary_recv_handshake(receiver, wire->data, &consumed);
    wire_drop(wire, consumed);
    if (rc != OSSUARY_ERR_OTHER || consumed != 0) {
      break;
    }
  }

  return rc;
}

static int recv_handshake(void) {
  uint8_t secret[32], public_key[32];
  EXPECT(ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) == 0, "key pair");
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, secret);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
  EXPECT(client != NULL && server != NULL, "create");

  /* The handshake until the client has handed out its ClientAuthentication, which the server has not read. */
  for (int round = 0;; round++) {
    EXPECT(round < 50, "the client never sent its ClientAuthentication");
    /* Asked once a round: OSSUARY_ERR_UNTRUSTED_SERVER comes once. */
    int done = ossuary_handshake_done(client);
    if (done == 1) {
      break;
    }
    if (done == OSSUARY_ERR_UNTRUSTED_SERVER) {
      uint8_t key[32];
      EXPECT(ossuary_remote_public_key(client, key, sizeof(key)) == 0, "server key");
      EXPECT(ossuary_add_authorized_key(client, key) == 0, "trust the server");
    }
    uint16_t written = sizeof(scratch);
    EXPECT(ossuary_send_handshake(client, scratch, &written) >= 0, "client send_handshake");
    wire_push(&to_server, scratch, written);
    if (ossuary_handshake_done(client) == 1) {
      break;
    }
    uint16_t consumed = (uint16_t)to_server.len;
    if (consumed > 0) {
      EXPECT(ossuary_recv_handshake(server, to_server.data, &consumed) >= 0, "server recv_handshake");
      wire_drop(&to_server, consumed);
    }
    written = sizeof(scratch);
    EXPECT(ossuary_send_handshake(server, scratch, &written) >= 0, "server send_handshake");
    wire_push(&to_client, scratch, written);
    consumed = (uint16_t)to_client.len;
    if (consumed > 0) {
      EXPECT(ossuary_recv_handshake(client, to_client.data, &consumed) >= 0 || consumed > 0, "client recv_handshake");
      wire_drop(&to_client, consumed);
    }
  }
  EXPECT(to_server.len > 8, "no ClientAuthentication on its way: %zu bytes", to_server.len);

  int rc = recv_handshake_past_full_heap(server, &to_server);
  EXPECT(rc > 0, "the ClientAuthentication handed in again: ossuary_recv_handshake returned %d", rc);
  EXPECT(ossuary_handshake_done(server) == 1, "the server is not established: %d", ossuary_handshake_done(server));
  uint8_t key[32];
  EXPECT(ossuary_remote_public_key(server, key, sizeof(key)) == 0 && memcmp(key, public_key, sizeof(key)) == 0, "the client's key");

  static const uint8_t hello[] = "after the full heap";
  EXPECT(send_message(client, &to_server, hello, sizeof(hello)) == 0, "message");
  static uint8_t message[BIG_MESSAGE];
  uint16_t consumed = (uint16_t)to_server.len;
  uint16_t length = sizeof(message);
  rc = ossuary_recv_data(server, to_server.data, &consumed, message, &length);
  EXPECT(rc > 0 && length == sizeof(hello) && memcmp(message, hello, length) == 0, "the message: %d, %u bytes", rc, length);
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return 0;
}

static int recv_server_handshake(void) {
  uint8_t secret[32], public_key[32];
  EXPECT(ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) == 0, "key pair");
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, secret);
  EXPECT(client != NULL && server != NULL, "create");
  uint16_t written = sizeof(scratch);
  EXPECT(ossuary_send_handshake(client, scratch, &written) > 0, "the client's ClientHandshake");
  wire_push(&to_server, scratch, written);
  uint16_t consumed = (uint16_t)to_server.len;
  EXPECT(ossuary_recv_handshake(server, to_server.data, &consumed) > 0, "the server's recv_handshake");
  wire_drop(&to_server, consumed);
  written = sizeof(scratch);
  EXPECT(ossuary_send_handshake(server, scratch, &written) > 8, "the server's ServerHandshake: %u bytes", written);
  wire_push(&to_client, scratch, written);

  int rc = recv_handshake_past_full_heap(client, &to_client);
  EXPECT(rc > 0, "the ServerHandshake handed in again: ossuary_recv_handshake returned %d", rc);
  EXPECT(ossuary_handshake_done(client) == OSSUARY_ERR_UNTRUSTED_SERVER, "the client does not ask about the server's key");
  uint8_t key[32];
  EXPECT(ossuary_remote_public_key(client, key, sizeof(key)) == 0 && memcmp(key, public_key, sizeof(key)) == 0, "the server's key");
  EXPECT(ossuary_add_authorized_key(client, key) == 0, "trust the server");

  /*
   * The rest by hand, the server never asked to send: its wait for the ClientAuthentication began
   * before the heap was filled, which can take longer than its handshake timeout, and a send call
   * would then reset it. A whole packet is read however late it comes.
   */
  written = sizeof(scratch);
  EXPECT(ossuary_send_handshake(client, scratch, &written) > 0, "the client's ClientAuthentication");
  wire_push(&to_server, scratch, written);
  consumed = (uint16_t)to_server.len;
  EXPECT(ossuary_recv_handshake(server, to_server.data, &consumed) > 0, "the server's recv_handshake");
  wire_drop(&to_server, consumed);
  EXPECT(ossuary_handshake_done(client) == 1 && ossuary_handshake_done(server) == 1, "the handshake after the full heap");

  static const uint8_t hello[] = "after the full heap";
  EXPECT(send_message(client, &to_server, hello, sizeof(hello)) == 0, "message");
  static uint8_t message[BIG_MESSAGE];
  consumed = (uint16_t)to_server.len;
  uint16_t length = sizeof(message);
  rc = ossuary_recv_data(server, to_server.data, &consumed, message, &length);
  EXPECT(rc > 0 && length == sizeof(hello) && memcmp(message, hello, length) == 0, "the message: %d, %u bytes", rc, length);
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return 0;
}

static OssuaryConnection *probe_target;
static int probe_result = 12345;
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t probe_turn = PTHREAD_COND_INITIALIZER;
/* 1 once the thread made its first call, 2 once the heap is full, 3 once it answered, 4 once the heap is freed. */
static int probe_stage;

static void probe_wait(int stage) {
  pthread_mutex_lock(&probe_lock);
  while (probe_stage < stage) {
    pthread_cond_wait(&probe_turn, &probe_lock);
  }
  pthread_mutex_unlock(&probe_lock);
}

static void probe_advance(int stage) {
  pthread_mutex_lock(&probe_lock);
  probe_stage = stage;
  pthread_cond_broadcast(&probe_turn);
  pthread_mutex_unlock(&probe_lock);
}

static void *probe(void *argument) {
  /*
   * The first call on this thread, while there is room: what ossuary.h asks of a thread. Not
   * ossuary_handshake_done(NULL): before the first connection of the process, that answers without
   * going into the library, and the thread's storage was still missing when the heap was full.
   */
  int first = ossuary_generate_auth_keypair(NULL, 0, NULL, 0);
  probe_advance(1);
  probe_wait(2);
  probe_result = first == OSSUARY_ERR_OTHER ? ossuary_handshake_done(probe_target) : 54321;
  probe_advance(3);
  /*
   * Not ended with the heap full, as ossuary.h asks: the runtime gives an ended thread's id back on
   * its finalizer thread, which needs memory for it, and without any aborts the program.
   */
  probe_wait(4);
  return argument;
}

static int thread_called_before(void) {
  /*
   * Started before the heap is filled (a thread's stack is address space too), and before the first
   * connection: a program starts its threads first, and its threads make their early call as they start.
   */
  pthread_t thread;
  int error = pthread_create(&thread, NULL, probe, NULL);
  EXPECT(error == 0, "pthread_create: %d", error);
  probe_wait(1);
  probe_target = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(probe_target != NULL, "create");
  EXPECT(fill_heap(1) == 0, "filling the heap");
  probe_advance(2);
  probe_wait(3);
  printf("from a thread that had called before, with the heap full: %d\n", probe_result);
  free_heap();
  probe_advance(4);
  error = pthread_join(thread, NULL);
  EXPECT(error == 0, "pthread_join: %d", error);
  EXPECT(probe_result == 0, "ossuary_handshake_done() returned %d for a connection that has not begun", probe_result);
  ossuary_destroy_connection(&probe_target);
  return 0;
}

/* A thread that never calls the library: it forks once the heap is full, and reports how the child exited. */
static void *forker(void *argument) {
  probe_wait(2);
  pid_t child = fork();
  if (child == 0) {
    _exit(7);
  }
  int status = 0;
  probe_result = child < 0 ? -errno : waitpid(child, &status, 0) != child ? -1000 : WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
  probe_advance(3);
  return argument;
}

static int fork_from_another_thread(void) {
  OssuaryConnection *connection = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(connection != NULL, "create");
  /* Started before the heap is filled: a thread's stack is address space too. */
  pthread_t thread;
  int error = pthread_create(&thread, NULL, forker, NULL);
  EXPECT(error == 0, "pthread_create: %d", error);
  EXPECT(fill_heap(1) == 0, "filling the heap");
  probe_advance(2);
  probe_wait(3);
  printf("forked with the heap full, the child exited with %d\n", probe_result);
  free_heap();
  error = pthread_join(thread, NULL);
  EXPECT(error == 0, "pthread_join: %d", error);
  EXPECT(probe_result == 7, "the child: %d", probe_result);
  EXPECT(ossuary_handshake_done(connection) == 0, "the connection after the fork");
  ossuary_destroy_connection(&connection);
  return 0;
}

int main(int argc, char **argv) {
  /* Unbuffered: a line printed before a crash must reach the test. */
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *scenario = argc > 1 ? argv[1] : "";
  int failed;
  if (strcmp(scenario, "fill") == 0) {
    failed = fill();
  } else if (strcmp(scenario, "thread_called_before") == 0) {
    failed = thread_called_before();
  } else if (strcmp(scenario, "fork_from_another_thread") == 0) {
    failed = fork_from_another_thread();
  } else if (strcmp(scenario, "recv_data") == 0) {
    failed = recv_data();
  } else if (strcmp(scenario, "recv_handshake") == 0) {
    failed = recv_handshake();
  } else if (strcmp(scenario, "recv_server_handshake") == 0) {
    failed = recv_server_handshake();
  } else {
    fprintf(stderr, "usage: heap_full fill|recv_data|recv_handshake|recv_server_handshake|thread_called_before|fork_from_another_thread\n");
    return 2;
  }
  if (failed == 0) {
    printf("ok %s\n", scenario);
  }
  return failed;
}

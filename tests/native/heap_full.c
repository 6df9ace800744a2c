/*
 * The library when its managed heap is full, run under an address-space limit (ulimit -v, as
 * AddressSpaceLimitTests does), which makes the heap small enough to fill in a test.
 *
 *   heap_full fill       creates connections until ossuary_create_connection() returns NULL, as
 *                        ossuary.h promises when the library cannot make one; then destroys them
 *                        and runs a handshake over a fresh pair, to show the library recovered.
 *
 * Prints "ok NAME"; exits non-zero on a failed expectation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ossuary.h"
#include "test_support.h"

/* Far more connections than a heap under the test's limit holds: reaching it means NULL never came. */
#define MOST_CONNECTIONS 4000000

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

/* Fills the managed heap with connections; fails if NULL never comes (or the process dies first). */
static int fill_heap(void) {
  fillers = malloc(MOST_CONNECTIONS * sizeof(*fillers));
  EXPECT(fillers != NULL, "malloc");
  filler_count = 0;
  while (filler_count < MOST_CONNECTIONS &&
         (fillers[filler_count] = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL)) != NULL) {
    filler_count++;
  }
  EXPECT(filler_count < MOST_CONNECTIONS, "ossuary_create_connection never returned NULL");
  EXPECT(filler_count > 0, "not even one connection");
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
  EXPECT(fill_heap() == 0, "filling the heap");
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

int main(int argc, char **argv) {
  /* Unbuffered: a line printed before a crash must reach the test. */
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *scenario = argc > 1 ? argv[1] : "";
  int failed;
  if (strcmp(scenario, "fill") == 0) {
    failed = fill();
  } else {
    fprintf(stderr, "usage: heap_full fill\n");
    return 2;
  }
  if (failed == 0) {
    printf("ok %s\n", scenario);
  }
  return failed;
}

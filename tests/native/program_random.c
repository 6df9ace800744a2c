/*
 * The program's drand48 generator stays the program's: a sequence it seeded with srand48() goes
 * on as if the library had not been called, across the first call (which starts the .NET
 * runtime), handshakes, messages both ways and key generation. The runtime's random-bytes
 * fallback reseeded it with srand48(time(NULL)) and drew from it with lrand48(); libossuary 0.5
 * never touches it.
 *
 * Prints "ok program_random"; exits non-zero on a failed expectation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ossuary.h"
#include "test_support.h"

#define DRAWS 6

static uint8_t to_client[4096], to_server[4096];
static size_t to_client_len, to_server_len;

/* One pass of a connection's handshake loop; whatever it sends goes to the other's input. */
static int handshake_step(OssuaryConnection *conn, uint8_t *in, size_t *in_len, uint8_t *out, size_t *out_len) {
  int done = ossuary_handshake_done(conn);
  if (done == OSSUARY_ERR_UNTRUSTED_SERVER) {
    uint8_t key[32];
    if (ossuary_remote_public_key(conn, key, sizeof(key)) == 0) {
      ossuary_add_authorized_key(conn, key);
    }
  } else if (done == 0) {
    uint16_t n = (uint16_t)(sizeof(to_client) - *out_len);
    ossuary_send_handshake(conn, out + *out_len, &n);
    *out_len += n;
    n = (uint16_t)*in_len;
    if (n > 0) {
      ossuary_recv_handshake(conn, in, &n);
      memmove(in, in + n, *in_len - n);
      *in_len -= n;
    }
  }
  return done;
}

/* A handshake, a message each way and a key pair: the library's usual work. */
static int use_the_library(void) {
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
  EXPECT(client != NULL && server != NULL, "created");
  int c = 0, s = 0;
  for (int i = 0; i < 50 && !(c == 1 && s == 1); i++) {
    c = handshake_step(client, to_client, &to_client_len, to_server, &to_server_len);
    s = handshake_step(server, to_server, &to_server_len, to_client, &to_client_len);
  }
  EXPECT(c == 1 && s == 1, "established: %d, %d", c, s);
  static uint8_t message[16384], packet[16384 + 28], got[16384];
  OssuaryConnection *ends[2][2] = {{client, server}, {server, client}};
  for (int i = 0; i < 2; i++) {
    uint16_t packet_len = sizeof(packet), got_len = sizeof(got);
    EXPECT(ossuary_send_data(ends[i][0], message, sizeof(message), packet, &packet_len) == (int)sizeof(packet), "sealed");
    EXPECT(ossuary_recv_data(ends[i][1], packet, &packet_len, got, &got_len) == (int)sizeof(packet), "opened");
  }
  uint8_t secret[32], public_key[32];
  EXPECT(ossuary_generate_auth_keypair(secret, 32, public_key, 32) == 0, "key pair");
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return 0;
}

int main(void) {
  long expected[DRAWS], drawn[DRAWS];
  srand48(20261130);
  for (int i = 0; i < DRAWS; i++) {
    expected[i] = lrand48();
  }

  srand48(20261130);
  drawn[0] = lrand48();
  EXPECT(use_the_library() == 0, "the first use (starts the runtime)");
  drawn[1] = lrand48();
  drawn[2] = lrand48();
  EXPECT(use_the_library() == 0, "a later use");
  for (int i = 3; i < DRAWS; i++) {
    drawn[i] = lrand48();
  }

  for (int i = 0; i < DRAWS; i++) {
    EXPECT(drawn[i] == expected[i], "draw %d of the program's own sequence is %ld, not %ld: the library moved its generator", i, drawn[i], expected[i]);
  }
  printf("ok program_random\n");
  return 0;
}

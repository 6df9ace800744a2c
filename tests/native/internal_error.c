/*
 * What a C program hears of a failure inside the library that it did not cause: the call returns
 * its documented failure value, and the library says why in one line on stderr. Run beside
 * failing_sodium.c's libsodium.so, whose crypto_sign_ed25519_seed_keypair fails: every call that
 * makes an Ed25519 key pair then meets an exception the library does not expect.
 *
 * First the failures a program causes or a peer does (a bad handle, NULL or short arguments, a
 * garbled packet), which must stay quiet; then "-- expected failures done" on stderr; then two calls
 * that make a key pair, each of which must say so. InternalErrorTests reads stderr in that order.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ossuary.h"
#include "test_support.h"

int main(void) {
  /* An anonymous client makes no key pair, so the library works as usual. */
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(client != NULL, "an anonymous client could not be created");

  uint8_t buffer[512];
  uint16_t length = sizeof(buffer);
  EXPECT(ossuary_send_handshake(client, buffer, &length) > 0, "the client's first handshake packet");

  /* What the caller or the peer gets wrong: -1, and nothing on stderr. */
  OssuaryConnection *stale = client;
  OssuaryConnection *made_up = (OssuaryConnection *)(uintptr_t)0x7f0000001000;
  EXPECT(ossuary_generate_auth_keypair(NULL, 0, NULL, 0) == OSSUARY_ERR_OTHER, "NULL buffers");
  EXPECT(ossuary_create_connection((ossuary_conn_type_t)7, NULL) == NULL, "an unknown type");
  EXPECT(ossuary_handshake_done(made_up) == OSSUARY_ERR_OTHER, "a made-up handle");
  EXPECT(ossuary_remote_public_key(client, buffer, 8) == OSSUARY_ERR_OTHER, "a short key buffer");
  length = sizeof(buffer);
  EXPECT(ossuary_recv_data(client, NULL, &length, buffer, &length) == OSSUARY_ERR_OTHER, "a NULL input");
  uint8_t garbage[300];
  memset(garbage, 0xa5, sizeof(garbage));
  garbage[0] = 1; /* the protocol's version, so that the header is read and its content refused */
  for (int i = 0; i < 10 && ossuary_handshake_done(client) >= 0; i++) {
    uint16_t taken = sizeof(garbage);
    (void)ossuary_recv_handshake(client, garbage, &taken);
    length = sizeof(buffer);
    (void)ossuary_send_handshake(client, buffer, &length);
  }
  ossuary_destroy_connection(&client);
  EXPECT(ossuary_handshake_done(stale) == OSSUARY_ERR_OTHER, "a destroyed handle");
  fprintf(stderr, "-- expected failures done\n");

  /* Failures inside the library: the documented value, and a line each. */
  uint8_t secret[32];
  uint8_t public_key[32];
  EXPECT(ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) == OSSUARY_ERR_OTHER,
         "a key pair came out of a libsodium that cannot make one");
  EXPECT(ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL) == NULL,
         "a server made its key with a libsodium that cannot make one");

  printf("ok internal_error\n");
  return 0;
}

// ossuary.h from C++: the declarations sit in extern "C", so these calls link against the
// library's unmangled symbols.
#include <cstdio>
#include <cstring>

#include "ossuary.h"

int main() {
  uint8_t secret[32], public_key[32];
  if (ossuary_generate_auth_keypair(secret, sizeof(secret), public_key, sizeof(public_key)) != 0) {
    return 1;
  }
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER, secret);
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, nullptr);
  if (server == nullptr || client == nullptr || ossuary_add_authorized_key(client, public_key) != 0) {
    return 2;
  }
  uint8_t packet[512];
  uint16_t length = sizeof(packet);
  int written = ossuary_send_handshake(client, packet, &length);
  uint16_t consumed = length;
  int read = ossuary_recv_handshake(server, packet, &consumed);
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  if (written != 92 || read != 92 || client != nullptr || server != nullptr) {
    return 3;
  }
  std::puts("ok c++");
  return 0;
}

/*
 * A C server on libossuary.so, for the .NET tests: listens on 127.0.0.1 (an ephemeral port,
 * printed as "port N"), takes one connection and sends every message back until the client
 * ends the session.
 *
 *   tcp_server SERVER_SECRET_HEX 1|2 [CLIENT_PUBLIC_HEX]
 *
 * 1 is an authenticated server (admitting CLIENT_PUBLIC_HEX), 2 an unauthenticated one.
 * Prints "client_key HEX" once established, and "ended after N messages, M bytes" when the
 * client has gone; exits 0, 5 if the client was never admitted, 7 if the client's stream ended
 * inside a packet ("the peer closed inside a packet: N bytes lost").
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ossuary.h"
#include "socket_loop.h"
#include "test_support.h"

static size_t messages, bytes;

static void echo(link_t *l, const uint8_t *message, uint16_t len) {
  messages++;
  bytes += len;
  if (send_message(l, message, len) != 0) {
    exit(6);
  }
}

int main(int argc, char **argv) {
  alarm(30);
  uint8_t secret[32], client_key[32];
  if (argc < 3 || parse_hex_key(argv[1], secret) != 0 || (argc > 3 && parse_hex_key(argv[3], client_key) != 0)) {
    fprintf(stderr, "usage: tcp_server SERVER_SECRET_HEX 1|2 [CLIENT_PUBLIC_HEX]\n");
    return 2;
  }
  int type = atoi(argv[2]);

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t addr_len = sizeof(addr);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
    perror("listen");
    return 3;
  }
  printf("port %u\n", ntohs(addr.sin_port));
  fflush(stdout);
  int fd = accept(listener, NULL, NULL);
  if (fd < 0) {
    perror("accept");
    return 3;
  }
  close(listener);

  static link_t link;
  link.fd = fd;
  link.on_message = echo;
  link.conn = ossuary_create_connection((ossuary_conn_type_t)type, secret);
  if (link.conn == NULL) {
    fprintf(stderr, "cannot create a connection\n");
    return 4;
  }
  if (argc > 3) {
    ossuary_add_authorized_key(link.conn, client_key);
  }

  int announced = 0, done;
  while ((done = pass(&link)) >= 0) {
    if (done == 1 && !announced) {
      uint8_t key[32];
      char hex[65];
      if (ossuary_remote_public_key(link.conn, key, sizeof(key)) == 0) {
        format_hex_key(key, hex);
        printf("client_key %s\n", hex);
        fflush(stdout);
      }
      announced = 1;
    }
    if (link.eof && link.in_len == 0) {
      break;
    }
  }
  printf("ended after %zu messages, %zu bytes (handshake_done %d, eof %d)\n", messages, bytes, done, link.eof);
  int lost = link.eof && link.in_len > 0;
  if (lost) {
    printf("the peer closed inside a packet: %zu bytes lost\n", link.in_len);
  }
  ossuary_destroy_connection(&link.conn);
  close(fd);
  return !announced ? 5 : lost ? 7 : 0;
}

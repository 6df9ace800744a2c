/*
 * A C client on libossuary.so, for the .NET tests: connects to an Ossuary echo server on
 * 127.0.0.1, sends three messages, checks that every byte comes back, then disconnects cleanly.
 *
 *   tcp_client PORT CLIENT_SECRET_HEX|- SERVER_PUBLIC_HEX|tofu
 *
 * Prints "established", "client_key HEX", "echoed N bytes", "closed" and exits 0, or says
 * what failed and exits non-zero. Built against libossuary 0.5 (the original, whose C API has
 * no ossuary_disconnect), it ends by closing the socket without a Disconnect.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ossuary.h"
#include "socket_loop.h"
#include "test_support.h"

static uint8_t sent[40000], echoed[40000];
static size_t sent_len, echoed_len;

static void collect(link_t *l, const uint8_t *message, uint16_t len) {
  (void)l;
  if (echoed_len + len <= sizeof(echoed)) {
    memcpy(echoed + echoed_len, message, len);
  }
  echoed_len += len;
}

static int queue_message(link_t *l, const uint8_t *message, uint16_t len) {
  memcpy(sent + sent_len, message, len);
  sent_len += len;
  return send_message(l, message, len);
}

int main(int argc, char **argv) {
  alarm(30);
  if (argc != 4) {
    fprintf(stderr, "usage: tcp_client PORT CLIENT_SECRET_HEX|- SERVER_PUBLIC_HEX|tofu\n");
    return 2;
  }
  uint8_t secret[32], server_key[32];
  int anonymous = strcmp(argv[2], "-") == 0;
  int tofu = strcmp(argv[3], "tofu") == 0;
  if ((!anonymous && parse_hex_key(argv[2], secret) != 0) || (!tofu && parse_hex_key(argv[3], server_key) != 0)) {
    fprintf(stderr, "bad key\n");
    return 2;
  }

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    perror("connect");
    return 3;
  }

  static link_t link;
  link.fd = fd;
  link.tofu = tofu;
  link.on_message = collect;
  link.conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, anonymous ? NULL : secret);
  if (link.conn == NULL) {
    fprintf(stderr, "cannot create a connection\n");
    return 4;
  }
  if (!tofu) {
    ossuary_add_authorized_key(link.conn, server_key);
  }

  int done;
  while ((done = pass(&link)) != 1) {
    if ((done < 0 && done != OSSUARY_ERR_UNTRUSTED_SERVER) || (done == OSSUARY_ERR_UNTRUSTED_SERVER && !tofu) || link.eof) {
      fprintf(stderr, "handshake failed: %d (eof %d)\n", done, link.eof);
      return 5;
    }
  }
  printf("established\n");

  /* Two messages of our own and one of the largest size, patterned so that a lost or
   * reordered byte shows. */
  static uint8_t big[16384];
  for (size_t i = 0; i < sizeof(big); i++) {
    big[i] = (uint8_t)(i * 31 + (i >> 9));
  }
  if (queue_message(&link, (const uint8_t *)"hello from C", 12) != 0 ||
      queue_message(&link, big, sizeof(big)) != 0 ||
      queue_message(&link, big + 100, 3000) != 0) {
    return 6;
  }
  while (echoed_len < sent_len) {
    done = pass(&link);
    if (done != 1 || link.eof) {
      fprintf(stderr, "connection lost after %zu of %zu bytes: %d\n", echoed_len, sent_len, done);
      return 7;
    }
  }
  if (echoed_len != sent_len || memcmp(sent, echoed, sent_len) != 0) {
    fprintf(stderr, "echo differs\n");
    return 8;
  }
  printf("echoed %zu bytes\n", echoed_len);

#ifdef OSSUARY_HAS_DISCONNECT
  ossuary_disconnect(link.conn, 0);
  while ((done = pass(&link)) == 0) {
  }
  if (done != -1) {
    fprintf(stderr, "disconnect: %d\n", done);
    return 9;
  }
  /* The server answers and closes its end. */
  for (int i = 0; i < 100 && !link.eof; i++) {
    read_some(&link, 50);
    link.in_len = 0;
  }
#else
  /* libossuary 0.5's C API cannot send a Disconnect: the socket just closes. */
  printf("no disconnect in this library\n");
#endif
  printf("closed%s\n", link.eof ? " eof" : "");
  ossuary_destroy_connection(&link.conn);
  close(fd);
  return 0;
}

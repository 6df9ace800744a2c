/*
 * The loop a C application runs around libossuary on a TCP socket, shared by the client and
 * server test programs: ask ossuary_handshake_done() where things stand, then either move
 * handshake bytes or decrypt data, and wait for the socket only when nothing moved.
 */
#ifndef OSSUARY_SOCKET_LOOP_H
#define OSSUARY_SOCKET_LOOP_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

typedef struct link link_t;

/* Called with every message ossuary_recv_data() decrypts. */
typedef void (*on_message_t)(link_t *link, const uint8_t *message, uint16_t len);

struct link {
  int fd;
  OssuaryConnection *conn;
  uint8_t in[65536];
  size_t in_len;
  int eof;
  int tofu;          /* trust an unknown server on first use */
  int resets;        /* -1 from a receive call: the peer reset or ended the session */
  on_message_t on_message;
};

static inline int write_all(int fd, const uint8_t *bytes, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, bytes, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return -1;
    }
    bytes += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Waits up to timeout_ms for bytes and appends them to the link's input. */
static inline void read_some(link_t *l, int timeout_ms) {
  struct pollfd p = {.fd = l->fd, .events = POLLIN};
  if (l->eof || l->in_len == sizeof(l->in) || poll(&p, 1, timeout_ms) <= 0) {
    return;
  }
  ssize_t r = read(l->fd, l->in + l->in_len, sizeof(l->in) - l->in_len);
  if (r > 0) {
    l->in_len += (size_t)r;
  } else if (r == 0 || errno != EINTR) {
    l->eof = 1;
  }
}

static inline void consume(link_t *l, uint16_t n) {
  memmove(l->in, l->in + n, l->in_len - n);
  l->in_len -= n;
}

/* The largest packet either library accepts: an 8-byte header and a record of 16384 bytes of
 * message, its 4-byte blob header and 16-byte tag. */
#define LINK_MAX_PACKET (8 + 16384 + 4 + 16)

/*
 * How many bytes at the front of the input to hand the library next: the whole packet, or 0
 * while it is incomplete.
 *
 * The loop hands the library one whole packet per call, never more: libossuary 0.5 (the
 * original) copies every byte it is given into its own buffer but reports only the first
 * packet's length as consumed, so bytes beyond that packet would reach it twice (its
 * examples' server.c loses packets this way), and it parses a header from stale bytes when
 * given fewer than 8. Ours takes at most one packet and never a byte beyond it, so for ours
 * this changes nothing.
 *
 * A header announcing more than LINK_MAX_PACKET is handed over alone, at once: both libraries
 * refuse it from the header (a reset), and waiting for its body would wait for bytes that no
 * packet may hold, up to 64 KiB more than the input buffer has room for.
 */
static inline uint16_t whole_packet(const link_t *l) {
  if (l->in_len < 8) {
    return 0;
  }
  size_t packet = 8 + (((size_t)l->in[0] << 8) | l->in[1]);
  if (packet > LINK_MAX_PACKET) {
    return 8;
  }
  return l->in_len >= packet ? (uint16_t)packet : 0;
}

/* What a failed receive call took: libossuary 0.5 reports 0 bytes consumed when a call fails,
 * although it has taken the packet; ours reports what it took. */
static inline uint16_t packet_taken(uint16_t reported, uint16_t packet) {
  return reported == 0 ? packet : reported;
}

/* Sends one message as one packet. */
static inline int send_message(link_t *l, const uint8_t *message, uint16_t len) {
  static uint8_t out[65535];
  uint16_t out_len = sizeof(out);
  /* libossuary 0.5's prototype takes 'uint8_t *in_buf' (never written to). */
  int rc = ossuary_send_data(l->conn, (uint8_t *)message, len, out, &out_len);
  if (rc < 0) {
    fprintf(stderr, "send_data: %d\n", rc);
    return -1;
  }
  return write_all(l->fd, out, out_len);
}

/*
 * One pass of the application's loop. Returns what ossuary_handshake_done() said, or -1 once
 * the peer has closed its end and nothing left can move: then l->in_len bytes (the start of a
 * packet that never came whole) are lost.
 */
static inline int pass(link_t *l) {
  /* message[] holds the largest plaintext a packet carries (16384): with a smaller one, a packet
   * too large for it fails with 0 bytes consumed, which packet_taken() reads as the original's
   * "taken", while our library keeps the packet for a call with room: the loop would lose its place. */
  static uint8_t out[65535], message[16384];
  int progress = 0;
  int done = ossuary_handshake_done(l->conn);
  if (done == OSSUARY_ERR_UNTRUSTED_SERVER) {
    uint8_t key[32];
    char hex[65];
    if (l->tofu && ossuary_remote_public_key(l->conn, key, sizeof(key)) == 0) {
      format_hex_key(key, hex);
      printf("trusting server_key %s\n", hex);
      fflush(stdout);
      ossuary_add_authorized_key(l->conn, key);
    }
    return done;
  }
  if (done < 0) {
    return done;
  }
  if (done == 0) {
    uint16_t out_len = sizeof(out);
    int rc = ossuary_send_handshake(l->conn, out, &out_len);
    if (out_len > 0 && write_all(l->fd, out, out_len) != 0) {
      return -1;
    }
    progress |= out_len > 0 || rc == OSSUARY_ERR_WOULDBLOCK;
    uint16_t packet = whole_packet(l);
    if (packet > 0) {
      uint16_t in_len = packet;
      rc = ossuary_recv_handshake(l->conn, l->in, &in_len);
      if (rc < 0 && rc != OSSUARY_ERR_WOULDBLOCK) {
        l->resets++;
        in_len = packet_taken(in_len, packet);
      }
      consume(l, in_len);
      progress |= in_len > 0;
    }
  } else if (whole_packet(l) > 0) {
    uint16_t packet = whole_packet(l);
    uint16_t in_len = packet;
    uint16_t message_len = sizeof(message);
    int rc = ossuary_recv_data(l->conn, l->in, &in_len, message, &message_len);
    if (rc == -1) {
      in_len = packet_taken(in_len, packet);
    }
    consume(l, in_len);
    progress |= in_len > 0;
    if (rc < 0 && rc != OSSUARY_ERR_WOULDBLOCK) {
      l->resets++;
    } else if (rc > 0) {
      if (l->on_message != NULL) {
        l->on_message(l, message, message_len);
      }
    }
  }
  if (!progress) {
    if (l->eof) {
      /* Nothing will ever arrive to finish what is left, and read_some() returns at once at the
       * end of the stream: going round again would spin. */
      return -1;
    }
    read_some(l, 50);
  }
  return done;
}

#endif

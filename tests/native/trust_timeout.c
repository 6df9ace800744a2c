/*
 * ossuary.h's trust pause lasts at most one minute: a key added after it must not resume the
 * handshake. Instead of waiting a minute, this program moves the monotonic clock: it defines
 * clock_gettime() itself, which takes the place of libc's for the library too (the program's
 * own definition comes first, for libossuary.so's calls as for libossuary.a's), and adds
 * clock_shift_ns to CLOCK_MONOTONIC, the clock the library's timeouts read.
 *
 * Prints "ok trust_timeout" and exits 0 when every expectation holds.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ossuary.h"
#include "test_support.h"

static int64_t clock_shift_ns;

int clock_gettime(clockid_t id, struct timespec *ts) {
  static int (*real_clock_gettime)(clockid_t, struct timespec *);
  if (real_clock_gettime == NULL) {
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
  }
  int rc = real_clock_gettime(id, ts);
  int64_t shift = __atomic_load_n(&clock_shift_ns, __ATOMIC_SEQ_CST);
  if (rc == 0 && shift != 0 && (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_RAW || id == CLOCK_BOOTTIME)) {
    int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + shift;
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
  }
  return rc;
}

static void advance_clock(int seconds) {
  __atomic_add_fetch(&clock_shift_ns, (int64_t)seconds * 1000000000, __ATOMIC_SEQ_CST);
}

/* Moves one packet (the whole output of one send call) from one connection to the other. */
static int relay(OssuaryConnection *from, OssuaryConnection *to) {
  uint8_t buf[512];
  uint16_t out_len = sizeof(buf);
  int rc = ossuary_send_handshake(from, buf, &out_len);
  if (rc <= 0) {
    return rc;
  }
  uint16_t in_len = out_len;
  return ossuary_recv_handshake(to, buf, &in_len);
}

/* A client paused for a decision about an unknown server; its server key in server_key. */
static int paused_client(OssuaryConnection **client, OssuaryConnection **server, uint8_t server_key[32]) {
  *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
  EXPECT(*client != NULL && *server != NULL, "created");
  EXPECT(relay(*client, *server) == 92, "ClientHandshake");
  EXPECT(relay(*server, *client) == 208, "ServerHandshake");
  EXPECT(ossuary_handshake_done(*client) == OSSUARY_ERR_UNTRUSTED_SERVER, "the client asks about the server");
  EXPECT(ossuary_remote_public_key(*client, server_key, 32) == 0, "the server's key");
  return 0;
}

/* The next packet the client sends: its type, and the error flag of a Disconnect. */
static int next_packet(OssuaryConnection *client, uint8_t *type, uint8_t *error) {
  uint8_t buf[512];
  uint16_t out_len = sizeof(buf);
  int rc = ossuary_send_handshake(client, buf, &out_len);
  EXPECT(rc > 0 && out_len >= 12, "a packet: rc %d, %u bytes", rc, out_len);
  *type = buf[5];
  *error = buf[10];
  return 0;
}

static int trust_timeout(void) {
  OssuaryConnection *client, *server;
  uint8_t key[32], type, error;

  /* A decision within the minute resumes the handshake. */
  EXPECT(paused_client(&client, &server, key) == 0, "paused");
  advance_clock(59);
  EXPECT(ossuary_add_authorized_key(client, key) == 0, "trusted after 59 s");
  EXPECT(next_packet(client, &type, &error) == 0 && type == 0x03, "ClientAuthentication, got type %02x", type);
  EXPECT(ossuary_handshake_done(client) == 1, "established");
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);

  /* The library sees the moved clock: past the minute, the next send ends the pause. */
  EXPECT(paused_client(&client, &server, key) == 0, "paused");
  advance_clock(61);
  EXPECT(next_packet(client, &type, &error) == 0 && type == 0x10 && error == 1, "Disconnect (error) after 61 s: type %02x, error %u", type, error);
  EXPECT(ossuary_handshake_done(client) == -1, "over");
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);

  /* A decision that comes after the minute does not resume it either. */
  EXPECT(paused_client(&client, &server, key) == 0, "paused");
  advance_clock(61);
  EXPECT(ossuary_add_authorized_key(client, key) == 0, "the key is still added");
  EXPECT(next_packet(client, &type, &error) == 0, "a packet");
  EXPECT(type == 0x10 && error == 1, "Disconnect (error) for a decision after 61 s, not a packet of type %02x", type);
  EXPECT(ossuary_handshake_done(client) == -1, "over");
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return 0;
}

int main(void) {
  if (trust_timeout() != 0) {
    printf("failed trust_timeout\n");
    return 1;
  }
  printf("ok trust_timeout\n");
  return 0;
}

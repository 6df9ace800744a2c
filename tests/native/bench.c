/*
 * libossuary's C API under load, one library per build: the same source is compiled against this
 * project's NativeAOT libossuary.so (include/ossuary.h) and against the original's
 * (../shared/interop/libossuary-0.5.2, its own ossuary.h), and benchmarks/native-bench.sh prints
 * the two side by side. The .NET tests run it in a small mode to check that it completes.
 *
 *   bench [--connections N] [--seconds S] [--name NAME] [--only first_create]
 *
 * With --only first_create it prints the first three figures and stops: benchmarks/native-bench.sh
 * starts it many times for a median, since one process start is one sample of the first call.
 *
 * Prints one "figure value unit" line per figure:
 *   first_create          wall time of the process's first ossuary_create_connection (us)
 *   first_create.cpu      the CPU time of that call, this thread (us): what holds on a busy machine
 *   second_create         the next call, for comparison (us)
 *   rss_per_connection    growth of the resident set with N live connections (N/2 established
 *                         pairs, authenticated both ways, one message each way), over N (bytes)
 *   messages.1k / .16k    messages a second from one connection to its peer in the same process,
 *                         on this thread: send_data, then recv_data at the other end (wall clock)
 *   messages.1k.cpu / ... process CPU per message (us)
 *   handshakes            complete handshakes a second: both connections created, keys added,
 *                         three packets, both destroyed (wall clock)
 *   handshakes.cpu        process CPU per handshake, both sides (us)
 * Exits 0 when every step worked, 1 otherwise (with the reason on stderr).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ossuary.h"

#define OUT_ROOM 65535
#define MAX_MESSAGE 16384

/* Bytes in flight one way. Only one pair talks at a time, so two of these serve every pair. */
typedef struct {
  uint8_t data[1 << 17];
  size_t len;
} wire_t;

static wire_t to_server, to_client;
static uint8_t scratch[OUT_ROOM];
static uint8_t message[MAX_MESSAGE];
static uint8_t received[MAX_MESSAGE];

static double clock_us(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double wall_us(void) { return clock_us(CLOCK_MONOTONIC); }
static double cpu_us(void) { return clock_us(CLOCK_PROCESS_CPUTIME_ID); }

static long resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) {
    fprintf(stderr, "cannot read /proc/self/statm\n");
    exit(1);
  }
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static void fail(const char *what, int rc) {
  fprintf(stderr, "FAIL %s (%d)\n", what, rc);
  exit(1);
}

static void push(wire_t *w, const uint8_t *bytes, size_t n) {
  if (w->len + n > sizeof(w->data)) {
    fail("wire overflow", (int)n);
  }
  memcpy(w->data + w->len, bytes, n);
  w->len += n;
}

static void drop(wire_t *w, size_t n) {
  memmove(w->data, w->data + n, w->len - n);
  w->len -= n;
}

/* One pass of an application's handshake loop for one end; returns ossuary_handshake_done's answer. */
static int handshake_step(OssuaryConnection *conn, wire_t *in, wire_t *out) {
  int done = ossuary_handshake_done(conn);
  if (done != 0) {
    return done;
  }
  uint16_t out_len = OUT_ROOM;
  int rc = ossuary_send_handshake(conn, scratch, &out_len);
  if (rc < 0 && rc != OSSUARY_ERR_WOULDBLOCK) {
    fail("send_handshake", rc);
  }
  push(out, scratch, out_len);
  if (in->len > 0) {
    uint16_t in_len = (uint16_t)(in->len < OUT_ROOM ? in->len : OUT_ROOM);
    rc = ossuary_recv_handshake(conn, in->data, &in_len);
    if (rc < 0 && rc != OSSUARY_ERR_WOULDBLOCK) {
      fail("recv_handshake", rc);
    }
    drop(in, in_len);
  }
  return 0;
}

static void handshake(OssuaryConnection *client, OssuaryConnection *server) {
  for (int round = 0; round < 50; round++) {
    int c = handshake_step(client, &to_client, &to_server);
    int s = handshake_step(server, &to_server, &to_client);
    if (c < 0 || s < 0) {
      fail("handshake_done", c < 0 ? c : s);
    }
    if (c == 1 && s == 1 && to_client.len == 0 && to_server.len == 0) {
      return;
    }
  }
  fail("handshake did not finish in 50 rounds", 0);
}

/* Sends one message from one end and receives it at the other. */
static void deliver(OssuaryConnection *from, wire_t *wire, OssuaryConnection *to, uint16_t len) {
  uint16_t out_len = OUT_ROOM;
  int rc = ossuary_send_data(from, message, len, scratch, &out_len);
  if (rc < 0) {
    fail("send_data", rc);
  }
  push(wire, scratch, out_len);
  while (wire->len > 0) {
    uint16_t in_len = (uint16_t)(wire->len < OUT_ROOM ? wire->len : OUT_ROOM);
    uint16_t plain_len = sizeof(received);
    rc = ossuary_recv_data(to, wire->data, &in_len, received, &plain_len);
    if (rc < 0 && rc != OSSUARY_ERR_WOULDBLOCK) {
      fail("recv_data", rc);
    }
    drop(wire, in_len);
    if (rc > 0 && plain_len != len) {
      fail("message length", plain_len);
    }
  }
}

static uint8_t client_secret[32], client_public[32], server_secret[32], server_public[32];

static void create_pair(OssuaryConnection **client, OssuaryConnection **server) {
  *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, client_secret);
  *server = ossuary_create_connection(OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER, server_secret);
  if (*client == NULL || *server == NULL) {
    fail("create_connection", 0);
  }
  if (ossuary_add_authorized_key(*client, server_public) != 0 || ossuary_add_authorized_key(*server, client_public) != 0) {
    fail("add_authorized_key", 0);
  }
}

static void live_pair(OssuaryConnection **client, OssuaryConnection **server) {
  create_pair(client, server);
  handshake(*client, *server);
  deliver(*client, &to_server, *server, 1);
  deliver(*server, &to_client, *client, 1);
}

static void messages(OssuaryConnection *client, OssuaryConnection *server, uint16_t size, double seconds, const char *name) {
  for (int i = 0; i < 64; i++) {
    deliver(client, &to_server, server, size); /* warm-up */
  }
  long count = 0;
  double wall = wall_us(), cpu = cpu_us();
  do {
    for (int i = 0; i < 64; i++) {
      deliver(client, &to_server, server, size);
    }
    count += 64;
  } while (wall_us() - wall < seconds * 1e6);
  wall = wall_us() - wall;
  cpu = cpu_us() - cpu;
  printf("%s %.0f messages/s\n%s.cpu %.2f us/message\n", name, count / (wall / 1e6), name, cpu / count);
}

static void handshakes(double seconds) {
  long count = 0;
  double wall = wall_us(), cpu = cpu_us();
  do {
    OssuaryConnection *client, *server;
    create_pair(&client, &server);
    handshake(client, server);
    ossuary_destroy_connection(&client);
    ossuary_destroy_connection(&server);
    count++;
  } while (wall_us() - wall < seconds * 1e6);
  wall = wall_us() - wall;
  cpu = cpu_us() - cpu;
  printf("handshakes %.0f handshakes/s\nhandshakes.cpu %.1f us/handshake\n", count / (wall / 1e6), cpu / count);
}

int main(int argc, char **argv) {
  long connections = 10000;
  double seconds = 1.0;
  const char *name = "libossuary";
  int first_create_only = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--connections") == 0) {
      connections = atol(argv[i + 1]);
    } else if (strcmp(argv[i], "--seconds") == 0) {
      seconds = atof(argv[i + 1]);
    } else if (strcmp(argv[i], "--name") == 0) {
      name = argv[i + 1];
    } else if (strcmp(argv[i], "--only") == 0 && strcmp(argv[i + 1], "first_create") == 0) {
      first_create_only = 1;
    } else {
      fprintf(stderr, "usage: bench [--connections N] [--seconds S] [--name NAME] [--only first_create]\n");
      return 2;
    }
  }
  if (connections < 2 || seconds <= 0) {
    fprintf(stderr, "need --connections >= 2 and --seconds > 0\n");
    return 2;
  }
  printf("library %s\n", name);

  /* The process's first call into the library: for the NativeAOT build it starts the runtime. */
  double wall = wall_us(), cpu = clock_us(CLOCK_THREAD_CPUTIME_ID);
  OssuaryConnection *first = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  double first_wall = wall_us() - wall, first_cpu = clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu;
  wall = wall_us();
  OssuaryConnection *second = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  double second_wall = wall_us() - wall;
  if (first == NULL || second == NULL) {
    fail("create_connection", 0);
  }
  ossuary_destroy_connection(&first);
  ossuary_destroy_connection(&second);
  printf("first_create %.0f us\nfirst_create.cpu %.0f us\nsecond_create %.1f us\n", first_wall, first_cpu, second_wall);
  if (first_create_only) {
    return 0;
  }

  if (ossuary_generate_auth_keypair(client_secret, 32, client_public, 32) != 0 ||
      ossuary_generate_auth_keypair(server_secret, 32, server_public, 32) != 0) {
    fail("generate_auth_keypair", 0);
  }
  for (int i = 0; i < 32; i++) {
    message[i] = (uint8_t)i;
  }

  /* Warm-up, so the resident set below grows by connections, not by code and pools. */
  for (int i = 0; i < 64; i++) {
    OssuaryConnection *client, *server;
    live_pair(&client, &server);
    ossuary_destroy_connection(&client);
    ossuary_destroy_connection(&server);
  }

  long pairs = connections / 2;
  OssuaryConnection **live = calloc((size_t)pairs * 2, sizeof(OssuaryConnection *));
  if (live == NULL) {
    fail("calloc", 0);
  }
  long before = resident_bytes();
  for (long i = 0; i < pairs; i++) {
    live_pair(&live[2 * i], &live[2 * i + 1]);
  }
  long after = resident_bytes();
  printf("rss_per_connection %.0f bytes\n", (double)(after - before) / (double)(pairs * 2));

  messages(live[0], live[1], 1024, seconds, "messages.1k");
  messages(live[0], live[1], 16384, seconds, "messages.16k");
  for (long i = 0; i < pairs * 2; i++) {
    ossuary_destroy_connection(&live[i]);
  }
  free(live);

  handshakes(seconds);
  return 0;
}

/*
 * Helpers shared by the C test programs: hex keys, a byte queue standing in for a socket
 * direction, and failure reporting. Header-only so each program is one gcc command.
 */
#ifndef OSSUARY_TEST_SUPPORT_H
#define OSSUARY_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ossuary.h"

/* Reports a failed expectation with its line and returns 1 from the calling scenario. */
#define EXPECT(cond, ...)                                                         \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
      fprintf(stderr, __VA_ARGS__);                                               \
      fprintf(stderr, "\n");                                                      \
      return 1;                                                                   \
    }                                                                             \
  } while (0)

static inline int parse_hex_key(const char *hex, uint8_t key[32]) {
  if (hex == NULL || strlen(hex) != 64) {
    return -1;
  }
  for (int i = 0; i < 32; i++) {
    unsigned int byte;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
      return -1;
    }
    key[i] = (uint8_t)byte;
  }
  return 0;
}

static inline void format_hex_key(const uint8_t key[32], char hex[65]) {
  for (int i = 0; i < 32; i++) {
    snprintf(hex + 2 * i, 3, "%02x", key[i]);
  }
}

/* Bytes in flight in one direction, as a socket would hold them. */
typedef struct {
  uint8_t data[1 << 17];
  size_t len;
} wire_t;

static inline void wire_push(wire_t *w, const uint8_t *bytes, size_t n) {
  if (w->len + n > sizeof(w->data)) {
    fprintf(stderr, "wire overflow\n");
    exit(3);
  }
  memcpy(w->data + w->len, bytes, n);
  w->len += n;
}

static inline void wire_drop(wire_t *w, size_t n) {
  memmove(w->data, w->data + n, w->len - n);
  w->len -= n;
}

#endif

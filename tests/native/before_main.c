/*
 * A call made before main(): from a constructor, as a C++ program's global objects make them (a
 * client object whose constructor creates its connection). Linked with libossuary.a, the
 * program's constructors ran before the runtime's own static initialisers, which are linked into
 * the same executable, and the first call aborted the program (in the runtime's thread attach).
 * libossuary.so's initialisers run before the program's, as every shared library's do.
 *
 * Prints "ok before_main"; exits non-zero on a failed expectation.
 */
#include <stdint.h>
#include <stdio.h>

#include "ossuary.h"
#include "test_support.h"

static OssuaryConnection *early;

__attribute__((constructor)) static void before_main(void) {
  early = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
}

static int made_before_main(void) {
  EXPECT(early != NULL, "the connection made before main()");
  uint8_t out[512];
  uint16_t out_len = sizeof(out);
  EXPECT(ossuary_send_handshake(early, out, &out_len) == 92, "it works");
  ossuary_destroy_connection(&early);
  return 0;
}

int main(void) {
  if (made_before_main() != 0) {
    printf("failed before_main\n");
    return 1;
  }
  printf("ok before_main\n");
  return 0;
}

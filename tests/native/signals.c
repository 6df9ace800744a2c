/*
 * What the library does to the program's signal dispositions, as the README's "Signals" says:
 * the first call starts the .NET runtime, which sets SIGPIPE to ignored (replacing the
 * program's handler) and puts handlers of its own on SIGSEGV, SIGFPE and SIGRTMIN that pass on
 * to the program's handler what is not the runtime's. Every other signal is left alone. A
 * SIGPIPE handler installed after the first call stays, and the library keeps working.
 *
 * Prints one line per finding and "ok signals"; exits non-zero on a failed expectation.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ossuary.h"
#include "test_support.h"

static volatile sig_atomic_t caught[65];

static void count(int sig) { caught[sig]++; }

static void *handler_of(int sig) {
  struct sigaction action;
  sigaction(sig, NULL, &action);
  return (action.sa_flags & SA_SIGINFO) ? (void *)action.sa_sigaction : (void *)action.sa_handler;
}

static void install(int sig) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = count;
  sigaction(sig, &action, NULL);
}

/* A handshake between two fresh connections: the library still works. */
static int handshake(void) {
  OssuaryConnection *client = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  OssuaryConnection *server = ossuary_create_connection(OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER, NULL);
  static uint8_t packet[1024];
  int done = 0;
  for (int i = 0; i < 20 && !done; i++) {
    int state = ossuary_handshake_done(client);
    if (state == OSSUARY_ERR_UNTRUSTED_SERVER) {
      uint8_t key[32];
      ossuary_remote_public_key(client, key, sizeof(key));
      ossuary_add_authorized_key(client, key);
      continue;
    }
    done = state == 1 && ossuary_handshake_done(server) == 1;
    OssuaryConnection *from[2] = {client, server}, *to[2] = {server, client};
    for (int d = 0; d < 2; d++) {
      uint16_t len = sizeof(packet);
      ossuary_send_handshake(from[d], packet, &len);
      if (len > 0) {
        ossuary_recv_handshake(to[d], packet, &len);
      }
    }
  }
  ossuary_destroy_connection(&client);
  ossuary_destroy_connection(&server);
  return done;
}

int main(void) {
  const int watched[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCHLD,
                         SIGCONT, SIGWINCH, SIGPIPE, SIGSEGV, SIGFPE, SIGRTMIN, SIGRTMIN + 1};
  const size_t n = sizeof(watched) / sizeof(watched[0]);
  for (size_t i = 0; i < n; i++) {
    install(watched[i]);
  }

  OssuaryConnection *first = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
  EXPECT(first != NULL, "created");
  ossuary_destroy_connection(&first);

  for (size_t i = 0; i < n; i++) {
    if (handler_of(watched[i]) != (void *)count) {
      printf("taken %d\n", watched[i]);
    }
  }
  EXPECT(handler_of(SIGPIPE) == (void *)SIG_IGN, "SIGPIPE is ignored");

  /* The runtime's handlers pass on what is not theirs. */
  raise(SIGSEGV);
  raise(SIGFPE);
  raise(SIGRTMIN);
  EXPECT(caught[SIGSEGV] == 1 && caught[SIGFPE] == 1 && caught[SIGRTMIN] == 1, "passed on: %d %d %d",
         (int)caught[SIGSEGV], (int)caught[SIGFPE], (int)caught[SIGRTMIN]);

  /* A SIGPIPE handler installed after the first call is kept and called. */
  install(SIGPIPE);
  int fds[2];
  EXPECT(pipe(fds) == 0, "pipe");
  close(fds[0]);
  EXPECT(write(fds[1], "x", 1) == -1 && caught[SIGPIPE] == 1, "SIGPIPE reaches the program's handler");
  close(fds[1]);
  EXPECT(handshake(), "the library still works");
  EXPECT(handler_of(SIGPIPE) == (void *)count, "the program's SIGPIPE handler stays");
  printf("ok signals\n");
  return 0;
}

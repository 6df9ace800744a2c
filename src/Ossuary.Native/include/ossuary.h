/*
 * ossuary.h: the C interface of libossuary built from Ossuary.Pipelines (.NET, NativeAOT).
 *
 * It declares the same functions, argument types and return codes as the C API of libossuary
 * 0.5 (Rust), so that C programs written against that library build and run against this one,
 * and talk Ossuary v1 to either implementation.
 *
 * The library never touches a socket. The application moves bytes: what arrives from the peer
 * goes into ossuary_recv_handshake() / ossuary_recv_data(); what the send functions put into the
 * caller's buffer goes to the peer, in order.
 *
 * A typical loop, every time round:
 *   - ossuary_handshake_done(): 0 means the handshake is still going, so send what
 *     ossuary_send_handshake() writes and feed received bytes to ossuary_recv_handshake();
 *     1 means the channel is up, so use ossuary_send_data() / ossuary_recv_data();
 *     OSSUARY_ERR_UNTRUSTED_SERVER lets a client trust the server on first use;
 *     any other negative value means the connection is over.
 *   - Keep calling ossuary_handshake_done() even after it returned 1: a reset from the peer
 *     (or a corrupted packet) sends both sides back into the handshake.
 *
 * Return values: a value >= 0 is a byte count (or success); OSSUARY_ERR_OTHER (-1) is any error,
 * including NULL pointers (a NULL buffer is refused even with a length of 0, as libossuary 0.5
 * refuses it) and buffers that are too short; OSSUARY_ERR_WOULDBLOCK (-64) means part
 * of a packet was read or written (the in/out length says how much); OSSUARY_ERR_UNTRUSTED_SERVER
 * (-65) is the client's trust-on-first-use question. The in/out length arguments always report
 * what happened: after any call, drop exactly *in_buf_len bytes from the front of the input and
 * send exactly *out_buf_len bytes of the output. A receive call that fails for want of memory (the
 * library's heap is full; see the README's "Address space") returns -1 having consumed nothing,
 * so the same bytes go in again on the next call; libossuary 0.5 aborts the program instead.
 * Except a thread's first call: it needs memory for the thread's own storage in the .NET runtime,
 * and with the heap full it kills the program (a stack overflow inside the runtime, before any
 * code of this library runs) instead of returning -1. A thread that may call in when memory runs
 * short should make one call while there is room, when it starts:
 * ossuary_generate_auth_keypair(NULL, 0, NULL, 0), which returns -1 and does nothing else (it starts
 * the library if no call has yet; ossuary_handshake_done(NULL) would not, and so makes nothing before
 * the process's first connection). That storage lasts as long as the thread. Such a thread must
 * not end while the heap is full: the runtime then gives the thread's id back on a thread of its
 * own, which needs memory for it, and without any it aborts the program (SIGABRT) or spins in
 * collections. Free memory (destroy connections) before a thread that called in ends.
 *
 * Internal errors: a failure inside the library that the caller did not cause (a bug of this
 * library, or libsodium failing below it) returns the same value as any other failure (-1, NULL,
 * or nothing for ossuary_destroy_connection()), and the in/out lengths say nothing was consumed or
 * written, as for a bad argument; the library also writes one line to stderr (write(2) on
 * descriptor 2, at most 512 bytes), "libossuary: internal error in <function> (its failure value
 * was returned): <exception type>: <message> at <where it was thrown>". Please report such a
 * line. The failures a program or its peer causes (a bad handle or argument, a call in the wrong
 * state, a garbled or refused packet) and a full heap write nothing; a libsodium that cannot be
 * loaded or started is said once, when the library starts, not at every call that fails for it.
 *
 * Threads: different connections may be used from different threads at once; calls on one
 * connection are serialised by a lock inside it. Destroying a connection must not race other
 * calls on it (as free() must not race a use): a call already under way may act on it after the
 * destroy, instead of returning -1. No function is async-signal-safe: do not call one from a
 * signal handler, and never leave a call by longjmp() or pthread_exit() from a handler that
 * interrupted it: the call's lock stays held, and the .NET runtime (at its next garbage
 * collection) and every later fork() wait for that call for ever.
 *
 * fork(): a fork waits until no other thread is inside a call of this library (calls that start
 * meanwhile wait for it). The child can use the library only if no thread but the one that forked
 * had ever called it: the .NET runtime inside keeps a record of every thread that has called in,
 * the child inherits those records without their threads, and its next garbage collection then
 * hangs or crashes. A child of a process whose calls came from several threads should only exec()
 * or _exit() (see the README). The library sets up its fork handlers (a pthread key, then
 * pthread_atfork()) in its first call; if that fails (every pthread key taken, or no memory), it
 * says so once on stderr, and ossuary_create_connection() returns NULL and
 * ossuary_generate_auth_keypair() -1 until a later call of either sets them up. A first call that
 * finds another thread's first call setting them up waits for it (at most 1 s, then it fails the
 * same way and says so).
 * A connection the child inherits is the same channel as the parent's copy, keys and message
 * counters included: use it in one of the two processes only, as with a socket (two processes
 * sending on it would encrypt two messages under one nonce, which exposes both).
 *
 * Handles: an OssuaryConnection * is an opaque handle, not an address, and no handle is ever
 * handed out twice. A copy kept after ossuary_destroy_connection() (or any pointer this library
 * did not return: a made-up value, a handle of another process) makes every call return -1
 * (NULL, or nothing, where the function returns no number) and never touches another
 * connection, even one created later. Handles are drawn from a permutation keyed afresh in each
 * process (a child made by fork() included), so a value not handed out names a live connection
 * only by a 2^-44 chance; like heap addresses, they are 8-byte aligned and below 2^47.
 *
 * Signals: the first call starts the .NET runtime, which sets SIGPIPE to ignored (replacing the
 * program's handler: install yours after the first call to keep it) and installs handlers for
 * SIGSEGV, SIGFPE and SIGRTMIN that pass on to the program's earlier ones what is not the
 * runtime's. libossuary 0.5 touches no signal. See the README's "Signals".
 *
 * Environment: the runtime inside the library ignores the program's DOTNET_* and COMPlus_*
 * variables (settings meant for .NET programs); see the README's "Environment".
 *
 * Keys are 32 bytes: an Ed25519 secret key is the 32-byte seed, a public key the 32-byte point.
 *
 * Drop-in: the include guard (_OSSUARY_H), the types, the return codes and every prototype of
 * the 13 functions are libossuary 0.5's, parameter types included (its in_buf parameters are
 * 'uint8_t *', not 'const uint8_t *', although neither library writes through them), so code
 * that tests the guard, or stores the functions in pointers typed after 0.5's prototypes,
 * compiles unchanged. What 0.5 does not have is marked "Addition" below: ossuary_disconnect()
 * and the OSSUARY_HAS_DISCONNECT macro that announces it. 0.5's header has no extern "C"; this
 * one adds it, so C++ programs link.
 *
 * A program that defines a function of its own named ossuary_disconnect cannot link against
 * libossuary.a (two definitions of one symbol), and against libossuary.so its calls reach its
 * own function, not the library's; rename it in the program.
 */
/* libossuary 0.5's guard, so that code testing _OSSUARY_H keeps working. */
#ifndef _OSSUARY_H
#define _OSSUARY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One end of one Ossuary channel. Opaque: only pointers to it are ever handled. */
typedef struct OssuaryConnection OssuaryConnection;

/* The role a connection plays. */
typedef enum {
  /* Connects to a server; trusts only the server keys added with ossuary_add_authorized_key(),
   * or asks through OSSUARY_ERR_UNTRUSTED_SERVER. Anonymous unless it has a secret key. */
  OSSUARY_CONN_TYPE_CLIENT = 0x00,
  /* A server that admits only clients proving a key added with ossuary_add_authorized_key(). */
  OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER = 0x01,
  /* A server that admits any client, anonymous ones included. Still proves its own key. */
  OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER = 0x02,
} ossuary_conn_type_t;

/* Negative return values. */
typedef enum {
  /* Anything that went wrong: bad arguments, a call in the wrong state, a reset, a closed or
   * failed connection. */
  OSSUARY_ERR_OTHER = -1,
  /* Not an error: only part of a packet was read or written. The in/out length says how many
   * bytes were consumed or written; call again with more input or output room. */
  OSSUARY_ERR_WOULDBLOCK = -64,
  /* From ossuary_handshake_done() on a client: the server proved a key the client does not
   * trust. The handshake waits until that key is added (trust on first use) or the connection
   * is dropped, for at most one minute: after that, the next ossuary_send_handshake() hands out
   * a Disconnect (error) for the server and ossuary_handshake_done() then returns
   * OSSUARY_ERR_OTHER, even if the key was added after the minute. The original waits forever. */
  OSSUARY_ERR_UNTRUSTED_SERVER = -65,
} ossuary_error_t;

/*
 * Creates one end of a channel.
 *
 * type       OSSUARY_CONN_TYPE_CLIENT, _AUTHENTICATED_SERVER or _UNAUTHENTICATED_SERVER.
 * auth_key   This host's 32-byte Ed25519 secret key (seed), copied; or NULL. Without a key a
 *            client is anonymous (only unauthenticated servers admit it) and a server makes a
 *            random key that lives as long as the connection.
 *
 * Returns the connection, or NULL for an unknown type, if the library could not start, or while
 * it cannot set up its fork handlers (see fork() above; said on stderr).
 * Release it with ossuary_destroy_connection().
 *
 * Every value of type but the three above is unknown, 256 and up included. libossuary 0.5 reads
 * only the low byte of type, so there 256 makes a client and 257 and 258 servers (and -256 a
 * client); this library refuses them rather than guess which role a stray value meant.
 */
OssuaryConnection *ossuary_create_connection(ossuary_conn_type_t type, const uint8_t auth_key[32]);

/*
 * Releases a connection and wipes its keys, then sets *conn to NULL. Nothing is sent: to tell
 * the peer, call ossuary_disconnect() and send the packet it produces first.
 * conn may be NULL, and *conn may be NULL or a handle already destroyed (nothing happens).
 */
void ossuary_destroy_connection(OssuaryConnection **conn);

/*
 * Sets this host's 32-byte Ed25519 secret key (seed), like auth_key of
 * ossuary_create_connection() but never NULL.
 *
 * Only before the connection has sent or received its first byte: after that the handshake
 * is signed with the key it started with, and this returns -1. It returns -1 too once
 * ossuary_disconnect() has ended the connection.
 *
 * Returns 0, or -1. After -1 the key in force stays (and signs the handshake); that includes a
 * call that ran out of memory (the library's heap is full), whose key is wiped.
 */
int32_t ossuary_set_secret_key(OssuaryConnection *conn, const uint8_t key[32]);

/*
 * Trusts a 32-byte Ed25519 public key: a server a client may talk to, or a client an
 * authenticated server admits. A client waiting after OSSUARY_ERR_UNTRUSTED_SERVER carries on
 * with its handshake when the key added is the server's.
 *
 * Returns 0, or -1 (the key is then not trusted, also when the library ran out of memory).
 */
int32_t ossuary_add_authorized_key(OssuaryConnection *conn, const uint8_t key[32]);

/*
 * Trusts several public keys at once: 'key' is an array of 'count' pointers to 32-byte keys.
 * NULL entries are skipped. All the keys are added, or none: a call that runs out of memory (the
 * library's heap is full) trusts none of them, so the same call can be made again.
 *
 * Returns the number of keys added (the non-NULL entries), or -1 when none was added.
 */
int32_t ossuary_add_authorized_keys(OssuaryConnection *conn, uint8_t *key[], uint8_t count);

/*
 * Copies the peer's 32-byte Ed25519 public key into key_buf (key_buf_len must be at least 32).
 *
 * A client knows it once the server's handshake packet has been verified, which is the moment
 * ossuary_handshake_done() returns OSSUARY_ERR_UNTRUSTED_SERVER for an unknown server; a server
 * knows it once it has admitted the client (an anonymous client's key is 01 followed by 31
 * zero bytes). A reset forgets it.
 *
 * Returns 0, or -1 if the key is not known (yet) or the arguments are bad.
 */
int32_t ossuary_remote_public_key(OssuaryConnection *conn,
                                  uint8_t *key_buf, uint16_t key_buf_len);

/*
 * Makes a new random Ed25519 key pair, for setting up a host; needs no connection.
 * Writes the 32-byte secret key (seed) to secret_buf and the 32-byte public key to public_buf;
 * both lengths must be at least 32.
 *
 * Returns 0, or -1 (bad arguments, or the library could not start or set up its fork handlers).
 */
int32_t ossuary_generate_auth_keypair(uint8_t *secret_buf, uint16_t secret_buf_len,
                                      uint8_t *public_buf, uint16_t public_buf_len);

/*
 * Feeds bytes received from the peer to the handshake. Takes at most one packet per call and
 * never a byte beyond it, so bytes that follow (the peer's first data, say) stay for the next
 * call or for ossuary_recv_data().
 *
 * in_buf_len  In: the bytes available at in_buf. Out: how many were consumed; remove exactly
 *             that many from the front of your buffer, whatever the return value.
 *
 * Returns the bytes consumed when a packet was complete (0 when the handshake takes no input
 * now, e.g. it is already done); OSSUARY_ERR_WOULDBLOCK when the bytes (all consumed) were only
 * part of a packet, which is kept inside until the rest arrives; -1 when the packet reset or
 * ended the connection (ossuary_handshake_done() tells which) or on bad arguments.
 */
int32_t ossuary_recv_handshake(OssuaryConnection *conn,
                               uint8_t *in_buf, uint16_t *in_buf_len);

/*
 * Writes the handshake packets that are due (or a Reset or Disconnect) into out_buf. Call it
 * on every pass of the handshake loop; it writes nothing when there is nothing to say.
 *
 * out_buf_len In: the room at out_buf. Out: the bytes written, to be sent to the peer.
 *
 * Returns the bytes written (possibly 0); OSSUARY_ERR_WOULDBLOCK when out_buf was too small
 * for everything: the rest is kept and handed out by the next ossuary_send_handshake() or
 * ossuary_flush() (or ossuary_send_data() once the channel is established: before that it
 * returns -1 and hands out nothing); -1 on bad arguments, or when there was no memory for the
 * next packet and nothing was written (a call that had written bytes returns them, and the
 * packet follows in a later call).
 */
int32_t ossuary_send_handshake(OssuaryConnection *conn,
                               uint8_t *out_buf, uint16_t *out_buf_len);

/*
 * Says where the handshake stands. Call it on every pass of the application's loop.
 *
 * Returns 1 when the channel is established and every handshake byte has been handed out;
 * 0 while the handshake is under way (again, after a reset), or while a final packet is still
 * waiting in ossuary_send_handshake(); OSSUARY_ERR_UNTRUSTED_SERVER (clients only, once per
 * pause) when the server proved a key that is not trusted: to trust it on first use, read it
 * with ossuary_remote_public_key() and add it with ossuary_add_authorized_key(), otherwise
 * give up; -1 once the connection has ended (closed by either side, refused, or failed after
 * five resets) or for a NULL connection.
 */
int32_t ossuary_handshake_done(OssuaryConnection *conn);

/*
 * Encrypts one message (at most 16384 bytes) into one packet and writes it to out_buf.
 * Only once ossuary_handshake_done() has returned 1. The receiver gets exactly this message
 * from one ossuary_recv_data() call: message boundaries are kept. An empty message is allowed.
 *
 * in_buf      The message. Never NULL, even for an empty message: libossuary 0.5 answers a NULL
 *             in_buf with -1 whatever in_buf_len says, and so does this library.
 * in_buf_len  The message's length (0 for an empty message).
 * out_buf_len In: the room at out_buf (in_buf_len + 28 holds the whole packet). Out: the
 *             bytes written, to be sent to the peer.
 *
 * Returns the bytes written when the packet (and anything queued before it) is out;
 * OSSUARY_ERR_WOULDBLOCK when out_buf was too small: the message was taken and the rest of its
 * packet is kept, to be handed out by ossuary_flush() (call it until it returns 0) or by the
 * next send call; -1 (nothing taken) when the channel is not established, the message is
 * longer than 16384 bytes, more than four full packets (65648 bytes) of earlier output
 * are still waiting for ossuary_flush(), or the arguments are bad.
 */
int32_t ossuary_send_data(OssuaryConnection *conn,
                          uint8_t *in_buf, uint16_t in_buf_len,
                          uint8_t *out_buf, uint16_t *out_buf_len);

/*
 * Decrypts one packet of received bytes into out_buf. Takes at most one packet per call.
 *
 * in_buf_len  In: the bytes available at in_buf. Out: how many were consumed; remove exactly
 *             that many from the front of your buffer, whatever the return value.
 * out_buf_len In: the room at out_buf. Out: the message's length (0 when no message came out).
 *
 * Returns the bytes consumed when a packet was complete (its message, possibly empty, is in
 * out_buf); OSSUARY_ERR_WOULDBLOCK when the bytes (all consumed) were only part of a packet;
 * 0 once the connection has ended; -1 when the packet reset or ended the connection (check
 * ossuary_handshake_done(): after a reset it returns 0 and the handshake runs again), when
 * out_buf is too small for the message (the packet is kept: call again with more room), when
 * the channel is not established, or on bad arguments.
 */
int32_t ossuary_recv_data(OssuaryConnection *conn,
                          uint8_t *in_buf, uint16_t *in_buf_len,
                          uint8_t *out_buf, uint16_t *out_buf_len);

/*
 * Hands out output kept back by a send call that returned OSSUARY_ERR_WOULDBLOCK: writes up
 * to out_buf_len bytes of it to out_buf. Call it until it returns 0.
 *
 * Returns the bytes written (0 when nothing is waiting); OSSUARY_ERR_WOULDBLOCK when out_buf_len
 * is 0 and something is waiting; -1 on bad arguments.
 */
int32_t ossuary_flush(OssuaryConnection *conn,
                      uint8_t *out_buf, uint16_t out_buf_len);

/* ---- Addition: not in libossuary 0.5's C API ------------------------------------------- */

/* Defined when this header declares ossuary_disconnect(), so that one program builds against
 * either library: #ifdef OSSUARY_HAS_DISCONNECT. */
#define OSSUARY_HAS_DISCONNECT 1

/*
 * Addition (libossuary 0.5's Rust API has the same call, its C API does not). Ends the
 * connection: the next ossuary_send_handshake() writes a Disconnect packet, clean (error = 0)
 * or reporting a failure (error != 0), and ossuary_handshake_done() returns 0 until that packet
 * has been handed out, then -1. The peer's ossuary_recv_data() returns -1 when the packet
 * arrives.
 *
 * Called again before that packet has been handed out, with error != 0 after a clean call, it
 * turns the packet into a Disconnect reporting a failure (libossuary 0.5's Rust disconnect() also
 * sends what the latest call says); a clean call never turns a failure back into a clean close,
 * and once the packet is out further calls change nothing (0.5 would send another Disconnect).
 *
 * What the peer sent that has not been read yet is dropped, as libossuary 0.5's Rust disconnect()
 * drops it (the session keys go with the session): from this call on, ossuary_recv_data()
 * returns -1 and consumes nothing until the Disconnect has been handed out, then 0, and
 * ossuary_recv_handshake() consumes nothing. Read what you want from the peer first.
 *
 * A program that defines its own function named ossuary_disconnect conflicts with this one:
 * the static library (libossuary.a) then fails to link with a duplicate symbol.
 *
 * Returns 0, or -1 for a NULL connection.
 */
int32_t ossuary_disconnect(OssuaryConnection *conn, uint8_t error);

#ifdef __cplusplus
}
#endif

#endif /* _OSSUARY_H */

/*
 * The NativeAOT runtime's own drand48 generator. Its random-bytes fallback (minipal, built
 * without arc4random_buf) seeds the C library's drand48 state with srand48(time(NULL)) the first
 * time .NET code asks for random bytes and draws from it with lrand48() every time after. That
 * state is the program's: a C program that seeded it with srand48() for a repeatable sequence got
 * a different one once it had called into libossuary (libossuary 0.5 never touches it).
 *
 * Linked into libossuary (the .so and the .a), these definitions take the runtime's calls, so the
 * program's generator stays the program's: the link resolves the runtime's references here, and
 * neither library exports them (the .so exports only ossuary_*, the .a keeps only ossuary_*
 * global). The runtime only XORs these draws over bytes it reads from the kernel, so a plain
 * 48-bit linear congruential generator, as drand48's, is all it needs; the state is updated
 * atomically, as threads may draw at once.
 */
#include <stdint.h>

#define RAND48_MULTIPLIER 0x5DEECE66DULL
#define RAND48_INCREMENT 0xBULL
#define RAND48_MASK ((1ULL << 48) - 1)

static uint64_t state = 0x1234ABCD330EULL;

static uint64_t next_state(void) {
  uint64_t current = __atomic_load_n(&state, __ATOMIC_RELAXED);
  uint64_t next;
  do {
    next = (current * RAND48_MULTIPLIER + RAND48_INCREMENT) & RAND48_MASK;
  } while (!__atomic_compare_exchange_n(&state, &current, next, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return next;
}

void srand48(long seed) {
  __atomic_store_n(&state, (((uint64_t)(uint32_t)seed) << 16 | 0x330EULL) & RAND48_MASK, __ATOMIC_RELAXED);
}

long lrand48(void) { return (long)(next_state() >> 17); }

long mrand48(void) { return (long)(int32_t)(uint32_t)(next_state() >> 16); }

/*
 * A libsodium.so for internal_error.c: libossuary loads it as its libsodium, and finds every
 * function in the real library (libsodium_real.so, its dependency, which dlsym() searches next)
 * except crypto_sign_ed25519_seed_keypair, which fails as libsodium reports a failure of its own.
 * Making an Ed25519 key pair then throws inside libossuary, where no argument of the caller's
 * can reach.
 */
int crypto_sign_ed25519_seed_keypair(unsigned char *pk, unsigned char *sk, const unsigned char *seed);

int crypto_sign_ed25519_seed_keypair(unsigned char *pk, unsigned char *sk, const unsigned char *seed) {
  (void)pk;
  (void)sk;
  (void)seed;
  return -1;
}

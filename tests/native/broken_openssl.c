/*
 * A broken OpenSSL: built twice, as libssl.so.3 and libcrypto.so.3, into a folder that
 * LD_LIBRARY_PATH puts first, so a dlopen() of either name finds this instead of the system's.
 * It has one of OpenSSL's symbols (a version number) and none of the hundreds that the .NET
 * runtime's OpenSSL shim requires, as a partial install or a stub shipped by some other package
 * might. It says on stderr when it is loaded. Built with:
 *   gcc -shared -fPIC -o libssl.so.3 broken_openssl.c
 */
#include <unistd.h>

__attribute__((constructor)) static void announce(void) {
  static const char line[] = "broken_openssl: loaded\n";
  ssize_t ignored = write(2, line, sizeof(line) - 1);
  (void)ignored;
}

unsigned long OpenSSL_version_num(void) { return 0x30000000UL; }

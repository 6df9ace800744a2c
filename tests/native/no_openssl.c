/*
 * Loaded with LD_PRELOAD: makes every dlopen() of OpenSSL's libraries (libssl.*, libcrypto.*)
 * fail, as on a machine where they are not installed (a slim container image), and says so on
 * stderr. Every other dlopen() goes through. Built with: gcc -shared -fPIC -o no_openssl.so
 * no_openssl.c
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *dlopen(const char *file, int flags) {
  static void *(*real_dlopen)(const char *, int);
  if (real_dlopen == NULL) {
    real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
  }
  const char *name = file == NULL ? NULL : strrchr(file, '/');
  name = name == NULL ? file : name + 1;
  if (name != NULL && (strncmp(name, "libssl.", 7) == 0 || strncmp(name, "libcrypto.", 10) == 0)) {
    fprintf(stderr, "no_openssl: refused %s\n", file);
    return NULL;
  }
  return real_dlopen(file, flags);
}

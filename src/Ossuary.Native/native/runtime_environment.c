/*
 * The NativeAOT runtime's own getenv(). At its start (the library's first call) the runtime reads
 * its settings from the process environment, DOTNET_ and COMPlus_ variables first, ahead of the
 * ones compiled into the library: some 90 GC knobs, DOTNET_gcConcurrent, DOTNET_PROCESSOR_COUNT,
 * DOTNET_Thread_DefaultStackSize, the stress log and more. Those variables are meant for the .NET
 * programs of the machine, and a C program that links libossuary is not one: DOTNET_GCLargePages=1,
 * say (set for a .NET service, inherited by everything started from the same shell), made the
 * runtime fail to start, and it then aborted the host program in its first call.
 *
 * Linked into libossuary (the .so and the .a, as rand48.c is), this definition takes the
 * runtime's calls and those of the .NET code compiled in (Environment.GetEnvironmentVariable),
 * and answers NULL for every DOTNET_ and COMPlus_ name, so the library runs on its own settings
 * whatever the host's environment says; every other name is looked up as the C library's getenv()
 * does. Neither library exports it: the program's own getenv() calls never come here.
 */
#include <stddef.h>
#include <string.h>

extern char **environ;

static int starts_with(const char *name, const char *prefix) {
  return strncmp(name, prefix, strlen(prefix)) == 0;
}

char *getenv(const char *name) {
  if (name == NULL || starts_with(name, "DOTNET_") || starts_with(name, "COMPlus_")) {
    return NULL;
  }
  size_t length = strlen(name);
  if (length == 0 || strchr(name, '=') != NULL) {
    return NULL;
  }
  for (char **entry = environ; entry != NULL && *entry != NULL; entry++) {
    if (strncmp(*entry, name, length) == 0 && (*entry)[length] == '=') {
      return *entry + length + 1;
    }
  }
  return NULL;
}

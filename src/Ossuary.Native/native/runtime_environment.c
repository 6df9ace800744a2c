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
 *
 * Two DOTNET_ names have answers of the library's own. DOTNET_GCHeapHardLimit under an
 * address-space limit (ulimit -v, RLIMIT_AS). The GC's address range is five times the heap limit
 * compiled in (OSSUARY_HEAP_HARD_LIMIT, 1 GiB), but at most half of such a limit, so below 10 GiB
 * the range is less than five times the heap limit, and below 2 GiB less than the heap limit
 * itself: the heap then ran out of range before it reached its limit, and the GC wrote past the
 * end of its region table, which killed the host (SIGSEGV) in the call that allocated instead of
 * that call failing (ossuary_create_connection() returning NULL). The heap limit is then a tenth
 * of the address-space limit, which keeps the GC's own ratio: its range, half the limit, is five
 * times its heap.
 *
 * Under such a limit the library answers DOTNET_GCRegionSize too: 1 MiB regions instead of the
 * 4 MiB the GC picks for a range of some 200 MiB. The runtime (10.0, dotnet/runtime#129681) never
 * commits the last page of its region table when no background GC is compiled in (as here): the
 * table's last element is cut at the page boundary below its end. The regions whose entries lie in
 * that page, the top of the range, can be handed out but not described: the first one the heap
 * reached killed the host (SIGSEGV in make_heap_segment) instead of the allocation failing. A page
 * holds some 24 entries: with 4 MiB regions that was the top 96 MiB of a 195 MiB range, which a
 * heap of 39 MiB reaches (the range also holds the large regions set up at start), and whether it
 * did turned on where the table's end fell in its page: about two runs in three. With 1 MiB regions
 * the top 24 MiB cannot be reached: the heap, its start-up regions and their free space stay far
 * below it.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#ifndef OSSUARY_HEAP_HARD_LIMIT
#error "OSSUARY_HEAP_HARD_LIMIT (System.GC.HeapHardLimit in bytes) comes from OssuaryRuntimeEnvironment.targets"
#endif

extern char **environ;

/* The heap limit and region size as the runtime reads a DOTNET_ value (hex); empty when the runtime's own stand. */
static char heap_hard_limit[sizeof(unsigned long long) * 2 + 1];
static char region_size[sizeof(unsigned long long) * 2 + 1];
static pthread_once_t address_space_once = PTHREAD_ONCE_INIT;

static void choose_for_address_space(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return;
  }
  unsigned long long heap = (unsigned long long)limit.rlim_cur / 10;
  if (heap < (unsigned long long)OSSUARY_HEAP_HARD_LIMIT) {
    snprintf(heap_hard_limit, sizeof(heap_hard_limit), "%llx", heap);
    snprintf(region_size, sizeof(region_size), "%llx", 1024ULL * 1024);
  }
}

static int starts_with(const char *name, const char *prefix) {
  return strncmp(name, prefix, strlen(prefix)) == 0;
}

char *getenv(const char *name) {
  if (name != NULL && strcmp(name, "DOTNET_GCHeapHardLimit") == 0) {
    pthread_once(&address_space_once, choose_for_address_space);
    return heap_hard_limit[0] != '\0' ? heap_hard_limit : NULL;
  }
  if (name != NULL && strcmp(name, "DOTNET_GCRegionSize") == 0) {
    pthread_once(&address_space_once, choose_for_address_space);
    return region_size[0] != '\0' ? region_size : NULL;
  }
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

using System.Text.RegularExpressions;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library under AddressSanitizer and without its libsodium: ASan's dlopen wrapper hides
/// libossuary.so's $ORIGIN from the loader, so the library finds libsodium.so by its own path;
/// when libsodium is missing it says so on stderr, once.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed partial class SanitizerBuildTests(NativeLibraryFixture native)
{
    [Fact]
    public async Task AnAddressSanitizerBuildRunsEveryScenarioWithoutLdLibraryPath()
    {
        // NativeProcess removes LD_LIBRARY_PATH; LSAN_OPTIONS names tests/native/lsan.supp.
        ProcessResult result = await native.RunAsync("inproc", NativeLink.SharedAddressSanitizer);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(NativeApiTests.Scenarios, OkLine().Matches(result.Output).Select(m => m.Groups[1].Value));
        Assert.DoesNotContain("Sanitizer", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutTheSuppressionsLeakSanitizerReportsOnlyTheRuntimesStartUpAllocation()
    {
        ProcessResult result = await native.RunAsync(
            "inproc", NativeLink.SharedAddressSanitizer, new Dictionary<string, string> { ["LSAN_OPTIONS"] = "" }, "generated_keys");

        // What tests/native/lsan.supp is for, and nothing else: one 88-byte allocation.
        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains("ok generated_keys\n", result.Output, StringComparison.Ordinal);
        Assert.Contains("SUMMARY: AddressSanitizer: 88 byte(s) leaked in 1 allocation(s).", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingLibsodiumIsSaidOnceOnStderr()
    {
        string source = Path.Combine(native.RunDirectory, "three_tries.c");
        // The program's own handlers on the signals signals.c watches, to see which the library takes.
        File.WriteAllText(source, """
            #include <signal.h>
            #include <stdio.h>
            #include <string.h>
            #include "ossuary.h"
            static void count(int sig) { (void)sig; }
            static void *handler_of(int sig) {
              struct sigaction action;
              sigaction(sig, NULL, &action);
              return (action.sa_flags & SA_SIGINFO) ? (void *)action.sa_sigaction : (void *)action.sa_handler;
            }
            int main(void) {
              const int watched[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCHLD,
                                     SIGCONT, SIGWINCH, SIGTTIN, SIGTTOU, SIGPIPE, SIGSEGV, SIGFPE, SIGRTMIN, SIGRTMIN + 1};
              const size_t n = sizeof(watched) / sizeof(watched[0]);
              for (size_t i = 0; i < n; i++) {
                struct sigaction action;
                memset(&action, 0, sizeof(action));
                action.sa_handler = count;
                sigaction(watched[i], &action, NULL);
              }
              int null = 0;
              for (int i = 0; i < 3; i++) {
                OssuaryConnection *conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, NULL);
                null += conn == NULL;
                ossuary_destroy_connection(&conn);
              }
              for (size_t i = 0; i < n; i++) {
                if (handler_of(watched[i]) != (void *)count) {
                  printf("taken %d\n", watched[i]);
                }
              }
              printf("null %d\n", null);
              return 0;
            }
            """);
        // libossuary.so alone in a folder, and no libsodium.so on the search path.
        string program = await native.CompileWithoutLibsodiumAsync(source, "without-libsodium");
        string alone = Path.GetDirectoryName(program)!;

        ProcessResult result = await NativeProcess.RunAsync(program, [], native.NeutralDirectory);

        Assert.True(result.ExitCode == 0, result.ToString());

        // Saying so takes no signal beyond the four the README names (the start of the runtime's):
        // written with Console, the message set up .NET's terminal handling, which took SIGINT,
        // SIGQUIT and SIGCONT from the program.
        Assert.Equal("taken 13\ntaken 11\ntaken 8\ntaken 34\nnull 3\n", result.Output);
        // "cannot load libsodium: no .../libsodium.so beside libossuary ..." here; where a system
        // libsodium.so exists but is too old for Geralt, "libsodium could not be started (...)".
        Match said = Assert.Single(Regex.Matches(result.Error, "^libossuary: .*$", RegexOptions.Multiline));
        Assert.Contains("libsodium", said.Value, StringComparison.Ordinal);
        if (said.Value.StartsWith("libossuary: cannot load", StringComparison.Ordinal))
        {
            Assert.Contains(Path.Combine(alone, "libsodium.so"), said.Value, StringComparison.Ordinal);
        }
    }

    [GeneratedRegex(@"^ok (\w+)$", RegexOptions.Multiline)]
    private static partial Regex OkLine();
}

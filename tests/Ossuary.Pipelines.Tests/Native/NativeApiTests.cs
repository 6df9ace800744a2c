using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C API from C: tests/native/inproc.c runs a client and a server connection in one
/// process, linked against libossuary.so and against libossuary.a.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed partial class NativeApiTests(NativeLibraryFixture native, ITestOutputHelper output)
{
    /// <summary>The scenarios of inproc.c, in its order.</summary>
    internal static readonly string[] Scenarios =
    [
        "authenticated_server",
        "unauthenticated_server_anonymous_client",
        "unauthenticated_server_client_with_key",
        "trust_on_first_use",
        "refused_client_resets_then_fails",
        "would_block_handshake",
        "would_block_data_and_flush",
        "null_pointers_and_short_buffers",
        "flush_without_room",
        "destroy_sets_null",
        "stale_handle",
        "made_up_handles",
        "foreign_handle",
        "generated_keys",
        "set_secret_key",
        "set_secret_key_after_zero_room",
        "set_secret_key_after_flush",
        "set_secret_key_after_disconnect",
        "add_authorized_keys",
        "clean_disconnect",
        "error_disconnect",
        "disconnect_drops_unread_data",
        "disconnect_again_with_error",
        "one_packet_per_call",
        "reset_and_handshake_again",
        "message_sizes",
        "oversized_packet",
        "unexpected_packet_resets",
        "received_plaintext_is_wiped",
        "which_libsodium",
    ];

    public static TheoryData<string, NativeLink> ScenarioRuns()
    {
        var data = new TheoryData<string, NativeLink>();
        // Our library shared, static, and shared under AddressSanitizer (no LD_LIBRARY_PATH: the
        // library must find libsodium on its own although ASan hides its $ORIGIN from the loader).
        foreach (NativeLink link in new[] { NativeLink.Shared, NativeLink.Static, NativeLink.SharedAddressSanitizer })
        {
            foreach (string scenario in Scenarios)
            {
                data.Add(scenario, link);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ScenarioRuns))]
    public async Task CScenarioPasses(string scenario, NativeLink link)
    {
        ProcessResult result = await native.RunAsync("inproc", link, scenario);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"ok {scenario}\n", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheWholeProgramRunsEveryScenarioAndTimesTheFirstCall(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("inproc", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(Scenarios, OkLine().Matches(result.Output).Select(m => m.Groups[1].Value));

        // The times are printed, never asserted: how long the first call takes to start the runtime is
        // the benchmark's to measure (tests/native/bench.c's first_create, benchmarks/native-bench.sh,
        // a median of many process starts), and a busy machine can hold any one call for seconds. A
        // runtime that does not start at all fails above; one that hangs, at RunAsync's bound.
        double firstCall = Microseconds(result.Output, "first_call_us");
        double secondCall = Microseconds(result.Output, "second_call_us");
        output.WriteLine($"{link}: first ossuary_create_connection {firstCall / 1000:F2} ms (starts the runtime), " +
            $"a later one {secondCall / 1000:F3} ms (fastest of five), whole process with {Scenarios.Length} scenarios {result.Elapsed.TotalMilliseconds:F0} ms");
    }

    /// <summary>
    /// ossuary.h's "Handles": a pointer this library did not return names no connection. Every
    /// process numbering its connections alike would make one process's handle (logged, or kept
    /// in shared memory) name a live connection of another; the second run refuses the first's.
    /// </summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task AHandleFromAnotherProcessNamesNoConnection(NativeLink link)
    {
        ProcessResult first = await native.RunAsync("inproc", link, "foreign_handle");
        Assert.True(first.ExitCode == 0, first.ToString());
        string handle = HandleLine().Match(first.Output).Groups[1].Value;
        Assert.NotEmpty(handle);

        ProcessResult second = await native.RunAsync(
            "inproc", link, new Dictionary<string, string> { ["OSSUARY_TEST_FOREIGN_HANDLE"] = handle }, "foreign_handle");

        Assert.True(second.ExitCode == 0, $"the handle {handle} of the first run:\n{second}");
        Assert.Contains("ok foreign_handle\n", second.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheHeaderWorksFromCPlusPlus(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("header_cpp", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok c++\n", result.Output);
    }

    /// <summary>
    /// The README's "Signals": starting the runtime at the first call sets SIGPIPE to ignored
    /// and takes SIGSEGV, SIGFPE and SIGRTMIN (passing on what is not the runtime's), and no
    /// other signal; a SIGPIPE handler installed afterwards stays.
    /// </summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheFirstCallTakesOnlyTheSignalsTheReadmeNames(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("signals", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("taken 13\ntaken 11\ntaken 8\ntaken 34\nok signals\n", result.Output);
    }

    /// <summary>
    /// The README's "Signals" also promises the program's drand48 generator: the runtime's
    /// random-bytes fallback reseeded it (srand48(time(NULL))) and drew from it, so a sequence the
    /// program seeded itself changed once it had called the library. tests/native/program_random.c
    /// seeds one, uses the library in between its draws, and checks every draw.
    /// </summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheProgramsDrand48SequenceIsLeftAlone(NativeLink link)
    {
        ProcessResult result = await native.RunAsync("program_random", link);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("ok program_random\n", result.Output);
    }

    private static double Microseconds(string text, string name)
    {
        Match figure = Regex.Match(text, $@"^{name} (\d+)$", RegexOptions.Multiline);
        Assert.True(figure.Success, $"no {name} line:\n{text}");
        return double.Parse(figure.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"^ok (\w+)$", RegexOptions.Multiline)]
    private static partial Regex OkLine();

    [GeneratedRegex(@"^handle ([0-9a-f]+)$", RegexOptions.Multiline)]
    private static partial Regex HandleLine();
}

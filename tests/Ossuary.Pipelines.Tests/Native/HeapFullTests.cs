namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library with its managed heap full, under an address-space limit (ulimit -v), which cuts
/// the GC's address range to half the limit: tests/native/heap_full.c.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class HeapFullTests(NativeLibraryFixture native)
{
    /// <summary>About 390 MiB of address space, in the KiB that ulimit -v takes: a heap the test fills in seconds.</summary>
    private const int LimitKibibytes = 400_000;

    /// <summary>
    /// The heap limit compiled in (1 GiB) was larger than the GC's range under the limit (half of
    /// it), so the heap ran out of range before it reached its limit, and the GC then wrote past
    /// the end of its region table: the host died of SIGSEGV in ossuary_create_connection() where
    /// ossuary.h promises NULL. With that fixed it still died so in about two runs in three: the
    /// runtime never commits the last page of its region table, whose entries are the top of the
    /// range; the 1 MiB regions the library asks for under such a limit keep the heap below them.
    /// </summary>
    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task AFullHeapMakesCreateConnectionReturnNullInsteadOfCrashing(NativeLink link)
    {
        ProcessResult result = await RunLimitedAsync(link, "fill");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("ok fill\n", result.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// ossuary_recv_data() that met the full heap (no memory for the packet's buffer or its plaintext)
    /// returned -1 with nothing consumed, but had kept the bytes it took: handed in again, as the
    /// contract says, they were taken twice. A header taken made every later call fail (its packet
    /// buffer was never made); a whole packet came out of the next call, which reported 0 bytes
    /// consumed (the return value of an ended connection) while the packet was still in the
    /// caller's buffer, to be fed in again and reset the channel. Now a failed call takes nothing.
    /// The heap is topped up until eight keys in a row are refused, a bounded loop: with a single
    /// refusal the call found room in some runs, since the library frees caches of its own after
    /// the first one. Linked against libossuary.so only: the call under test is the same managed
    /// code in both libraries, and the full heap costs seconds a run.
    /// </summary>
    [Fact]
    public Task ReceiveDataThatRunsOutOfMemoryConsumesNothingSoTheStreamStaysInStep() => AssertScenarioSaysAsync("recv_data", "with the heap full: -1, 0 consumed, 0 out\n");

    /// <summary>
    /// ossuary_recv_handshake() that met the full heap where the server makes the client's key (after
    /// the ClientAuthentication opened) returned -1 with nothing consumed, as ossuary.h says, but the
    /// session had already counted the packet (its message id, and the nonce its blob used): the same
    /// bytes handed in again were a message id gap, and the handshake reset. Now a packet whose
    /// reading fails leaves both where they were. The packet's header goes in before the heap is
    /// filled, so that its buffer is made with room, and the call then fails in the session itself.
    /// </summary>
    [Fact]
    public Task ReceiveHandshakeThatRunsOutOfMemoryCanBeRetriedWithoutAReset() => AssertScenarioSaysAsync("recv_handshake", "with the heap full: -1, 0 consumed\n");

    /// <summary>
    /// ossuary_recv_handshake() that met the full heap as a client read the server's ServerHandshake
    /// (making the cipher for the key just agreed, or the server's identity key) returned -1 with
    /// nothing consumed, but the key agreement had already spent (zeroed) the client's ephemeral secret:
    /// the same bytes handed in again could not be agreed a second time, and every retry returned -1
    /// until the handshake timed out. Now the secret is spent once the packet has been read. The
    /// ServerHandshake, not the ClientHandshake: a server's call makes only the cipher (40 bytes and a
    /// pinned array), which found room in four runs of five under the full heap; a client's makes the
    /// server's key after it, as the recv_handshake scenario's call does, and met the full heap in every run.
    /// </summary>
    [Fact]
    public Task ReceiveHandshakeThatRunsOutOfMemoryAfterTheKeyAgreementCanBeRetried() => AssertScenarioSaysAsync("recv_server_handshake", "with the heap full: -1, 0 consumed\n");

    /// <summary>
    /// A thread whose first call into the library came with the heap full killed the host (SIGSEGV):
    /// the runtime makes a thread's storage on the heap at its first use, and its out-of-memory path
    /// asks for the same storage again until the stack overflows, before any code of ours runs. So
    /// ossuary.h tells a thread to make one call while there is room, as it starts. The call it named,
    /// ossuary_handshake_done(NULL), never went into the library before the process's first connection
    /// (the C entry points answer it without starting the runtime): a thread that made it as it started,
    /// before the program's first connection, still had no storage, and its call with the heap full did
    /// not return in 90 s. The header now names ossuary_generate_auth_keypair(NULL, 0, NULL, 0), which
    /// starts the runtime when it must; the probe thread here starts before the first connection.
    /// That call made the thread's storage but not its managed thread id, which the connection's lock
    /// makes at the thread's first lock: under load the thread's next call met the full heap there
    /// and returned -1 (five runs of six with three copies side by side). Every call now makes the id.
    /// The scenario was out of the suite for aborting after its check: its thread ended with the heap
    /// full, and the runtime's finalizer thread, giving the thread's id back, found no memory and
    /// recursed in its out-of-memory path (a core showed some 28,000 frames under
    /// ManagedThreadId.Finalize); the thread now ends once the heap is freed, as ossuary.h asks.
    /// </summary>
    [Fact]
    public Task AThreadThatCalledOnceWhileThereWasRoomCanCallWithTheHeapFull() => AssertScenarioSaysAsync("thread_called_before", "from a thread that had called before, with the heap full: 0\n");

    /// <summary>
    /// fork() from a thread that had never called the library, with the heap full, did not return:
    /// the library's fork handler (ForkGate.Prepare, .NET code) read a thread static to learn whether
    /// its thread was inside a call, the runtime made that thread's storage on the full heap, and its
    /// out-of-memory path asked for it again, a collection each time (a gdb attach after 35 s showed
    /// 2,000 frames of it under Prepare); after minutes the stack would have run out. A program's
    /// worker that forks to run a command never calls the library, and had no advice to follow. The
    /// depth is now kept in a pthread key, which needs no heap, and the handlers are C
    /// (native/fork_gate.c): no .NET code runs in a fork, on the forking thread or in the child.
    /// </summary>
    [Fact]
    public Task AThreadThatNeverCalledCanForkWithTheHeapFull() => AssertScenarioSaysAsync("fork_from_another_thread", "forked with the heap full, the child exited with 7\n");

    /// <summary>Runs <paramref name="scenario"/> against libossuary.so: it must exit 0 having printed <paramref name="line"/> and its "ok".</summary>
    private async Task AssertScenarioSaysAsync(string scenario, string line)
    {
        ProcessResult result = await RunLimitedAsync(NativeLink.Shared, scenario);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(line, result.Output, StringComparison.Ordinal);
        Assert.Contains($"ok {scenario}\n", result.Output, StringComparison.Ordinal);
    }

    private async Task<ProcessResult> RunLimitedAsync(NativeLink link, string scenario)
    {
        string program = await native.ProgramAsync("heap_full", link);

        // The shell sets the limit and becomes the program (exec), so the limit is the program's own.
        await using NativeProcess process = NativeProcess.Start(
            "sh", ["-c", $"ulimit -v {LimitKibibytes} && exec \"$0\" \"$1\"", program, scenario], native.NeutralDirectory);
        return await process.WaitForExitAsync(TimeSpan.FromSeconds(120));
    }
}

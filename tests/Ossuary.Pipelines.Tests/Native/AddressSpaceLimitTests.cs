namespace Ossuary.Pipelines.Tests.Native;

/// <summary>
/// The C library in a process whose address space is limited (ulimit -v, RLIMIT_AS: a batch
/// system, a sandbox, systemd's LimitAS). The library fixed the GC's address range at 4 GiB
/// (System.GC.RegionRange), which the runtime reserves in full at the first call: under any limit
/// below about 5 GiB the runtime could not start, printed "Fatal error. .NET runtime failed to
/// initialize." and aborted the host (exit 134), where ossuary.h promises NULL. The range now
/// follows from a heap limit instead, which the runtime cuts to half of the address-space limit.
/// </summary>
[Collection(NativeLibraryCollection.Name)]
public sealed class AddressSpaceLimitTests(NativeLibraryFixture native)
{
    /// <summary>1 GiB of address space, in the KiB that ulimit -v takes: far more than the program and the library use.</summary>
    private const int LimitKibibytes = 1024 * 1024;

    [Theory]
    [InlineData(NativeLink.Shared)]
    [InlineData(NativeLink.Static)]
    public async Task TheLibraryStartsUnderAnAddressSpaceLimit(NativeLink link)
    {
        string program = await native.ProgramAsync("inproc", link);

        // The shell sets the limit and becomes the program (exec), so the limit is the program's own.
        await using NativeProcess process = NativeProcess.Start(
            "sh", ["-c", $"ulimit -v {LimitKibibytes} && exec \"$0\" message_sizes", program], native.NeutralDirectory);
        ProcessResult result = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("ok message_sizes\n", result.Output, StringComparison.Ordinal);
    }
}

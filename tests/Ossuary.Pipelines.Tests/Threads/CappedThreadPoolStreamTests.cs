using System.Diagnostics;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// <see cref="OssuaryStream"/>'s synchronous members block on the connection's asynchronous work, which runs
/// on the thread pool (SslStream's read the inner stream on the calling thread): in a pool capped with
/// <c>ThreadPool.SetMaxThreads</c>, every thread blocked in one, none returns (a pool of 2 with one thread
/// in a read and the other waiting for it waited for ever). What its docs give as the bound: one pool thread
/// left free is enough for any number of them. Shown in a child process, the only place a cap may be set,
/// as it holds for the process's life (<see cref="ChildScenarios"/>).
/// </summary>
public class CappedThreadPoolStreamTests
{
    [Fact]
    public async Task SynchronousReadsOnEveryPoolThreadButOneOfACappedPoolAllComplete()
    {
        string said = await RunChildAsync("capped-stream-reads", "4");
        Assert.Contains("3 of 3 reads completed: ping, ping, ping", said, StringComparison.Ordinal);
    }

    /// <summary>
    /// Every thread of the capped pool in a synchronous read (what the docs say not to do): they hung for ever, without a
    /// word. Now a read that sees the pool starved for the limit (2 s here) throws saying why, which frees its thread.
    /// </summary>
    [Fact]
    public async Task SynchronousReadsOnEveryPoolThreadOfACappedPoolSayTheyAreStarvedRatherThanHang()
    {
        string said = await RunChildAsync("capped-stream-starved", "4");
        Assert.Contains("4 of 4 reads ended", said, StringComparison.Ordinal);
        Assert.Contains("no free thread", said, StringComparison.Ordinal);
    }

    private static async Task<string> RunChildAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(ChildScenarios).Assembly.Location);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process child = Process.Start(start)!;
        Task<string> output = child.StandardOutput.ReadToEndAsync();
        Task<string> errors = child.StandardError.ReadToEndAsync();
        try
        {
            // Far beyond what the reads take; the child gives them 2 minutes and says how many completed.
            await child.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill(entireProcessTree: true);
            }
        }

        string said = await output + await errors;
        Assert.True(child.ExitCode == 0, said);
        return said;
    }
}

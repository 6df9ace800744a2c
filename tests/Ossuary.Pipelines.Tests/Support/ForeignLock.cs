using System.Diagnostics;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// An exclusive advisory lock (flock) held on a file by another process, as nobody (65534) when this
/// process is root (else as this user, still another process): what any user who may read a file can
/// take on it, with <c>flock -x FILE</c>. Disposing ends the process, and with it the lock.
/// </summary>
internal sealed class ForeignLock : IDisposable
{
    private readonly Process _process;

    private ForeignLock(Process process) => _process = process;

    /// <summary>Starts the locking process and returns once it holds the lock (it says so on its output).</summary>
    public static async Task<ForeignLock> TakeAsync(string path)
    {
        string[] locker = ["flock", "--exclusive", path, "sh", "-c", "echo locked; exec sleep 600"];
        var start = new ProcessStartInfo(Environment.IsPrivilegedProcess ? "setpriv" : locker[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in Environment.IsPrivilegedProcess
            ? ["--reuid=65534", "--regid=65534", "--clear-groups", .. locker]
            : locker[1..])
        {
            start.ArgumentList.Add(argument);
        }

        var held = new ForeignLock(Process.Start(start)!);
        try
        {
            if (await held._process.StandardOutput.ReadLineAsync().Within() != "locked")
            {
                Assert.Fail($"flock did not take the lock on {path}: {await held._process.StandardError.ReadToEndAsync().Within()}");
            }

            return held;
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
    }
}

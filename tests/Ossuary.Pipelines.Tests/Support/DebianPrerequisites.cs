using System.Diagnostics;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// Programs from Debian packages that some tests start (nats-server, strace): found where the
/// package puts them, else installed by tests/install-prerequisites.sh (which .ci/run also runs),
/// so that a plain <c>dotnet test</c> works on a fresh machine. A test never passes without them.
/// </summary>
internal static class DebianPrerequisites
{
    /// <summary>The first of <paramref name="candidates"/> that exists, after installing <paramref name="package"/> if none does.</summary>
    /// <exception cref="InvalidOperationException">It is missing and could not be installed; the message says how to install it.</exception>
    public static async Task<string> FindOrInstallAsync(string[] candidates, string package, CancellationToken cancellationToken)
    {
        if (candidates.FirstOrDefault(File.Exists) is { } found)
        {
            return found;
        }

        string script = Path.Combine(RepositoryPaths.Root(), "tests", "install-prerequisites.sh");
        using Process install = Process.Start(new ProcessStartInfo("bash", [script])) ?? throw new InvalidOperationException("bash did not start");
        await install.WaitForExitAsync(cancellationToken);
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{package} is not installed and {script} could not install it (exit {install.ExitCode}): apt-get install -y {package}");
    }
}

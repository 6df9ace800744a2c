using System.Reflection;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// <c>listen --echo</c> serves its connections side by side and reports each one's failures itself;
/// what escapes a connection is a bug of the tool, which must be said with its cause.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class EchoConnectionBugTests
{
    [Fact]
    public Task AnUnexpectedFailureOfAnEchoConnectionIsSaidWithItsCause() =>
        SaidWithItsCause(new InvalidOperationException("the echo loop broke its pipe's rules"));

    /// <summary>
    /// A cancellation the server did not ask for (a token source of the echo path's own, cancelled by a bug) was
    /// taken for the server stopping and said nothing; only the server's own token means that.
    /// </summary>
    [Fact]
    public Task ACancellationThatIsNotTheServerStoppingIsSaidWithItsCause() =>
        SaidWithItsCause(new OperationCanceledException("a read the echo loop cancelled by mistake"));

    [Fact]
    public async Task AConnectionCancelledBecauseTheServerIsStoppingSaysNothing()
    {
        using var stopping = new CancellationTokenSource();
        stopping.Cancel();
        (string said, int freed) = await ReleaseAsync(Task.FromCanceled<int>(stopping.Token), stopping.Token);
        Assert.Equal(("", 1), (said, freed));
    }

    private static async Task SaidWithItsCause(Exception bug)
    {
        (string said, int freed) = await ReleaseAsync(Task.FromException<int>(bug), CancellationToken.None);
        Assert.True(said.Contains("ossuary: ", StringComparison.Ordinal) && said.Contains(bug.GetType().Name, StringComparison.Ordinal)
            && said.Contains(bug.Message, StringComparison.Ordinal), $"stderr: '{said}'");
        Assert.Equal(1, freed); // the connection's slot is free again
    }

    private static async Task<(string Said, int Freed)> ReleaseAsync(Task<int> connection, CancellationToken stopping)
    {
        // The task that frees a connection's slot awaited it with its exceptions suppressed: a bug in
        // the echo path (anything but the peer's failures, reported where they happen) vanished, with
        // no line on stderr and nothing else to show for it. Called here in this process: nothing a
        // peer can do reaches that far, which is the point. Console.Error is this process's while
        // the call runs; the CLI tests run one at a time.
        MethodInfo release = Assembly.LoadFrom(ToolProcess.AssemblyPath).GetType("Ossuary.Cli.Commands.ListenCommand", throwOnError: true)!
            .GetMethod("ReleaseWhenEndedAsync", BindingFlags.NonPublic | BindingFlags.Static)!;
        using var slots = new SemaphoreSlim(0);
        using var stderr = new StringWriter();
        TextWriter original = Console.Error;
        Console.SetError(TextWriter.Synchronized(stderr));
        try
        {
            await ((Task)release.Invoke(null, [connection, slots, stopping])!).Within();
        }
        finally
        {
            Console.SetError(original);
        }

        return (stderr.ToString(), slots.CurrentCount);
    }
}

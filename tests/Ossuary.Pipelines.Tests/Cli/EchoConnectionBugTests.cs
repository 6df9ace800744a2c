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
    public async Task AnUnexpectedFailureOfAnEchoConnectionIsSaidWithItsCause()
    {
        // The task that frees a connection's slot awaited it with its exceptions suppressed: a bug in
        // the echo path (anything but the peer's failures, reported where they happen) vanished, with
        // no line on stderr and nothing else to show for it. Called here in this process: nothing a
        // peer can do reaches that far, which is the point. Console.Error is this process's while
        // the call runs; the CLI tests run one at a time.
        MethodInfo release = Assembly.LoadFrom(ToolProcess.AssemblyPath).GetType("Ossuary.Cli.Commands.ListenCommand", throwOnError: true)!
            .GetMethod("ReleaseWhenEndedAsync", BindingFlags.NonPublic | BindingFlags.Static)!;
        using var slots = new SemaphoreSlim(0);
        var bug = new InvalidOperationException("the echo loop broke its pipe's rules");
        using var stderr = new StringWriter();
        TextWriter original = Console.Error;
        Console.SetError(TextWriter.Synchronized(stderr));
        try
        {
            await ((Task)release.Invoke(null, [Task.FromException<int>(bug), slots])!).Within();
        }
        finally
        {
            Console.SetError(original);
        }

        string said = stderr.ToString();
        Assert.True(said.Contains("ossuary: ", StringComparison.Ordinal) && said.Contains(nameof(InvalidOperationException), StringComparison.Ordinal)
            && said.Contains(bug.Message, StringComparison.Ordinal), $"stderr: '{said}'");
        Assert.Equal(1, slots.CurrentCount); // the connection's slot is free again
    }
}

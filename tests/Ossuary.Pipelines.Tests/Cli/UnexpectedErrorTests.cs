using System.Reflection;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>A failure none of the tool's handlers expected, a bug, is one line that keeps what broke.</summary>
[Collection(CliCollection.Name)]
public sealed class UnexpectedErrorTests
{
    [Fact]
    public async Task AnUnexpectedFailureOfACommandSaysItsTypeAndItsInnerCauseInOneLine()
    {
        // CliRunner said "unexpected error: " and the message alone: "Object reference not set to an
        // instance of an object", or an inner exception's reason, was all a bug report could quote.
        // Called here in this process: nothing a user does is known to reach it, which is the point.
        MethodInfo run = Assembly.LoadFrom(ToolProcess.AssemblyPath).GetType("Ossuary.Cli.CliRunner", throwOnError: true)!
            .GetMethod("RunAsync", BindingFlags.Public | BindingFlags.Static)!;
        var bug = new InvalidOperationException("the pipe was read twice", new FormatException("the inner reason"));
        using var stderr = new StringWriter();
        TextWriter original = Console.Error;
        Console.SetError(TextWriter.Synchronized(stderr));
        int exitCode;
        try
        {
            exitCode = await ((Task<int>)run.Invoke(null, [(Func<Task<int>>)(() => Task.FromException<int>(bug))])!).Within();
        }
        finally
        {
            Console.SetError(original);
        }

        string said = stderr.ToString();
        Assert.Equal(1, exitCode);
        Assert.True(said.StartsWith("ossuary: ", StringComparison.Ordinal) && said.TrimEnd().Split('\n').Length == 1, $"stderr: '{said}'");
        foreach (string part in new[] { typeof(InvalidOperationException).FullName!, bug.Message, typeof(FormatException).FullName!, "the inner reason" })
        {
            Assert.True(said.Contains(part, StringComparison.Ordinal), $"expected '{part}' in stderr: '{said}'");
        }
    }
}

using System.Reflection;
using System.Runtime.InteropServices;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// A signal whose handler the runtime dispatched just before the tool disposed its <c>StopSignals</c> (the
/// command had ended) runs after the disposal, on the thread pool. It cancelled the disposed token source, and
/// the <see cref="ObjectDisposedException"/> crashed the process instead of letting the signal end it.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class StopSignalsDisposalTests
{
    [Fact]
    public void ASignalHandledAfterDisposalLeavesTheSignalToTheSystem()
    {
        // Called here in this process, with a context of our own: the handler's work is what is checked, and
        // no real signal is sent (leaving Cancel unset would let the system end the test host).
        Type type = Assembly.LoadFrom(ToolProcess.AssemblyPath).GetType("Ossuary.Cli.StopSignals", throwOnError: true)!;
        var signals = (IDisposable)Activator.CreateInstance(type, nonPublic: true)!;
        var token = (CancellationToken)type.GetProperty("Token")!.GetValue(signals)!;
        MethodInfo onSignal = type.GetMethod("OnSignal", BindingFlags.NonPublic | BindingFlags.Instance)!;
        signals.Dispose();

        var context = new PosixSignalContext(PosixSignal.SIGTERM);
        onSignal.Invoke(signals, [context]); // threw TargetInvocationException(ObjectDisposedException)

        Assert.False(context.Cancel); // the system's default action: the process ends by the signal
        Assert.False(token.IsCancellationRequested);
    }
}

using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// <c>listen</c> and <c>receive</c> run the handshakes of waiting clients side by side and serve the
/// first that succeeds; a client whose handshake succeeds a moment after another won is not served.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class FirstSecuredConnectionLoserTests
{
    [Fact]
    public async Task AClientWhoseHandshakeSucceedsAfterAnotherWonIsToldItWasNotServed()
    {
        // The loser was disposed as a served connection is: a clean Disconnect, which to its client is a
        // session the server ended normally. `ossuary connect` then exited 0, its stdin "delivered" to
        // a server that had read none of it. The race (a handshake that ends in the microseconds between
        // another's win and the cancellation of the rest) is set up here without timing: the tool's
        // handshake of one connection runs in this process with the win already taken.
        Assembly tool = Assembly.LoadFrom(ToolProcess.AssemblyPath);
        MethodInfo handshake = tool.GetType("Ossuary.Cli.Net.FirstSecuredConnection", throwOnError: true)!
            .GetMethod("HandshakeAsync", BindingFlags.NonPublic | BindingFlags.Static)!;
        ParameterInfo[] parameters = handshake.GetParameters();
        using var keys = new MutualKeys();
        object setup = Activator.CreateInstance(parameters[1].ParameterType, keys.Server, (IReadOnlyList<OssuaryPublicKey>)[])!; // unauthenticated; keys owns the identity
        using var failures = (IDisposable)Activator.CreateInstance(parameters[2].ParameterType, ["ossuary: still waiting for a file"])!; // receive's
        object winner = Activator.CreateInstance(parameters[3].ParameterType, TaskCreationOptions.RunContinuationsAsynchronously)!;
        Assert.True((bool)parameters[3].ParameterType.GetMethod("TrySetResult")!.Invoke(winner, [null])!); // another client won
        using var slots = new SemaphoreSlim(0);

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, keys.ClientOptions());
        Socket accepted = await listener.AcceptAsync().Within();
        using var stderr = new StringWriter();
        TextWriter original = Console.Error;
        Console.SetError(TextWriter.Synchronized(stderr));
        OssuaryClientConnection client;
        try
        {
            var serving = (Task)handshake.Invoke(null, [accepted, setup, failures, winner, slots, (Func<bool>)(() => false), CancellationToken.None])!;
            client = await connecting.Within();
            await serving.Within();
        }
        finally
        {
            Console.SetError(original);
        }

        await using OssuaryClientConnection served = client;

        Exception? ended = await Record.ExceptionAsync(() => ReadToEndAsync(client.Transport.Input));

        OssuaryException refused = Assert.IsType<OssuaryException>(ended);
        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Equal(1, slots.CurrentCount); // its handshake slot is free again

        // Said on the server, without the follow-up of a failed handshake: a receive that has its
        // sender is no longer "still waiting for a file".
        string said = stderr.ToString();
        Assert.True(said.Contains("not served", StringComparison.Ordinal) && !said.Contains("still waiting", StringComparison.Ordinal), $"stderr: '{said}'");
    }

    [Fact]
    public async Task AHandshakeThatFailsWithABugOfOursEndsTheWaitWithItsCause()
    {
        // A handshake task that faulted (neither the peer's failure, which is reported, nor a socket
        // error) was dropped from the list of handshakes at the next accept, unobserved: the server
        // went on serving as if nothing had happened, the bug and its cause gone. The bug here is an
        // onFailed callback that throws, after a stranger's garbage failed its handshake.
        Assembly tool = Assembly.LoadFrom(ToolProcess.AssemblyPath);
        MethodInfo accept = tool.GetType("Ossuary.Cli.Net.FirstSecuredConnection", throwOnError: true)!
            .GetMethod("AcceptAsync", BindingFlags.Public | BindingFlags.Static)!;
        ParameterInfo[] parameters = accept.GetParameters();
        using var keys = new MutualKeys();
        object setup = Activator.CreateInstance(parameters[1].ParameterType, keys.Server, (IReadOnlyList<OssuaryPublicKey>)[])!;
        using var failures = (IDisposable)Activator.CreateInstance(parameters[2].ParameterType, [null])!;
        var bug = new InvalidOperationException("onFailed broke");
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var stop = new CancellationTokenSource();
        var waiting = (Task)accept.Invoke(null, [listener, setup, failures, (Func<bool>)(() =>
        {
            failed.TrySetResult();
            throw bug;
        }), stop.Token])!;

        using (Socket stranger = await RawPeer.ConnectAsync(listener.LocalEndPoint!))
        {
            await stranger.SendAsync(new byte[64].AsMemory()); // all zeros: not an Ossuary hello
            stranger.Shutdown(SocketShutdown.Send);
            await failed.Task.Within();
        }

        // An honest client next: before, it was served, and the wait ended as if nothing had failed.
        Task<OssuaryClientConnection> connecting = OssuaryClient.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, keys.ClientOptions());
        Exception? ended = await Record.ExceptionAsync(() => waiting.Within());
        await stop.CancelAsync();
        listener.Dispose();
        if (await Record.ExceptionAsync(() => connecting.Within()) is null)
        {
            await (await connecting).DisposeAsync();
        }

        Assert.Same(bug, ended);
    }

    private static async Task ReadToEndAsync(PipeReader input)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync().AsTask().Within();
            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }
}

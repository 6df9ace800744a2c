using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// OssuaryClientConnection.ConnectionClosed, fired because the connection's loops have ended, runs
/// the application's callbacks on a thread of their own, as Kestrel's transports queue theirs to the
/// thread pool. They ran inline in the continuations of the inbound loop's task, ahead of every
/// continuation registered after it: a callback that waited for the connection (its Completion,
/// or a disposal that awaits the same task) waited for work queued behind itself.
/// </summary>
public class ConnectionClosedCallbackThreadTests
{
    [Fact]
    public async Task ACallbackFiredAsTheLoopsEndCanWaitForTheConnectionsCompletion()
    {
        using var keys = new MutualKeys();
        (SessionSocketPeer server, OssuaryClientConnection client) = await SessionSocketPeer.ServeClientAsync(keys);
        using SessionSocketPeer serverPeer = server;

        // The client's input full and unread: disposal stops the inbound loop without a session end,
        // so ConnectionClosed fires as the loops end (not on the peer's end, nor in disposal's own call).
        byte[] frame = new byte[OssuarySession.MaxPlaintextLength];
        _ = server.SendTogetherAsync([.. Enumerable.Range(0, 16).Select(_ => server.DataPacket(frame))]);
        await PipeReads.WaitUntilHoldsAsync(client.Transport.Input, 4 * OssuarySession.MaxPlaintextLength);

        Task completion = ((OssuaryDuplexPipe)client.Transport).Completion;
        var waited = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using CancellationTokenRegistration registration = client.ConnectionClosed.Register(
            () => waited.SetResult(completion.Wait(TestTimeout.Default)));
        Task disposing = client.DisposeAsync().AsTask();

        // The client's Disconnect and end arrive; the server drains what follows and closes its end.
        (_, OssuaryErrorReason said) = await server.ReadUntilEndedAsync();
        Assert.Equal(OssuaryErrorReason.ConnectionClosed, said);
        byte[] rest = new byte[1024];
        while (await server.Socket.ReceiveAsync(rest, SocketFlags.None).Within() > 0)
        {
        }

        server.Socket.Shutdown(SocketShutdown.Send);
        await disposing.Within();

        // Inline, the callback held up the continuation that completes Completion until its wait gave up.
        Assert.True(await waited.Task.Within(2 * TestTimeout.Default), "the callback's wait for the connection's Completion never ended");
    }
}

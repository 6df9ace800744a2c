using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>Ending a connection from either side, and giving up on a handshake or a read.</summary>
public class ShutdownAndCancellationTests
{
    // The cancellation tests give the handshake a step wait and a bound far beyond Prompt, so that
    // only the token can end it within Prompt. With the defaults (3 s, 10 s) Prompt was 2.5 s for a
    // cancelled continuation to run, tight on a loaded 2-core CI machine.
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StepWait = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan HandshakeBound = TimeSpan.FromSeconds(60);

    [Fact]
    public Task ClientDisposingEndsTheServerHandlersInputNormally() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
        await connection.Transport.Output.WriteAsync("one round"u8.ToArray());
        Assert.Equal("one round"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 9));

        await connection.DisposeAsync().Within();

        Assert.Null(await server.Server.Log.NextOutcomeAsync());
        Assert.Empty(server.Server.Log.Failures);
    });

    [Fact]
    public Task ClientCompletingItsOutputEndsTheServerHandlersInputNormally() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        await connection.Transport.Output.CompleteAsync();

        Assert.Null(await server.Server.Log.NextOutcomeAsync());
        ReadResult end = await connection.Transport.Input.ReadAsync().AsTask().Within();
        Assert.True(end.IsCompleted); // Disconnect ends both directions
    });

    [Fact]
    public Task ServerHandlerReturningEndsTheClientsInputNormallyAfterItsLastBytes() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync<GoodbyeConnectionHandler>();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        Assert.Null(await server.Server.Log.NextOutcomeAsync());
        byte[] everything = await PipeReads.ReadToEndAsync(connection.Transport.Input);

        Assert.Equal(GoodbyeConnectionHandler.Goodbye.ToArray(), everything);
    });

    [Fact]
    public Task CancellingConnectWhileTheServerNeverAnswersThrowsOperationCanceled() => Run(async () =>
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task<Socket> accepted = listener.AcceptSocketAsync();
        using var serverKey = OssuaryIdentity.Generate();
        var options = new OssuaryClientOptions { HandshakeStepTimeout = StepWait, HandshakeTimeout = HandshakeBound };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        using var cancel = new CancellationTokenSource();

        Task<OssuaryClientConnection> connect = OssuaryClient.ConnectAsync(listener.LocalEndpoint, options, cancel.Token);
        using Socket silent = await accepted.Within();
        byte[] clientHandshake = new byte[92];
        int received = 0;
        while (received < clientHandshake.Length)
        {
            received += await silent.ReceiveAsync(clientHandshake.AsMemory(received)).Within();
        }

        cancel.Cancel();

        // Well inside both the step wait and the handshake bound: only the token can end it.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect.Within(Prompt));
        Assert.Equal(0, await silent.ReceiveAsync(new byte[16]).Within()); // the client closed its socket
    });

    [Fact]
    public Task CancellingAcceptOverPipesWhileTheClientSaysNothingThrowsOperationCanceled() => Run(async () =>
    {
        var link = new LinkedPipes();
        using var serverKey = OssuaryIdentity.Generate();
        var options = new OssuaryServerOptions { Identity = serverKey, Mode = OssuaryServerMode.Unauthenticated, HandshakeStepTimeout = StepWait, HandshakeTimeout = HandshakeBound };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => OssuaryDuplexPipe.AcceptAsync(link.Server, options, cancel.Token).Within(Prompt));
    });

    [Fact]
    public Task ReadWithACancelledTokenThrowsAndTheConnectionCarriesOn() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
        PipeReader input = connection.Transport.Input;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => input.ReadAsync(new CancellationToken(canceled: true)).AsTask());

        using var cancel = new CancellationTokenSource();
        ValueTask<ReadResult> pending = input.ReadAsync(cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().Within());

        await connection.Transport.Output.WriteAsync("still here"u8.ToArray());
        Assert.Equal("still here"u8.ToArray(), await PipeReads.ReadExactlyAsync(input, 10));
    });

    [Fact]
    public Task ASecondReadWhileOneWaitsThrowsAndTheWaitingReadStillGetsItsBytes() => Run(async () =>
    {
        // One read at a time is the pipe's rule; breaking it must not break the read that keeps it.
        // The second read reset the reader's only completion source under the first, whose
        // continuation was dropped: the first read never returned, not even once the connection was disposed.
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
        PipeReader input = connection.Transport.Input;
        Task<ReadResult> first = input.ReadAsync().AsTask();

        await Assert.ThrowsAsync<InvalidOperationException>(() => input.ReadAsync().AsTask().Within());

        await connection.Transport.Output.WriteAsync("first"u8.ToArray());
        ReadResult read = await first.Within();
        while (read.Buffer.Length < 5 && !read.IsCompleted)
        {
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            read = await input.ReadAsync().AsTask().Within();
        }

        Assert.Equal("first"u8.ToArray(), read.Buffer.ToArray());
        input.AdvanceTo(read.Buffer.End);
    });

    [Fact]
    public Task WriteWithACancelledTokenThrowsAndTheConnectionCarriesOn() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => connection.Transport.Output.WriteAsync("never sent"u8.ToArray(), new CancellationToken(canceled: true)).AsTask());

        await connection.Transport.Output.WriteAsync("sent"u8.ToArray());
        Assert.Equal("sent"u8.ToArray(), await PipeReads.ReadExactlyAsync(connection.Transport.Input, 4));
    });

    [Fact]
    public Task ConnectionClosedIsCancelledByDisposalWhetherAskedForBeforeOrAfter() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        OssuaryClientConnection early = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
        OssuaryClientConnection late = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
        CancellationToken asked = early.ConnectionClosed;
        Assert.False(asked.IsCancellationRequested);
        Assert.Equal(asked, early.ConnectionClosed);

        await early.DisposeAsync().Within();
        await late.DisposeAsync().Within();

        Assert.True(asked.IsCancellationRequested);
        Assert.True(early.ConnectionClosed.IsCancellationRequested);
        Assert.True(late.ConnectionClosed.IsCancellationRequested);
    });

    [Fact]
    public Task AbortCancelsConnectionClosedAndAnAssignedTokenReplacesIt() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);
        CancellationToken asked = connection.ConnectionClosed;

        connection.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException("test"));

        Assert.True(asked.IsCancellationRequested);
        using var assigned = new CancellationTokenSource();
        connection.ConnectionClosed = assigned.Token;
        Assert.Equal(assigned.Token, connection.ConnectionClosed);
    });

    [Fact]
    public Task FeaturesCarryTheOssuaryFeatureOnceAndKeepWhatIsAdded() => Run(async () =>
    {
        await using var server = await AuthenticatedEchoServer.StartAsync();
        await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.Server.EndPoint, server.ClientOptions);

        IOssuaryConnectionFeature? feature = connection.Features.Get<IOssuaryConnectionFeature>();
        connection.Features.Set("kept");

        Assert.Same(connection.Ossuary, feature);
        Assert.Equal(server.ServerPublicKey, feature!.RemotePublicKey);
        Assert.Equal("kept", connection.Features.Get<string>());
    });

    private static Task Run(Func<Task> test) => test().Within();
}

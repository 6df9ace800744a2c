using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// An OssuaryStream used after its disposal says so, as every Stream does, instead of asking to be
/// authenticated (which it was) or failing a new handshake as a fault of this side.
/// </summary>
public class DisposedStreamTests
{
    [Fact]
    public async Task ADisposedStreamThrowsObjectDisposedException()
    {
        var stream = new OssuaryStream(new MemoryStream());
        await stream.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.WriteAsync(new byte[1]).AsTask().Within());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.ReadAsync(new byte[1]).AsTask().Within());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stream.AuthenticateAsClientAsync(new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value } }).Within());
    }

    [Fact]
    public async Task AnAuthenticatedStreamThatWasDisposedThrowsObjectDisposedException()
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            client.Dispose();

            Assert.Throws<ObjectDisposedException>(() => client.Write([1]));
            Assert.Throws<ObjectDisposedException>(() => client.Read(new byte[1]));
        }
    }

    /// <summary>
    /// A flush after disposal says the stream is disposed, as a read or write does: it reported success,
    /// though disposal may have dropped what was written (a peer that read nothing for its 5 s), so an
    /// application that flushes to learn its bytes were sent (another thread disposing on a timeout) was told they were.
    /// </summary>
    [Fact]
    public async Task AFlushAfterDisposalThrowsObjectDisposedException()
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            await client.WriteAsync(new byte[16]);
            await client.DisposeAsync().AsTask().Within();

            await Assert.ThrowsAsync<ObjectDisposedException>(() => client.FlushAsync().Within());
            Assert.Throws<ObjectDisposedException>(client.Flush);
        }
    }

    /// <summary>
    /// "Dispose to cancel": a read waiting when the stream is disposed ends with ObjectDisposedException,
    /// as streams do. It threw the pipe's InvalidOperationException ("Reading is not allowed after
    /// reader was completed"), which reads as a bug in the caller or the library.
    /// </summary>
    [Fact]
    public async Task AReadPendingWhenTheStreamIsDisposedEndsWithObjectDisposedException()
    {
        // A client that finds the server behind with its last bytes as it disposes waits out its bound: the server closes last.
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync(ShortCloseWait.Value);
        await using (server)
        {
            Task<int> pending = client.ReadAsync(new byte[16]).AsTask();
            Assert.False(pending.IsCompleted); // the server says nothing: the read waits

            await client.DisposeAsync().AsTask().Within();

            await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.Within());
        }
    }

    /// <summary>
    /// Dispose and DisposeAsync on several threads at once: every call returns without an exception,
    /// and only once the stream is disposed (its inner stream closed); the peer sees a clean close.
    /// Disposal read the connection's field twice without synchronisation, so a call that found it
    /// set could find it cleared by another the next moment (a NullReferenceException), and a call
    /// could return while another was still closing the inner stream.
    /// </summary>
    [Fact]
    public async Task DisposalFromSeveralThreadsAtOnceIsSafeAndReturnsOnlyOnceDone()
    {
        const int Rounds = 200;
        const int Disposers = 4;
        for (int round = 0; round < Rounds; round++)
        {
            // A client still waiting for the server (behind with its bytes) as it disposes waits out its bound: the server closes last.
            (OssuaryStream server, OssuaryStream client, System.Net.Sockets.NetworkStream clientInner) = await AuthenticatedPairWithInnerAsync(closeWait: ShortCloseWait.Value);
            await using (server)
            {
                using var start = new Barrier(Disposers);
                Task[] disposers = Enumerable.Range(0, Disposers).Select(i => Task.Factory.StartNew(
                    () =>
                    {
                        start.SignalAndWait();
                        if (i % 2 == 0)
                        {
                            client.Dispose();
                        }
                        else
                        {
                            client.DisposeAsync().AsTask().GetAwaiter().GetResult();
                        }

                        Assert.Throws<ObjectDisposedException>(() => clientInner.Write([1])); // closed before any call returned
                    },
                    CancellationToken.None,
                    TaskCreationOptions.LongRunning,
                    TaskScheduler.Default)).ToArray();

                await Task.WhenAll(disposers).Within();
                Assert.Equal(0, await server.ReadAsync(new byte[1]).Within()); // the client's Disconnect: a clean end
            }
        }
    }

    /// <summary>
    /// A disposal that finds another under way waits for it: it returned at once, while the first was
    /// still closing the inner stream, so the caller went on as if the connection were closed.
    /// </summary>
    [Fact]
    public async Task ADisposalThatFindsAnotherUnderWayReturnsOnlyOnceTheInnerStreamIsClosed()
    {
        HoldingCloseStream? holding = null;
        (OssuaryStream server, OssuaryStream client, _) = await AuthenticatedPairWithInnerAsync(inner => holding = new HoldingCloseStream(inner));
        await using (server)
        {
            Task first = Task.Run(client.Dispose);
            await holding!.Closing.Within(); // the first disposal is closing the inner stream

            Task second = client.DisposeAsync().AsTask();
            bool returnedEarly = second.IsCompleted;
            holding.Release();
            await Task.WhenAll(first, second).Within();

            Assert.False(returnedEarly, "a second DisposeAsync returned while the first disposal was still closing the inner stream");
            Assert.Equal(1, holding.Closes);
        }
    }

    /// <summary>
    /// A disposal while the handshake runs, whose handshake then completes (the inner stream still
    /// open as the disposal closes it): the authentication says the stream was disposed and the
    /// connection it made is closed. It reported success on the disposed stream and left that
    /// connection, its session key included, to the garbage collector.
    /// </summary>
    [Fact]
    public async Task AHandshakeThatCompletesAfterTheStreamWasDisposedThrowsAndClosesItsConnection()
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var options = new OssuaryServerOptions();
        keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
        await using var server = new OssuaryStream(serverSide);
        var holding = new HoldingCloseStream(clientSide);
        var client = new OssuaryStream(holding);

        Task authenticating = client.AuthenticateAsClientAsync(keys.ClientOptions()); // waits for the server's answer
        Task disposing = Task.Run(client.Dispose);
        await holding.Closing.Within(); // the disposal is closing the inner stream, which still carries the handshake
        await server.AuthenticateAsServerAsync(options).Within();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => authenticating.Within());
        Assert.Equal(0, await server.ReadAsync(new byte[1]).Within()); // the client's connection sent its Disconnect
        holding.Release();
        await disposing.Within();
    }

    /// <summary>
    /// "Dispose to cancel" during the handshake: the disposal closes the inner stream under it, and the
    /// authentication ends with ObjectDisposedException, as documented, logged as cancelled by its caller
    /// (event 8, Debug). It threw OssuaryException ("The Ossuary handshake failed on this side, not the
    /// peer's: ObjectDisposedException") and logged that at Error as a fault of this side (event 6,
    /// "the peer was sent Disconnect (error)"), which pages an operator for an application that gave up.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DisposingAStreamDuringItsHandshakeEndsItWithObjectDisposedExceptionAndNoError(bool synchronously)
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var silentServer = serverSide;
        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var client = new OssuaryStream(clientSide);
        Task authenticating = client.AuthenticateAsClientAsync(new OssuaryClientOptions { TrustedServerKeys = { StrangerKey.Value }, LoggerFactory = loggers });
        await serverSide.ReadExactlyAsync(new byte[1]).AsTask().Within(); // the handshake is under way: it waits for the server's answer

        if (synchronously)
        {
            client.Dispose();
        }
        else
        {
            await client.DisposeAsync().AsTask().Within();
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => authenticating.Within());
        Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Level > LogLevel.Debug);
        Assert.Single(LogRecords.Records(logs, 8)); // cancelled by its caller
    }

    /// <summary>
    /// "Dispose to cancel" for a stream that leaves its inner stream open: disposal closes nothing under the
    /// handshake, and the handshake went on until its timeouts ran out (HandshakeStepTimeout, 3 s by default),
    /// reading and writing the inner stream that the caller had been given back; a server that answered
    /// meanwhile completed it, and its connection then sent Disconnect on that stream after DisposeAsync had
    /// returned. Now disposal cancels the handshake: it ends with ObjectDisposedException, the inner stream open.
    /// </summary>
    [Fact]
    public async Task DisposingAStreamThatLeavesItsInnerStreamOpenEndsItsHandshake()
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var silentServer = serverSide;
        using var inner = clientSide;
        var client = new OssuaryStream(clientSide, leaveInnerStreamOpen: true);
        var options = new OssuaryClientOptions
        {
            TrustedServerKeys = { StrangerKey.Value },
            HandshakeTimeout = TimeSpan.FromMinutes(10), // only disposal can end it within the test
            HandshakeStepTimeout = TimeSpan.FromMinutes(10),
        };
        Task authenticating = client.AuthenticateAsClientAsync(options);
        await serverSide.ReadExactlyAsync(new byte[1]).AsTask().Within(); // the handshake is under way: it waits for the server's answer

        await client.DisposeAsync().AsTask().Within();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => authenticating.Within());
        await clientSide.WriteAsync("still the caller's"u8.ToArray()).AsTask().Within(); // left open, as asked
    }

    /// <summary>
    /// "Dispose to cancel" while the server's IdentitySelector runs, which then fails (the vault it waited on
    /// was closed with the stream, say): the authentication ends with ObjectDisposedException, as a disposal
    /// during the handshake ends it. It threw the selector's OssuaryException, which the caller that disposed
    /// the stream could not tell from a selector that failed on its own.
    /// </summary>
    [Fact]
    public async Task DisposingAStreamWhileItsIdentitySelectorRunsEndsItWithObjectDisposedException()
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var silentClient = clientSide;
        using var selecting = new ManualResetEventSlim();
        using var disposed = new ManualResetEventSlim();
        var options = new OssuaryServerOptions
        {
            Mode = OssuaryServerMode.Unauthenticated,
            LoggerFactory = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            IdentitySelector = _ =>
            {
                selecting.Set();
                disposed.Wait();
                throw new InvalidOperationException("the key vault was closed");
            },
        };
        var server = new OssuaryStream(serverSide);

        Task authenticating = Task.Run(() => server.AuthenticateAsServerAsync(options));
        await Task.Run(() => selecting.Wait()).Within();
        await server.DisposeAsync().AsTask().Within();
        disposed.Set();

        ObjectDisposedException thrown = await Assert.ThrowsAsync<ObjectDisposedException>(() => authenticating.Within());
        Assert.IsType<OssuaryException>(thrown.InnerException); // the selector's failure, kept as the cause
    }

    private static async Task<(OssuaryStream Server, OssuaryStream Client)> AuthenticatedPairAsync(TimeSpan? closeWait = null)
    {
        (OssuaryStream server, OssuaryStream client, _) = await AuthenticatedPairWithInnerAsync(closeWait: closeWait);
        return (server, client);
    }

    private static async Task<(OssuaryStream Server, OssuaryStream Client, System.Net.Sockets.NetworkStream ClientInner)> AuthenticatedPairWithInnerAsync(Func<Stream, Stream>? wrapClient = null, TimeSpan? closeWait = null)
    {
        (System.Net.Sockets.NetworkStream serverSide, System.Net.Sockets.NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var options = new OssuaryServerOptions();
        keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
        options.CloseWait = closeWait ?? options.CloseWait;
        OssuaryClientOptions clientOptions = keys.ClientOptions();
        clientOptions.CloseWait = closeWait ?? clientOptions.CloseWait;
        var server = new OssuaryStream(serverSide);
        var client = new OssuaryStream(wrapClient?.Invoke(clientSide) ?? clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(options), client.AuthenticateAsClientAsync(clientOptions)).Within();
        return (server, client, clientSide);
    }

    /// <summary>An inner stream whose close takes a while (one that flushes a buffer as it closes), held until released.</summary>
    private sealed class HoldingCloseStream(Stream inner) : Stream
    {
        private readonly TaskCompletionSource _closing = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _released = new();
        private int _closes;

        public Task Closing => _closing.Task;

        public int Closes => Volatile.Read(ref _closes);

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Release() => _released.Set();

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Increment(ref _closes) == 1)
            {
                _closing.TrySetResult();
                _released.Wait(TestTimeout.Default);
                inner.Dispose();
                _released.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

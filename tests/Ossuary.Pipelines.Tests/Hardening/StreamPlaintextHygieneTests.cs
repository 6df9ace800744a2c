using System.Net.Sockets;
using System.Runtime.InteropServices;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// OssuaryStream's span and copy members keep the plaintext pipes' promise (SECURITY.md): plaintext
/// never stays in ArrayPool&lt;byte&gt;.Shared for its next renter. Stream's own Read(Span),
/// Write(ReadOnlySpan), CopyTo and CopyToAsync go through a shared pool array they return uncleared.
/// Each test clears every buffer of its own, then searches the process for the marker. Its buffers are
/// pinned: a collection that compacts a test's own array leaves a copy of the markers where the array
/// was, which the search finds (one CI run counted exactly one whole copy, 1536 markers).
/// </summary>
public sealed class StreamPlaintextHygieneTests
{
    private const int MarkerCount = 1536; // 48 KiB: several frames, below the pipes' pause threshold

    [Fact]
    public Task SpanReadsAndWritesLeaveNoPlaintextBehind() => WithMarker(async marker =>
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        await using (client)
        {
            byte[] sent = Markers(marker);
            byte[] received = Pinned(sent.Length);
            await Task.Run(() =>
            {
                client.Write(sent.AsSpan());
                server.ReadExactly(received.AsSpan());
            }).Within();

            Assert.True(received.AsSpan().SequenceEqual(sent), "the plaintext that arrived is not what was sent");
            Array.Clear(sent);
            Array.Clear(received);
            Assert.Equal(0, ProcessMemory.Count(marker));
        }
    });

    [Fact]
    public Task CopyingTheStreamLeavesNoPlaintextBehind() => WithMarker(async marker =>
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            byte[] sent = Markers(marker);
            var asyncCopy = PinnedStream(sent.Length); // never grows: no stale copies of its own
            await client.WriteAsync(sent);
            Task copied = server.CopyToAsync(asyncCopy);
            await client.DisposeAsync(); // a clean end ends the copy
            await copied.Within();

            Assert.True(Written(asyncCopy).SequenceEqual(sent), "the plaintext that arrived is not what was sent");
            Array.Clear(sent);
            Array.Clear(asyncCopy.GetBuffer());
            Assert.Equal(0, ProcessMemory.Count(marker));
        }
    });

    [Fact]
    public Task CopyingTheStreamSynchronouslyLeavesNoPlaintextBehind() => WithMarker(async marker =>
    {
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            byte[] sent = Markers(marker);
            var copy = PinnedStream(sent.Length);
            await client.WriteAsync(sent);
            await client.DisposeAsync();
            await Task.Run(() => server.CopyTo(copy)).Within();

            Assert.True(Written(copy).SequenceEqual(sent), "the plaintext that arrived is not what was sent");
            Array.Clear(sent);
            Array.Clear(copy.GetBuffer());
            Assert.Equal(0, ProcessMemory.Count(marker));
        }
    });

    [Fact]
    public Task ACollectionWhileCopyingLeavesNoPlaintextBehind() => WithMarker(async marker =>
    {
        // A compacting collection while the scratch block holds plaintext: an array the collector
        // may move leaves a copy where it was, which no clearing of the array reaches.
        (OssuaryStream server, OssuaryStream client) = await AuthenticatedPairAsync();
        await using (server)
        {
            byte[] sent = Markers(marker);
            var copy = new CollectingStream(PinnedStream(sent.Length));
            await client.WriteAsync(sent);
            await client.DisposeAsync();
            await Task.Run(() => server.CopyTo(copy, bufferSize: 16 * 1024)).Within();

            Assert.True(Written(copy.Inner).SequenceEqual(sent), "the plaintext that arrived is not what was sent");
            Assert.True(copy.Collections > 0, "no collection ran while the copy held plaintext: the test proves nothing");
            Array.Clear(sent);
            Array.Clear(copy.Inner.GetBuffer());
            Assert.Equal(0, ProcessMemory.Count(marker));
        }
    });

    private static byte[] Pinned(int length) => GC.AllocateArray<byte>(length, pinned: true);

    private static MemoryStream PinnedStream(int capacity)
    {
        var stream = new MemoryStream(Pinned(capacity), 0, capacity, writable: true, publiclyVisible: true);
        stream.SetLength(0); // a stream over an array starts as long as the array
        return stream;
    }

    private static ReadOnlySpan<byte> Written(MemoryStream stream) => stream.GetBuffer().AsSpan(0, (int)stream.Length);

    private static byte[] Markers(byte[] marker)
    {
        byte[] markers = Pinned(MarkerCount * marker.Length);
        for (int i = 0; i < MarkerCount; i++)
        {
            marker.CopyTo(markers, i * marker.Length);
        }

        return markers;
    }

    private static async Task WithMarker(Func<byte[], Task> test)
    {
        // Random, and kept in one pinned array the search skips.
        byte[] marker = GC.AllocateArray<byte>(32, pinned: true);
        Random.Shared.NextBytes(marker);
        try
        {
            await test(marker).Within();
        }
        finally
        {
            Array.Clear(marker);
        }
    }

    private static async Task<(OssuaryStream Server, OssuaryStream Client)> AuthenticatedPairAsync()
    {
        (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
        using var keys = new MutualKeys();
        var options = new OssuaryServerOptions();
        keys.ConfigureServer(options, TimeSpan.FromSeconds(10));
        var server = new OssuaryStream(serverSide);
        var client = new OssuaryStream(clientSide);
        await Task.WhenAll(server.AuthenticateAsServerAsync(options), client.AuthenticateAsClientAsync(keys.ClientOptions())).Within();
        return (server, client);
    }

    /// <summary>Writes to <see cref="Inner"/>, with a full compacting collection before each write.</summary>
    private sealed class CollectingStream(MemoryStream inner) : Stream
    {
        public MemoryStream Inner => inner;

        public int Collections { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            Collections++;
            inner.Write(buffer);
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

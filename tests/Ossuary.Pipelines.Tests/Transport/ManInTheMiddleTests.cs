using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// The test sits between two OssuaryDuplexPipes on in-memory pipes: it lets the handshake through,
/// then forges, cuts or ends the server's traffic, and watches what the client's application sees.
/// </summary>
public class ManInTheMiddleTests
{
    [Fact]
    public Task ForgedFrameFailsTheReadWithDecryptionFailedAfterTheGenuineBytes() => Run(async () =>
    {
        var link = new LinkedPipes();
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, PacketRelay.ForgingDataFrame(2));
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("genuine"u8.ToArray());
            Assert.Equal("genuine"u8.ToArray(), await PipeReads.ReadExactlyAsync(pair.Client.Input, 7));
            await pair.Server.Output.WriteAsync("forged!"u8.ToArray());

            // The read fails instead of returning any byte of the forged frame.
            OssuaryException forged = await Assert.ThrowsAsync<OssuaryException>(() => pair.Client.Input.ReadAsync().AsTask().Within());
            Assert.Equal(OssuaryErrorReason.DecryptionFailed, forged.Reason);

            // The client tells the server it failed (Disconnect with the error flag).
            OssuaryException told = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Server.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, told.Reason);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task TransportEndingMidFrameFailsTheReadAsTruncated() => Run(async () =>
    {
        var link = new LinkedPipes();
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, async (packet, to) =>
        {
            if (PacketRelay.IsData(packet))
            {
                await to.WriteAsync(packet.AsMemory(0, packet.Length / 2));
                return false; // and the transport ends
            }

            await to.WriteAsync(packet);
            return true;
        });
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("cut in half"u8.ToArray());

            OssuaryException truncated = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.Truncated, truncated.Reason);
            Assert.Contains("middle", truncated.Message);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task TransportEndingWithoutDisconnectFailsTheReadAsTruncated() => Run(async () =>
    {
        var link = new LinkedPipes();
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, async (packet, to) =>
        {
            if (PacketRelay.IsData(packet))
            {
                return false; // the transport ends on a frame boundary, with no Disconnect
            }

            await to.WriteAsync(packet);
            return true;
        });
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("never arrives"u8.ToArray());

            OssuaryException truncated = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.Truncated, truncated.Reason);
            Assert.Contains("without an Ossuary Disconnect", truncated.Message);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task PeersCleanDisconnectCompletesTheInputNormallyAfterItsLastBytes() => Run(async () =>
    {
        var disconnects = new List<byte[]>();
        var link = new LinkedPipes();
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, async (packet, to) =>
        {
            if (PacketRelay.TypeOf(packet) == PacketRelay.Disconnect)
            {
                disconnects.Add(packet);
            }

            await to.WriteAsync(packet);
            return true;
        });
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("last words"u8.ToArray());
            await pair.Server.Output.CompleteAsync();

            Assert.Equal("last words"u8.ToArray(), await PipeReads.ReadToEndAsync(pair.Client.Input));
        }

        await Task.WhenAll(upstream, downstream).Within();
        Assert.Equal(new byte[] { 0, 4, 0, 0, 0, 0x10, 0, 0, 4, 0, 0, 0 }, Assert.Single(disconnects)); // clean: error flag 0
    });

    [Fact]
    public Task ApplicationFailingItsOutputSendsAnErrorDisconnect() => Run(async () =>
    {
        var link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.CompleteAsync(new InvalidOperationException("the server application crashed"));

            OssuaryException failed = await Assert.ThrowsAsync<OssuaryException>(() => PipeReads.ReadToEndAsync(pair.Client.Input));
            Assert.Equal(OssuaryErrorReason.ConnectionFailed, failed.Reason);
        }

        await relays.Within();
    });

    [Fact]
    public Task GenuineBytesArrivingTogetherWithTheTransportsEndAreDeliveredBeforeTruncated() => Run(async () =>
    {
        // Regression: the last frame and the end of the transport in one read used to reach the
        // application as Truncated alone, the frame's authentic bytes discarded unread.
        var link = new LinkedPipes();
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, async (packet, to) =>
        {
            if (PacketRelay.IsData(packet))
            {
                packet.CopyTo(to.GetSpan(packet.Length));
                to.Advance(packet.Length);
                return false; // no flush: completing the writer publishes the frame and the end together
            }

            await to.WriteAsync(packet);
            return true;
        });
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("last words"u8.ToArray());
            await downstream.Within(); // the client's transport now holds the frame and its end

            (byte[] delivered, OssuaryException? failure) = await ReadUntilFailureAsync(pair.Client.Input);
            Assert.Equal("last words"u8.ToArray(), delivered);
            Assert.Equal(OssuaryErrorReason.Truncated, failure?.Reason);

            // The failure stays: every later read reports it again.
            OssuaryException again = await Assert.ThrowsAsync<OssuaryException>(() => pair.Client.Input.ReadAsync().AsTask().Within());
            Assert.Equal(OssuaryErrorReason.Truncated, again.Reason);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task GenuineBytesArrivingTogetherWithAForgedFrameAreDeliveredBeforeDecryptionFailed() => Run(async () =>
    {
        var link = new LinkedPipes();
        byte[]? held = null;
        var firstHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bothSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, async (packet, to) =>
        {
            if (!PacketRelay.IsData(packet))
            {
                await to.WriteAsync(packet);
                return true;
            }

            if (held is null)
            {
                held = packet; // the genuine frame waits for the forged one
                firstHeld.SetResult();
                return true;
            }

            packet[^1] ^= 0x80; // the last tag byte of the second frame
            await to.WriteAsync(held.Concat(packet).ToArray());
            bothSent.SetResult();
            return true;
        });
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("genuine"u8.ToArray());
            await firstHeld.Task.Within(); // two quick writes could share one frame
            await pair.Server.Output.WriteAsync("forged!"u8.ToArray());
            await bothSent.Task.Within();
            await EndWatcher.EndedForApplication(pair.Client).Within(); // the client opened both frames before its application reads

            (byte[] delivered, OssuaryException? failure) = await ReadUntilFailureAsync(pair.Client.Input);
            Assert.Equal("genuine"u8.ToArray(), delivered);
            Assert.Equal(OssuaryErrorReason.DecryptionFailed, failure?.Reason);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    [Fact]
    public Task ReaderWaitingForMoreBytesThanWillComeGetsTheFailure() => Run(async () =>
    {
        var link = new LinkedPipes();
        Task downstream = PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To, async (packet, to) =>
        {
            await to.WriteAsync(packet);
            return !PacketRelay.IsData(packet); // the transport ends after the first frame
        });
        Task upstream = PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await pair.Server.Output.WriteAsync("ten bytes!"u8.ToArray());

            // It examines the ten bytes without consuming them, waiting for 100: the failure, not a spin.
            OssuaryException truncated = await Assert.ThrowsAsync<OssuaryException>(() => pair.Client.Input.ReadAtLeastAsync(100).AsTask().Within());
            Assert.Equal(OssuaryErrorReason.Truncated, truncated.Reason);
        }

        await Task.WhenAll(upstream, downstream).Within();
    });

    /// <summary>Reads until the input fails (or ends), returning what it delivered and the failure.</summary>
    private static async Task<(byte[] Delivered, OssuaryException? Failure)> ReadUntilFailureAsync(PipeReader input)
    {
        var all = new List<byte>();
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync().AsTask().Within();
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    all.AddRange(segment.ToArray());
                }

                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return ([.. all], null);
                }
            }
        }
        catch (OssuaryException ex)
        {
            return ([.. all], ex);
        }
    }

    private static Task Run(Func<Task> test) => test().Within();
}

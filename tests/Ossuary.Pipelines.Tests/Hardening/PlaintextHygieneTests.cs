using System.IO.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// Plaintext does not outlive its use: the memory the adapter decrypts into, and the memory the
/// application writes what it sends into, is zeroed when the plaintext pipes give it back (once the
/// application consumed it, or when the connection ends with it unread). Each test first finds its
/// marker in memory while the plaintext is held, so that a search that finds nothing proves something.
/// </summary>
public sealed class PlaintextHygieneTests
{
    private const int MarkerCount = 1536; // 48 KiB of plaintext each way: several frames and blocks, below the pipes' pause threshold

    [Fact]
    public Task ConsumedPlaintextIsZeroedInBothDirections() => WithMarker(async marker =>
    {
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await WriteMarkersAsync(pair.Client.Output, marker);
            ReadResult held = await WaitForMarkersAsync(pair.Server.Input, marker);
            Assert.True(ProcessMemory.Count(marker) >= MarkerCount, "the markers were not found while the server held them: the search proves nothing");
            pair.Server.Input.AdvanceTo(held.Buffer.End);

            await WriteMarkersAsync(pair.Server.Output, marker);
            held = await WaitForMarkersAsync(pair.Client.Input, marker);
            pair.Client.Input.AdvanceTo(held.Buffer.End);

            Assert.Equal(0, ProcessMemory.Count(marker));
        }

        await relays.Within();
    });

    [Fact]
    public Task PlaintextLeftUnreadIsZeroedWhenTheConnectionEnds() => WithMarker(async marker =>
    {
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        await using (InMemoryPair pair = await InMemoryPair.ConnectAsync(link))
        {
            await WriteMarkersAsync(pair.Client.Output, marker);
            await WriteMarkersAsync(pair.Server.Output, marker);
            ReadResult atServer = await WaitForMarkersAsync(pair.Server.Input, marker);
            pair.Server.Input.AdvanceTo(atServer.Buffer.Start, atServer.Buffer.End);
            ReadResult atClient = await WaitForMarkersAsync(pair.Client.Input, marker);
            pair.Client.Input.AdvanceTo(atClient.Buffer.Start, atClient.Buffer.End);
            Assert.True(ProcessMemory.Count(marker) >= 2 * MarkerCount, "the markers were not found while both ends held them unread");
        }

        await relays.Within();
        Assert.Equal(0, ProcessMemory.Count(marker));
    });

    [Fact]
    public Task PlaintextAHandlerLeftInTheMiddleOfAReadIsZeroedOnceItReturns() => WithMarker(async marker =>
    {
        // The handler returns holding a read's buffer: the middleware completes its ends itself
        // (the handler is done with them), where disposal would wait for an AdvanceTo that never comes.
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        await using var server = await OssuaryTestServer.StartAsync<HalfReadingConnectionHandler>(o =>
        {
            o.Identity = serverKey;
            o.AuthorizedClientKeys.Add(clientKey.PublicKey);
        });
        var options = new OssuaryClientOptions { Identity = clientKey };
        options.TrustedServerKeys.Add(serverKey.PublicKey);
        Assert.Equal(HalfReadingConnectionHandler.Length, MarkerCount * marker.Length);

        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options))
        {
            await WriteMarkersAsync(connection.Transport.Output, marker);
            ReadResult end = await connection.Transport.Input.ReadAsync(); // the server ends the connection once its handler has returned
            Assert.True(end.IsCompleted && end.Buffer.IsEmpty);
            connection.Transport.Input.AdvanceTo(end.Buffer.End);
        }

        Assert.Equal(0, ProcessMemory.Count(marker));
    });

    private static async Task WithMarker(Func<byte[], Task> test)
    {
        // Random, and kept in one pinned array the search skips; the tests copy it only into pipe memory.
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

    private static async Task WriteMarkersAsync(PipeWriter output, byte[] marker)
    {
        for (int i = 0; i < MarkerCount; i++)
        {
            marker.CopyTo(output.GetSpan(marker.Length));
            output.Advance(marker.Length);
        }

        FlushResult flushed = await output.FlushAsync();
        Assert.False(flushed.IsCompleted, "the peer stopped reading");
    }

    /// <summary>
    /// Reads until every marker has arrived and returns that read for the caller to advance; the
    /// markers are checked in place (a copy would be plaintext the adapter is not answerable for).
    /// </summary>
    private static async Task<ReadResult> WaitForMarkersAsync(PipeReader input, byte[] marker)
    {
        long expected = (long)MarkerCount * marker.Length;
        while (true)
        {
            ReadResult read = await input.ReadAsync();
            if (read.Buffer.Length >= expected)
            {
                Assert.Equal(expected, read.Buffer.Length);
                Assert.True(read.Buffer.FirstSpan.StartsWith(marker), "the plaintext that arrived is not what was sent");
                return read;
            }

            Assert.False(read.IsCompleted, $"the input ended after {read.Buffer.Length} of {expected} bytes");
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }
}

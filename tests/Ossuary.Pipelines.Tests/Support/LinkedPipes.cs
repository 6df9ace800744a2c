using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>
/// An in-memory connection with the test in the middle: the client writes into one pipe and the
/// server into another, and relays (which the test starts) decide what reaches the other side.
/// </summary>
internal sealed class LinkedPipes
{
    private static readonly PipeOptions Options = new(useSynchronizationContext: false);

    private readonly Pipe _clientToRelay;
    private readonly Pipe _relayToServer;
    private readonly Pipe _serverToRelay;
    private readonly Pipe _relayToClient;

    /// <param name="pool">Where the four pipes rent their memory (a <see cref="DiagnosticMemoryPool"/>); null for the default.</param>
    public LinkedPipes(MemoryPool<byte>? pool = null)
    {
        PipeOptions options = pool is null ? Options : new PipeOptions(pool: pool, useSynchronizationContext: false);
        _clientToRelay = new Pipe(options);
        _relayToServer = new Pipe(options);
        _serverToRelay = new Pipe(options);
        _relayToClient = new Pipe(options);
        Client = new DuplexPipe(_relayToClient.Reader, _clientToRelay.Writer);
        Server = new DuplexPipe(_relayToServer.Reader, _serverToRelay.Writer);
    }

    /// <summary>The client's transport.</summary>
    public IDuplexPipe Client { get; }

    /// <summary>The server's transport.</summary>
    public IDuplexPipe Server { get; }

    /// <summary>What the client sent, and where the server reads.</summary>
    public (PipeReader From, PipeWriter To) Upstream => (_clientToRelay.Reader, _relayToServer.Writer);

    /// <summary>What the server sent, and where the client reads.</summary>
    public (PipeReader From, PipeWriter To) Downstream => (_serverToRelay.Reader, _relayToClient.Writer);

    /// <summary>Relays both directions packet by packet, untouched, until both ends close.</summary>
    public static LinkedPipes Transparent(out Task relays, MemoryPool<byte>? pool = null)
    {
        var link = new LinkedPipes(pool);
        relays = Task.WhenAll(
            PacketRelay.ForwardAsync(link.Upstream.From, link.Upstream.To),
            PacketRelay.ForwardAsync(link.Downstream.From, link.Downstream.To));
        return link;
    }
}

/// <summary>Relays that understand Ossuary framing (an 8-byte header whose first two bytes are the big-endian body length).</summary>
internal static class PacketRelay
{
    public const ushort EncryptedData = 0x20;
    public const ushort Disconnect = 0x10;

    /// <summary>What to do with one packet: write whatever should reach the other side; return false to end that side's transport.</summary>
    public delegate ValueTask<bool> PacketHandler(byte[] packet, PipeWriter to);

    public static ushort TypeOf(byte[] packet) => BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(4));

    public static bool IsData(byte[] packet) => TypeOf(packet) == EncryptedData;

    /// <summary>A handler that flips the first ciphertext byte of the <paramref name="ordinal"/>-th data frame (1 = the first) and passes everything on.</summary>
    public static PacketHandler ForgingDataFrame(int ordinal)
    {
        int dataFrames = 0;
        return async (packet, to) =>
        {
            if (IsData(packet) && ++dataFrames == ordinal)
            {
                packet[8 + 4] ^= 0x01; // the first ciphertext byte: after the header, the blob's two 2-byte lengths
            }

            await to.WriteAsync(packet);
            return true;
        };
    }

    /// <summary>
    /// Copies whole packets from <paramref name="from"/> to <paramref name="to"/>, one flush each,
    /// passing each through <paramref name="onPacket"/>. Completes <paramref name="to"/> at the end.
    /// </summary>
    public static async Task ForwardAsync(PipeReader from, PipeWriter to, PacketHandler? onPacket = null)
    {
        onPacket ??= static async (packet, writer) =>
        {
            await writer.WriteAsync(packet);
            return true;
        };

        try
        {
            while (await ReadPacketAsync(from) is byte[] packet)
            {
                if (!await onPacket(packet, to))
                {
                    break;
                }

                await to.FlushAsync();
            }
        }
        finally
        {
            await to.CompleteAsync();
            await from.CompleteAsync();
        }
    }

    /// <summary>Copies bytes one at a time, a flush per byte, yielding in between so that the reader sees each one.</summary>
    public static async Task ForwardBytewiseAsync(PipeReader from, PipeWriter to)
    {
        try
        {
            while (true)
            {
                ReadResult read = await from.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    for (int i = 0; i < segment.Length; i++)
                    {
                        await to.WriteAsync(segment.Slice(i, 1));
                        await Task.Yield();
                    }
                }

                from.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }
            }
        }
        finally
        {
            await to.CompleteAsync();
            await from.CompleteAsync();
        }
    }

    /// <summary>The next whole packet, or null once the writer has completed (a trailing partial packet is dropped).</summary>
    public static async Task<byte[]?> ReadPacketAsync(PipeReader from)
    {
        byte[] header = new byte[8];
        while (true)
        {
            ReadResult read = await from.ReadAsync();
            ReadOnlySequence<byte> buffer = read.Buffer;
            if (buffer.Length >= 8)
            {
                buffer.Slice(0, 8).CopyTo(header);
                int length = 8 + BinaryPrimitives.ReadUInt16BigEndian(header);
                if (buffer.Length >= length)
                {
                    byte[] packet = buffer.Slice(0, length).ToArray();
                    from.AdvanceTo(buffer.GetPosition(length));
                    return packet;
                }
            }

            from.AdvanceTo(buffer.Start, buffer.End);
            if (read.IsCompleted)
            {
                return null;
            }
        }
    }
}

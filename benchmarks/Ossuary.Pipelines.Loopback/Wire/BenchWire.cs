using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Loopback.Wire;

/// <summary>
/// The tiny application protocol every target speaks, so that each measures the same work:
/// <c>P</c> is answered with <c>p</c> (one byte each way); <c>B</c>, an 8-byte little-endian
/// count N and N bytes are answered with <c>b</c> once the server has counted every one of the N.
/// The client ends the connection by closing it.
/// </summary>
internal static class BenchWire
{
    public const byte Ping = (byte)'P';
    public const byte Pong = (byte)'p';
    public const byte Bulk = (byte)'B';
    public const byte BulkDone = (byte)'b';
    public const int BulkHeaderSize = 9;

    private static readonly byte[] PongMessage = [Pong];
    private static readonly byte[] BulkDoneMessage = [BulkDone];

    // Bytes the stream server asks for per read during a bulk transfer.
    private const int StreamReadSize = 64 * 1024;

    public static void WriteBulkHeader(Span<byte> destination, long count)
    {
        destination[0] = Bulk;
        BinaryPrimitives.WriteInt64LittleEndian(destination[1..], count);
    }

    /// <summary>Serves one connection over a stream (TCP, SslStream) until the client closes it.</summary>
    public static async Task ServeAsync(Stream stream, CancellationToken cancellationToken)
    {
        // An idle connection waits on a one-byte read, holding no buffer: the 64 KiB one is rented per transfer.
        byte[] command = new byte[BulkHeaderSize];
        byte[] answer = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(command.AsMemory(0, 1), cancellationToken).ConfigureAwait(false) == 0)
            {
                return;
            }

            switch (command[0])
            {
                case Ping:
                    answer[0] = Pong;
                    break;
                case Bulk:
                    await stream.ReadExactlyAsync(command.AsMemory(1, 8), cancellationToken).ConfigureAwait(false);
                    await CountAsync(stream, BinaryPrimitives.ReadInt64LittleEndian(command.AsSpan(1)), cancellationToken).ConfigureAwait(false);
                    answer[0] = BulkDone;
                    break;
                default:
                    throw new InvalidDataException($"unknown bench command {command[0]}");
            }

            await stream.WriteAsync(answer, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task CountAsync(Stream stream, long count, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(StreamReadSize);
        try
        {
            while (count > 0)
            {
                int read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(count, StreamReadSize)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new EndOfStreamException($"the client stopped {count} bytes before the end of a bulk transfer");
                }

                count -= read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Serves one connection over pipes (Kestrel with UseOssuary, a raw adapter) until the client closes it.</summary>
    public static async Task ServeAsync(IDuplexPipe pipe, CancellationToken cancellationToken)
    {
        PipeReader input = pipe.Input;
        byte[] header = new byte[BulkHeaderSize];
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            if (buffer.IsEmpty && read.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                return;
            }

            byte command = buffer.FirstSpan[0];
            if (command == Ping)
            {
                input.AdvanceTo(buffer.GetPosition(1));
                await pipe.Output.WriteAsync(PongMessage, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (command != Bulk)
            {
                throw new InvalidDataException($"unknown bench command {command}");
            }

            if (buffer.Length < BulkHeaderSize)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    throw new EndOfStreamException("the client stopped inside a bulk header");
                }

                continue;
            }

            buffer.Slice(0, BulkHeaderSize).CopyTo(header);
            input.AdvanceTo(buffer.GetPosition(BulkHeaderSize));
            await CountAsync(input, BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(1)), cancellationToken).ConfigureAwait(false);
            await pipe.Output.WriteAsync(BulkDoneMessage, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task CountAsync(PipeReader input, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            ReadResult read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            long take = Math.Min(count, read.Buffer.Length);
            input.AdvanceTo(read.Buffer.GetPosition(take));
            count -= take;
            if (count > 0 && read.IsCompleted)
            {
                throw new EndOfStreamException($"the client stopped {count} bytes before the end of a bulk transfer");
            }
        }
    }
}

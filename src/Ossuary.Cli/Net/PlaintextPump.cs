using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Cli.Net;

/// <summary>Copies between the plaintext pipe and standard streams, netcat style.</summary>
internal static class PlaintextPump
{
    /// <summary>Writes everything the peer sends to <paramref name="destination"/> until the peer closes.</summary>
    public static async Task ToStreamAsync(PipeReader input, Stream destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await destination.WriteAsync(segment, cancellationToken);
            }

            await destination.FlushAsync(cancellationToken);
            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>Sends everything read from <paramref name="source"/> until it ends; each read is flushed as it comes.</summary>
    public static async Task FromStreamAsync(Stream source, PipeWriter output, CancellationToken cancellationToken)
    {
        while (true)
        {
            Memory<byte> buffer = output.GetMemory(16 * 1024);
            int read = await source.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                return;
            }

            output.Advance(read);
            FlushResult flushed = await output.FlushAsync(cancellationToken);
            if (flushed.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>Sends everything read from <paramref name="source"/> until it ends; a cancelled wait consumes nothing.</summary>
    public static async Task FromPipeAsync(PipeReader source, PipeWriter output, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await source.ReadAsync(cancellationToken);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                output.Write(segment.Span);
            }

            source.AdvanceTo(read.Buffer.End);
            FlushResult flushed = await output.FlushAsync(cancellationToken);
            if (read.IsCompleted || flushed.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>Sends every byte back (the <c>--echo</c> server).</summary>
    public static async Task EchoAsync(IDuplexPipe connection, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await connection.Input.ReadAsync(cancellationToken);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await connection.Output.WriteAsync(segment, cancellationToken);
            }

            connection.Input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }
        }
    }
}

using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Cli.Net;

/// <summary>Copies between the plaintext pipe and standard streams, netcat style.</summary>
internal static class PlaintextPump
{
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

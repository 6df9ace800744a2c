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

    /// <summary>
    /// Sends every byte back (the <c>--echo</c> server) until the client closes. Returns how many were not sent
    /// back because the connection had ended under the write (a client that closed without waiting for its echo).
    /// </summary>
    public static async Task<long> EchoAsync(IDuplexPipe connection, CancellationToken cancellationToken)
    {
        long unsent = 0;
        while (true)
        {
            ReadResult read = await connection.Input.ReadAsync(cancellationToken);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                // Once a write finds the connection over, nothing more goes out: the rest read is counted, not written.
                if (unsent > 0 || (await connection.Output.WriteAsync(segment, cancellationToken)).IsCompleted)
                {
                    unsent += segment.Length;
                }
            }

            connection.Input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return unsent;
            }
        }
    }
}

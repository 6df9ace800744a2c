using System.Buffers;
using System.Net.Sockets;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>
/// The sans-IO core driven over a socket the way the README's loop does it, until the session
/// closes or the peer hangs up: every Receive result is returned, in order.
/// </summary>
internal static class SessionLoop
{
    /// <summary>Runs the loop; <paramref name="onResult"/> sees each result with its plaintext and may write packets to the output it is given.</summary>
    public static async Task<List<OssuaryReceiveResult>> RunAsync(
        Socket socket, OssuarySession session, Action<OssuaryReceiveResult, byte[], ArrayBufferWriter<byte>>? onResult = null)
    {
        var results = new List<OssuaryReceiveResult>();
        var output = new ArrayBufferWriter<byte>();
        var plaintext = new ArrayBufferWriter<byte>();
        byte[] input = new byte[OssuarySession.MaxPacketLength * 2];
        int buffered = 0;
        while (true)
        {
            while (session.WriteHandshake(output) > 0)
            {
            }

            if (output.WrittenCount > 0)
            {
                await socket.SendAsync(output.WrittenMemory);
                output.Clear();
            }

            var bytes = new ReadOnlySequence<byte>(input, 0, buffered);
            OssuaryReceiveResult result = session.Receive(bytes, plaintext, out SequencePosition consumed, out _);
            int used = (int)bytes.GetOffset(consumed);
            input.AsSpan(used, buffered - used).CopyTo(input);
            buffered -= used;
            if (result.Status != OssuaryReceiveStatus.NeedMoreData)
            {
                results.Add(result);
                onResult?.Invoke(result, plaintext.WrittenSpan.ToArray(), output);
                plaintext.Clear();
            }

            if (result.Status == OssuaryReceiveStatus.Closed)
            {
                while (session.WriteHandshake(output) > 0)
                {
                }

                if (output.WrittenCount > 0)
                {
                    await socket.SendAsync(output.WrittenMemory);
                }

                return results;
            }

            if (result.Status == OssuaryReceiveStatus.NeedMoreData)
            {
                int read = await socket.ReceiveAsync(input.AsMemory(buffered));
                if (read == 0)
                {
                    return results;
                }

                buffered += read;
            }
        }
    }
}

using System.Buffers;
using Ossuary.Pipelines.Loopback.Targets;
using Ossuary.Pipelines.Protocol;

namespace Ossuary.Pipelines.Loopback.Measurements;

/// <summary>
/// What ChaCha20-Poly1305 alone costs the <c>ossuary</c> throughput target: two established
/// in-memory sessions, one sealing full 16 KiB records and the other opening them, on one thread.
/// No sockets, no pipes: the record layer the wire fixes, and the floor under any adapter.
/// </summary>
internal static class CipherMeasurement
{
    /// <summary>Process CPU time per 10^6 plaintext bytes, sealed by one end and opened by the other.</summary>
    public static double CpuMicrosecondsPerMegabyte(OssuaryKeys keys, double seconds)
    {
        using var client = new OssuarySession(keys.ClientSessionOptions());
        using var server = new OssuarySession(keys.ServerSessionOptions());
        var wire = new ArrayBufferWriter<byte>(OssuarySession.MaxPacketLength);
        var plaintext = new ArrayBufferWriter<byte>(OssuarySession.MaxPlaintextLength);
        InMemoryWire.Establish(client, server, wire, plaintext);

        byte[] record = new byte[OssuarySession.MaxPlaintextLength];
        Random.Shared.NextBytes(record);
        Run(client, server, record, wire, plaintext, Math.Min(0.2, seconds)); // warm-up
        var clock = CpuClock.Start();
        long bytes = Run(client, server, record, wire, plaintext, seconds);
        return clock.CoresBusy * clock.Elapsed.TotalMicroseconds / (bytes / 1e6);
    }

    private static long Run(OssuarySession client, OssuarySession server, byte[] record, ArrayBufferWriter<byte> wire, ArrayBufferWriter<byte> plaintext, double seconds)
    {
        long bytes = 0;
        var clock = CpuClock.Start();
        do
        {
            for (int i = 0; i < 64; i++)
            {
                wire.ResetWrittenCount();
                plaintext.ResetWrittenCount();
                client.WriteData(record, wire);
                OssuaryReceiveResult result = server.Receive(new ReadOnlySequence<byte>(wire.WrittenMemory), plaintext, out _, out _);
                if (result.Status != OssuaryReceiveStatus.Data || result.PlaintextLength != record.Length)
                {
                    throw new InvalidOperationException($"the in-memory record did not open: {result.Status} {result.Reason}");
                }
            }

            bytes += 64L * record.Length;
        }
        while (clock.Elapsed.TotalSeconds < seconds);

        return bytes;
    }
}

using Ossuary.Pipelines;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Samples.Telemetry.Load;

/// <summary>
/// One device: connects with its own key, sends its numbered readings one flush each, has the server
/// confirm it took them all (<see cref="DeliveryCheck"/>), and disconnects cleanly.
/// </summary>
internal static class SimulatedDevice
{
    private static readonly string[] Sensors = ["temp", "humidity", "pressure"];

    public static async Task<DeviceRun> RunAsync(int index, OssuaryIdentity identity, LoadOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        var client = new OssuaryClientOptions { Identity = identity };
        client.TrustedServerKeys.Add(options.ServerKey);
        string sensor = Sensors[index % Sensors.Length];
        int sent = 0;
        try
        {
            // Disposing sends Disconnect after everything written, so the server sees every reading.
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(options.Server, client, cancellationToken);
            for (int i = 0; i < options.ReadingsPerDevice; i++)
            {
                if (i > 0 && options.Interval > TimeSpan.Zero)
                {
                    await Task.Delay(options.Interval, time, cancellationToken);
                }

                // The value follows the number: a resend (a run starting below where another stopped) is the same reading.
                long sequence = options.FirstSequence + i;
                long timestampMs = options.TimeOrigin is { } origin ? origin.ToUnixTimeMilliseconds() + sequence : time.GetUtcNow().ToUnixTimeMilliseconds();
                ReadingLine.Write(connection.Transport.Output, sensor, ValueOf(index, sequence), timestampMs, sequence);
                var flushed = await connection.Transport.Output.FlushAsync(cancellationToken);
                if (flushed.IsCompleted)
                {
                    // The connection has ended: the delivery check's read says why (the allow-list's
                    // refusal, a shutdown) where a bare "closed" hid the server's reason.
                    break;
                }

                sent++;
            }

            await DeliveryCheck.ConfirmAsync(connection.Transport, sent, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            return new DeviceRun(identity.PublicKey, sent, ex);
        }

        return new DeviceRun(identity.PublicKey, sent, null);
    }

    /// <summary>A plausible, reproducible value: each device drifts around its own base.</summary>
    private static double ValueOf(int device, long reading) => 18 + (device % 10) + Math.Sin(reading / 5.0);
}

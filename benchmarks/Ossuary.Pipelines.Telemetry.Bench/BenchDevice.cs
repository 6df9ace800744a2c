using System.Net;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Transport;
using Ossuary.Samples.Telemetry.Load;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>One simulated device: its own key and connection, and a sequence number that continues across reconnects.</summary>
internal sealed class BenchDevice(OssuaryIdentity identity, EndPoint server, OssuaryPublicKey serverKey) : IAsyncDisposable
{
    private static readonly string[] Sensors = ["temp", "humidity", "pressure"];
    private OssuaryClientConnection? _connection;

    public OssuaryIdentity Identity { get; } = identity;

    /// <summary>The key as the store keeps it (also after disposal).</summary>
    public string KeyHex { get; } = identity.PublicKey.ToString();

    /// <summary>Readings written and flushed so far: the last sequence number sent.</summary>
    public long Sent { get; private set; }

    public int ConnectFailures { get; private set; }

    /// <summary>Connects, retrying refused or reset attempts (a storm overflows the listen backlog) until <paramref name="cancellationToken"/>.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var options = new OssuaryClientOptions { Identity = Identity };
        options.TrustedServerKeys.Add(serverKey);
        while (true)
        {
            try
            {
                _connection = await OssuaryClient.ConnectAsync(server, options, cancellationToken);
                return;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException && !cancellationToken.IsCancellationRequested)
            {
                ConnectFailures++;
                await Task.Delay(Random.Shared.Next(20, 100), cancellationToken);
            }
        }
    }

    /// <summary>Writes <paramref name="count"/> readings and flushes them as one write.</summary>
    public async ValueTask SendAsync(int count)
    {
        OssuaryClientConnection connection = _connection ?? throw new InvalidOperationException("not connected");
        string sensor = Sensors[(int)(Sent % Sensors.Length)];
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < count; i++)
        {
            ReadingLine.Write(connection.Transport.Output, sensor, 20.5, now, Sent + i + 1);
        }

        // Not cancellable: a flush either completes (the readings count as sent) or fails the run.
        var flushed = await connection.Transport.Output.FlushAsync(CancellationToken.None);
        if (flushed.IsCompleted)
        {
            throw new IOException("the server closed the connection");
        }

        Sent += count;
    }

    /// <summary>Closes cleanly: a Disconnect after everything written.</summary>
    public async ValueTask DisconnectAsync()
    {
        OssuaryClientConnection? connection = _connection;
        _connection = null;
        if (connection is not null)
        {
            await connection.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync();
        Identity.Dispose();
    }
}

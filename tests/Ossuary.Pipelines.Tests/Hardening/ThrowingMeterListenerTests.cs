using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// A <see cref="MeterListener"/> whose measurement callback throws (an exporter's bug): .NET calls it
/// inside the instrument's Add or Record, so its exception comes out of the library's own counting. A
/// connection must go on as it would without the listener, and the failure, the application's, be
/// said at Error with its cause.
/// </summary>
public sealed class ThrowingMeterListenerTests
{
    [Fact]
    public async Task AConnectionGoesOnAndTheListenersFailureIsLoggedAtError()
    {
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        IMeterFactory meters = services.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => throw new InvalidOperationException("the exporter's bug"));
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => throw new InvalidOperationException("the exporter's bug"));
        listener.Start();

        var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs], new LoggerFilterOptions { MinLevel = LogLevel.Debug });
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var serverOptions = new OssuaryServerOptions { Identity = serverKey, MeterFactory = meters, LoggerFactory = loggers };
        serverOptions.AuthorizedClientKeys.Add(clientKey.PublicKey);
        var clientOptions = new OssuaryClientOptions { Identity = clientKey };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        LinkedPipes link = LinkedPipes.Transparent(out _);

        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        Task<OssuaryDuplexPipe> connecting = OssuaryDuplexPipe.ConnectAsync(link.Client, clientOptions);
        await Task.WhenAll(accepting, connecting).Within();
        await using OssuaryDuplexPipe server = await accepting;
        await using OssuaryDuplexPipe client = await connecting;

        await client.Output.WriteAsync("ping"u8.ToArray()).AsTask().Within();
        Assert.Equal("ping"u8.ToArray(), await PipeReads.ReadExactlyAsync(server.Input, 4).Within());
        await server.Output.WriteAsync("pong"u8.ToArray()).AsTask().Within();
        Assert.Equal("pong"u8.ToArray(), await PipeReads.ReadExactlyAsync(client.Input, 4).Within());

        FakeLogRecord said = Assert.Single(logs.Collector.GetSnapshot(), r => r.Exception?.Message == "the exporter's bug");
        Assert.Equal(LogLevel.Error, said.Level);
    }
}

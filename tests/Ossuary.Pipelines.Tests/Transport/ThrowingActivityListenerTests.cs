using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// An <see cref="ActivityListener"/> that throws (an exporter's bug) does not change how a handshake
/// ends, as a logging provider that throws does not: the span is lost, the connection is not.
/// </summary>
public class ThrowingActivityListenerTests
{
    [Fact]
    public async Task AListenerThatThrowsAsTheHandshakeSpanStopsNeitherFailsTheHandshakeNorCountsItTwice()
    {
        // The span stopped inside the handshake's try: the listener's exception failed a handshake that
        // had completed (this side's fault, Disconnect (error) to a client established on its side), and
        // the handshake was recorded twice, as a success and as a failure (ossuary.active_handshakes went
        // down twice). Only the spans of this test throw: the listener sees every test's handshakes.
        using var marker = new ActivitySource("Ossuary.Pipelines.Tests." + nameof(ThrowingActivityListenerTests));
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == OssuaryTelemetry.ActivitySourceName || source == marker,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.OperationName == "ossuary.handshake" && activity.Parent?.Source == marker)
                {
                    throw new InvalidOperationException("the exporter's bug");
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var durations = new MetricCollector<double>(meters, OssuaryTelemetry.MeterName, "ossuary.handshake.duration");
        using var keys = new MutualKeys();
        var serverOptions = new OssuaryServerOptions { MeterFactory = meters };
        keys.ConfigureServer(serverOptions, TimeSpan.FromSeconds(10));
        LinkedPipes link = LinkedPipes.Transparent(out _);

        string outcome;
        using (marker.StartActivity("test"))
        {
            Task<OssuaryDuplexPipe> server = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
            Task<OssuaryDuplexPipe> client = OssuaryDuplexPipe.ConnectAsync(link.Client, keys.ClientOptions());
            outcome = await OutcomeAsync(server);
            await OutcomeAsync(client);
        }

        string recorded = string.Join(", ", durations.GetMeasurementSnapshot().Select(m => m.Tags["ossuary.outcome"]));
        Assert.Equal(("established", "success"), (outcome, recorded));
    }

    private static async Task<string> OutcomeAsync(Task<OssuaryDuplexPipe> handshake)
    {
        try
        {
            await (await handshake.Within()).DisposeAsync();
            return "established";
        }
        catch (OssuaryException ex)
        {
            return ex.Reason.ToString();
        }
    }
}

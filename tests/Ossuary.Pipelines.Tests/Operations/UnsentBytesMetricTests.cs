using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary><c>ossuary.bytes_sent</c> and <c>ossuary.frames_sent</c> count what the transport took, not what a failed flush left behind.</summary>
public sealed class UnsentBytesMetricTests
{
    [Fact]
    public async Task BytesAFailedFlushNeverSentAreNotCountedAsSent()
    {
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        IMeterFactory meters = services.GetRequiredService<IMeterFactory>();
        using var bytesSent = new MetricCollector<long>(meters, OssuaryTelemetry.MeterName, "ossuary.bytes_sent");
        using var framesSent = new MetricCollector<long>(meters, OssuaryTelemetry.MeterName, "ossuary.frames_sent");
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        var serverOptions = new OssuaryServerOptions { Identity = serverKey };
        serverOptions.AuthorizedClientKeys.Add(clientKey.PublicKey);
        var clientOptions = new OssuaryClientOptions { Identity = clientKey, MeterFactory = meters };
        clientOptions.TrustedServerKeys.Add(serverKey.PublicKey);
        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        var output = new SendFailingWriter(link.Client.Output);

        Task<OssuaryDuplexPipe> accepting = OssuaryDuplexPipe.AcceptAsync(link.Server, serverOptions);
        Task<OssuaryDuplexPipe> connecting = OssuaryDuplexPipe.ConnectAsync(new DuplexPipe(link.Client.Input, output), clientOptions);
        await Task.WhenAll(accepting, connecting).Within();
        await using OssuaryDuplexPipe server = await accepting;
        await using OssuaryDuplexPipe client = await connecting;

        // The transport ends its output as Kestrel's does when the send fails: the flush says completed.
        output.Fail();
        try
        {
            // Written until the output, failed with the flush that carried the first write, refuses more.
            while (!(await client.Output.WriteAsync(new byte[1000]).AsTask().Within()).IsCompleted)
            {
            }
        }
        catch (IOException)
        {
            // The failure, as the application's output reports it.
        }

        Assert.Equal(0, bytesSent.GetMeasurementSnapshot().Sum(m => m.Value));
        Assert.Equal(0, framesSent.GetMeasurementSnapshot().Sum(m => m.Value));
    }

    /// <summary>A transport's output that, once told to, takes no more: every flush reports it completed.</summary>
    private sealed class SendFailingWriter(PipeWriter inner) : PipeWriter
    {
        private volatile bool _failed;

        public void Fail() => _failed = true;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
            _failed ? new(new FlushResult(isCanceled: false, isCompleted: true)) : inner.FlushAsync(cancellationToken);
    }
}

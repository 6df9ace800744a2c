using System.Net;
using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Operations;

/// <summary>
/// A name lookup that does not answer (a resolver whose server never replies) while the caller gives up
/// or the ConnectTimeout runs out. The system's lookup does not end when its token is cancelled once it
/// has started (on Linux, Dns.GetHostAddressesAsync runs the blocking getaddrinfo and returns when that
/// does: with a resolver that never answers, after resolv.conf's timeout times its attempts, 30 s a try at
/// most, and then as a SocketException, not a cancellation). The connect awaited it as it was, so neither
/// the caller's token nor the ConnectTimeout that its docs say bounds resolving ended it. The resolvers
/// here behave as that one: they hear of the cancellation and go on.
/// </summary>
public class HangingNameLookupTests
{
    [Fact]
    public async Task CancellingTheCallerDuringALookupThatIgnoresItEndsTheConnectWithTheCallersToken()
    {
        using var caller = new CancellationTokenSource();
        var lookup = new DeafLookup();

        Task<Socket> connecting = SocketConnector.ConnectAsync(new DnsEndPoint("hanging.example", 7400), Timeout.InfiniteTimeSpan, lookup.ResolveAsync, caller.Token);
        await lookup.Asked.Within();
        await caller.CancelAsync();

        OperationCanceledException cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting.Within());
        Assert.Equal(caller.Token, cancelled.CancellationToken);
        lookup.FailLate(); // the system's lookup ends in its own time; nobody is left waiting for it
    }

    [Fact]
    public async Task ConnectTimeoutEndsALookupThatIgnoresItsToken()
    {
        var lookup = new DeafLookup();

        SocketException timedOut = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("hanging.example", 7400), TimeSpan.FromMilliseconds(200), lookup.ResolveAsync, CancellationToken.None).Within());

        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        Assert.Contains("hanging.example", timedOut.Message, StringComparison.Ordinal);
        lookup.FailLate();
    }

    /// <summary>A lookup that is asked, takes no notice of its token, and answers only when the test says.</summary>
    private sealed class DeafLookup
    {
        private readonly TaskCompletionSource _asked = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<IPAddress[]> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Asked => _asked.Task;

        public Task<IPAddress[]> ResolveAsync(string name, AddressFamily family, CancellationToken cancellationToken)
        {
            _asked.TrySetResult();
            return _answer.Task;
        }

        /// <summary>The lookup gives up at last, as getaddrinfo does: "Resource temporarily unavailable".</summary>
        public void FailLate() => _answer.TrySetException(new SocketException((int)SocketError.TryAgain));
    }
}

using System.Collections.Concurrent;
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

    /// <summary>
    /// A ConnectTimeout that runs out while the name is still being looked up says so. Its message said only
    /// that connecting to the host did not complete in time, as for a server that never answered its SYNs, so
    /// an operator went looking at the server's address and firewall when no address had been tried at all.
    /// </summary>
    [Fact]
    public async Task ATimeoutDuringTheLookupSaysTheNameHadNotResolved()
    {
        var lookup = new DeafLookup();

        SocketException timedOut = await Assert.ThrowsAsync<SocketException>(() => SocketConnector.ConnectAsync(
            new DnsEndPoint("hanging.example", 7400), TimeSpan.FromMilliseconds(200), lookup.ResolveAsync, CancellationToken.None).Within());

        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        Assert.Contains("'hanging.example' had not resolved", timedOut.Message, StringComparison.Ordinal);
        Assert.Contains("hanging.example:7400", timedOut.Message, StringComparison.Ordinal);
        lookup.FailLate();
    }

    /// <summary>
    /// A lookup that fails at the instant the caller gives up: its failure is nobody's, and must still be
    /// observed. The connect observed it only when the lookup had not ended by the time its catch looked
    /// (<c>when (!lookup.IsCompleted)</c>), so one that failed in between went to
    /// <see cref="TaskScheduler.UnobservedTaskException"/>. The caller cancels on a thread with a
    /// synchronization context of its own (a UI thread's, say), so the connect goes on from the cancelled
    /// wait on the thread pool, not inline, and the lookup (which heard of the cancellation first, as the
    /// system's may) fails meanwhile on the caller's thread.
    /// </summary>
    [Fact]
    public async Task ALookupThatFailsAsTheCallerGivesUpHasItsFailureObserved()
    {
        const string Marker = "lookup failed as the caller gave up";
        var unobserved = new ConcurrentQueue<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) =>
        {
            if (e.Exception.InnerExceptions.Any(inner => inner.Message == Marker))
            {
                unobserved.Enqueue(e.Exception);
            }
        };
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            for (int round = 0; round < 20; round++)
            {
                await FailAsTheCallerGivesUpAsync(Marker);
            }

            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }

        Assert.True(unobserved.IsEmpty, $"{unobserved.Count} lookups' failures went unobserved: {unobserved.FirstOrDefault()}");
    }

    private static async Task FailAsTheCallerGivesUpAsync(string marker)
    {
        using var caller = new CancellationTokenSource();
        var answer = new TaskCompletionSource<IPAddress[]>();
        Task<Socket> connecting = SocketConnector.ConnectAsync(new DnsEndPoint("failing.example", 7400), Timeout.InfiniteTimeSpan,
            (_, _, token) =>
            {
                // Registered before the connect's wait registers its own, so it runs just after that wait is cancelled.
                token.Register(() => answer.TrySetException(new SocketException((int)SocketError.TryAgain, marker)));
                return answer.Task;
            },
            caller.Token);

        SynchronizationContext? previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(new OwnContext());
        try
        {
            caller.Cancel();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting.Within());
    }

    /// <summary>Any context but the default one: a task completed on its thread runs no continuation inline.</summary>
    private sealed class OwnContext : SynchronizationContext;

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

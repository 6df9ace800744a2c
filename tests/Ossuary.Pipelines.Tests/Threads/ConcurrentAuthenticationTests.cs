using System.Net.Sockets;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// Two authentications of one OssuaryStream started at once on two threads (a caller's bug, which the
/// stream documents as refused): exactly one goes on, and the other is refused before it touches the
/// inner stream. The "already authenticating" check read the field, then set it: two calls that both
/// read it before either set it both ran a handshake over the same inner stream, each writing its own
/// ClientHandshake into it and reading the other's answers.
/// </summary>
public class ConcurrentAuthenticationTests
{
    [Fact]
    public async Task OfTwoAuthenticationsStartedAtOnceExactlyOneGoesOn()
    {
        // The race is narrow (a few allocations between the check and the set): many rounds, each
        // released from a barrier on two threads, make two calls inside it likely.
        const int Rounds = 1000;
        using var keys = new MutualKeys();
        OssuaryClientOptions options = keys.ClientOptions();
        for (int round = 0; round < Rounds; round++)
        {
            (NetworkStream serverSide, NetworkStream clientSide) = await OssuaryStreamTests.ConnectTcpPairAsync();
            using var silentServer = serverSide; // never answers: the handshake that goes on waits
            var client = new OssuaryStream(clientSide);
            using var start = new Barrier(2);
            Task<Task>[] callers = Enumerable.Range(0, 2).Select(_ => Task.Factory.StartNew(
                () =>
                {
                    start.SignalAndWait();
                    return client.AuthenticateAsClientAsync(options);
                },
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default)).ToArray();
            Task[] authentications = await Task.WhenAll(callers).Within();

            await client.DisposeAsync().AsTask().Within(); // ends the one that went on
            Exception?[] outcomes = await Task.WhenAll(authentications.Select(OutcomeAsync));

            Assert.True(
                outcomes.Count(e => e is InvalidOperationException and not ObjectDisposedException) == 1 && outcomes.Count(e => e is ObjectDisposedException) == 1,
                $"round {round}: expected one authentication refused and one ended by disposal, got {string.Join(", ", outcomes.Select(e => e?.GetType().Name ?? "success"))}");
        }
    }

    private static async Task<Exception?> OutcomeAsync(Task authentication)
    {
        try
        {
            await authentication.Within();
            return null;
        }
        catch (Exception ex) when (ex is not TimeoutException)
        {
            return ex;
        }
    }
}

using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Transport;

/// <summary>
/// Disposing a client connection stops its socket read without an exception: on Linux the socket
/// stops receiving (the read ends as at the peer's close), where cancelling the read threw and
/// caught an OperationCanceledException inside the socket layer on every connection.
/// </summary>
public class ClientDisposalTests
{
    // Marks this test's own async flow: the client's loops and their socket reads inherit it, the
    // in-process server's connections (accepted on Kestrel's flow) and other tests do not.
    private static readonly AsyncLocal<bool> InThisTest = new();

    [Fact]
    public async Task DisposingAClientEndsItsSocketReadWithoutAnException()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // elsewhere the read is still cancelled (shutdown need not wake it there)
        }

        using var keys = new MutualKeys();
        await using OssuaryTestServer server = await OssuaryTestServer.StartEchoAsync(keys.Server, keys.Client);
        var thrown = new ConcurrentQueue<Exception>();
        void Watch(object? sender, FirstChanceExceptionEventArgs e)
        {
            if (InThisTest.Value)
            {
                thrown.Enqueue(e.Exception);
            }
        }

        AppDomain.CurrentDomain.FirstChanceException += Watch;
        try
        {
            await ConnectAndDisposeAsync(server, keys);
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= Watch;
        }

        Assert.Empty(thrown.Select(ex => $"{ex.GetType().Name}: {ex.Message}"));
    }

    private static async Task ConnectAndDisposeAsync(OssuaryTestServer server, MutualKeys keys)
    {
        InThisTest.Value = true;
        for (int i = 0; i < 20; i++)
        {
            OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, keys.ClientOptions()).Within();
            await connection.Transport.Output.WriteAsync(new byte[] { 42 });
            await PipeReads.ReadExactlyAsync(connection.Transport.Input, 1).Within();
            await connection.DisposeAsync().AsTask().Within();
        }
    }
}

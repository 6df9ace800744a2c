using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Operations;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Protocol.Lifecycle;

/// <summary>
/// The README's sans-IO client ("The sans-IO core"), run as written against a real Kestrel echo
/// server secured with UseOssuary: it says hello, gets the answer and ends cleanly.
/// </summary>
public class ReadmeSessionLoopTests
{
    [Fact]
    public async Task TheReadmesSessionLoopSaysHelloAndPrintsTheAnswer()
    {
        using var serverIdentity = OssuaryIdentity.Generate();
        using var identity = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverIdentity, identity)));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
        await using NetworkStream transport = tcp.GetStream();
        var answers = new List<string>();

        await RunAsync(transport, identity, serverIdentity.PublicKey, answers).Within();

        Assert.Equal(["hello"], answers);
    }

    [Fact]
    public async Task TheReadmesSessionLoopThrowsWhenTheServerRefusesTheClient()
    {
        // A refused client learns of it from the server's Disconnect (error), after its handshake:
        // the loop must not end as it does after a clean close, as if the hello had been answered.
        using var serverIdentity = OssuaryIdentity.Generate();
        using var admitted = OssuaryIdentity.Generate();
        using var stranger = OssuaryIdentity.Generate();
        await using KestrelHost host = await KestrelHost.StartAsync(k => k.Listen(IPAddress.Loopback, 0, HostNameConnectTests.Secure(serverIdentity, admitted)));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, host.Port()).Within();
        await using NetworkStream transport = tcp.GetStream();
        var answers = new List<string>();

        OssuaryException refused = await Assert.ThrowsAsync<OssuaryException>(() => RunAsync(transport, stranger, serverIdentity.PublicKey, answers).Within());

        Assert.Equal(OssuaryErrorReason.ConnectionFailed, refused.Reason);
        Assert.Empty(answers);
    }

    [Fact]
    public void TheLoopHereIsTheReadmesBlock()
    {
        // The tests above run a copy; the README's text is what users copy. Every line of its block,
        // in order, must be here (the identity and server key are this copy's parameters).
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root(), "README.md"));
        int section = readme.IndexOf("## The sans-IO core", StringComparison.Ordinal);
        int start = readme.IndexOf("```csharp\n", section, StringComparison.Ordinal) + "```csharp\n".Length;
        string block = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
        string[] copy = File.ReadAllLines(Path.Combine(RepositoryPaths.Root(), "tests", "Ossuary.Pipelines.Tests", "Protocol", "Lifecycle", "ReadmeSessionLoopTests.cs"))
            .Select(line => line.Trim()).ToArray();
        int at = Array.FindIndex(copy, line => line.StartsWith("private static async Task RunAsync", StringComparison.Ordinal));
        foreach (string line in block.Split('\n').Select(line => line.Trim()))
        {
            if (line.Length == 0 || line.StartsWith("using ", StringComparison.Ordinal))
            {
                continue;
            }

            string expected = line.Replace("Console.WriteLine(", "answers.Add(", StringComparison.Ordinal);
            int found = Array.IndexOf(copy, expected, at + 1);
            Assert.True(found > at, $"The README's sans-IO loop has '{line}', which the copy here lacks (or has out of order): update the copy, then run it.");
            at = found;
        }
    }

    // The README's block, with Console.WriteLine collecting into answers.
    private static async Task RunAsync(Stream transport, OssuaryIdentity identity, OssuaryPublicKey serverKey, List<string> answers)
    {
        var options = new OssuarySessionOptions { Role = OssuaryRole.Client, Identity = identity };
        options.AuthorizedKeys.Add(serverKey);                          // the servers this client trusts
        using var session = new OssuarySession(options);

        var output = new ArrayBufferWriter<byte>();                     // packets for the peer
        var plaintext = new ArrayBufferWriter<byte>();                  // decrypted messages
        var input = new byte[OssuarySession.MaxPacketLength];           // one packet is all we buffer
        int buffered = 0;
        bool greeted = false;
        while (true)
        {
            // After every Receive: send what the session wants to say (handshake, Reset, Disconnect).
            while (session.WriteHandshake(output) > 0) { }
            if (session.IsEstablished && !greeted)
            {
                session.WriteData("hello"u8, output);                   // one message = one packet
                greeted = true;
            }

            await transport.WriteAsync(output.WrittenMemory);
            output.Clear();

            var bytes = new ReadOnlySequence<byte>(input, 0, buffered);
            OssuaryReceiveResult result = session.Receive(bytes, plaintext, out SequencePosition consumed, out _);
            int used = (int)bytes.GetOffset(consumed);                  // keep what was not consumed
            input.AsSpan(used, buffered - used).CopyTo(input);
            buffered -= used;
            switch (result.Status)
            {
                case OssuaryReceiveStatus.NeedMoreData:
                    int read = await transport.ReadAsync(input.AsMemory(buffered));
                    buffered += read > 0 ? read : throw new OssuaryException(OssuaryErrorReason.Truncated);
                    break;
                case OssuaryReceiveStatus.Data:
                    answers.Add(Encoding.UTF8.GetString(plaintext.WrittenSpan));
                    plaintext.Clear();
                    session.Disconnect(error: false);                   // the next WriteHandshake writes it
                    break;
                case OssuaryReceiveStatus.UntrustedServer:              // trust on first use would call
                    throw new OssuaryException(result.Reason);          // session.AddAuthorizedKey(session.RemotePublicKey!)
                case OssuaryReceiveStatus.Closed when result.Reason == OssuaryErrorReason.ConnectionClosed:
                    return;                                             // a clean close, ours or the server's
                case OssuaryReceiveStatus.Closed:                       // refused (ConnectionFailed), reset, ...
                    throw new OssuaryException(result.Reason);
            }
        }
    }
}

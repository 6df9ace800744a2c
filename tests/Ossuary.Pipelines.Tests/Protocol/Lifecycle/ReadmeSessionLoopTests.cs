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
                case OssuaryReceiveStatus.Closed:
                    return;                                             // result.Reason says why
            }
        }
    }
}

using System.Collections;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Ossuary.Pipelines.Crypto;
using Ossuary.Pipelines.Integrations;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// Where secrets live and where they must never show up: seeds in unmanaged memory, ephemeral
/// secrets zeroed, constant-time key comparison, and no seed in any log line, exception or
/// ToString() — through real handshakes and failures.
/// </summary>
public class KeyHygieneTests
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    [Fact]
    public void AnIdentityHoldsItsSeedInUnmanagedMemoryAndInNoManagedField()
    {
        byte[] seed = RandomNumberGenerator.GetBytes(OssuaryIdentity.SeedSize);
        using OssuaryIdentity identity = OssuaryIdentity.FromSeed(seed);

        nint address = SecretAddress(identity);
        Assert.NotEqual(0, address);
        byte[] unmanaged = new byte[OssuaryIdentity.SeedSize];
        Marshal.Copy(address, unmanaged, 0, unmanaged.Length);
        Assert.Equal(seed, unmanaged); // the seed is there, at the start of libsodium's 64-byte secret key

        Assert.DoesNotContain(typeof(OssuaryIdentity).GetFields(InstanceFields), f => f.FieldType == typeof(byte[]) || f.FieldType == typeof(string));
        AssertNoManagedCopy(identity, seed);
    }

    [Fact]
    public void DisposingAnIdentityNullsItsPointerAndEveryUseOfTheSecretThrows()
    {
        OssuaryIdentity identity = OssuaryIdentity.Generate();
        OssuaryPublicKey publicKey = identity.PublicKey;

        identity.Dispose();

        Assert.Equal(0, SecretAddress(identity));
        Assert.Throws<ObjectDisposedException>(() => identity.CopySeedTo(new byte[OssuaryIdentity.SeedSize]));
        Assert.Throws<ObjectDisposedException>(() => identity.TryFormatSeedHex(new char[64], out _));
        Assert.Throws<ObjectDisposedException>(() => identity.Sign(new byte[64], "message"u8));
        Assert.Same(publicKey, identity.PublicKey); // the public half stays usable
        identity.Dispose();
    }

    [Fact]
    public void AnEphemeralKeyPairZeroesItsSecretOnDispose()
    {
        var pair = new EphemeralKeyPair();
        pair.Regenerate(RandomSource.Secure);
        byte[] secret = EphemeralSecret(pair);
        Assert.Contains(secret, b => b != 0);

        pair.Dispose();

        Assert.All(secret, b => Assert.Equal(0, b));
    }

    [Fact]
    public void ASecondKeyAgreementInOneGenerationThrowsInsteadOfUsingTheZeroedSecret()
    {
        using var pair = new EphemeralKeyPair();
        pair.Regenerate(RandomSource.Secure);
        using var peer = new EphemeralKeyPair();
        peer.Regenerate(RandomSource.Secure);
        byte[] key = new byte[RecordCipher.KeySize];
        Assert.True(pair.TryAgree(peer.PublicKey, key));

        // Until the session spends it, the secret agrees the same key again (a packet read again after running out of memory).
        byte[] again = new byte[RecordCipher.KeySize];
        Assert.True(pair.TryAgree(peer.PublicKey, again));
        Assert.Equal(key, again);
        pair.Spend();
        Assert.All(EphemeralSecret(pair), b => Assert.Equal(0, b));

        // The secret is now zero: a second agreement would compute a key anyone can compute.
        Assert.Throws<InvalidOperationException>(() => pair.TryAgree(peer.PublicKey, new byte[RecordCipher.KeySize]));

        pair.Regenerate(RandomSource.Secure); // a new generation agrees again
        Assert.True(pair.TryAgree(peer.PublicKey, key));
        pair.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pair.TryAgree(peer.PublicKey, key));
    }

    [Fact]
    public void ADisposedRecordCipherThrowsInsteadOfSealingUnderItsZeroedKey()
    {
        var cipher = new RecordCipher(RandomNumberGenerator.GetBytes(RecordCipher.KeySize));
        byte[] nonce = new byte[12];
        byte[] packet = new byte[64 + RecordCipher.TagSize];
        cipher.Seal(nonce, new byte[64], packet.AsSpan(0, 64), packet.AsSpan(64));

        cipher.Dispose();

        foreach (int size in new[] { 64, RecordCipher.SmallRecordLimit + 1 }) // both implementations
        {
            byte[] output = new byte[size + RecordCipher.TagSize];
            Assert.Throws<ObjectDisposedException>(() => cipher.Seal(nonce, new byte[size], output.AsSpan(0, size), output.AsSpan(size)));
            Assert.Throws<ObjectDisposedException>(() => cipher.TryOpen(nonce, output.AsSpan(0, size), output.AsSpan(size), new byte[size]));
            Assert.All(output, b => Assert.Equal(0, b));
        }
    }

    [Fact]
    public void TheEphemeralSecretsAreZeroAndTheHandshakeMaterialGoneOnceTheHandshakeIsDone()
    {
        using SessionPair pair = SessionPair.Create(OssuaryRole.AuthenticatedServer);
        OssuarySession[] sides = [pair.Client, pair.Server];
        byte[][] secrets = [.. sides.Select(side => EphemeralSecret(SessionEphemeral(side)))];
        Assert.All(secrets, secret => Assert.Contains(secret, b => b != 0));

        pair.Pump.Run();

        Assert.True(pair.Client.IsEstablished && pair.Server.IsEstablished, "the handshake did not complete");
        Assert.All(secrets, secret => Assert.All(secret, b => Assert.Equal(0, b)));
        foreach (OssuarySession side in sides)
        {
            // An idle connection keeps nothing of the handshake but the session key (and its own challenge, which survives resets).
            foreach (string field in new[] { "_ephemeral", "_remoteChallenge", "_remoteEphemeralKey" })
            {
                Assert.Null(typeof(OssuarySession).GetField(field, InstanceFields)!.GetValue(side));
            }
        }

        // The session key lives on in the cipher: data still flows both ways.
        Assert.Equal(OssuaryReceiveStatus.Data, SessionPair.Receive(pair.Server, SessionPair.DataPacket(pair.Client, "up"u8), out byte[] up).Status);
        Assert.Equal(OssuaryReceiveStatus.Data, SessionPair.Receive(pair.Client, SessionPair.DataPacket(pair.Server, "down"u8), out byte[] down).Status);
        Assert.Equal("up"u8.ToArray(), up);
        Assert.Equal("down"u8.ToArray(), down);
    }

    [Theory]
    [InlineData("the peer's Disconnect")]
    [InlineData("its own Disconnect")]
    [InlineData("the fifth reset")]
    public void ASessionThatEndsDuringTheHandshakeZeroesItsEphemeralSecretAtOnce(string ending)
    {
        // The client has sent its ClientHandshake and waits: its secret is live until the key agreement.
        using var client = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.Client });
        SessionPair.NextPacket(client);
        byte[] secret = EphemeralSecret(SessionEphemeral(client));
        Assert.Contains(secret, b => b != 0);

        switch (ending)
        {
            case "the peer's Disconnect":
                SessionPair.Receive(client, Wire.Control(Wire.Disconnect, error: true));
                break;
            case "its own Disconnect":
                client.Disconnect(error: false);
                break;
            default:
                // A packet with a gap in its msg_id makes the client reset, and the peer's Reset starts it over:
                // each reset draws a new secret into the same array, and the fifth ends the session.
                for (int reset = 1; reset <= OssuarySession.MaxResets; reset++)
                {
                    using var stranger = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.Client });
                    SessionPair.Receive(client, Wire.WithMessageId(SessionPair.NextPacket(stranger), 7));
                    SessionPair.NextPacket(client);
                    if (reset < OssuarySession.MaxResets)
                    {
                        SessionPair.Receive(client, Wire.Control(Wire.Reset, error: true));
                        SessionPair.NextPacket(client);
                    }
                }

                break;
        }

        // Closed (or closing), not disposed: nothing can use the secret again, so nothing may hold it.
        Assert.True(client.State is OssuarySessionState.Closing or OssuarySessionState.Closed, $"the client is {client.State}");
        Assert.All(secret, b => Assert.Equal(0, b));
    }

    [Fact]
    public void DisposingASessionZeroesItsSessionKey()
    {
        using SessionPair pair = SessionPair.Established();
        FieldInfo cipherField = typeof(OssuarySession).GetField("_cipher", InstanceFields)!;
        FieldInfo keyField = Assert.Single(typeof(RecordCipher).GetFields(InstanceFields), f => f.FieldType == typeof(byte[]));
        byte[][] keys = [.. new[] { pair.Client, pair.Server }.Select(side => (byte[])keyField.GetValue(cipherField.GetValue(side)!)!)];
        Assert.Equal(keys[0], keys[1]); // one key serves both directions (PROTOCOL.md)
        Assert.Contains(keys[0], b => b != 0);

        pair.Client.Dispose();
        pair.Server.Dispose();

        Assert.All(keys, key => Assert.All(key, b => Assert.Equal(0, b)));
        Assert.Null(cipherField.GetValue(pair.Client));
    }

    [Fact]
    public void ASessionFreesTheIdentityItGeneratedForItselfWhenDisposed()
    {
        var session = new OssuarySession(new OssuarySessionOptions { Role = OssuaryRole.UnauthenticatedServer });
        var identity = (OssuaryIdentity)typeof(OssuarySession).GetField("_identity", InstanceFields)!.GetValue(session)!;
        Assert.NotEqual(0, SecretAddress(identity));

        session.Dispose();

        Assert.Equal(0, SecretAddress(identity));
        Assert.All(EphemeralSecret(SessionEphemeral(session)), b => Assert.Equal(0, b));
    }

    [Fact]
    public void AServerFreesTheIdentityItGeneratedOnceStoppedAndItsLastHandshakeIsOver()
    {
        var plans = new ServerPlanSource(new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated }, null, null, "test", null, null);
        var identity = (OssuaryIdentity)typeof(ServerPlanSource).GetField("_generated", InstanceFields)!.GetValue(plans)!;

        // A reload keeps the generated key (clients may have recorded it), and so does letting go of the plan it replaced.
        SharedPlan first = plans.Hold()!;
        typeof(ServerPlanSource).GetMethod("OnOptionsChanged", InstanceFields)!.Invoke(plans,
            [new OssuaryServerOptions { Mode = OssuaryServerMode.Unauthenticated, HandshakeTimeout = TimeSpan.FromSeconds(5) }, false, (Func<bool>)(() => false)]);
        first.Release();
        SharedPlan handshake = plans.Hold()!; // a handshake still under way when the host stops
        Assert.NotSame(first, handshake);
        Assert.Equal(identity.PublicKey, handshake.Plan.LocalPublicKey);
        Assert.NotEqual(0, SecretAddress(identity));

        plans.Dispose();
        Assert.NotEqual(0, SecretAddress(identity)); // that handshake may still sign
        handshake.Release();

        Assert.Equal(0, SecretAddress(identity));
    }

    /// <remarks>
    /// Timing cannot be asserted reliably in a test, so this pins the implementation instead:
    /// OssuaryPublicKey.Equals(OssuaryPublicKey) and Equals(ReadOnlySpan&lt;byte&gt;) call
    /// CryptographicOperations.FixedTimeEquals, which reads every byte whatever the first
    /// difference, and the results agree whether two keys differ in their first or their last byte.
    /// </remarks>
    [Fact]
    public void PublicKeyEqualityIsFixedTimeEqualsOverEveryByte()
    {
        byte[] bytes = RandomNumberGenerator.GetBytes(OssuaryPublicKey.Size);
        var key = new OssuaryPublicKey(bytes);
        byte[] firstDiffers = [.. bytes];
        firstDiffers[0] ^= 0x80;
        byte[] lastDiffers = [.. bytes];
        lastDiffers[^1] ^= 0x01;

        Assert.True(key.Equals(new OssuaryPublicKey([.. bytes])));
        Assert.True(key == new OssuaryPublicKey([.. bytes]));
        Assert.True(key.Equals(bytes.AsSpan()));
        Assert.False(key.Equals(new OssuaryPublicKey(firstDiffers)));
        Assert.False(key.Equals(new OssuaryPublicKey(lastDiffers)));
        Assert.False(key.Equals(firstDiffers.AsSpan()));
        Assert.False(key.Equals(lastDiffers.AsSpan()));
        Assert.False(key.Equals(bytes.AsSpan(0, OssuaryPublicKey.Size - 1))); // a prefix is not the key

        Assert.True(Calls(typeof(OssuaryPublicKey).GetMethod(nameof(OssuaryPublicKey.Equals), [typeof(OssuaryPublicKey)])!, FixedTimeEquals));
        Assert.True(Calls(typeof(OssuaryPublicKey).GetMethod(nameof(OssuaryPublicKey.Equals), [typeof(ReadOnlySpan<byte>)])!, FixedTimeEquals));
        Assert.False(Calls(typeof(OssuaryPublicKey).GetMethod(nameof(OssuaryPublicKey.GetHashCode))!, FixedTimeEquals)); // the scan tells calls apart
    }

    [Fact]
    public Task NoSeedAppearsInLogsExceptionsOrToStringThroughHandshakesAndFailures() => Run(async () =>
    {
        using var serverKey = OssuaryIdentity.Generate();
        using var clientKey = OssuaryIdentity.Generate();
        using var strangerKey = OssuaryIdentity.Generate();
        var seeds = new SecretSeeds();
        seeds.Add("the server", serverKey);
        seeds.Add("the client", clientKey);
        seeds.Add("the stranger", strangerKey);
        var logs = new FakeLoggerProvider();
        await using var server = await OssuaryTestServer.StartEchoAsync(
            o =>
            {
                o.Identity = serverKey;
                o.AuthorizedClientKeys.Add(clientKey.PublicKey);

                // Short, so that the silent peer times out (and is logged) within the test; not so short
                // that the honest round's handshake, under a loaded CI machine and Trace logging of
                // everything, times out too (at 1 s it did once: the client read a truncated connection).
                o.HandshakeTimeout = TimeSpan.FromSeconds(5);
            },
            KestrelLoad.LogEverythingTo(logs, LogLevel.Trace));
        var texts = new List<(string Where, string? Text)>();
        var exceptions = new List<(string Where, Exception Exception)>();

        // A silent peer, left to time out while the others run.
        using Socket silent = await RawPeer.ConnectAsync(server.EndPoint);
        Task<PeerClose> silentClosed = RawPeer.WaitForCloseAsync(silent, TimeSpan.FromSeconds(15));

        // An honest round: its connection, features and keys, stringified.
        OssuaryClientOptions honest = ClientOptions(clientKey, serverKey.PublicKey);
        await using (OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, honest).Within())
        {
            await connection.Transport.Output.WriteAsync("secret-free"u8.ToArray());
            await PipeReads.ReadExactlyAsync(connection.Transport.Input, 11).Within();
            texts.Add(("the client connection", connection.ToString()));
            texts.Add(("the client's feature", connection.Ossuary.ToString()));
            texts.Add(("the client's transport", connection.Transport.ToString()));
            texts.Add(("the client's remote key", connection.Ossuary.RemotePublicKey?.ToString()));
        }

        // Failures: a key the server does not admit, an anonymous client, a server the client does
        // not trust, a trust callback that throws, garbage, and a seed typed one character short.
        exceptions.Add(("a stranger's connection", await FailureOfAsync(server, ClientOptions(strangerKey, serverKey.PublicKey))));
        exceptions.Add(("an anonymous connection", await FailureOfAsync(server, ClientOptions(null, serverKey.PublicKey))));
        OssuaryException untrusted = Assert.IsType<OssuaryException>(await FailureOfAsync(server, ClientOptions(clientKey, StrangerKey.Value)));
        Assert.Equal(OssuaryErrorReason.UntrustedServer, untrusted.Reason);
        Assert.Contains(serverKey.PublicKey.ToString(), untrusted.Message); // public keys may appear, and do
        exceptions.Add(("an untrusted server's connection", untrusted));
        OssuaryClientOptions throwing = ClientOptions(clientKey, null);
        throwing.TrustServer = (_, _) => throw new InvalidOperationException("the trust store is unreadable");
        exceptions.Add(("a throwing trust callback's connection", await FailureOfAsync(server, throwing)));
        using (Socket garbage = await RawPeer.ConnectAsync(server.EndPoint))
        {
            await RawPeer.TrySendAsync(garbage, RandomNumberGenerator.GetBytes(2048));
            await RawPeer.WaitForCloseAsync(garbage, TimeSpan.FromSeconds(15));
        }

        char[] seedHex = new char[64];
        Assert.True(clientKey.TryFormatSeedHex(seedHex, out _));
        exceptions.Add(("ParseSeedHex of a seed one character short", Assert.Throws<FormatException>(() => OssuaryIdentity.ParseSeedHex(seedHex.AsSpan(0, 63)))));
        exceptions.Add(("ParseSeedHex of a seed with a bad character", Assert.Throws<FormatException>(() => OssuaryIdentity.ParseSeedHex(new string(seedHex, 0, 63) + "g"))));
        exceptions.Add(("FromSeed of 31 bytes of a seed", Assert.Throws<OssuaryException>(() =>
        {
            byte[] shortSeed = new byte[OssuaryIdentity.SeedSize];
            clientKey.CopySeedTo(shortSeed);
            return OssuaryIdentity.FromSeed(shortSeed.AsSpan(0, 31));
        })));

        Assert.True((await silentClosed.Within()).Closed);
        await HostilePeerTests.WaitForAsync(() => logs.Collector.GetSnapshot().Any(r => r.Category == "Ossuary.Pipelines.Server" && r.Id.Id == 4));

        foreach (OssuaryIdentity identity in new[] { serverKey, clientKey, strangerKey })
        {
            texts.Add(("an identity's ToString()", identity.ToString()));
            texts.Add(("a public key's ToString()", identity.PublicKey.ToString()));
        }

        foreach (IOssuaryConnectionFeature? feature in server.Log.Features)
        {
            texts.Add(("the server's feature", feature?.ToString()));
            texts.Add(("the server's view of the client key", feature?.RemotePublicKey?.ToString()));
        }

        foreach ((string where, Exception exception) in exceptions)
        {
            texts.Add((where + ": message", exception.Message));
            texts.Add((where + ": ToString()", exception.ToString()));
        }

        IReadOnlyList<FakeLogRecord> records = logs.Collector.GetSnapshot();
        foreach (FakeLogRecord record in records)
        {
            string where = $"a log line ({record.Category}, {record.Id})";
            texts.Add((where, record.Message));
            texts.Add((where + " exception", record.Exception?.ToString()));
            texts.Add((where + " as a whole", record.ToString()));
            foreach (KeyValuePair<string, string?> pair in record.StructuredState ?? [])
            {
                texts.Add((where + " field " + pair.Key, pair.Value));
            }
        }

        // The net caught what it should: failures of every kind, and the client's public key in a log line.
        Assert.Contains(records, r => r.Id.Id == 3 && r.Category == "Ossuary.Pipelines.Server");
        Assert.Contains(records, r => r.Message.Contains(clientKey.PublicKey.ToString(), StringComparison.Ordinal));
        Assert.All(exceptions, e => Assert.NotNull(e.Exception));
        Assert.Equal(3, seeds.Count);

        foreach ((string where, string? text) in texts)
        {
            seeds.AssertNotIn(text, where);
        }
    });

    private static MethodInfo FixedTimeEquals { get; } =
        typeof(CryptographicOperations).GetMethod(nameof(CryptographicOperations.FixedTimeEquals), [typeof(ReadOnlySpan<byte>), typeof(ReadOnlySpan<byte>)])!;

    private static OssuaryClientOptions ClientOptions(OssuaryIdentity? identity, OssuaryPublicKey? trusted)
    {
        var options = new OssuaryClientOptions { Identity = identity };
        if (trusted is not null)
        {
            options.TrustedServerKeys.Add(trusted);
        }

        return options;
    }

    /// <summary>Connects and reads to the end; returns whatever failed along the way (the handshake, or the read after it).</summary>
    private static async Task<Exception> FailureOfAsync(OssuaryTestServer server, OssuaryClientOptions options)
    {
        try
        {
            await using OssuaryClientConnection connection = await OssuaryClient.ConnectAsync(server.EndPoint, options).Within();
            await PipeReads.ReadToEndAsync(connection.Transport.Input);
        }
        catch (Exception ex) when (ex is OssuaryException or InvalidOperationException)
        {
            return ex;
        }

        throw new Xunit.Sdk.XunitException("the connection was expected to fail, and ended cleanly");
    }

    private static EphemeralKeyPair SessionEphemeral(OssuarySession session) =>
        (EphemeralKeyPair)typeof(OssuarySession).GetField("_ephemeral", InstanceFields)!.GetValue(session)!;

    private static byte[] EphemeralSecret(EphemeralKeyPair pair) =>
        (byte[])typeof(EphemeralKeyPair).GetField("_secret", InstanceFields)!.GetValue(pair)!;

    /// <summary>Where the identity's secret key lives in unmanaged memory; zero once it has been freed.</summary>
    private static nint SecretAddress(OssuaryIdentity identity) =>
        ((SecretKeyMemory)Assert.Single(typeof(OssuaryIdentity).GetFields(InstanceFields), f => f.FieldType == typeof(SecretKeyMemory)).GetValue(identity)!).Address;

    /// <summary>Walks every managed object reachable from <paramref name="root"/>'s fields: no byte array may hold 8 bytes of the secret in a row.</summary>
    private static void AssertNoManagedCopy(object root, byte[] secret)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object>([root]);
        while (pending.TryPop(out object? current))
        {
            if (!seen.Add(current) || current is Type or Delegate or Pointer)
            {
                continue;
            }

            if (current is byte[] bytes)
            {
                for (int start = 0; start + 8 <= secret.Length; start++)
                {
                    Assert.True(bytes.AsSpan().IndexOf(secret.AsSpan(start, 8)) < 0, $"a managed byte[{bytes.Length}] holds part of the secret");
                }

                continue;
            }

            if (current is IEnumerable items and not string)
            {
                foreach (object? item in items)
                {
                    if (item is not null)
                    {
                        pending.Push(item);
                    }
                }
            }

            for (Type? type = current.GetType(); type is not null; type = type.BaseType)
            {
                foreach (FieldInfo field in type.GetFields(InstanceFields | BindingFlags.DeclaredOnly))
                {
                    if (!field.FieldType.IsPointer && !field.FieldType.IsByRefLike && field.GetValue(current) is object value && !value.GetType().IsPrimitive)
                    {
                        pending.Push(value);
                    }
                }
            }
        }

        Assert.True(seen.Count > 1, "the walk found nothing under the identity");
    }

    /// <summary>Whether <paramref name="method"/>'s IL calls <paramref name="callee"/> (a scan of call and callvirt tokens).</summary>
    private static bool Calls(MethodInfo method, MethodInfo callee)
    {
        byte[] il = method.GetMethodBody()!.GetILAsByteArray()!;
        for (int i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] is 0x28 or 0x6F) // call, callvirt
            {
                try
                {
                    if (method.Module.ResolveMethod(BitConverter.ToInt32(il, i + 1)) is MethodInfo called && called == callee)
                    {
                        return true;
                    }
                }
                catch (ArgumentException)
                {
                    // Not a method token: the byte was an operand of another instruction.
                }
            }
        }

        return false;
    }

    private static Task Run(Func<Task> test) => test().Within();
}

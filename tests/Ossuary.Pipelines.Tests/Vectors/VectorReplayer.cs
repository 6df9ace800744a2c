using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Vectors;

/// <summary>
/// Replays a recorded session call by call against our two sessions, seeded with the recorded
/// random draws. Receivers are always fed the recorded packets; in produce mode every packet our
/// sides write must equal the recorded one, in accept mode every call must reach the recorded result.
/// </summary>
internal sealed partial class VectorReplayer
{
    private readonly TestVector _vector;
    private readonly bool _checkProduced;
    private readonly bool _checkOutcomes;
    private readonly Dictionary<string, OssuarySession> _sessions = [];
    private readonly Dictionary<string, List<byte[]>> _received = new() { ["client"] = [], ["server"] = [] };
    private readonly Dictionary<string, bool> _reportedEstablished = new() { ["client"] = false, ["server"] = false };
    private readonly Dictionary<string, IncrementalHash> _streams = new()
    {
        ["client"] = IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        ["server"] = IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
    };

    private readonly Dictionary<string, long> _streamBytes = new() { ["client"] = 0, ["server"] = 0 };
    private readonly BulkPlan? _bulk;

    private VectorReplayer(TestVector vector, bool checkProduced, bool checkOutcomes)
    {
        _vector = vector;
        _checkProduced = checkProduced;
        _checkOutcomes = checkOutcomes;
        _sessions["client"] = CreateSession("client");
        _sessions["server"] = CreateSession("server");
        if (vector.IsBulk)
        {
            _bulk = new BulkPlan(vector.Root.GetProperty("bulk"));
        }
    }

    public static void Produce(TestVector vector) => new VectorReplayer(vector, checkProduced: true, checkOutcomes: false).Run();

    public static void Accept(TestVector vector) => new VectorReplayer(vector, checkProduced: false, checkOutcomes: true).Run();

    private OssuarySession CreateSession(string side) =>
        new(OptionsFor(_vector, side), new ScriptedRandomSource(_vector.DrawsOf(side)));

    /// <summary>The recorded configuration of one side. A configured identity is created here; the caller disposes it.</summary>
    internal static OssuarySessionOptions OptionsFor(TestVector vector, string side)
    {
        JsonElement config = vector.Side(side);
        var options = new OssuarySessionOptions
        {
            Role = config.GetProperty("connection_type").GetString() switch
            {
                "Client" => OssuaryRole.Client,
                "AuthenticatedServer" => OssuaryRole.AuthenticatedServer,
                "UnauthenticatedServer" => OssuaryRole.UnauthenticatedServer,
                var other => throw new InvalidDataException($"{vector.Name}: unknown connection type {other}."),
            },
            // Recordings of the original include its five-reset refusal; replay that behaviour.
            RefuseUnauthorizedClientsAtOnce = false,
        };

        if (config.GetProperty("auth_secret_source").GetString() == "configured")
        {
            options.Identity = OssuaryIdentity.FromSeed(Convert.FromHexString(config.GetProperty("auth_secret_seed").GetString()!));
        }

        foreach (JsonElement key in config.GetProperty("authorized_keys").EnumerateArray())
        {
            options.AuthorizedKeys.Add(OssuaryPublicKey.Parse(key.GetString()!));
        }

        return options;
    }

    private void Run()
    {
        foreach (VectorEvent e in _vector.Events)
        {
            Replay(e);
        }

        _bulk?.Finish(this);
        CheckEnd("client");
        CheckEnd("server");
    }

    private void Replay(VectorEvent e)
    {
        OssuarySession session = _sessions[e.Side];
        string context = $"{_vector.Name}: {e}";
        switch (e.Call)
        {
            case "send_handshake":
                var written = new ArrayBufferWriter<byte>();
                int count = session.WriteHandshake(written);
                if (e.Packet is int sent)
                {
                    Produced(e.Side, sent, written.WrittenSpan, context);
                }
                else
                {
                    // Bytes the original did not write are still on our stream: the hash counts them.
                    Hash(e.Side, written.WrittenSpan);
                    if (_checkOutcomes)
                    {
                        Assert.True(count == 0, $"{context}: wrote {count} bytes where the original wrote none");
                    }
                }

                break;
            case "send_data":
                VectorPacket packet = _vector.Packet(e.Packet ?? throw new InvalidDataException(context));
                _bulk?.CatchUp(this, e.Side, packet.DataIndex);
                SendData(e.Side, packet.Plaintext ?? throw new InvalidDataException($"{context}: no plaintext"), packet, context);
                break;
            case "recv_handshake":
            case "recv_data":
                Receive(e.Side, _vector.Packet(e.Packet ?? throw new InvalidDataException(context)).Bytes, e, context);
                break;
            case "handshake_done":
                CheckHandshakeDone(e.Side, e.Result, context);
                break;
            case "add_authorized_key":
                session.AddAuthorizedKey(KeyToTrust(e.Side));
                break;
            case "disconnect(false)":
                session.Disconnect(error: false);
                break;
            case "disconnect(true)":
                session.Disconnect(error: true);
                break;
            default:
                throw new InvalidDataException($"{context}: the replayer does not know the call '{e.Call}'.");
        }
    }

    internal void SendData(string side, byte[] plaintext, VectorPacket? recorded, string context)
    {
        var written = new ArrayBufferWriter<byte>();
        _sessions[side].WriteData(plaintext, written);
        if (recorded is not null)
        {
            Produced(side, recorded.Index, written.WrittenSpan, context);
        }
        else
        {
            Hash(side, written.WrittenSpan);
        }
    }

    private void Produced(string side, int index, ReadOnlySpan<byte> written, string context)
    {
        VectorPacket recorded = _vector.Packet(index);

        // What we wrote, not the recording: the stream's hash must be able to fail on our bytes.
        Hash(side, recorded.Masked(written));
        if (_checkProduced)
        {
            Assert.True(recorded.Masked(recorded.Bytes).AsSpan().SequenceEqual(recorded.Masked(written)),
                $"{context}: packet {index} differs.\nexpected {Convert.ToHexStringLower(recorded.Bytes)}\nactual   {Convert.ToHexStringLower(written)}");
        }
    }

    private void Hash(string side, ReadOnlySpan<byte> bytes)
    {
        _streams[side].AppendData(bytes);
        _streamBytes[side] += bytes.Length;
    }

    internal OssuaryReceiveResult Receive(string side, byte[] packet, VectorEvent? e, string context)
    {
        var plaintext = new ArrayBufferWriter<byte>();
        var input = new ReadOnlySequence<byte>(packet);
        OssuaryReceiveResult result = _sessions[side].Receive(input, plaintext, out SequencePosition consumed, out _);
        if (result.Status == OssuaryReceiveStatus.Data)
        {
            _received[side].Add(plaintext.WrittenSpan.ToArray());
        }

        if (_checkOutcomes && e is not null)
        {
            CheckReceive(result, input.GetOffset(consumed), plaintext.WrittenSpan, e, context);
        }

        return result;
    }

    private static void CheckReceive(OssuaryReceiveResult result, long consumed, ReadOnlySpan<byte> plaintext, VectorEvent e, string context)
    {
        Match dataOk = DataOk().Match(e.Result);
        Match handshakeOk = HandshakeOk().Match(e.Result);
        if (dataOk.Success)
        {
            Assert.True(result.Status == OssuaryReceiveStatus.Data, $"{context}: got {result}");
            Assert.Equal(long.Parse(dataOk.Groups[1].Value), consumed);
            Assert.Equal(int.Parse(dataOk.Groups[2].Value), plaintext.Length);
        }
        else if (handshakeOk.Success)
        {
            Assert.True(result.Status is OssuaryReceiveStatus.Handshake or OssuaryReceiveStatus.UntrustedServer, $"{context}: got {result}");
            Assert.Equal(long.Parse(handshakeOk.Groups[1].Value), consumed);
        }
        else
        {
            (OssuaryReceiveStatus status, OssuaryErrorReason? reason) = ExpectedFailure(e.Result, context);
            Assert.True(result.Status == status, $"{context}: got {result}");
            if (reason is not null)
            {
                Assert.True(result.Reason == reason, $"{context}: got {result}");
            }
        }
    }

    /// <summary>Maps the original's error, as printed, to the status and reason our session reports.</summary>
    private static (OssuaryReceiveStatus Status, OssuaryErrorReason? Reason) ExpectedFailure(string result, string context)
    {
        Match error = ErrorName().Match(result);
        Assert.True(error.Success, $"{context}: cannot read the recorded result");
        return error.Groups[1].Value switch
        {
            "ConnectionReset" => (OssuaryReceiveStatus.Reset, OssuaryErrorReason.ConnectionReset),
            "ConnectionClosed" => (OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionClosed),
            "ConnectionFailed" => (OssuaryReceiveStatus.Closed, OssuaryErrorReason.ConnectionFailed),
            "DecryptionFailed" => (OssuaryReceiveStatus.Reset, OssuaryErrorReason.DecryptionFailed),
            "InvalidSignature" => (OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidSignature),
            "InvalidKey" => (OssuaryReceiveStatus.Reset, OssuaryErrorReason.InvalidKey),
            "WrongProtocolVersion" => (OssuaryReceiveStatus.Reset, OssuaryErrorReason.WrongProtocolVersion),
            "InvalidPacket" when result.Contains("Message ID", StringComparison.Ordinal) => (OssuaryReceiveStatus.Reset, OssuaryErrorReason.MessageIdMismatch),
            "InvalidPacket" when result.Contains("Oversized", StringComparison.Ordinal) => (OssuaryReceiveStatus.Closed, OssuaryErrorReason.OversizedPacket),
            "InvalidPacket" => (OssuaryReceiveStatus.Reset, null),
            var other => throw new InvalidDataException($"{context}: the replayer does not know the error '{other}'."),
        };
    }

    private void CheckHandshakeDone(string side, string result, string context)
    {
        OssuarySession session = _sessions[side];
        if (!_checkOutcomes)
        {
            return;
        }

        Match untrusted = UntrustedServer().Match(result);
        if (result == "Ok(true)")
        {
            Assert.True(session.IsEstablished, $"{context}: session is {session.State}");
            if (!_reportedEstablished[side])
            {
                _reportedEstablished[side] = true;
                string expected = _vector.Side(side).GetProperty("remote_public_key_when_established").GetString()!;
                Assert.Equal(expected, session.RemotePublicKey?.ToString());
            }
        }
        else if (result == "Ok(false)")
        {
            Assert.False(session.IsEstablished, context);
        }
        else if (untrusted.Success)
        {
            Assert.Equal(OssuarySessionState.AwaitingTrust, session.State);
            Assert.Equal(untrusted.Groups[1].Value, session.RemotePublicKey?.ToString());
        }
        else
        {
            (OssuaryReceiveStatus status, OssuaryErrorReason? reason) = ExpectedFailure(result, context);
            if (status == OssuaryReceiveStatus.Closed)
            {
                Assert.True(session.State is OssuarySessionState.Closing or OssuarySessionState.Closed, $"{context}: session is {session.State}");
            }

            if (reason is not null)
            {
                Assert.Equal(reason, session.LastError);
            }
        }
    }

    private OssuaryPublicKey KeyToTrust(string side)
    {
        JsonElement raised = _vector.Side(side).GetProperty("untrusted_server_keys_raised");
        return raised.GetArrayLength() > 0
            ? OssuaryPublicKey.Parse(raised[raised.GetArrayLength() - 1].GetString()!)
            : _sessions[side].RemotePublicKey ?? throw new InvalidDataException($"{_vector.Name}: no key to trust.");
    }

    private void CheckEnd(string side)
    {
        JsonElement config = _vector.Side(side);
        string status = config.GetProperty("final_status").GetString()!;
        CheckHandshakeDone(side, status.StartsWith("terminal: ", StringComparison.Ordinal)
            ? $"Err({status["terminal: ".Length..]})"
            : status["handshake_done() = ".Length..], $"{_vector.Name}: final status of {side}");

        if (!_checkOutcomes)
        {
            string other = side == "client" ? "server" : "client";
            string stream = $"{side}_to_{other}_stream";
            if (_bulk is null && _vector.Root.TryGetProperty($"{stream}_sha256_unspecified_zeroed", out JsonElement hash))
            {
                Assert.Equal(_vector.Root.GetProperty($"{stream}_bytes").GetInt64(), _streamBytes[side]);
                Assert.Equal(hash.GetString(), Convert.ToHexStringLower(_streams[side].GetCurrentHash()));
            }
            else if (_bulk is not null && _vector.Root.GetProperty("bulk").TryGetProperty($"{stream}_sha256", out JsonElement bulkHash))
            {
                Assert.Equal(_vector.Root.GetProperty("bulk").GetProperty($"{stream}_bytes").GetInt64(), _streamBytes[side]);
                Assert.Equal(bulkHash.GetString(), Convert.ToHexStringLower(_streams[side].GetCurrentHash()));
            }

            return;
        }

        if (config.TryGetProperty("messages_received", out JsonElement received) && received.ValueKind == JsonValueKind.Array)
        {
            string[] expected = [.. received.EnumerateArray().Select(m => $"{m.GetProperty("len").GetInt32()}:{m.GetProperty("sha256").GetString()}")];
            string[] actual = [.. _received[side].Select(m => $"{m.Length}:{Convert.ToHexStringLower(SHA256.HashData(m))}")];
            Assert.Equal(expected, actual);
        }

        Assert.Equal(config.GetProperty("messages_received_count").GetInt32(), _received[side].Count);
    }

    /// <summary>Regenerates the data packets a bulk vector leaves out, from its plaintext rule.</summary>
    private sealed class BulkPlan
    {
        private readonly int _messages;
        private int _next;

        public BulkPlan(JsonElement bulk)
        {
            string rule = bulk.GetProperty("plaintext_rule_id").GetString()!;
            if (rule != "u32be_index")
            {
                throw new InvalidDataException($"Unknown bulk plaintext rule '{rule}': cannot replay.");
            }

            _messages = bulk.GetProperty("client_data_messages").GetInt32();
        }

        public static byte[] Message(int index)
        {
            byte[] message = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(message, (uint)index);
            return message;
        }

        /// <summary>Sends (and delivers) the left-out client messages that come before data packet <paramref name="index"/>.</summary>
        public void CatchUp(VectorReplayer replayer, string side, int? index)
        {
            if (side != "client" || index is null)
            {
                return;
            }

            SendUpTo(replayer, index.Value);
            _next = index.Value + 1;
        }

        public void Finish(VectorReplayer replayer) => SendUpTo(replayer, _messages);

        private void SendUpTo(VectorReplayer replayer, int end)
        {
            for (; _next < end; _next++)
            {
                var written = new ArrayBufferWriter<byte>();
                replayer._sessions["client"].WriteData(Message(_next), written);
                replayer.Hash("client", written.WrittenSpan);
                OssuaryReceiveResult result = replayer.Receive("server", written.WrittenSpan.ToArray(), null, "bulk");
                Assert.Equal(OssuaryReceiveStatus.Data, result.Status);
            }
        }
    }

    [GeneratedRegex(@"^Ok\(\((\d+), (\d+)\)\)$")]
    private static partial Regex DataOk();

    [GeneratedRegex(@"^Ok\((\d+)\)$")]
    private static partial Regex HandshakeOk();

    [GeneratedRegex(@"OssuaryError::(\w+)")]
    private static partial Regex ErrorName();

    [GeneratedRegex(@"UntrustedServer\(([0-9a-f]{64})\)")]
    private static partial Regex UntrustedServer();
}

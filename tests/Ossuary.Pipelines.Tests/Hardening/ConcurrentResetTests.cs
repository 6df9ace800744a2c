using System.Buffers;
using System.Diagnostics;
using Ossuary.Pipelines.Protocol;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Hardening;

/// <summary>
/// The session's threading promise under attack: one thread seals records while another receives
/// a cleartext Reset an on-path attacker injected. No record may leave sealed under a zeroed key,
/// and the writer may see only clean exceptions.
/// </summary>
[Collection(HardeningCollection.Name)] // alone: a busy machine starves the receiving thread, and the Reset lands on nothing
public class ConcurrentResetTests
{
    private const int Trials = 1500;

    /// <summary>
    /// The writer's limit per trial. The Reset is aimed at its first eight records, but on a loaded
    /// machine the receiving thread can lose the CPU for a while: a writer at the limit waits for the
    /// Reset and then writes once more, which must fail cleanly too.
    /// </summary>
    private const int MaxRecordsPerTrial = 256;

    // The trials past the first MinTrials stop at the budget (a trial takes about 1 ms here); the
    // first ones always run, so that a slow machine runs fewer trials instead of failing the test.
    private const int MinTrials = 100;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(20);

    [Fact]
    public void AnInjectedResetNeverLetsARecordOutUnderAZeroKeyNorAnUncleanException()
    {
        byte[] message = new byte[64];
        Random.Shared.NextBytes(message);
        byte[] reset = Wire.Control(Wire.Reset, error: true);
        int zeroKeyRecords = 0;
        int records = 0;
        int interrupted = 0;
        var unclean = new List<Exception>();
        using var zeroKey = new ZeroKeyRecords();
        var clock = Stopwatch.StartNew();
        int trials = 0;
        for (; trials < Trials && (trials < MinTrials || clock.Elapsed < Budget); trials++)
        {
            using SessionPair pair = SessionPair.Established();
            byte[] clientHandshake = pair.Pump.Wire.First(p => Wire.Type(p.Packet) == Wire.ClientHandshake).Packet;
            var produced = new List<byte[]>();
            int sealedCount = 0;
            bool stop = false;
            Exception? failure = null;
            var writer = new Thread(() =>
            {
                var output = new ArrayBufferWriter<byte>(message.Length + OssuarySession.DataPacketOverhead);
                try
                {
                    while (!Volatile.Read(ref stop))
                    {
                        if (produced.Count == MaxRecordsPerTrial)
                        {
                            Thread.Yield();
                            continue;
                        }

                        output.ResetWrittenCount();
                        pair.Client.WriteData(message, output);
                        produced.Add(output.WrittenSpan.ToArray());
                        Interlocked.Increment(ref sealedCount);

                        // Offers the core between records: where the two threads share one (the
                        // machine's other core busy elsewhere), the receiving thread ran only once
                        // this one was parked at the limit, a few hundred microseconds in, so no
                        // Reset ever landed mid-write. With a core each, this returns at once.
                        Thread.Yield();
                    }

                    output.ResetWrittenCount();
                    pair.Client.WriteData(message, output);
                    failure = new InvalidOperationException("WriteData succeeded after the Reset was received");
                }
                catch (Exception ex) when (ex is OssuaryException or InvalidOperationException)
                {
                    // Clean: the session was no longer established.
                    if (produced.Count < MaxRecordsPerTrial)
                    {
                        Interlocked.Increment(ref interrupted);
                    }
                }
                catch (Exception ex)
                {
                    failure = ex;
                }
            });
            writer.Start();

            // Land the Reset while the writer is busy sealing.
            int after = 1 + (trials % 8);
            SpinWait spin = default;
            while (Volatile.Read(ref sealedCount) < after && writer.IsAlive)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }

            SessionPair.Receive(pair.Client, reset);
            Volatile.Write(ref stop, true);
            Assert.True(writer.Join(TestTimeout.Default), "the writer thread hung");
            if (failure is not null)
            {
                unclean.Add(failure);
            }

            byte[] nextHandshake = SessionPair.NextPacket(pair.Client);
            records += produced.Count;
            zeroKeyRecords += produced.Count(r => zeroKey.OpensUnderZeroKey(r, clientHandshake, nextHandshake));
        }

        Assert.True(interrupted > 0, "the Reset never landed while the writer was sealing: the test exercised nothing");
        Assert.True(zeroKeyRecords == 0 && unclean.Count == 0,
            $"In {trials} trials, {zeroKeyRecords} of {records} records were sealed under an all-zero key, and {unclean.Count} unclean exceptions escaped WriteData; the first: {unclean.FirstOrDefault()}");
    }
}

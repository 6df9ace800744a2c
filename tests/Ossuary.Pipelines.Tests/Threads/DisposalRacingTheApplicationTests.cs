using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using Ossuary.Pipelines.Tests.Hardening;
using Ossuary.Pipelines.Tests.Support;
using Ossuary.Pipelines.Tests.Transport;

namespace Ossuary.Pipelines.Tests.Threads;

/// <summary>
/// DisposeAsync on one thread while the application reads on a second and writes on a third, on
/// real threads, landing at a different point of their calls each round (SECURITY.md's thread-safety
/// table). Whatever the interleaving: a buffer the application holds (a read's, before AdvanceTo; a
/// write's memory, before Advance) keeps its bytes, neither zeroed nor reused by the pool; a write
/// ends with a completed flush or InvalidOperationException ("writing is not allowed after writer was
/// completed"), never another exception; a read ends cleanly or with ConnectionFailed (the server's
/// data disposal left undelivered); disposal ends; and nothing is left unobserved.
/// </summary>
/// <remarks>Alone (the hardening collection): the pool the plaintext pipes share is then used by this test only.</remarks>
[Collection(HardeningCollection.Name)]
public sealed class DisposalRacingTheApplicationTests
{
    private const int Rounds = 1500;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30); // against a hang only

    [Fact]
    public async Task DisposalFromAnotherThreadNeverTakesMemoryFromUnderTheApplicationNorHangs()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers(); // what earlier tests left unobserved is not this test's
        var unobserved = new ConcurrentQueue<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) => unobserved.Enqueue(e.Exception);
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            for (int round = 0; round < Rounds; round++)
            {
                await RunRoundAsync(round);
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

        Assert.True(unobserved.IsEmpty, $"(d) unobserved: {string.Join(Environment.NewLine, unobserved)}");
    }

    private static async Task RunRoundAsync(int round)
    {
        // Each direction its own non-zero byte: a block zeroed, or rented again by the other direction, shows.
        byte down = (byte)Random.Shared.Next(1, 128);
        byte up = (byte)(down + 128);
        var failures = new ConcurrentQueue<string>();

        LinkedPipes link = LinkedPipes.Transparent(out Task relays);
        InMemoryPair pair = await InMemoryPair.ConnectAsync(link);
        Task serverSends = SendUntilClosedAsync(pair.Server.Output, down, failures);
        Task serverDrains = DrainUntilClosedAsync(pair.Server.Input, up, failures);

        using var reading = new CountdownEvent(2);
        Thread reader = StartThread(() => ReadAndHold(pair.Client.Input, down, reading, failures));
        Thread writer = StartThread(() => FillAndAdvance(pair.Client.Output, up, reading, failures));
        Assert.True(reading.Wait(Deadline), $"Round {round}: the application's threads never got going");
        SpinRandomly(20_000);

        Task disposal = Task.Run(async () => await pair.DisposeAsync());
        Task done = await Task.WhenAny(disposal, Task.Delay(Deadline));
        Assert.True(done == disposal, $"(c) Round {round}: DisposeAsync did not end within {Deadline.TotalSeconds:0} s");
        await disposal; // its exception, if it threw

        Assert.True(reader.Join(Deadline), $"(c) Round {round}: the reading thread never ended");
        Assert.True(writer.Join(Deadline), $"(c) Round {round}: the writing thread never ended");
        await Task.WhenAll(serverSends, serverDrains, relays).Within(Deadline);
        Assert.True(failures.IsEmpty, $"Round {round}: {string.Join(Environment.NewLine, failures)}");
    }

    /// <summary>Reads, holding each buffer a while and checking that its bytes stay the sender's, until the input ends.</summary>
    private static void ReadAndHold(PipeReader input, byte expected, CountdownEvent started, ConcurrentQueue<string> failures)
    {
        bool signalled = false;
        try
        {
            while (true)
            {
                ReadResult read = input.ReadAsync().AsTask().GetAwaiter().GetResult();
                ReadOnlySequence<byte> held = read.Buffer;
                if (!IsAll(held, expected))
                {
                    failures.Enqueue("(a) a read's buffer did not hold the bytes sent");
                    return;
                }

                if (!signalled)
                {
                    signalled = true;
                    started.Signal();
                }

                SpinRandomly(4_000);
                if (!IsAll(held, expected))
                {
                    failures.Enqueue("(a) a held read's buffer changed before its AdvanceTo (zeroed or reused)");
                    return;
                }

                // Now all, now part of it: the rest stays held across the next read.
                SequencePosition consumed = Random.Shared.Next(2) == 0 ? held.End : held.GetPosition(held.Length / 2);
                input.AdvanceTo(consumed, held.End);
                if (read.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (InvalidOperationException)
        {
            // The reader was completed between two reads: reading is over.
        }
        catch (OssuaryException ex) when (ex.Reason == OssuaryErrorReason.ConnectionFailed)
        {
            // Disposal completed the output while the server still sent: the input says that data was
            // not delivered (DataAfterOurDisconnectTests covers that report); reading is over.
        }
        catch (Exception ex)
        {
            failures.Enqueue($"(reader) {ex}");
        }
        finally
        {
            if (!signalled)
            {
                started.Signal();
            }
        }
    }

    /// <summary>Fills memory, holds it a while and checks that it still holds what was put there, then advances; flushes now and then.</summary>
    private static void FillAndAdvance(PipeWriter output, byte fill, CountdownEvent started, ConcurrentQueue<string> failures)
    {
        bool signalled = false;
        try
        {
            while (true)
            {
                Memory<byte> memory;
                try
                {
                    memory = output.GetMemory(Random.Shared.Next(1, 8192));
                }
                catch (InvalidOperationException)
                {
                    return; // completed between two writes
                }

                int length = Math.Min(memory.Length, Random.Shared.Next(1, 8192));
                memory.Span[..length].Fill(fill);
                SpinRandomly(4_000);
                if (memory.Span[..length].IndexOfAnyExcept(fill) >= 0)
                {
                    failures.Enqueue("(a) the memory a write was filling changed before its Advance (zeroed or reused)");
                    return;
                }

                try
                {
                    output.Advance(length);
                }
                catch (InvalidOperationException)
                {
                    return;
                }
                catch (Exception ex)
                {
                    failures.Enqueue($"(b) Advance threw {ex}");
                    return;
                }

                if (!signalled)
                {
                    signalled = true;
                    started.Signal();
                }

                if (Random.Shared.Next(4) == 0 && output.FlushAsync().AsTask().GetAwaiter().GetResult().IsCompleted)
                {
                    return;
                }

                SpinRandomly(400);
            }
        }
        catch (InvalidOperationException)
        {
            // A flush after the writer was completed.
        }
        catch (Exception ex)
        {
            failures.Enqueue($"(writer) {ex}");
        }
        finally
        {
            if (!signalled)
            {
                started.Signal();
            }
        }
    }

    private static async Task SendUntilClosedAsync(PipeWriter output, byte fill, ConcurrentQueue<string> failures)
    {
        byte[] chunk = new byte[3000];
        chunk.AsSpan().Fill(fill);
        try
        {
            while (!(await output.WriteAsync(chunk)).IsCompleted)
            {
            }
        }
        catch (InvalidOperationException)
        {
            // The server was disposed between two writes.
        }
        catch (Exception ex)
        {
            failures.Enqueue($"(server writer) {ex}");
        }
    }

    private static async Task DrainUntilClosedAsync(PipeReader input, byte expected, ConcurrentQueue<string> failures)
    {
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync();
                if (!IsAll(read.Buffer, expected))
                {
                    failures.Enqueue("(a) the server received bytes the client never wrote: its write memory changed under it");
                }

                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (InvalidOperationException)
        {
            // The server was disposed between two reads.
        }
        catch (Exception ex) when (ex is OssuaryException)
        {
            // The client went away: not what this test looks at.
        }
        catch (Exception ex)
        {
            failures.Enqueue($"(server reader) {ex}");
        }
    }

    private static bool IsAll(in ReadOnlySequence<byte> buffer, byte value)
    {
        foreach (ReadOnlyMemory<byte> segment in buffer)
        {
            if (segment.Span.IndexOfAnyExcept(value) >= 0)
            {
                return false;
            }
        }

        return true;
    }

    private static void SpinRandomly(int most)
    {
        switch (Random.Shared.Next(8))
        {
            case 0:
                break;
            case 1:
                Thread.Yield();
                break;
            default:
                Thread.SpinWait(Random.Shared.Next(most));
                break;
        }
    }

    private static Thread StartThread(Action body)
    {
        var thread = new Thread(() => body()) { IsBackground = true };
        thread.Start();
        return thread;
    }
}

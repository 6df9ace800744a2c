using System.Buffers;
using System.IO.Pipelines;

namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Reading a plaintext <see cref="PipeReader"/> the ways the tests need.</summary>
internal static class PipeReads
{
    /// <summary>Reads exactly <paramref name="count"/> bytes, failing if the input ends first.</summary>
    public static async Task<byte[]> ReadExactlyAsync(PipeReader reader, int count)
    {
        while (true)
        {
            ReadResult read = await reader.ReadAsync();
            if (read.Buffer.Length >= count)
            {
                byte[] result = read.Buffer.Slice(0, count).ToArray();
                reader.AdvanceTo(read.Buffer.GetPosition(count));
                return result;
            }

            Assert.False(read.IsCompleted, $"the stream ended after {read.Buffer.Length} of {count} bytes");
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    /// <summary>
    /// Waits until the input holds <paramref name="count"/> bytes, examining none of them: its writer
    /// (the inbound loop) then waits for room once they reach the pipe's pause threshold. A read that
    /// examined them would let it go on: a pipe counts examined bytes as taken.
    /// </summary>
    public static Task WaitUntilHoldsAsync(PipeReader input, long count) => Task.Run(async () =>
    {
        while (true)
        {
            if (input.TryRead(out ReadResult read))
            {
                bool holds = read.Buffer.Length >= count;
                input.AdvanceTo(read.Buffer.Start);
                if (holds)
                {
                    return;
                }
            }

            await Task.Delay(10);
        }
    }).Within();

    /// <summary>Reads until the input completes and returns everything; throws what the input throws.</summary>
    public static async Task<byte[]> ReadToEndAsync(PipeReader input)
    {
        var all = new List<byte>();
        while (true)
        {
            ReadResult read = await input.ReadAsync().AsTask().Within();
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                all.AddRange(segment.ToArray());
            }

            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return [.. all];
            }
        }
    }
}

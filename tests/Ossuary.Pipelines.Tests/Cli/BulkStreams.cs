using System.Security.Cryptography;

namespace Ossuary.Pipelines.Tests.Cli;

/// <summary>
/// Bulk data for the netcat tests: a writer that feeds a process's stdin with pauses (a slow
/// producer) and a stdout sink that counts and hashes with pauses (a slow consumer). The pauses
/// are longer than the tool's --wait in those tests, so an end decided by time would cut the data.
/// </summary>
internal sealed class BulkStreams
{
    private static readonly byte[] Block = RandomNumberGenerator.GetBytes(1024 * 1024);

    /// <summary>The SHA-256 of <paramref name="mebibytes"/> MiB of the writer's data.</summary>
    public static byte[] ExpectedHash(int mebibytes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int i = 0; i < mebibytes; i++)
        {
            hash.AppendData(Block);
        }

        return hash.GetHashAndReset();
    }

    /// <summary>
    /// Writes <paramref name="mebibytes"/> MiB, pausing <paramref name="pause"/> after every
    /// <paramref name="pauseEvery"/> MiB, then closes the stream. Returns the MiB written: fewer
    /// when the process stopped reading (it closed the connection early), which the test reports.
    /// </summary>
    public static async Task<int> WriteAsync(Stream stdin, int mebibytes, int pauseEvery, TimeSpan pause)
    {
        int written = 0;
        try
        {
            for (; written < mebibytes; written++)
            {
                await stdin.WriteAsync(Block);
                if ((written + 1) % pauseEvery == 0)
                {
                    await stdin.FlushAsync();
                    await Task.Delay(pause);
                }
            }

            await stdin.FlushAsync();
            stdin.Close();
        }
        catch (IOException)
        {
            // the tool went away before reading everything
        }

        return written;
    }

    /// <summary>A stdout sink: counts and hashes everything, pausing <paramref name="pause"/> after every <paramref name="pauseEvery"/> MiB read.</summary>
    public sealed class Sink(int pauseEvery, TimeSpan pause)
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly TaskCompletionSource _flowing = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Length { get; private set; }

        /// <summary>Completes at the first bytes read (or at the end of the stream, if none came).</summary>
        public Task Flowing => _flowing.Task;

        public byte[] Hash => _hash.GetCurrentHash();

        public async Task ReadAsync(Stream stdout)
        {
            byte[] buffer = new byte[256 * 1024];
            long nextPause = (long)pauseEvery << 20;
            int read;
            while ((read = await stdout.ReadAsync(buffer)) > 0)
            {
                _flowing.TrySetResult();
                _hash.AppendData(buffer, 0, read);
                Length += read;
                if (Length >= nextPause)
                {
                    nextPause += (long)pauseEvery << 20;
                    await Task.Delay(pause);
                }
            }

            _flowing.TrySetResult();
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Ossuary.Pipelines.Tests.Support;

namespace Ossuary.Pipelines.Tests.Interop.Original;

/// <summary>
/// <c>ref-peer</c> of ../shared/interop/libossuary-0.5.2 (the original libossuary 0.5.2 driving
/// a TCP client or server; options in ../shared/interop/ref-peer-src/README.md) as a child
/// process. Its stdout is kept as raw bytes, because it carries the data received (server
/// without <c>--echo</c>, client with <c>--print</c>) between the <c>LISTENING</c> line and the
/// <c>RESULT</c> lines; stderr (its <c>INFO</c> lines) as text. Killed on dispose.
/// </summary>
internal sealed partial class OriginalPeer : IAsyncDisposable
{
    /// <summary>The bound on any one wait; reaching it kills the process and fails the test.</summary>
    public static readonly TimeSpan HardTimeout = TimeSpan.FromSeconds(120);

    /// <summary>How long a server may take to print its LISTENING line.</summary>
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    private static readonly Lazy<string> Folder = new(LocateFolder);

    private readonly Process _process;
    private readonly MemoryStream _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _readers;
    private readonly string _command;

    private OriginalPeer(Process process, string command)
    {
        _process = process;
        _command = command;
        _readers = Task.WhenAll(DrainAsync(process.StandardOutput.BaseStream), DrainTextAsync(process.StandardError.BaseStream));
    }

    /// <summary>../shared/interop/libossuary-0.5.2: ref-peer, libossuary.so and the original ossuary.h.</summary>
    public static string InteropDirectory => Folder.Value;

    /// <summary>The port a server announced on its <c>LISTENING</c> line.</summary>
    public int Port { get; private set; }

    /// <summary>The server key a server announced (<c>server_key=</c>), or null for <c>none</c>.</summary>
    public OssuaryPublicKey? ServerKey { get; private set; }

    /// <summary>Starts <c>ref-peer server --listen 127.0.0.1:0 ARGS</c> and waits for its <c>LISTENING</c> line.</summary>
    public static async Task<OriginalPeer> StartServerAsync(params string[] args)
    {
        OriginalPeer peer = Start(null, ["server", "--listen", "127.0.0.1:0", .. args]);
        string line = await peer.WaitForListeningAsync();
        Match match = ListeningPattern().Match(line);
        Assert.True(match.Success, $"unexpected LISTENING line: {line}");
        peer.Port = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        peer.ServerKey = match.Groups[2].Value == "none" ? null : OssuaryPublicKey.Parse(match.Groups[2].Value);
        return peer;
    }

    /// <summary>Starts <c>ref-peer client --connect 127.0.0.1:PORT ARGS</c>; <paramref name="seed"/> sets OSSUARY_REF_SEED (and so the <c>--send-bytes</c> payload, see <see cref="Payload"/>).</summary>
    public static OriginalPeer StartClient(int port, ulong? seed, params string[] args) =>
        Start(seed, ["client", "--connect", "127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture), .. args]);

    /// <summary>
    /// The <c>--send-bytes</c> payload of a ref-peer run with OSSUARY_REF_SEED=<paramref name="seed"/>:
    /// xorshift64* seeded with <c>seed ^ 0x9e3779b97f4a7c15</c>, each output multiplied by
    /// 0x2545f4914f6cdd1d and written little-endian (ref-peer's <c>payload_bytes</c>).
    /// </summary>
    public static byte[] Payload(ulong seed, int length)
    {
        byte[] payload = new byte[(length + 7) / 8 * 8];
        ulong s = seed ^ 0x9e37_79b9_7f4a_7c15UL;
        if (s == 0)
        {
            s = 1;
        }

        for (int offset = 0; offset < payload.Length; offset += 8)
        {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(offset), s * 0x2545_f491_4f6c_dd1dUL);
        }

        return payload[..length];
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>Waits for the exit (killing the process after <see cref="HardTimeout"/>) and returns how it went.</summary>
    public async Task<OriginalOutcome> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(HardTimeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            await _readers.WaitAsync(HardTimeout);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"`{_command}` did not exit within {HardTimeout.TotalSeconds} s; killed it.\n{Describe()}");
        }

        byte[] stdout;
        lock (_stdout)
        {
            stdout = _stdout.ToArray();
        }

        return new OriginalOutcome(_command, _process.ExitCode, stdout, Stderr);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    private string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    private static OriginalPeer Start(ulong? seed, string[] args)
    {
        var info = new ProcessStartInfo(Path.Combine(InteropDirectory, "ref-peer"))
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Remove("OSSUARY_REF_SEED");
        info.Environment.Remove("OSSUARY_REF_DRAWS_FILE");
        info.Environment.Remove("OSSUARY_REF_TRACE");
        if (seed is ulong value)
        {
            info.Environment["OSSUARY_REF_SEED"] = value.ToString(CultureInfo.InvariantCulture);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("ref-peer did not start");
        process.StandardInput.Close();
        return new OriginalPeer(process, "ref-peer " + string.Join(' ', args));
    }

    private async Task<string> WaitForListeningAsync()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            lock (_stdout)
            {
                byte[] bytes = _stdout.GetBuffer();
                int end = Array.IndexOf(bytes, (byte)'\n', 0, (int)_stdout.Length);
                if (end >= 0)
                {
                    return Encoding.ASCII.GetString(bytes, 0, end);
                }
            }

            if (_process.HasExited || clock.Elapsed > ToolTimeout)
            {
                Kill();
                throw new InvalidOperationException($"`{_command}` printed no LISTENING line.\n{Describe()}");
            }

            await Task.Delay(10);
        }
    }

    private string Describe()
    {
        string stdout;
        lock (_stdout)
        {
            stdout = Encoding.UTF8.GetString(_stdout.GetBuffer(), 0, (int)Math.Min(_stdout.Length, 4096));
        }

        return $"--- stdout (start)\n{stdout}\n--- stderr\n{Stderr}";
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    private async Task DrainAsync(Stream stream)
    {
        byte[] buffer = new byte[64 * 1024];
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            lock (_stdout)
            {
                _stdout.Write(buffer, 0, read);
            }
        }
    }

    private async Task DrainTextAsync(Stream stream)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        char[] buffer = new char[16 * 1024];
        int read;
        while ((read = await reader.ReadAsync(buffer)) > 0)
        {
            lock (_stderr)
            {
                _stderr.Append(buffer, 0, read);
            }
        }
    }

    private static string LocateFolder()
    {
        string folder = Path.GetFullPath(Path.Combine(RepositoryPaths.Root(), "..", "shared", "interop", "libossuary-0.5.2"));
        return File.Exists(Path.Combine(folder, "ref-peer"))
            ? folder
            : throw new DirectoryNotFoundException($"The original libossuary is missing: expected {folder}/ref-peer (see ../shared/interop/README.md).");
    }

    [GeneratedRegex("^LISTENING 127\\.0\\.0\\.1:([0-9]+) server_key=([0-9a-f]{64}|none)$")]
    private static partial Regex ListeningPattern();
}

/// <summary>How a ref-peer run ended: its exit code, its RESULT lines, the data it printed, its INFO lines.</summary>
internal sealed partial record OriginalOutcome(string Command, int ExitCode, byte[] Stdout, string Stderr)
{
    /// <summary>The <c>RESULT</c> lines, one per connection, in order.</summary>
    public IReadOnlyList<string> Results => [.. Lines().Where(line => line.StartsWith("RESULT ", StringComparison.Ordinal))];

    /// <summary>The single connection's <c>RESULT</c> line.</summary>
    public string Result => Assert.Single(Results);

    /// <summary>
    /// The data the peer printed: stdout without a leading <c>LISTENING</c> line and without the
    /// trailing <c>RESULT</c> line(s).
    /// </summary>
    public byte[] Data
    {
        get
        {
            int start = 0;
            if (Stdout.AsSpan().StartsWith("LISTENING "u8))
            {
                start = Array.IndexOf(Stdout, (byte)'\n') + 1;
            }

            int end = Stdout.Length;
            while (end > start)
            {
                int lineStart = end - 1;
                while (lineStart > start && Stdout[lineStart - 1] != (byte)'\n')
                {
                    lineStart--;
                }

                if (!Stdout.AsSpan(lineStart, end - lineStart).StartsWith("RESULT "u8))
                {
                    break;
                }

                end = lineStart;
            }

            return Stdout[start..end];
        }
    }

    /// <summary>Asserts exit 0 and one <c>RESULT ok</c> line that contains every one of <paramref name="parts"/>.</summary>
    public void AssertOk(params string[] parts)
    {
        Assert.True(ExitCode == 0, $"expected exit 0:\n{this}");
        string result = Result;
        Assert.True(result.StartsWith("RESULT ok", StringComparison.Ordinal), $"expected RESULT ok:\n{this}");
        foreach (string part in parts)
        {
            Assert.True(result.Contains(part, StringComparison.Ordinal), $"expected '{part}' in the RESULT line:\n{this}");
        }
    }

    /// <summary>Asserts exit 1 and one <c>RESULT error</c> line that contains every one of <paramref name="parts"/>.</summary>
    public void AssertError(params string[] parts)
    {
        Assert.True(ExitCode == 1, $"expected exit 1:\n{this}");
        string result = Result;
        Assert.True(result.StartsWith("RESULT error", StringComparison.Ordinal), $"expected RESULT error:\n{this}");
        foreach (string part in parts)
        {
            Assert.True(result.Contains(part, StringComparison.Ordinal), $"expected '{part}' in the RESULT line:\n{this}");
        }
    }

    /// <summary>The numbers of ref-peer's closing INFO line "packets sent: S (msg_id wrapped W times), received: R (msg_id wrapped V times)".</summary>
    public (long Sent, int SentWraps, long Received, int ReceivedWraps) Packets
    {
        get
        {
            Match match = PacketsPattern().Match(Stderr);
            Assert.True(match.Success, $"no packet counts on stderr:\n{this}");
            long Number(int group) => long.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);
            return (Number(1), (int)Number(2), Number(3), (int)Number(4));
        }
    }

    /// <summary>
    /// Asserts that the peer printed exactly <paramref name="expected"/> (compared by SHA-256).
    /// ref-peer ends data that does not end with a newline with one, so that its RESULT line
    /// starts a line: that newline is expected too.
    /// </summary>
    public void AssertPrinted(ReadOnlySpan<byte> expected)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(expected);
        if (expected.Length > 0 && expected[^1] != (byte)'\n')
        {
            hash.AppendData("\n"u8);
        }

        byte[] data = Data;
        Assert.True(
            hash.GetHashAndReset().AsSpan().SequenceEqual(SHA256.HashData(data)),
            $"ref-peer printed {data.Length} bytes, not the {expected.Length} expected (SHA-256 differs):\n{this}");
    }

    public override string ToString()
    {
        string stdout = Encoding.UTF8.GetString(Stdout, 0, Math.Min(Stdout.Length, 2048));
        return $"`{Command}` exited {ExitCode}\n--- stdout ({Stdout.Length} bytes, start)\n{stdout}\n--- results\n{string.Join('\n', Results)}\n--- stderr\n{Stderr}";
    }

    private string[] Lines() => Encoding.Latin1.GetString(Stdout).Split('\n');

    [GeneratedRegex("packets sent: ([0-9]+) \\(msg_id wrapped ([0-9]+) times\\), received: ([0-9]+) \\(msg_id wrapped ([0-9]+) times\\)")]
    private static partial Regex PacketsPattern();
}

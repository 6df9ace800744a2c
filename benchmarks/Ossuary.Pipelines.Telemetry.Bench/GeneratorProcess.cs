using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;

namespace Ossuary.Pipelines.Telemetry.Bench;

/// <summary>
/// The parent's handle on the generator: this same program re-launched with <c>--generator N</c>, so
/// the devices' sockets, handshakes and sealing are in another process and count against its own
/// descriptor limit, memory and CPU. Its stderr is shown as it comes (prefixed) and its last lines are
/// kept for the error when it dies; any reply other than the one expected fails the run.
/// </summary>
internal sealed class GeneratorProcess : IAsyncDisposable
{
    private const int TailLines = 40;
    private readonly Process _process;
    private readonly Channel<string> _replies = Channel.CreateUnbounded<string>();
    private readonly ConcurrentQueue<string> _stderrTail = new();
    private readonly SemaphoreSlim _stdin = new(1, 1);
    private readonly CancellationTokenSource _died = new();

    private GeneratorProcess(Process process) => _process = process;

    /// <summary>The child's process id (for its CPU time and memory in the report).</summary>
    public int Id => _process.Id;

    /// <summary>
    /// Cancelled when the child exits with anything but 0 (it exits with 0 only after its last reply),
    /// so that a wait on the server's side (a hold, a drain) ends at once instead of at its budget.
    /// </summary>
    public CancellationToken Died => _died.Token;

    public static GeneratorProcess Start(int devices)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this program's path to start the generator");
        var start = new ProcessStartInfo
        {
            FileName = self,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            // Run as `dotnet Bench.dll` rather than through the app host.
            start.ArgumentList.Add(typeof(GeneratorProcess).Assembly.Location);
        }

        start.ArgumentList.Add("--generator");
        start.ArgumentList.Add(devices.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var generator = new GeneratorProcess(process);
        process.Exited += (_, _) =>
        {
            try
            {
                if (process.ExitCode != 0)
                {
                    generator._died.Cancel();
                }
            }
            catch (ObjectDisposedException)
            {
                // Killed while the run was being torn down: nobody waits on Died any more.
            }
        };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                generator._replies.Writer.TryComplete();
            }
            else
            {
                generator._replies.Writer.TryWrite(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"[generator] {e.Data}");
                generator._stderrTail.Enqueue(e.Data);
                while (generator._stderrTail.Count > TailLines && generator._stderrTail.TryDequeue(out string? _))
                {
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // The child also exits by itself when its stdin ends (this process gone for any reason, even
        // SIGKILL); these handlers only make a normal exit or Ctrl-C quicker about it.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => generator.Kill();
        Console.CancelKeyPress += (_, _) => generator.Kill();
        return generator;
    }

    /// <summary>Sends one line to the child.</summary>
    public async Task WriteAsync(string line)
    {
        await _stdin.WaitAsync();
        try
        {
            await _process.StandardInput.WriteLineAsync(line);
            await _process.StandardInput.FlushAsync();
        }
        catch (IOException ex)
        {
            throw await DiedAsync(ex);
        }
        finally
        {
            _stdin.Release();
        }
    }

    /// <summary>The child's next line, split into fields, which must start with <paramref name="expected"/>.</summary>
    public async Task<string[]> ReadAsync(string expected, CancellationToken cancellationToken)
    {
        string line;
        try
        {
            line = await _replies.Reader.ReadAsync(cancellationToken);
        }
        catch (ChannelClosedException)
        {
            throw await DiedAsync(null);
        }
        catch (OperationCanceledException) when (_died.IsCancellationRequested)
        {
            throw await DiedAsync(null);
        }

        string[] fields = line.Split(' ');
        return fields[0] == expected
            ? fields
            : throw new InvalidOperationException($"the generator answered '{line}' where '{expected}' was expected");
    }

    /// <summary>Waits for the child to exit after its last reply; it must exit with 0.</summary>
    public async Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        if (_process.ExitCode != 0)
        {
            throw await DiedAsync(null);
        }
    }

    /// <summary>The error to fail the run with once <see cref="Died"/> has fired: the exit code and the last stderr lines.</summary>
    public Task<Exception> FailureAsync() => DiedAsync(null);

    public async ValueTask DisposeAsync()
    {
        Kill();
        await _process.WaitForExitAsync(CancellationToken.None);
        _process.Dispose();
        _stdin.Dispose();
        _died.Dispose();
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
            // Not started, or already gone.
        }
    }

    private async Task<Exception> DiedAsync(Exception? inner)
    {
        // Give the child a moment to finish exiting, so its code and its last stderr lines are known.
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
        }

        string code = _process.HasExited ? _process.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture) : "(still running; killed)";
        return new InvalidOperationException(
            $"the generator process failed (exit code {code}); its last stderr lines:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", _stderrTail)}",
            inner);
    }
}

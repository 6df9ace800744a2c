using System.Buffers;
using System.Buffers.Binary;
using System.CommandLine;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using Ossuary.Cli.Net;
using Ossuary.Cli.Transfer;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Cli.Commands;

/// <summary><c>ossuary send</c> and <c>ossuary receive</c>: a one-off file transfer checked with SHA-256.</summary>
internal static class TransferCommands
{
    private const int ChunkSize = 64 * 1024;

    public static Command Send()
    {
        var file = new Argument<string>("FILE") { Description = "The file to send; '-' sends stdin." };
        var target = new Argument<string>("HOST:PORT") { Description = "The receiving server." };
        var name = new Option<string?>("--name") { Description = "The name to save it under (default: the file's name; 'stdin' for '-')." };
        var timeout = ConnectCommand.TimeoutOption();
        timeout.Aliases.Add("-w");
        var trust = new ClientTrust();
        var command = new Command("send", "Send one file to 'ossuary receive'.") { file, target, name, timeout };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            string path = parse.GetValue(file)!;
            bool fromStdin = StdPaths.IsStdio(path);
            if (!fromStdin)
            {
                StdPaths.RequireFile(path, "file");
            }

            string saveAs = parse.GetValue(name) ?? (fromStdin ? "stdin" : Path.GetFileName(path));
            if (StdPaths.IsStdio(saveAs))
            {
                // The receiver refuses it: no file named '-' is ever made.
                throw new CliException("--name cannot be '-' (stdin or stdout to the tool, never a file's name); name the file otherwise", ExitCodes.BadInput);
            }

            if (saveAs.Length == 0 || saveAs is "." or ".." || Path.GetFileName(saveAs) != saveAs || saveAs.Any(TransferProtocol.IsUnprintable))
            {
                throw new CliException($"--name '{TransferProtocol.Printable(saveAs)}' is not a bare file name", ExitCodes.BadInput);
            }

            int nameBytes = System.Text.Encoding.UTF8.GetByteCount(saveAs);
            if (nameBytes > TransferProtocol.MaxNameBytes)
            {
                throw new CliException($"--name is {nameBytes} bytes long; a file name has at most {TransferProtocol.MaxNameBytes}", ExitCodes.BadInput);
            }

            HostPort server = HostPort.Parse(parse.GetValue(target)!);
            OssuaryClientOptions options = trust.CreateOptions(parse, server, stdinFree: !fromStdin, out OssuaryIdentity? identity);
            using (identity)
            {
                // A FIFO or a device (a named pipe, /dev/stdin) has no length: it is sent as stdin is.
                await using Stream source = fromStdin ? StdPaths.OpenStdin("the file to send") : File.OpenRead(path);
                await using SecureClient client = await SecureClient.ConnectAsync(server, options, CliOptions.Get(parse, timeout), cancellationToken);
                // Read from the start: a receiver that refuses the file answers at once and closes, and
                // a sender waiting on a quiet producer (tail -f | ossuary send -) must not wait on.
                Task<(string? Answer, OssuaryException? ClosedWith)> answering = ReadAnswerAsync(client.Secure.Input, cancellationToken);
                // A file of length 0 may still hold bytes (/proc/cpuinfo and its kind): sent as stdin is too,
                // which for a file that is really empty costs the one end-of-chunks mark.
                long length = fromStdin || !source.CanSeek || source.Length == 0 ? TransferProtocol.UnknownLength : source.Length;
                SendResult sent;
                try
                {
                    sent = await SendFileAsync(client.Secure.Output, source, fromStdin ? "standard input" : path, saveAs, length, answering, cancellationToken);
                }
                catch (Exception ex) when (ex is not OssuaryException)
                {
                    // Our own failure (the file, stdin) or an interruption: the receiver is told the transfer
                    // failed with Disconnect (error). Disposal alone closes cleanly, and a clean end of a
                    // file sent in chunks is for the receiver only a transfer cut short, not a failed one.
                    await client.Secure.Output.CompleteAsync(ex);
                    throw;
                }

                string? answer;
                OssuaryException? closedWith;
                try
                {
                    (answer, closedWith) = await answering;
                }
                catch (OperationCanceledException ex)
                {
                    // Interrupted while waiting for the answer: a clean close here would tell the
                    // receiver that its "OK" was read, and the receiver would say nothing of it.
                    await client.Secure.Output.CompleteAsync(ex);
                    throw;
                }

                closedWith ??= sent.ClosedWith;
                // Only the hash of everything sent confirms; an unfinished transfer has none to confirm.
                if (sent.Hash is { } hash && answer == $"OK {Convert.ToHexStringLower(hash)}")
                {
                    Console.Error.WriteLine($"ossuary: sent {(fromStdin ? "stdin" : path)} ({sent.Length} bytes), SHA-256 {Convert.ToHexStringLower(hash)} confirmed by the receiver");
                    return ExitCodes.Success;
                }

                if (sent.Hash is { } ours && answer?.StartsWith("OK ", StringComparison.Ordinal) == true)
                {
                    // Not a refusal: the receiver took bytes whose hash is not the file's, so what it
                    // stored is not what was sent (or it is not an honest receiver).
                    throw new CliException(
                        $"the receiver confirmed a different SHA-256 ({TransferProtocol.Printable(answer[3..])}) than the file's ({Convert.ToHexStringLower(ours)}): what it received is not what was sent");
                }

                if (answer?.StartsWith($"ERR {TransferProtocol.SavedNotDurable}", StringComparison.Ordinal) == true)
                {
                    // Not a refusal: the file is there, but "OK" (keep it, delete the original) was not earned.
                    throw new CliException($"{TransferProtocol.Printable(answer[4..])}; keep the original until the receiver's folder is synced");
                }

                if (!string.IsNullOrEmpty(answer))
                {
                    throw new CliException($"the receiver refused the file: {TransferProtocol.Printable(answer)}");
                }

                if (closedWith is { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null }
                    && client.Socket.Arrived.DescribeMalformedDisconnect(server.ToString()) is { } malformed)
                {
                    throw new CliException($"{malformed}; it did not answer, so the transfer failed");
                }

                if (closedWith is { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null })
                {
                    // The receiver's Disconnect (error) before any answer: an allow-list refusing this
                    // client's key sends it right after the handshake, a receiver that fails or is stopped
                    // during the transfer sends the same, and the sender cannot tell which (the
                    // receiver sends nothing before its answer): both are said.
                    throw new CliException(
                        $"{server} ended the connection with an error without answering: it failed or was stopped during the transfer, " +
                        "or it refused this client (a receiver that admits only authorized client keys does this right after connecting, " +
                        "when --key is missing or not among them)");
                }

                if (closedWith is not null and not { Reason: OssuaryErrorReason.ConnectionClosed })
                {
                    // The connection itself failed (a reset, a socket closed without the receiver's
                    // Disconnect): no decision of the receiver's, a refusal least of all.
                    throw new CliException($"the connection to {server} failed during the transfer ({closedWith.Reason}): {closedWith.Message}");
                }

                throw new CliException(sent.Hash is null
                    ? "the receiver closed the connection during the transfer"
                    : "the receiver closed the connection without confirming the file");
            }
        }));
        return command;
    }

    public static Command Receive()
    {
        var port = CliOptions.Port("TCP port to listen on.", anyFree: true);
        var bind = new Option<string>("--bind") { Description = "Address or host name to bind (localhost, 127.0.0.1, ::).", DefaultValueFactory = _ => "0.0.0.0" };
        var output = new Option<string>("--output", "-o") { Description = "Directory to save the file in.", DefaultValueFactory = _ => "." };
        var force = new Option<bool>("--force") { Description = "Replace an existing file of the same name (atomically); without it one is refused (exit 2)." };
        var trust = new ServerTrust();
        var command = new Command("receive", "Receive one file from 'ossuary send', then exit.") { port, bind, output, force };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            string directory = parse.GetValue(output)!;
            if (StdPaths.IsStdio(directory))
            {
                throw new CliException("-o names a directory to save the file in; '-' (stdout) is not one", ExitCodes.BadInput);
            }

            if (File.Exists(directory))
            {
                throw new CliException($"output directory '{directory}' is a file, not a directory", ExitCodes.BadInput);
            }

            if (!Directory.Exists(directory))
            {
                throw new CliException($"output directory '{directory}' does not exist", ExitCodes.BadInput);
            }

            using ServerSetup setup = trust.Create(parse, stdinFree: true);
            using Socket listener = SocketPipe.Listen(parse.GetValue(bind)!, parse.GetValue(port));
            Console.Error.WriteLine($"ossuary: waiting for a file on {listener.LocalEndPoint}; server key {setup.Identity.PublicKey}");

            // A failed handshake does not end a receive: the sender may be next.
            using var failures = new ConnectionFailureLog(followUp: "ossuary: still waiting for a file");
            (SocketPipe pipe, OssuaryDuplexPipe secure) = await FirstSecuredConnection.AcceptAsync(listener, setup, failures, static () => false, cancellationToken)
                ?? throw new InvalidOperationException("the wait for a sender ended without one, though no failure may end it");
            await using (pipe)
            await using (secure)
            {
                Console.Error.WriteLine($"ossuary: connection from {pipe.RemoteEndPoint}, client key {secure.Feature.RemotePublicKey?.ToString() ?? "anonymous"}");
                try
                {
                    return await ReceiveFileAsync(secure, pipe.Arrived, directory, parse.GetValue(force), cancellationToken);
                }
                catch (Exception ex) when (ex is not OssuaryException)
                {
                    // The transfer failed here (interrupted, the disk, a refusal): after any ERR line, the
                    // sender is told with Disconnect (error). Disposal alone closes cleanly, which an
                    // interrupted receive had the sender take for the receiver's choice to close.
                    await secure.Output.CompleteAsync(ex);
                    throw;
                }
            }
        }));
        return command;
    }

    private sealed record SendResult(byte[]? Hash, long Length, OssuaryException? ClosedWith);

    /// <summary>The receiver's answer line, or null and how the connection ended if it closed without one.</summary>
    private static async Task<(string? Answer, OssuaryException? ClosedWith)> ReadAnswerAsync(PipeReader input, CancellationToken cancellationToken)
    {
        try
        {
            return (await TransferProtocol.ReadLineAsync(input, cancellationToken), null);
        }
        catch (OssuaryException ex)
        {
            return (null, ex);
        }
    }

    /// <summary>Sends the header, the bytes and their SHA-256; no hash if the receiver closed the connection first.</summary>
    private static async Task<SendResult> SendFileAsync(PipeWriter output, Stream source, string sourceName, string name, long length, Task answered, CancellationToken cancellationToken)
    {
        bool chunked = length == TransferProtocol.UnknownLength;
        if (!await TransferProtocol.TryWriteLineAsync(output, TransferProtocol.HeaderLine(name, length), cancellationToken))
        {
            return new SendResult(null, 0, null); // the receiver closed first
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var progress = new Progress("send", length);
        long sent = 0;

        // Read into a buffer of our own, not the connection's: a read of stdin cannot be cancelled,
        // and one still waiting when the receiver has answered (a refusal, before the file's end) or
        // closed is left behind, the transfer over. It must not write into memory the connection
        // has given back. Pinned, so the collector leaves no copy of the file's bytes; zeroed after.
        byte[] chunk = GC.AllocateArray<byte>(ChunkSize, pinned: true);
        Task<int>? reading = null;
        try
        {
            while (chunked || sent < length)
            {
                // Never past the length announced: the receiver reads the SHA-256 right after it.
                reading = ReadSourceAsync(source, sourceName, chunk.AsMemory(0, chunked ? ChunkSize : (int)Math.Min(ChunkSize, length - sent)), cancellationToken);
                if (await Task.WhenAny(reading, answered) != reading)
                {
                    // Ctrl+C ends the wait for the answer (its read takes the token) where no token ends a
                    // read of stdin: an interruption, for the caller to tell the receiver, not an answer.
                    cancellationToken.ThrowIfCancellationRequested();
                    return new SendResult(null, sent, null);
                }

                int read = await reading;
                if (read == 0)
                {
                    break;
                }

                hash.AppendData(chunk, 0, read);
                if (chunked)
                {
                    TransferProtocol.WriteChunkHeader(output, read);
                }

                output.Write(chunk.AsSpan(0, read));
                if (await TryFlushAsync(output, cancellationToken) is { } closed)
                {
                    return new SendResult(null, sent, closed.Exception);
                }

                sent += read;
                progress.Report(sent);
            }
        }
        finally
        {
            if (reading is null || reading.IsCompleted)
            {
                CryptographicOperations.ZeroMemory(chunk);
            }
        }

        if (!chunked && sent != length)
        {
            throw new CliException($"the file changed while being sent: {sent} of the {length} bytes announced");
        }

        if (!chunked && await ReadSourceAsync(source, sourceName, new byte[1], cancellationToken) != 0)
        {
            // A file being written (a log): what was sent is no whole version of it, so no hash confirms it.
            throw new CliException($"{sourceName} grew while being sent: it holds more than the {length} bytes announced; send a copy that is not being written");
        }

        progress.Finish(sent);
        if (chunked)
        {
            TransferProtocol.WriteChunkHeader(output, 0);
        }

        byte[] digest = hash.GetHashAndReset();
        output.Write(digest);
        if (await TryFlushAsync(output, cancellationToken) is { } ended)
        {
            return new SendResult(null, sent, ended.Exception); // the hash never left: nothing for an answer to confirm
        }

        return new SendResult(digest, sent, null);
    }

    private static async Task<int> ReadSourceAsync(Stream source, string sourceName, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await source.ReadAsync(buffer, cancellationToken);
        }
        catch (IOException ex)
        {
            // Alone, the system's reason ("Connection reset by peer") would read like the receiver's.
            throw new CliException($"cannot read {sourceName}: {ex.Message}");
        }
    }

    private sealed record Closed(OssuaryException? Exception);

    /// <summary>Null while the receiver is there; how it went when it closed, or reset the connection after refusing.</summary>
    private static async Task<Closed?> TryFlushAsync(PipeWriter output, CancellationToken cancellationToken)
    {
        try
        {
            return (await output.FlushAsync(cancellationToken)).IsCompleted ? new Closed(null) : null;
        }
        catch (OssuaryException ex)
        {
            return new Closed(ex);
        }
    }

    private static async Task<int> ReceiveFileAsync(OssuaryDuplexPipe secure, ArrivedPlaintext arrived, string directory, bool force, CancellationToken cancellationToken)
    {
        string? header;
        try
        {
            header = await TransferProtocol.ReadLineAsync(secure.Input, cancellationToken);
        }
        catch (OssuaryException ex) when (ex is { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null })
        {
            // The sender's Disconnect (error). Said in the receiver's terms: the tool's general wording
            // for it names a refusal of this client's key, which only a server does to a client.
            throw new CliException(arrived.DescribeMalformedDisconnect("the sender") is { } malformed
                ? $"{malformed}; it sent no file"
                : "the sender ended the connection with an error before sending a file (it failed or was stopped)");
        }

        if (header is null)
        {
            throw new CliException("the sender closed the connection before sending a file");
        }
        string name;
        long length;
        try
        {
            (name, length) = TransferProtocol.ParseHeader(header);
        }
        catch (CliException refused)
        {
            // The sender learns why, rather than only that the connection closed.
            await TryAnswerAsync(secure.Output, arrived, $"ERR {refused.Message}\n");
            throw;
        }

        string destination = Path.Combine(directory, name);
        if (Directory.Exists(destination) && new FileInfo(destination).LinkTarget is null)
        {
            // --force replaces a file (or a symlink), never a folder: refused now, not after the whole file.
            await TryAnswerAsync(secure.Output, arrived, "ERR a directory of that name exists on the receiver\n");
            throw new CliException($"'{destination}' is a directory; not replacing it, even with --force", ExitCodes.BadInput);
        }

        if (Exists(destination) && !force)
        {
            await TryAnswerAsync(secure.Output, arrived, "ERR the file exists on the receiver\n");
            throw new CliException($"'{destination}' already exists; not overwriting it (use --force)", ExitCodes.BadInput);
        }

        // What receives of this name that were killed (or crashed) left: removed, never resumed.
        foreach (string line in AbandonedPartials.Remove(directory, PartialStem(name), name))
        {
            Console.Error.WriteLine($"ossuary: {line}");
        }

        // Our own new file, under a name nobody can predict: CreateNew never opens what is already
        // there (a user's file, a planted symlink), so nothing outside our file is written.
        string partial = Path.Combine(directory, $".{PartialStem(name)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.part");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] actual;
        long received;
        bool created = false;
        try
        {
            // Unbuffered: each write reaches the file system (or fails) in StorageFailure.WriteAsync.
            // A buffered stream kept the bytes of a flush the disk refused and wrote them again as it
            // closed; that second failure replaced the first, as an unexpected error the sender was
            // never told about. The writes are the pipe's segments, kilobytes each.
            await using (var target = new FileStream(partial, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0 }))
            {
                created = true;
                AbandonedPartials.Hold(target.SafeFileHandle, partial);
                var progress = new Progress("receive", length);
                received = length == TransferProtocol.UnknownLength
                    ? await CopyChunksAsync(secure.Input, target, hash, progress, cancellationToken)
                    : await CopyAsync(secure.Input, target, hash, length, progress, cancellationToken);

                // "OK" lets the sender report success, and its user delete the original: the bytes
                // must be on disk by then, not only in the page cache.
                await target.FlushAsync(cancellationToken);
                target.Flush(flushToDisk: true);
            }

            byte[] expected = await ReadExactlyAsync(secure.Input, SHA256.HashSizeInBytes, cancellationToken);
            actual = hash.GetHashAndReset();
            if (!CryptographicOperations.FixedTimeEquals(expected, actual))
            {
                await TryAnswerAsync(secure.Output, arrived, "ERR SHA-256 mismatch\n");
                throw new CliException("the file's SHA-256 does not match the sender's; discarded it");
            }

            Publish(partial, destination, force);
        }
        catch (Exception ex)
        {
            // Never made (its directory gone, no permission), nothing is said removed. The sender is told the transfer failed.
            string removed = created ? Discard(partial) : "no partial file was made";
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw new CliException($"interrupted; {removed}");
            }

            if (ex is CliException { ExitCode: ExitCodes.BadInput } exists)
            {
                await TryAnswerAsync(secure.Output, arrived, "ERR the file exists on the receiver\n");
                throw new CliException($"{exists.Message}; {removed}", exists.ExitCode);
            }

            if (StorageFailure.Is(ex))
            {
                await TryAnswerAsync(secure.Output, arrived, $"ERR the receiver could not save the file: {StorageFailure.ReasonForSender(ex)}\n");
                throw new CliException($"cannot save the file: {ex.Message}; {removed}", ExitCodes.Failure);
            }

            throw ex is CliException or OssuaryException ? new CliException($"{Describe(ex, arrived)}; {removed}", ExitCodes.Failure) : ex;
        }

        string saved = $"received {destination} ({received} bytes), SHA-256 {Convert.ToHexStringLower(actual)} verified";
        try
        {
            DirectorySync.Sync(directory); // "OK" promises the name survives a power loss too
        }
        catch (IOException ex)
        {
            // Saved, whole and named, but not durably: not "OK" (its user would delete the original), nor
            // "could not save" (the file is there, and sent again it "exists"). Both sides say this.
            await TryAnswerAsync(secure.Output, arrived, $"ERR {TransferProtocol.SavedNotDurable} ({StorageFailure.ReasonForSender(ex)})\n");
            throw new CliException($"{saved}, but {ex.Message}: the file's name may not survive a power loss until the folder is synced", ExitCodes.Failure);
        }

        try
        {
            if (!await TransferProtocol.TryWriteLineAsync(secure.Output, $"OK {Convert.ToHexStringLower(actual)}\n", cancellationToken))
            {
                // The connection ended first (the sender closed, failed or went away): "OK" was never sent, and the
                // sender's user cannot know the file arrived, as when the write fails (below).
                throw new CliException($"the connection ended before the answer could be sent (the sender closed it, failed or went away); {saved}, but the sender was not told, and may report the transfer as failed", ExitCodes.Failure);
            }
        }
        catch (Exception ex) when (ex is OssuaryException or OperationCanceledException)
        {
            // The file is whole and named: "interrupted" or "connection failed" alone read as if it
            // were not, and its user would delete it or have it sent again.
            string why = ex is OperationCanceledException ? "interrupted" : Describe(ex, arrived);
            throw new CliException($"{why}; {saved}, but the sender was not told: it reports the transfer as failed", ExitCodes.Failure);
        }

        Console.Error.WriteLine($"ossuary: {saved}");
        if (!await AwaitSenderCloseAsync(secure.Input, cancellationToken))
        {
            // A sender that read "OK" closes cleanly: this one failed, was stopped or went away,
            // most likely before the answer reached it, and then its user is told the transfer failed.
            Console.Error.WriteLine("ossuary: the connection ended with an error after the file was saved (the sender failed, was stopped or went away): the sender may not have been told, and may report the transfer as failed; the file here is complete");
        }

        return ExitCodes.Success;
    }

    /// <summary>
    /// Best effort: the answer to a sender that may already be gone (it failed, was stopped, or reset) must not
    /// hide why we failed, which the caller reports next. Its own failure is said as secondary, on its line.
    /// </summary>
    private static async Task TryAnswerAsync(PipeWriter output, ArrivedPlaintext arrived, string line)
    {
        try
        {
            if (!await TransferProtocol.TryWriteLineAsync(output, line, CancellationToken.None))
            {
                Console.Error.WriteLine("ossuary: could not tell the sender why the transfer failed: it had closed the connection");
            }
        }
        catch (OssuaryException ex)
        {
            Console.Error.WriteLine($"ossuary: could not tell the sender why the transfer failed: {Describe(ex, arrived)}");
        }
    }

    private static string Describe(Exception ex, ArrivedPlaintext arrived) => ex switch
    {
        // The sender's Disconnect (error): it could not read its file or stdin, or was interrupted; unless that
        // Disconnect was malformed, which the session takes for one with the error flag.
        OssuaryException { Reason: OssuaryErrorReason.ConnectionFailed, InnerException: null } =>
            arrived.DescribeMalformedDisconnect("the sender") ?? "the sender ended the connection with an error during the transfer (it failed or was stopped)",
        OssuaryException ossuary => $"the connection failed during the transfer ({ossuary.Reason}): {ossuary.Message}",
        _ => ex.Message,
    };

    /// <summary>
    /// The name, cut to 200 UTF-8 bytes (never inside a character): a name may take the system's
    /// whole 255, and the partial file's name adds 20 to it.
    /// </summary>
    private static string PartialStem(string name)
    {
        int length = 0;
        int bytes = 0;
        foreach (System.Text.Rune rune in name.EnumerateRunes())
        {
            bytes += rune.Utf8SequenceLength;
            if (bytes > 200)
            {
                break;
            }

            length += rune.Utf16SequenceLength;
        }

        return name[..length];
    }

    private static bool Exists(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>
    /// The finished file takes its name in one step: without --force a link that fails if the name
    /// exists (whatever appeared since the header), with --force a rename over it (a symlink there is
    /// replaced, never followed).
    /// </summary>
    private static void Publish(string partial, string destination, bool force)
    {
        try
        {
            if (force)
            {
                File.Move(partial, destination, overwrite: true);
            }
            else
            {
                ExclusiveLink.Take(partial, destination);
            }
        }
        catch (IOException) when (!force && Exists(destination))
        {
            throw new CliException($"'{destination}' appeared during the transfer; not overwriting it (use --force)", ExitCodes.BadInput);
        }
    }

    private static string Discard(string partial)
    {
        try
        {
            File.Delete(partial);
            return "removed the partial file";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"could not remove the partial file {partial}: {ex.Message}";
        }
    }

    /// <summary>
    /// Our Disconnect would end both directions at once: let the sender read the answer and close
    /// first, but not forever. The file is already saved; false if the connection ended with an
    /// error (the sender's Disconnect (error), or it went away), which a sender that read the answer does not do.
    /// </summary>
    private static async Task<bool> AwaitSenderCloseAsync(PipeReader input, CancellationToken cancellationToken)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(bound.Token);
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return true;
                }
            }
        }
        catch (OssuaryException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return true; // not closed in time: it may well have read the answer
        }
    }

    private static async Task<long> CopyAsync(PipeReader input, Stream target, IncrementalHash hash, long length, Progress progress, CancellationToken cancellationToken)
    {
        long received = 0;
        while (received < length)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            ReadOnlySequence<byte> chunk = read.Buffer.Slice(0, Math.Min(read.Buffer.Length, length - received));
            foreach (ReadOnlyMemory<byte> segment in chunk)
            {
                hash.AppendData(segment.Span);
                await StorageFailure.WriteAsync(target, segment, cancellationToken);
            }

            received += chunk.Length;
            input.AdvanceTo(chunk.End);
            progress.Report(received);
            if (read.IsCompleted && received < length)
            {
                throw new CliException($"the sender closed the connection after {received} of {length} bytes");
            }
        }

        progress.Finish(received);
        return received;
    }

    private static async Task<long> CopyChunksAsync(PipeReader input, Stream target, IncrementalHash hash, Progress progress, CancellationToken cancellationToken)
    {
        long received = 0;
        while (true)
        {
            byte[] header = await ReadExactlyAsync(input, 4, cancellationToken);
            int length = BinaryPrimitives.ReadInt32BigEndian(header);
            if (length is < 0 or > TransferProtocol.MaxChunk)
            {
                throw new CliException($"the sender announced a chunk of {length} bytes");
            }

            if (length == 0)
            {
                progress.Finish(received);
                return received;
            }

            received += await CopyAsync(input, target, hash, length, Progress.Silent, cancellationToken);
            progress.Report(received);
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(PipeReader input, int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            if (read.Buffer.Length >= count)
            {
                byte[] bytes = read.Buffer.Slice(0, count).ToArray();
                input.AdvanceTo(read.Buffer.GetPosition(count));
                return bytes;
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            if (read.IsCompleted)
            {
                throw new CliException("the sender closed the connection before the end of the file");
            }
        }
    }
}

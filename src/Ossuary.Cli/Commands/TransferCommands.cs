using System.Buffers;
using System.CommandLine;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using Ossuary.Cli.Net;
using Ossuary.Cli.Transfer;
using Ossuary.Pipelines;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Cli.Commands;

/// <summary><c>ossuary send</c> and <c>ossuary receive</c>: a one-off file transfer checked with SHA-256.</summary>
internal static class TransferCommands
{
    private const int ChunkSize = 64 * 1024;

    public static Command Send()
    {
        var file = new Argument<string>("FILE") { Description = "The file to send." };
        var target = new Argument<string>("HOST:PORT") { Description = "The receiving server." };
        var trust = new ClientTrust();
        var command = new Command("send", "Send one file to 'ossuary receive'.") { file, target };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            string path = parse.GetValue(file)!;
            if (!File.Exists(path))
            {
                throw new CliException($"file '{path}' does not exist", ExitCodes.BadInput);
            }

            HostPort server = HostPort.Parse(parse.GetValue(target)!);
            OssuaryClientOptions options = trust.CreateOptions(parse, server, out OssuaryIdentity? identity);
            using (identity)
            {
                await using SocketPipe socket = await SocketPipe.ConnectAsync(server, cancellationToken);
                await using OssuaryDuplexPipe secure = await OssuaryDuplexPipe.ConnectAsync(socket, options, cancellationToken);
                await using FileStream source = File.OpenRead(path);
                byte[]? hash = await SendFileAsync(secure.Output, source, Path.GetFileName(path), cancellationToken);
                string? answer = await ReadAnswerAsync(secure.Input, closedEarly: hash is null, cancellationToken);
                if (hash is null || answer != $"OK {Convert.ToHexStringLower(hash)}")
                {
                    throw new CliException(answer is not null
                        ? $"the receiver refused the file: {answer}"
                        : hash is null
                            ? "the receiver closed the connection during the transfer"
                            : "the receiver closed the connection without confirming the file");
                }

                Console.Error.WriteLine($"ossuary: sent {path} ({source.Length} bytes), SHA-256 {Convert.ToHexStringLower(hash)} confirmed by the receiver");
                return ExitCodes.Success;
            }
        }));
        return command;
    }

    public static Command Receive()
    {
        var port = new Option<int>("--port", "-p") { Description = "TCP port to listen on.", Required = true };
        var bind = new Option<string>("--bind") { Description = "Address to bind.", DefaultValueFactory = _ => "0.0.0.0" };
        var output = new Option<string>("--output", "-o") { Description = "Directory to save the file in.", DefaultValueFactory = _ => "." };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing file." };
        var trust = new ServerTrust();
        var command = new Command("receive", "Receive one file from 'ossuary send', then exit.") { port, bind, output, force };
        trust.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliRunner.RunAsync(async () =>
        {
            string directory = parse.GetValue(output)!;
            if (!Directory.Exists(directory))
            {
                throw new CliException($"output directory '{directory}' does not exist", ExitCodes.BadInput);
            }

            OssuaryServerOptions options = trust.CreateOptions(parse, out OssuaryIdentity identity);
            using (identity)
            {
                using Socket listener = SocketPipe.Listen(parse.GetValue(bind)!, parse.GetValue(port));
                Console.Error.WriteLine($"ossuary: waiting for a file on {listener.LocalEndPoint}; server key {identity.PublicKey}");
                while (true)
                {
                    await using var pipe = new SocketPipe(await listener.AcceptAsync(cancellationToken));
                    OssuaryDuplexPipe secure;
                    try
                    {
                        secure = await OssuaryDuplexPipe.AcceptAsync(pipe, options, cancellationToken);
                    }
                    catch (OssuaryException ex)
                    {
                        Console.Error.WriteLine($"ossuary: connection from {pipe.RemoteEndPoint} refused ({ex.Reason}); still waiting");
                        continue;
                    }

                    await using (secure)
                    {
                        Console.Error.WriteLine($"ossuary: connection from {pipe.RemoteEndPoint}, client key {secure.Feature.RemotePublicKey?.ToString() ?? "anonymous"}");
                        return await ReceiveFileAsync(secure, directory, parse.GetValue(force), cancellationToken);
                    }
                }
            }
        }));
        return command;
    }

    /// <summary>
    /// The receiver's answer line. A receiver that refuses the file (it exists) answers right
    /// after the header and closes, so when it closed during the transfer its answer is read
    /// too, as far as it arrived.
    /// </summary>
    private static async Task<string?> ReadAnswerAsync(PipeReader input, bool closedEarly, CancellationToken cancellationToken)
    {
        try
        {
            return await TransferProtocol.ReadLineAsync(input, cancellationToken);
        }
        catch (OssuaryException) when (closedEarly)
        {
            return null;
        }
    }

    /// <summary>Sends the header, the file and its SHA-256; null if the receiver closed the connection first.</summary>
    private static async Task<byte[]?> SendFileAsync(PipeWriter output, FileStream source, string name, CancellationToken cancellationToken)
    {
        await TransferProtocol.WriteLineAsync(output, TransferProtocol.HeaderLine(name, source.Length), cancellationToken);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var progress = new Progress("send", source.Length);
        long sent = 0;
        while (true)
        {
            Memory<byte> buffer = output.GetMemory(ChunkSize);
            int read = await source.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            hash.AppendData(buffer.Span[..read]);
            output.Advance(read);
            if (!await TryFlushAsync(output, cancellationToken))
            {
                return null; // the receiver closed the connection during the transfer
            }

            sent += read;
            progress.Report(sent);
        }

        progress.Finish(sent);
        byte[] digest = hash.GetHashAndReset();
        await output.WriteAsync(digest, cancellationToken);
        return digest;
    }

    /// <summary>False if the receiver has gone: it closed, or reset the connection after refusing the file.</summary>
    private static async Task<bool> TryFlushAsync(PipeWriter output, CancellationToken cancellationToken)
    {
        try
        {
            return !(await output.FlushAsync(cancellationToken)).IsCompleted;
        }
        catch (OssuaryException)
        {
            return false;
        }
    }

    private static async Task<int> ReceiveFileAsync(OssuaryDuplexPipe secure, string directory, bool force, CancellationToken cancellationToken)
    {
        string header = await TransferProtocol.ReadLineAsync(secure.Input, cancellationToken)
            ?? throw new CliException("the sender closed the connection before sending a file");
        (string name, long length) = TransferProtocol.ParseHeader(header);
        string destination = Path.Combine(directory, name);
        if (File.Exists(destination) && !force)
        {
            await TransferProtocol.WriteLineAsync(secure.Output, "ERR the file exists on the receiver\n", cancellationToken);
            throw new CliException($"'{destination}' already exists; not overwriting it (use --force)", ExitCodes.BadInput);
        }

        string partial = destination + ".part";
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] actual;
        try
        {
            await using (FileStream target = File.Create(partial))
            {
                await CopyAsync(secure.Input, target, hash, length, new Progress("receive", length), cancellationToken);
            }

            byte[] expected = await ReadExactlyAsync(secure.Input, SHA256.HashSizeInBytes, cancellationToken);
            actual = hash.GetHashAndReset();
            if (!CryptographicOperations.FixedTimeEquals(expected, actual))
            {
                await TransferProtocol.WriteLineAsync(secure.Output, "ERR SHA-256 mismatch\n", cancellationToken);
                throw new CliException("the file's SHA-256 does not match the sender's; discarded it");
            }
        }
        catch
        {
            File.Delete(partial); // never leave half a file behind
            throw;
        }

        File.Move(partial, destination, overwrite: true);
        await TransferProtocol.WriteLineAsync(secure.Output, $"OK {Convert.ToHexStringLower(actual)}\n", cancellationToken);
        Console.Error.WriteLine($"ossuary: received {destination} ({length} bytes), SHA-256 {Convert.ToHexStringLower(actual)} verified");

        await AwaitSenderCloseAsync(secure.Input, cancellationToken);
        return ExitCodes.Success;
    }

    /// <summary>
    /// Our Disconnect would end both directions at once: let the sender read the answer and close
    /// first, but not forever. The file is already saved, so how the sender leaves does not matter.
    /// </summary>
    private static async Task AwaitSenderCloseAsync(PipeReader input, CancellationToken cancellationToken)
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
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OssuaryException or OperationCanceledException)
        {
        }
    }

    private static async Task CopyAsync(PipeReader input, Stream target, IncrementalHash hash, long length, Progress progress, CancellationToken cancellationToken)
    {
        long received = 0;
        while (received < length)
        {
            ReadResult read = await input.ReadAsync(cancellationToken);
            ReadOnlySequence<byte> chunk = read.Buffer.Slice(0, Math.Min(read.Buffer.Length, length - received));
            foreach (ReadOnlyMemory<byte> segment in chunk)
            {
                hash.AppendData(segment.Span);
                await target.WriteAsync(segment, cancellationToken);
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
                throw new CliException("the sender closed the connection before sending the file's SHA-256");
            }
        }
    }
}

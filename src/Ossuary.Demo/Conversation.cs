namespace Ossuary.Demo;

/// <summary>The application on top of the channel: the client says lines, the server answers each one.</summary>
internal static class Conversation
{
    /// <summary>Sends each line, prints the answer, then closes cleanly.</summary>
    public static async Task TalkAsync(SessionConnection client, IEnumerable<string> lines, CancellationToken ct)
    {
        foreach (string line in lines)
        {
            await client.SendAsync(line, ct);
            string answer = await client.ReceiveAsync(ct) ?? throw new InvalidOperationException("The server closed the connection early.");
            Console.WriteLine($"  server -> client: {answer}");
        }

        Console.WriteLine("client: Disconnect(false), a clean close");
        await client.CloseAsync(ct);
    }

    /// <summary>Answers every line until the client's Disconnect, then hangs up (which the client's close waits for).</summary>
    public static async Task ServeAsync(SessionConnection server, Func<string, string> answer, CancellationToken ct)
    {
        while (await server.ReceiveAsync(ct) is string line)
        {
            Console.WriteLine($"  client -> server: {line}");
            await server.SendAsync(answer(line), ct);
        }

        Console.WriteLine($"server: Receive returned Closed, reason {server.Session.LastError}");
        server.HangUp();
    }
}

using System.Globalization;

namespace Ossuary.Cli.Net;

/// <summary>A <c>HOST:PORT</c> argument (<c>[::1]:7000</c> for IPv6).</summary>
internal sealed record HostPort(string Host, int Port)
{
    public static HostPort Parse(string text)
    {
        int colon = text.LastIndexOf(':');

        // Whitespace around the host is no part of it (a quoted "example.org :7000"): kept, known-hosts set
        // wrote "example.org :7000 KEY", a line that reads as the host "example.org" with ":7000" for its key.
        string host = colon > 0 ? text[..colon].Trim().Trim('[', ']').Trim() : "";
        if (host.Length == 0 || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new CliException($"'{text}' is not HOST:PORT (for example 127.0.0.1:7000)", ExitCodes.BadInput);
        }

        return new HostPort(host, port);
    }

    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

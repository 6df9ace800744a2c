using System.Globalization;

namespace Ossuary.Cli.Net;

/// <summary>A <c>HOST:PORT</c> argument (<c>[::1]:7000</c> for IPv6).</summary>
internal sealed record HostPort(string Host, int Port)
{
    public static HostPort Parse(string text)
    {
        int colon = text.LastIndexOf(':');
        string host = colon > 0 ? text[..colon].Trim('[', ']') : "";
        if (host.Length == 0 || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new CliException($"'{text}' is not HOST:PORT (for example 127.0.0.1:7000)", ExitCodes.BadInput);
        }

        return new HostPort(host, port);
    }

    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

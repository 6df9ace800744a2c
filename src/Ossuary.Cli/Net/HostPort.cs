using System.Globalization;
using System.Net;
using System.Net.Sockets;

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

    public async Task<IPEndPoint> ResolveAsync(CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(Host, out IPAddress? address))
        {
            return new IPEndPoint(address, Port);
        }

        try
        {
            IPAddress[] addresses = await Dns.GetHostAddressesAsync(Host, cancellationToken);
            return addresses.Length > 0
                ? new IPEndPoint(addresses[0], Port)
                : throw new CliException($"cannot resolve host '{Host}'", ExitCodes.Network);
        }
        catch (SocketException ex)
        {
            throw new CliException($"cannot resolve host '{Host}': {ex.Message}", ExitCodes.Network);
        }
    }

    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

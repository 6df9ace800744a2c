using Microsoft.Extensions.Configuration;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Configuration;

/// <summary>The configuration shape of <see cref="OssuaryClientOptions"/> (see <see cref="OssuaryServerSettings"/>).</summary>
internal sealed class OssuaryClientSettings
{
    public string? IdentityKeyFile { get; set; }

    public TimeSpan? ConnectTimeout { get; set; }

    public TimeSpan? HandshakeTimeout { get; set; }

    public TimeSpan? HandshakeStepTimeout { get; set; }

    public TimeSpan? TcpKeepAlive { get; set; }

    /// <summary>Applies what <paramref name="section"/> sets; a malformed key becomes a validation failure naming its path.</summary>
    public static void Apply(IConfiguration section, OssuaryClientOptions options)
    {
        var settings = new OssuaryClientSettings();
        section.Bind(settings);
        options.ConfigurationPrefix = SettingsKeys.Prefix(section);
        options.IdentityKeyFile = SettingsKeys.FilePath(settings.IdentityKeyFile, options.IdentityKeyFile, section, nameof(IdentityKeyFile), options.ConfigurationProblems);
        options.ConnectTimeout = settings.ConnectTimeout ?? options.ConnectTimeout;
        options.HandshakeTimeout = settings.HandshakeTimeout ?? options.HandshakeTimeout;
        options.HandshakeStepTimeout = settings.HandshakeStepTimeout ?? options.HandshakeStepTimeout;
        options.TcpKeepAlive = settings.TcpKeepAlive ?? options.TcpKeepAlive;
        foreach (string duration in (string[])[nameof(ConnectTimeout), nameof(HandshakeTimeout), nameof(HandshakeStepTimeout), nameof(TcpKeepAlive)])
        {
            SettingsKeys.CheckDuration(section, duration, options.ConfigurationProblems);
        }

        foreach (OssuaryPublicKey key in SettingsKeys.Parse(section, nameof(OssuaryClientOptions.TrustedServerKeys), options.ConfigurationProblems))
        {
            options.TrustedServerKeys.Add(key);
        }
    }
}

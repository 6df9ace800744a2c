using Microsoft.Extensions.Configuration;
using Ossuary.Pipelines.Transport;

namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// The configuration shape of <see cref="OssuaryServerOptions"/>: only what text can say (keys as
/// hex, files as paths), so that the binding source generator handles it and binding works under
/// NativeAOT. The key list (<c>Ossuary__AuthorizedClientKeys__0=&lt;hex&gt;</c>) is read entry by entry (<see cref="SettingsKeys.Parse"/>).
/// </summary>
internal sealed class OssuaryServerSettings
{
    public OssuaryServerMode? Mode { get; set; }

    public string? IdentityKeyFile { get; set; }

    public string? AuthorizedKeysFile { get; set; }

    public TimeSpan? HandshakeTimeout { get; set; }

    public TimeSpan? HandshakeStepTimeout { get; set; }

    public TimeSpan? TcpKeepAlive { get; set; }

    public int? MaxPendingHandshakes { get; set; }

    /// <summary>Applies what <paramref name="section"/> sets; a malformed key becomes a validation failure naming its path.</summary>
    public static void Apply(IConfiguration section, OssuaryServerOptions options)
    {
        var settings = new OssuaryServerSettings();
        section.Bind(settings);
        options.ConfigurationPrefix = SettingsKeys.Prefix(section);
        if (settings.Mode is { } mode)
        {
            options.Mode = mode;
        }

        options.IdentityKeyFile = SettingsKeys.FilePath(settings.IdentityKeyFile, options.IdentityKeyFile, section, nameof(IdentityKeyFile), options.ConfigurationProblems);
        options.AuthorizedKeysFile = SettingsKeys.FilePath(settings.AuthorizedKeysFile, options.AuthorizedKeysFile, section, nameof(AuthorizedKeysFile), options.ConfigurationProblems);
        options.HandshakeTimeout = settings.HandshakeTimeout ?? options.HandshakeTimeout;
        options.HandshakeStepTimeout = settings.HandshakeStepTimeout ?? options.HandshakeStepTimeout;
        options.TcpKeepAlive = settings.TcpKeepAlive ?? options.TcpKeepAlive;
        options.MaxPendingHandshakes = settings.MaxPendingHandshakes ?? options.MaxPendingHandshakes;
        foreach (string duration in (string[])[nameof(HandshakeTimeout), nameof(HandshakeStepTimeout), nameof(TcpKeepAlive)])
        {
            SettingsKeys.CheckDuration(section, duration, options.ConfigurationProblems);
        }

        foreach (OssuaryPublicKey key in SettingsKeys.Parse(section, nameof(OssuaryServerOptions.AuthorizedClientKeys), options.ConfigurationProblems))
        {
            options.AuthorizedClientKeys.Add(key);
        }
    }
}

using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// TLS 1.3 the way a Kestrel user would add it instead of <c>UseOssuary</c>: <c>UseHttps</c> in
/// front of the same connection handler, with the same certificate, cipher suite
/// (TLS_AES_256_GCM_SHA384) and <see cref="SslStream"/> client as <c>tls13-aesgcm</c>.
/// </summary>
internal sealed class KestrelTlsTarget : KestrelBenchTarget
{
    private readonly SslClientAuthenticationOptions _clientOptions;

    private KestrelTlsTarget(SslClientAuthenticationOptions clientOptions) => _clientOptions = clientOptions;

    public override string Name => "tls13-kestrel";

    public override string Description => "Kestrel + UseHttps (TLS 1.3, TLS_AES_256_GCM_SHA384), SslStream client";

    public static async Task<KestrelTlsTarget> StartAsync(X509Certificate2 certificate)
    {
        // Windows (SChannel) cannot pick TLS 1.3 suites per connection; there the OS default applies.
        CipherSuitesPolicy? policy = OperatingSystem.IsWindows() ? null : new CipherSuitesPolicy([TlsCipherSuite.TLS_AES_256_GCM_SHA384]);
        var target = new KestrelTlsTarget(TlsTarget.ClientOptions(policy, certificate));
        await target.StartKestrelAsync(
            listen => listen.UseHttps(https =>
            {
                https.ServerCertificate = certificate;
                https.SslProtocols = SslProtocols.Tls13;
                https.OnAuthenticate = (_, options) => options.CipherSuitesPolicy = policy;
            }),
            https: true).ConfigureAwait(false);
        return target;
    }

    public override Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken) => TlsTarget.ConnectClientAsync(EndPoint, _clientOptions, cancellationToken);
}

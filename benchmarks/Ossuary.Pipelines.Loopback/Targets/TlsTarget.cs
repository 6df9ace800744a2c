using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ossuary.Pipelines.Loopback.Wire;

namespace Ossuary.Pipelines.Loopback.Targets;

/// <summary>
/// SslStream TLS 1.3 on both ends, one cipher suite, what a .NET team would use instead of
/// Ossuary. The server's certificate is a self-signed ECDSA P-256 one made in this process; the
/// client trusts exactly it (a custom root, as a pinned Ossuary key is).
/// </summary>
internal sealed class TlsTarget : BenchTarget
{
    private readonly SocketListener _listener;
    private readonly SslServerAuthenticationOptions _serverOptions;
    private readonly SslClientAuthenticationOptions _clientOptions;

    public TlsTarget(string name, TlsCipherSuite suite, X509Certificate2 certificate)
    {
        Name = name;
        Description = $"SslStream TLS 1.3, {suite}, ECDSA P-256 certificate";
        // Windows (SChannel) cannot pick TLS 1.3 suites per connection; there the OS default applies.
        CipherSuitesPolicy? policy = OperatingSystem.IsWindows() ? null : new CipherSuitesPolicy([suite]);
        _serverOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
            EnabledSslProtocols = SslProtocols.Tls13,
            CipherSuitesPolicy = policy,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        _clientOptions = ClientOptions(policy, certificate);
        _listener = new SocketListener(ServeAsync, ReportServerError);
    }

    public override string Name { get; }

    public override string Description { get; }

    public override IPEndPoint EndPoint => _listener.EndPoint;

    public override int OpenServerConnections => _listener.OpenConnections;

    /// <summary>The client side: TLS 1.3 with <paramref name="policy"/>, trusting exactly <paramref name="certificate"/> as its root.</summary>
    internal static SslClientAuthenticationOptions ClientOptions(CipherSuitesPolicy? policy, X509Certificate2 certificate)
    {
        var trust = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        trust.CustomTrustStore.Add(certificate);
        return new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls13,
            CipherSuitesPolicy = policy,
            CertificateChainPolicy = trust,
        };
    }

    /// <summary>Connects an <see cref="SslStream"/> client with <paramref name="options"/> to <paramref name="endPoint"/>.</summary>
    internal static async Task<IBenchClient> ConnectClientAsync(IPEndPoint endPoint, SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        Socket socket = await TcpTarget.ConnectSocketAsync(endPoint, cancellationToken).ConfigureAwait(false);
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            return new StreamBenchClient(tls);
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A self-signed ECDSA P-256 server certificate for "localhost".</summary>
    public static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using X509Certificate2 ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
    }

    public override Task<IBenchClient> ConnectAsync(CancellationToken cancellationToken) => ConnectClientAsync(EndPoint, _clientOptions, cancellationToken);

    public override ValueTask DisposeAsync() => _listener.DisposeAsync();

    private async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsServerAsync(_serverOptions, cancellationToken).ConfigureAwait(false);
        await BenchWire.ServeAsync(tls, cancellationToken).ConfigureAwait(false);
    }
}

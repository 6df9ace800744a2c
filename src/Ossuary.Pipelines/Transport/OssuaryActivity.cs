using System.Diagnostics;
using System.Security.Cryptography;

namespace Ossuary.Pipelines.Transport;

/// <summary>The handshake span of <see cref="OssuaryTelemetry.ActivitySourceName"/>; nothing is allocated without a listener.</summary>
internal static class OssuaryActivity
{
    public const string HandshakeName = "ossuary.handshake";

    private static readonly ActivitySource Source = new(OssuaryTelemetry.ActivitySourceName);

    public static Activity? StartHandshake(OssuaryRole role)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        Activity? activity = Source.StartActivity(HandshakeName, role == OssuaryRole.Client ? ActivityKind.Client : ActivityKind.Server);
        activity?.SetTag("ossuary.role", role == OssuaryRole.Client ? "client" : "server");
        return activity;
    }

    public static void Succeeded(Activity? activity, OssuaryPublicKey? remote)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag("ossuary.outcome", "success");
        if (remote is not null)
        {
            activity.SetTag("ossuary.remote_key.fingerprint", Fingerprint(remote));
        }

        activity.Stop();
    }

    /// <summary>The caller cancelled the handshake: not an error of the span's (its status stays unset).</summary>
    public static void Cancelled(Activity? activity)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag("ossuary.outcome", "cancelled");
        activity.Stop();
    }

    public static void Failed(Activity? activity, OssuaryErrorReason reason, OssuaryPublicKey? remote, string message)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag("ossuary.outcome", "failure");
        activity.SetTag("error.type", reason.ToString());
        if (remote is not null)
        {
            activity.SetTag("ossuary.remote_key.fingerprint", Fingerprint(remote));
        }

        activity.SetStatus(ActivityStatusCode.Error, message);
        activity.Stop();
    }

    /// <summary>OpenSSH's form: <c>SHA256:</c> and the unpadded base64 of the key's SHA-256.</summary>
    public static string Fingerprint(OssuaryPublicKey key)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(key.Span, hash);
        return "SHA256:" + Convert.ToBase64String(hash).TrimEnd('=');
    }
}

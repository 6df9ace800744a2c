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

        try
        {
            Activity? activity = Source.StartActivity(HandshakeName, role == OssuaryRole.Client ? ActivityKind.Client : ActivityKind.Server);
            activity?.SetTag("ossuary.role", role == OssuaryRole.Client ? "client" : "server");
            return activity;
        }
        catch (Exception)
        {
            return null; // a listener's ActivityStarted threw: the span is lost (see Stop)
        }
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

        Stop(activity);
    }

    /// <summary>The caller cancelled the handshake: not an error of the span's (its status stays unset).</summary>
    public static void Cancelled(Activity? activity)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag("ossuary.outcome", "cancelled");
        Stop(activity);
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
        Stop(activity);
    }

    /// <summary>
    /// Stops the span, whatever its listeners do: Activity.Stop runs their ActivityStopped callbacks on
    /// this thread and lets their exceptions through. One that threw (an exporter's bug) failed a
    /// handshake that had completed, as this side's fault, and had it recorded twice (a success and a
    /// failure); as for a logging provider that throws (FailSafeLogger), the span is lost, not the connection.
    /// </summary>
    private static void Stop(Activity activity)
    {
        try
        {
            activity.Stop();
        }
        catch (Exception)
        {
            // Nowhere to say it that is not the listener that failed.
        }
    }

    /// <summary>OpenSSH's form: <c>SHA256:</c> and the unpadded base64 of the key's SHA-256.</summary>
    public static string Fingerprint(OssuaryPublicKey key)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(key.Span, hash);
        return "SHA256:" + Convert.ToBase64String(hash).TrimEnd('=');
    }
}

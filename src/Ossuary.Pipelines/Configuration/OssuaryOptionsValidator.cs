using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// Validates Ossuary options as the handshake would (key files read and parsed included), so that
/// <c>ValidateOnStart</c> reports a misconfiguration at start-up with the message that says what to fix.
/// On a reload (a server or connection factory of the same options runs, see <see cref="FollowedKeyFiles"/>)
/// no file is read: the validator runs on the configuration's reload thread, inside the options monitor's
/// change callback, which the host's stop waits for; a key file it named anew on a hung mount (NFS, FUSE)
/// held up that thread, every later change of the configuration and the host's stop, for as long as the
/// mount did not answer. The running server (or factory) reads the files itself, where its disposal does not
/// wait for the read, and refuses a change whose files it cannot read as any refused change is (logged at
/// Error, read again every second until it passes).
/// </summary>
internal sealed class OssuaryOptionsValidator(FollowedKeyFiles followed) : IValidateOptions<OssuaryServerOptions>, IValidateOptions<OssuaryClientOptions>
{
    public ValidateOptionsResult Validate(string? name, OssuaryServerOptions options) =>
        Check(name, () =>
        {
            options.Validate(); // before any file is opened: a path no file can have is named as the setting it is
            if (followed.IsRunning<OssuaryServerOptions>(name ?? Options.DefaultName))
            {
                return; // a reload's: the running server reads the files, off this thread
            }

            IReadOnlyList<OssuaryPublicKey> fileKeys = options.AuthorizedKeysFile is { } file
                ? ReadKeyFile(options.Named(nameof(options.AuthorizedKeysFile)), () => OssuaryAuthorizedKeys.Load(file))
                : [];

            // With the file's keys given, the only file the plan reads is the identity key file.
            (HandshakePlan plan, OssuaryIdentity? generated) = ReadKeyFile(options.Named(nameof(options.IdentityKeyFile)), () =>
                (HandshakePlan.ForServer(options, fileKeys, out OssuaryIdentity? made), made));
            plan.ReleaseOwnIdentity();
            generated?.Dispose();
        });

    public ValidateOptionsResult Validate(string? name, OssuaryClientOptions options) =>
        Check(name, () =>
        {
            if (followed.IsRunning<OssuaryClientOptions>(name ?? Options.DefaultName))
            {
                options.Validate(); // as for a server: the running connection factory reads the key file itself
                return;
            }

            ReadKeyFile(options.Named(nameof(options.IdentityKeyFile)), () => HandshakePlan.ForClient(options)).ReleaseOwnIdentity();
        });

    /// <summary>
    /// The result of <paramref name="read"/>; a key file it cannot read is named by its setting too: the
    /// message named only the file, and the same file may be named in two sections (a server's Devices and
    /// Operators), or the path be a default the operator never wrote.
    /// </summary>
    private static T ReadKeyFile<T>(string setting, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{setting}: {ex.Message}", ex);
        }
    }

    private static ValidateOptionsResult Check(string? name, Action build)
    {
        try
        {
            build();
            return ValidateOptionsResult.Success;
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            // ArgumentException: whatever the file API refuses beyond what Validate names (it went past
            // this, and start-up failed with a message that named neither the options nor the setting).
            string which = string.IsNullOrEmpty(name) ? "The Ossuary options" : $"The Ossuary options '{name}'";
            return ValidateOptionsResult.Fail($"{which} are invalid: {ex.Message}");
        }
    }
}

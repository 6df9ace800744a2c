using Microsoft.Extensions.Options;
using Ossuary.Pipelines.Transport;
using Ossuary.Pipelines.Trust;

namespace Ossuary.Pipelines.Configuration;

/// <summary>
/// Validates Ossuary options as the handshake would (key files read and parsed included), so that
/// <c>ValidateOnStart</c> reports a misconfiguration at start-up with the message that says what to fix.
/// An authorized-keys file that a running server of the same options already follows is not read
/// (<see cref="FollowedKeyFiles"/>): its state must not block a change to the other settings. Nor is
/// the identity key file, when such a server already presents a key file's key: it goes on presenting
/// that key while the file the options name cannot be read (the one in force, or a new one not yet
/// copied into place), and a client key removed in the same change must still be refused.
/// </summary>
internal sealed class OssuaryOptionsValidator(FollowedKeyFiles followed) : IValidateOptions<OssuaryServerOptions>, IValidateOptions<OssuaryClientOptions>
{
    public ValidateOptionsResult Validate(string? name, OssuaryServerOptions options) =>
        Check(name, () =>
        {
            string named = name ?? Options.DefaultName;
            options.Validate(); // before any file is opened: a path no file can have is named as the setting it is
            IReadOnlyList<OssuaryPublicKey> fileKeys = options.AuthorizedKeysFile is { } file && !followed.IsFollowed<OssuaryServerOptions>(named, file)
                ? ReadKeyFile(options.Named(nameof(options.AuthorizedKeysFile)), () => OssuaryAuthorizedKeys.Load(file))
                : [];
            if (options.Identity is null && options.IdentityKeyFile is not null && followed.PresentsKeyFile<OssuaryServerOptions>(named))
            {
                return; // all the plan would check is checked but the key file, which the running server reads itself
            }

            // With the file's keys given, the only file the plan reads is the identity key file.
            (HandshakePlan plan, OssuaryIdentity? generated) = ReadKeyFile(options.Named(nameof(options.IdentityKeyFile)), () =>
            {
                RequireRegularOnReload<OssuaryServerOptions>(named, options.Identity is null ? options.IdentityKeyFile : null);
                return (HandshakePlan.ForServer(options, fileKeys, out OssuaryIdentity? made), made);
            });
            plan.ReleaseOwnIdentity();
            generated?.Dispose();
        });

    public ValidateOptionsResult Validate(string? name, OssuaryClientOptions options) =>
        Check(name, () =>
        {
            if (options.Identity is null && options.IdentityKeyFile is not null && followed.PresentsKeyFile<OssuaryClientOptions>(name ?? Options.DefaultName))
            {
                options.Validate(); // as for a server: the running connection factory reads the key file itself
                return;
            }

            ReadKeyFile(options.Named(nameof(options.IdentityKeyFile)), () =>
            {
                RequireRegularOnReload<OssuaryClientOptions>(name ?? Options.DefaultName, options.Identity is null ? options.IdentityKeyFile : null);
                return HandshakePlan.ForClient(options);
            }).ReleaseOwnIdentity();
        });

    /// <summary>
    /// On a reload (a server or connection factory of these options runs), <paramref name="keyFile"/> must be a
    /// regular file, as the running one requires (<see cref="Integrations.ReloadedKeyFile"/>): the validator runs
    /// on the configuration's reload thread, and a named pipe's open there waited for a writer for ever.
    /// </summary>
    private void RequireRegularOnReload<TOptions>(string name, string? keyFile)
    {
        if (followed.IsRunning<TOptions>(name))
        {
            Integrations.ReloadedKeyFile.Require(keyFile);
        }
    }

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

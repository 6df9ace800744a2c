using System.Runtime.InteropServices;
using Ossuary.Pipelines;

namespace Ossuary.Native;

internal static unsafe partial class OssuaryExports
{
    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_create_connection")]
    private static nint CreateConnection(int type, byte* secretKey)
    {
        CallingThread.MakeManagedId();
        OssuaryIdentity? identity = null;
        NativeConnection? created = null;
        try
        {
            if (type is not ((int)OssuaryRole.Client or (int)OssuaryRole.AuthenticatedServer or (int)OssuaryRole.UnauthenticatedServer))
            {
                return 0;
            }

            if (secretKey != null)
            {
                identity = OssuaryIdentity.FromSeed(new ReadOnlySpan<byte>(secretKey, KeySize));
            }

            created = new NativeConnection((OssuaryRole)type, identity);
            identity = null; // the connection owns it now
            return Register(created);
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_create_connection"u8, ex);
            // Nothing that failed to register can be reached again: its keys are wiped here.
            created?.Dispose();
            identity?.Dispose();
            return 0;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_destroy_connection")]
    private static void DestroyConnection(nint* connection)
    {
        CallingThread.MakeManagedId();
        try
        {
            if (connection == null || *connection == 0)
            {
                return;
            }

            NativeConnection? target = Unregister(*connection);
            *connection = 0;
            if (target is not null)
            {
                lock (target.Gate)
                {
                    target.Dispose();
                }
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_destroy_connection"u8, ex);
            // No value to return: the line on stderr is all the caller learns (the pointer is already cleared).
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_set_secret_key")]
    private static int SetSecretKey(nint connection, byte* secretKey)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || secretKey == null)
            {
                return ReturnCode.Other;
            }

            OssuaryIdentity identity = OssuaryIdentity.FromSeed(new ReadOnlySpan<byte>(secretKey, KeySize));
            lock (target.Gate)
            {
                return target.TrySetIdentity(identity) ? 0 : ReturnCode.Other;
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_set_secret_key"u8, ex);
            return ReturnCode.Other;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_add_authorized_key")]
    private static int AddAuthorizedKey(nint connection, byte* publicKey)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || publicKey == null)
            {
                return ReturnCode.Other;
            }

            var key = new OssuaryPublicKey(new ReadOnlySpan<byte>(publicKey, KeySize));
            lock (target.Gate)
            {
                target.AddAuthorizedKey(key);
            }

            return 0;
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_add_authorized_key"u8, ex);
            return ReturnCode.Other;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_add_authorized_keys")]
    private static int AddAuthorizedKeys(nint connection, byte** publicKeys, byte count)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || publicKeys == null)
            {
                return ReturnCode.Other;
            }

            // Every key is made first, then trusted in one step that adds all or none: a call that
            // returned -1 having trusted some of its keys left the caller unable to tell which.
            int added = 0;
            for (int i = 0; i < count; i++)
            {
                // libossuary skips NULL entries and counts only the keys it took.
                added += publicKeys[i] != null ? 1 : 0;
            }

            var keys = new OssuaryPublicKey[added];
            for (int i = 0, next = 0; i < count; i++)
            {
                if (publicKeys[i] != null)
                {
                    keys[next++] = new OssuaryPublicKey(new ReadOnlySpan<byte>(publicKeys[i], KeySize));
                }
            }

            lock (target.Gate)
            {
                target.AddAuthorizedKeys(keys);
            }

            return added;
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_add_authorized_keys"u8, ex);
            return ReturnCode.Other;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_remote_public_key")]
    private static int RemotePublicKey(nint connection, byte* buffer, ushort bufferLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || buffer == null || bufferLength < KeySize)
            {
                return ReturnCode.Other;
            }

            OssuaryPublicKey? key;
            lock (target.Gate)
            {
                key = target.RemotePublicKey;
            }

            if (key is null)
            {
                return ReturnCode.Other;
            }

            key.CopyTo(new Span<byte>(buffer, KeySize));
            return 0;
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_remote_public_key"u8, ex);
            return ReturnCode.Other;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_generate_auth_keypair")]
    private static int GenerateAuthKeypair(byte* secretBuffer, ushort secretLength, byte* publicBuffer, ushort publicLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            if (secretBuffer == null || publicBuffer == null || secretLength < KeySize || publicLength < KeySize)
            {
                return ReturnCode.Other;
            }

            using OssuaryIdentity identity = OssuaryIdentity.Generate();
            identity.CopySeedTo(new Span<byte>(secretBuffer, KeySize));
            identity.PublicKey.CopyTo(new Span<byte>(publicBuffer, KeySize));
            return 0;
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_generate_auth_keypair"u8, ex);
            return ReturnCode.Other;
        }
    }

    /// <summary>Not in libossuary 0.5's C API (its Rust API has it): ends the connection with a Disconnect packet.</summary>
    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_disconnect")]
    private static int Disconnect(nint connection, byte error)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null)
            {
                return ReturnCode.Other;
            }

            lock (target.Gate)
            {
                target.Disconnect(error != 0);
            }

            return 0;
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_disconnect"u8, ex);
            return ReturnCode.Other;
        }
    }
}

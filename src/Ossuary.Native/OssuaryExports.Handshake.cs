using System.Runtime.InteropServices;

namespace Ossuary.Native;

internal static unsafe partial class OssuaryExports
{
    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_recv_handshake")]
    private static int ReceiveHandshake(nint connection, byte* input, ushort* inputLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || input == null || inputLength == null)
            {
                return Refuse(inputLength);
            }

            lock (target.Gate)
            {
                int result = target.ReceiveHandshake(new ReadOnlySpan<byte>(input, *inputLength), out int consumed);
                *inputLength = (ushort)consumed;
                return result;
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_recv_handshake"u8, ex);
            return Refuse(inputLength);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_send_handshake")]
    private static int SendHandshake(nint connection, byte* output, ushort* outputLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || output == null || outputLength == null)
            {
                return Refuse(outputLength);
            }

            lock (target.Gate)
            {
                int result = target.SendHandshake(new Span<byte>(output, *outputLength), out int written);
                *outputLength = (ushort)written;
                if (target.TakeWithheldFailure() is { } withheld)
                {
                    InternalError.Report("ossuary_send_handshake"u8, withheld);
                }

                return result;
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_send_handshake"u8, ex);
            return Refuse(outputLength);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_handshake_done")]
    private static int HandshakeDone(nint connection)
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
                return target.HandshakeDone();
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_handshake_done"u8, ex);
            return ReturnCode.Other;
        }
    }

    /// <summary>-1, with an in/out length (when there is one) saying that nothing was consumed or written.</summary>
    private static int Refuse(ushort* length, ushort* other = null)
    {
        if (length != null)
        {
            *length = 0;
        }

        if (other != null)
        {
            *other = 0;
        }

        return ReturnCode.Other;
    }
}

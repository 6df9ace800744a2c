using System.Runtime.InteropServices;

namespace Ossuary.Native;

internal static unsafe partial class OssuaryExports
{
    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_send_data")]
    private static int SendData(nint connection, byte* input, ushort inputLength, byte* output, ushort* outputLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || input == null || output == null || outputLength == null)
            {
                return Refuse(outputLength);
            }

            lock (target.Gate)
            {
                int result = target.SendData(new ReadOnlySpan<byte>(input, inputLength), new Span<byte>(output, *outputLength), out int written);
                *outputLength = (ushort)written;
                return result;
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_send_data"u8, ex);
            return Refuse(outputLength);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_recv_data")]
    private static int ReceiveData(nint connection, byte* input, ushort* inputLength, byte* output, ushort* outputLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || input == null || inputLength == null || output == null || outputLength == null)
            {
                return Refuse(inputLength, outputLength);
            }

            lock (target.Gate)
            {
                int result = target.ReceiveData(
                    new ReadOnlySpan<byte>(input, *inputLength), out int consumed,
                    new Span<byte>(output, *outputLength), out int written);
                *inputLength = (ushort)consumed;
                *outputLength = (ushort)written;
                return result;
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_recv_data"u8, ex);
            return Refuse(inputLength, outputLength);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "dotnet_ossuary_flush")]
    private static int Flush(nint connection, byte* output, ushort outputLength)
    {
        CallingThread.MakeManagedId();
        try
        {
            NativeConnection? target = Resolve(connection);
            if (target is null || output == null)
            {
                return ReturnCode.Other;
            }

            lock (target.Gate)
            {
                return target.Flush(new Span<byte>(output, outputLength));
            }
        }
        catch (Exception ex)
        {
            InternalError.Report("ossuary_flush"u8, ex);
            return ReturnCode.Other;
        }
    }
}

using System.Runtime.InteropServices;

namespace Ossuary.Cli;

/// <summary>
/// read(2), write(2) and poll(2) on the standard descriptors, for <see cref="StdinStream"/> and
/// <see cref="StdoutStream"/>: a failure is the errno, and a descriptor that a parent made
/// non-blocking is waited on rather than failed.
/// </summary>
internal static partial class NativeStdio
{
    public const int Interrupted = 4; // EINTR, Linux and macOS
    /// <summary>EAGAIN: 11 on Linux, 35 on macOS and FreeBSD (where 11 is EDEADLK, a failure to report).</summary>
    public static readonly int WouldBlock = OperatingSystem.IsMacOS() || OperatingSystem.IsMacCatalyst() || OperatingSystem.IsFreeBSD() ? 35 : 11;
    public const short PollIn = 0x1;
    public const short PollOut = 0x4;

    /// <summary>Waits until <paramref name="descriptor"/> is ready for <paramref name="events"/> (or has failed, which the next call reports).</summary>
    public static void WaitUntilReady(int descriptor, short events)
    {
        var poll = new PollDescriptor { Descriptor = descriptor, Events = events };
        Poll(ref poll, 1, -1);
    }

    /// <summary>The system's message for <paramref name="error"/> as an <see cref="IOException"/> whose HResult is the errno.</summary>
    public static IOException Failure(int error) => new(Marshal.GetPInvokeErrorMessage(error), error);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int descriptor, Span<byte> buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int descriptor, ReadOnlySpan<byte> buffer, nint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(ref PollDescriptor descriptor, nuint count, int timeoutMilliseconds);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollDescriptor
    {
        public int Descriptor;
        public short Events;
        public short ReturnedEvents;
    }
}

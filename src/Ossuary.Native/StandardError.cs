using System.Runtime.InteropServices;

namespace Ossuary.Native;

/// <summary>Writes the library's reasons to descriptor 2: the only channel the C API has besides its return values.</summary>
/// <remarks>
/// With write(2), not Console: the first use of Console.Error sets up .NET's terminal handling,
/// which takes SIGINT, SIGQUIT and SIGCONT from the C program (the README's "Signals" names the
/// four signals the library takes, and these are not among them).
/// </remarks>
internal static unsafe partial class StandardError
{
    /// <summary>EINTR: a signal handler ran before the write had written anything.</summary>
    private const int Interrupted = 4;

    /// <summary>EAGAIN: stderr is non-blocking and has no room now.</summary>
    private const int WouldBlock = 11;

    /// <summary>POLLOUT: poll(2) returns once the descriptor can be written.</summary>
    private const short PollOut = 4;

    /// <summary>Writes <paramref name="line"/> (its newline included) whole, or as much as stderr takes.</summary>
    /// <remarks>
    /// A reason is written once, so a write a signal interrupts (EINTR: a handler of the program's
    /// without SA_RESTART while stderr is a full pipe) is made again, a short one goes on with the
    /// rest, and one that finds a non-blocking stderr full (EAGAIN: the program set O_NONBLOCK on
    /// it, a logger is behind) waits for room as a blocking stderr would; any other failure (no
    /// stderr) gives up: there is nowhere else to say it.
    /// </remarks>
    public static void WriteLine(ReadOnlySpan<byte> line)
    {
        fixed (byte* start = line)
        {
            for (int written = 0; written < line.Length;)
            {
                nint result = Write(2, start + written, (nuint)(line.Length - written));
                int error = result < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (error == Interrupted)
                {
                    continue;
                }

                if (error == WouldBlock)
                {
                    var room = new PollDescriptor { Descriptor = 2, Events = PollOut, ReturnedEvents = 0 };
                    if (Poll(&room, 1, -1) >= 0 || Marshal.GetLastPInvokeError() == Interrupted)
                    {
                        continue;
                    }

                    break;
                }

                if (result <= 0)
                {
                    break;
                }

                written += (int)result;
            }
        }
    }

    /// <summary>poll(2) of libc, bound directly (the project's DirectPInvoke): waits for room on a non-blocking stderr.</summary>
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollDescriptor* descriptors, nuint count, int timeout);

    /// <summary>write(2) of libc, bound directly (the project's DirectPInvoke).</summary>
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int descriptor, byte* buffer, nuint count);

    /// <summary>struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct PollDescriptor
    {
        public int Descriptor;
        public short Events;
        public short ReturnedEvents;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Ossuary.Native;

/// <summary>
/// Keeps fork() from copying a call in progress into the child: a pthread_atfork handler makes
/// fork wait until no other thread is inside a call of the C API, and holds calls that start
/// meanwhile until the fork is done, as glibc's malloc does with its arenas.
/// </summary>
/// <remarks>
/// fork() copies only the thread that calls it. A call under way on another thread holds its
/// connection's lock and runs managed code, so in the child that lock was held forever by a
/// thread that does not exist (the next call on the connection never returned), and the runtime
/// could be in the middle of a collection or an allocation of that thread. A program that forks
/// from one thread while others use the library (a server whose workers fork to run a command,
/// a pre-forking server with threads) met this in some of its children. Every export counts
/// itself in and out (<see cref="Enter"/>); the cost is two atomic operations per call.
/// </remarks>
internal static unsafe partial class ForkGate
{
    private const int NotSetUp = 0;
    private const int SettingUp = 1;
    private const int Ready = 2;

    /// <summary>Calls under way, each counted once on its thread (a nested one, from a signal handler, is not counted again).</summary>
    private static int s_callsInside;

    /// <summary>Forks under way (several threads may fork at once): while above zero, calls wait to start.</summary>
    private static int s_forks;

    /// <summary>
    /// The pthread key under which each thread keeps how deep it is in calls of the C API: 0 outside,
    /// 1 inside one, more when a signal handler called in again. Not a [ThreadStatic]: the fork
    /// handlers read it on whichever thread forks, often one that never called the library, and the
    /// runtime makes a thread's statics on the heap at their first use; with the heap full its
    /// out-of-memory path asks for them again, a collection each time, and fork() did not return. A
    /// key's value needs no memory of the heap's (glibc keeps the first 32 keys' values in the thread).
    /// </summary>
    private static uint s_depthKey;

    /// <summary>Set once <see cref="s_depthKey"/> exists (before the fork handlers are registered, which read it).</summary>
    private static volatile bool s_depthKept;

    /// <summary>Set once the fork handlers are registered: pthread_atfork has no way to take them back, so never twice.</summary>
    private static bool s_handlersRegistered;

    /// <summary><see cref="NotSetUp"/>, <see cref="SettingUp"/> (one thread is trying) or <see cref="Ready"/>.</summary>
    private static int s_state;

    private static int s_reported;

    /// <summary>Registers the fork handlers when the runtime starts, i.e. in the first call into the library.</summary>
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "This assembly is the application: NativeAOT compiles it into libossuary, and the handlers must be in place before the first connection exists.")]
    internal static void Install() => _ = IsSetUp();

    /// <summary>
    /// True once the fork handlers are registered; until then each call tries again, and the first
    /// failure is said on stderr. <c>ossuary_create_connection()</c> and
    /// <c>ossuary_generate_auth_keypair()</c> fail while it is false (ossuary.h): without the
    /// handlers a fork copies calls of other threads half-done into the child, whose next call on
    /// such a connection never returns, and it used to go on unprotected without a word.
    /// </summary>
    /// <remarks>
    /// Both steps fail only for want of something the program may free (pthread_key_create: EAGAIN,
    /// all PTHREAD_KEYS_MAX keys taken; pthread_atfork: ENOMEM), hence the retries. A thread that
    /// finds another one trying gets false rather than waiting: no lock, since a fork during the
    /// try would leave it held in the child.
    /// </remarks>
    public static bool IsSetUp()
    {
        if (Volatile.Read(ref s_state) == Ready)
        {
            return true;
        }

        if (Interlocked.CompareExchange(ref s_state, SettingUp, NotSetUp) != NotSetUp)
        {
            return Volatile.Read(ref s_state) == Ready;
        }

        string? failed = null;
        int error = 0;
        if (!s_depthKept)
        {
            uint key;
            error = KeyCreate(&key, null);
            if (error == 0)
            {
                s_depthKey = key;
                s_depthKept = true;
            }
            else
            {
                failed = "pthread_key_create";
            }
        }

        if (error == 0 && !s_handlersRegistered)
        {
            error = AtFork(&Prepare, &AfterInParent, &AfterInChild);
            s_handlersRegistered = error == 0;
            failed = error == 0 ? null : "pthread_atfork";
        }

        Volatile.Write(ref s_state, error == 0 ? Ready : NotSetUp);
        if (failed is not null)
        {
            Report(failed, error);
        }

        return error == 0;
    }

    /// <summary>This thread's depth in calls of the C API (see <see cref="s_depthKey"/>).</summary>
    private static nint Depth => s_depthKept ? (nint)GetSpecific(s_depthKey) : 0;

    /// <summary>Sets this thread's depth; false if it could not be kept (no key, or no memory for the thread's value of it).</summary>
    private static bool SetDepth(nint depth) =>
        s_depthKept && SetSpecific(s_depthKey, (void*)depth) == 0;

    /// <summary>Counts a call in, first waiting for any fork under way; dispose the result when the call returns.</summary>
    public static Call Enter()
    {
        nint depth = Depth;

        // A depth that could not be kept is not taken back either: a thread whose depth went below
        // zero would never count its calls again, and forks would stop waiting for them.
        bool kept = SetDepth(depth + 1);
        bool outermost = depth == 0;
        if (outermost)
        {
            while (true)
            {
                Interlocked.Increment(ref s_callsInside);
                if (Volatile.Read(ref s_forks) == 0)
                {
                    break;
                }

                // A fork began: step out of its way until it is done.
                Interlocked.Decrement(ref s_callsInside);
                while (Volatile.Read(ref s_forks) != 0)
                {
                    _ = SchedYield();
                }
            }

            MakeThreadId();
        }

        return new Call(outermost, kept);
    }

    /// <summary>
    /// Makes this thread's managed thread id, if it has none yet: an object on the heap, which the
    /// first lock the thread takes (the connection's, the session's) would otherwise make. Made in
    /// every call, not only in one that locks, so that the call ossuary.h asks a thread to make while
    /// there is room (ossuary_generate_auth_keypair(NULL, 0, NULL, 0), which takes no lock) makes all the thread needs:
    /// with only the thread's storage made, that thread's next call met the full heap at its lock
    /// and returned -1.
    /// </summary>
    private static void MakeThreadId()
    {
        try
        {
            // A read of a thread static once the id exists.
            _ = Environment.CurrentManagedThreadId;
        }
        catch (OutOfMemoryException)
        {
            // Outside the export's try: the call goes on, and its lock, which needs the id, fails it with -1.
        }
    }

    /// <summary>Before fork(): wait for the calls of other threads to end; new ones wait in <see cref="Enter"/>.</summary>
    [UnmanagedCallersOnly]
    private static void Prepare()
    {
        Interlocked.Increment(ref s_forks);

        // A signal handler that forks while its thread is inside a call cannot wait for that call.
        int own = Depth > 0 ? 1 : 0;
        while (Volatile.Read(ref s_callsInside) > own)
        {
            // A P/Invoke: the runtime may collect garbage while this thread waits for a call that allocates.
            _ = SchedYield();
        }
    }

    [UnmanagedCallersOnly]
    private static void AfterInParent() => Interlocked.Decrement(ref s_forks);

    /// <summary>The child has only this thread: no other call is under way, and no other fork.</summary>
    [UnmanagedCallersOnly]
    private static void AfterInChild()
    {
        Volatile.Write(ref s_callsInside, Depth > 0 ? 1 : 0);
        Volatile.Write(ref s_forks, 0);
    }

    /// <summary>Says once per process on stderr that the fork handlers could not be set up, and what the calls do meanwhile.</summary>
    private static void Report(string function, int error)
    {
        if (Interlocked.Exchange(ref s_reported, 1) != 0)
        {
            return;
        }

        try
        {
            StandardError.WriteLine(Encoding.UTF8.GetBytes(
                $"libossuary: cannot protect calls from fork(): {function} failed ({Marshal.GetPInvokeErrorMessage(error)}); "
                + "ossuary_create_connection() returns NULL and ossuary_generate_auth_keypair() -1 until it succeeds.\n"));
        }
        catch (OutOfMemoryException)
        {
            // No memory for the line: nowhere else to say it, and the calls still fail closed.
        }
    }

    [LibraryImport("libc", EntryPoint = "pthread_atfork")]
    private static partial int AtFork(delegate* unmanaged<void> prepare, delegate* unmanaged<void> parent, delegate* unmanaged<void> child);

    [LibraryImport("libc", EntryPoint = "pthread_key_create")]
    private static partial int KeyCreate(uint* key, delegate* unmanaged<void*, void> destructor);

    [LibraryImport("libc", EntryPoint = "pthread_getspecific")]
    [SuppressGCTransition]
    private static partial void* GetSpecific(uint key);

    [LibraryImport("libc", EntryPoint = "pthread_setspecific")]
    [SuppressGCTransition]
    private static partial int SetSpecific(uint key, void* value);

    [LibraryImport("libc", EntryPoint = "sched_yield")]
    private static partial int SchedYield();

    /// <summary>One call counted in by <see cref="Enter"/>: <c>using</c> it counts the call out.</summary>
    public readonly ref struct Call(bool outermost, bool depthKept)
    {
        private readonly bool _outermost = outermost;
        private readonly bool _depthKept = depthKept;

        public void Dispose()
        {
            if (_depthKept)
            {
                _ = SetDepth(Depth - 1);
            }

            if (_outermost)
            {
                Interlocked.Decrement(ref s_callsInside);
            }
        }
    }
}

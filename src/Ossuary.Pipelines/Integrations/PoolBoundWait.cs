namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// How <see cref="OssuaryStream"/>'s synchronous members wait for the connection's work, which runs on the thread
/// pool: a wait that sees the pool make no progress for <see cref="StarvedLimit"/>, every thread it may have busy and
/// work queued, throws <see cref="InvalidOperationException"/> saying so. Such a wait could never return (each pool
/// thread blocked in one, none left to run what would end it), and hung without a word.
/// </summary>
/// <remarks>
/// A synchronous path on the caller's thread, as <c>SslStream</c> has, would be a second transport path beside the
/// connection's loops; this only makes the documented limit (keep one pool thread free) fail loudly.
/// </remarks>
internal static class PoolBoundWait
{
    // Between looks at the pool: a wait that ends sooner costs one Task.Wait, as GetResult did.
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(250);

    /// <summary>How long the pool may stay starved under a wait before it throws; tests shorten it.</summary>
    internal static TimeSpan StarvedLimit { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The task's result, once it has one; throws if the pool starves first (the task is then left running).</summary>
    public static T Result<T>(Task<T> task, string member)
    {
        Wait(task, member);
        return task.GetAwaiter().GetResult();
    }

    /// <inheritdoc cref="Result{T}(Task{T}, string)"/>
    public static void Result(Task task, string member)
    {
        Wait(task, member);
        task.GetAwaiter().GetResult();
    }

    private static void Wait(Task task, string member)
    {
        long completedBefore = ThreadPool.CompletedWorkItemCount;
        TimeSpan starved = TimeSpan.Zero;
        while (!WaitSlice(task))
        {
            long completed = ThreadPool.CompletedWorkItemCount;
            ThreadPool.GetMaxThreads(out int maxThreads, out _);
            long pending = ThreadPool.PendingWorkItemCount;
            bool noFreeThread = pending > 0 && completed == completedBefore && ThreadPool.ThreadCount >= maxThreads;
            completedBefore = completed;
            starved = noFreeThread ? starved + Slice : TimeSpan.Zero;
            if (starved >= StarvedLimit)
            {
                throw new InvalidOperationException(
                    $"OssuaryStream.{member} waited {starved.TotalSeconds:0.#} s for the connection's work, which runs on the thread pool, while the pool "
                    + $"had no free thread to run it (all {maxThreads} threads busy, {pending} work items queued, none done): it could not have returned. "
                    + "Keep at least one thread of a capped pool free of synchronous OssuaryStream calls, or use the asynchronous members. "
                    + $"The {member} is left pending and may still complete; dispose the stream.");
            }
        }
    }

    /// <summary>True once the task has ended, whichever way (its result or exception is read by the caller).</summary>
    private static bool WaitSlice(Task task)
    {
        try
        {
            return task.Wait(Slice);
        }
        catch (AggregateException)
        {
            return true;
        }
    }
}

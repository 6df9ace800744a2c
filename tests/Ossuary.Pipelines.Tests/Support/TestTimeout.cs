namespace Ossuary.Pipelines.Tests.Support;

/// <summary>Hard upper bounds so that a broken transport fails a test instead of hanging the run.</summary>
internal static class TestTimeout
{
    /// <summary>The bound on a whole test (or one awaited step of it).</summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30);

    public static Task Within(this Task task, TimeSpan? limit = null) => task.WaitAsync(limit ?? Default);

    public static Task<T> Within<T>(this Task<T> task, TimeSpan? limit = null) => task.WaitAsync(limit ?? Default);

    public static Task<T> Within<T>(this ValueTask<T> task, TimeSpan? limit = null) => task.AsTask().WaitAsync(limit ?? Default);

    public static Task Within(this ValueTask task, TimeSpan? limit = null) => task.AsTask().WaitAsync(limit ?? Default);
}

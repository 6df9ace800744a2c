namespace Ossuary.Cli;

/// <summary>
/// How a failure none of the tool's handlers expected (a bug of ours) is said: in one line, as every
/// failure is (never a stack trace), but with what a bug report needs and a message alone loses, the
/// exception's type and those of its inner exceptions ("Object reference not set to an instance of
/// an object" says nothing of where it came from; "NullReferenceException" at least says what broke).
/// </summary>
internal static class UnexpectedError
{
    public static string Describe(Exception ex)
    {
        string said = $"unexpected error ({ex.GetType().FullName}): {ex.Message}";
        for (Exception? inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            said += $" <- ({inner.GetType().FullName}): {inner.Message}";
        }

        return said;
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ossuary.Pipelines.Integrations;

/// <summary>
/// Ends something with a host's services when nothing of the library's is registered with them
/// (<c>UseOssuary(options)</c> without <c>AddOssuaryServer</c>): a provider added to the host's
/// logger factory, which the services dispose with themselves, and which disposes the providers
/// added to it. A host that fails to start never stops, so its stop cannot end what its listeners
/// started; its disposal can. The provider writes nothing.
/// </summary>
internal sealed class DisposedWithLoggerFactory(IDisposable owned) : ILoggerProvider
{
    /// <summary>
    /// Ties <paramref name="owned"/> to <paramref name="services"/>' logger factory; false if they have none
    /// or it is disposed already (the caller then disposes it, or leaves it to the process).
    /// </summary>
    public static bool Attach(IServiceProvider services, IDisposable owned)
    {
        if (services.GetService(typeof(ILoggerFactory)) is not ILoggerFactory loggers)
        {
            return false;
        }

        try
        {
            loggers.AddProvider(new DisposedWithLoggerFactory(owned));
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public ILogger CreateLogger(string categoryName) => NullLogger.Instance;

    public void Dispose() => owned.Dispose();
}

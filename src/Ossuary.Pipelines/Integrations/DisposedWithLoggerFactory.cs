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
    /// Ties <paramref name="owned"/> to <paramref name="services"/>' logger factory. False if that factory
    /// is disposed already (so are the services: the caller disposes <paramref name="owned"/> now); null if
    /// it cannot be tied (no logger factory, or one of another library that does not take providers):
    /// <paramref name="owned"/> then ends with the host's stop, as before.
    /// </summary>
    public static bool? Attach(IServiceProvider services, IDisposable owned)
    {
        if (services.GetService(typeof(ILoggerFactory)) is not ILoggerFactory loggers)
        {
            return null;
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
        catch (Exception ex) when (ex is NotSupportedException or NotImplementedException or InvalidOperationException)
        {
            // A factory that refuses providers (some logging libraries' own) must not fail UseOssuary.
            return null;
        }
    }

    public ILogger CreateLogger(string categoryName) => NullLogger.Instance;

    public void Dispose() => owned.Dispose();
}

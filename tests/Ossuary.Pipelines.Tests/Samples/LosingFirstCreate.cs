using System.Reflection;
using System.Runtime.ExceptionServices;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// A JetStream context whose first stream create loses a race: another caller's create reaches the
/// (real) server first, and this one gets what nats-server answers the loser. Every other call goes
/// to the real context.
/// </summary>
public class LosingFirstCreate : DispatchProxy
{
    private INatsJSContext _inner = null!;
    private int _creates;

    public static INatsJSContext Wrap(INatsJSContext inner)
    {
        INatsJSContext proxy = Create<INatsJSContext, LosingFirstCreate>();
        ((LosingFirstCreate)(object)proxy)._inner = inner;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        if (targetMethod!.Name is nameof(INatsJSContext.CreateStreamAsync) or nameof(INatsJSContext.CreateOrUpdateStreamAsync) && Interlocked.Increment(ref _creates) == 1)
        {
#pragma warning disable CA2012 // a proxy hands the ValueTask back boxed; its caller awaits it once
            return LoseAsync((StreamConfig)args![0]!, (CancellationToken)args[1]!);
#pragma warning restore CA2012
        }

        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(ex.InnerException);
            throw;
        }
    }

    private async ValueTask<INatsJSStream> LoseAsync(StreamConfig config, CancellationToken cancellationToken)
    {
        await _inner.CreateStreamAsync(config, cancellationToken); // the winner
        throw new NatsJSApiException(new ApiError { Code = 400, ErrCode = 10065, Description = "subjects overlap with an existing stream" });
    }
}

using System.Buffers;

namespace Ossuary.Pipelines.Tests.Vectors;

/// <summary>
/// One direction's byte stream as its receiver sees it in a <see cref="TamperReplayer"/> run, remembering
/// where each recorded packet started so a Receive call can be matched to the packet it read.
/// </summary>
internal sealed class TamperInbox
{
    private readonly Dictionary<long, int> _recordedStarts = [];
    private byte[] _pending = [];
    private long _position;
    private long _waitLoggedAt = -1;

    public int Length => _pending.Length;

    public ReadOnlySequence<byte> Pending => new(_pending);

    public int? FrontPacket => _recordedStarts.TryGetValue(_position, out int index) ? index : null;

    public void Append(byte[] bytes, int? index)
    {
        if (index is int i)
        {
            _recordedStarts[_position + _pending.Length] = i;
        }

        _pending = [.. _pending, .. bytes];
    }

    public void Consume(int count)
    {
        _pending = _pending[count..];
        _position += count;
    }

    public bool MarkWaitLogged()
    {
        if (_waitLoggedAt == _position)
        {
            return false;
        }

        _waitLoggedAt = _position;
        return true;
    }
}

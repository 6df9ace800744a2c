using System.Text;
using Ossuary.Samples.Telemetry.JetStream;
using Ossuary.Samples.Telemetry.Storage;

namespace Ossuary.Pipelines.Tests.Samples;

/// <summary>
/// What consume takes off the readings' subjects names its device by a key as a node writes it, 64
/// lower-case hexadecimal characters, or it is not a reading: it is held in the stream (event 1710)
/// instead of stored. Any 64 characters were stored as a device: an escape sequence that <c>query</c>
/// then printed raw to the operator's terminal, or a key in capitals, a second device apart from the
/// real one, which <c>query --device</c> (lower-casing what it is given) could not even name.
/// </summary>
public sealed class ReadingMessageTests
{
    private static readonly string Device = new('a', 64);

    [Theory]
    [InlineData("\u001b]0;owned\u0007\u001b[2J")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")]
    public void AMessageWhoseDeviceIsNotAKeyAsNodesWriteItIsNotAReading(string device)
    {
        string field = device.PadRight(64, 'a');
        Assert.Equal(64, field.Length);
        byte[] message = Encoding.UTF8.GetBytes($"{field} 1 1718000000000 21.5 temp");

        Assert.Throws<FormatException>(() => ReadingMessage.Decode(message, null));
    }

    [Fact]
    public void AReadingANodeEncodesDecodesAsItWas()
    {
        var reading = new StoredReading(Device, 42, "temp", 21.5, 1718000000000);

        Assert.Equal(reading, ReadingMessage.Decode(ReadingMessage.Encode(reading), ReadingMessage.MessageId(reading)));
    }
}

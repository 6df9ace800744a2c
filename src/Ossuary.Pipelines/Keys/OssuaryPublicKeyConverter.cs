using System.ComponentModel;
using System.Globalization;

namespace Ossuary.Pipelines;

/// <summary>
/// Converts <see cref="OssuaryPublicKey"/> from and to 64 hex characters, for configuration
/// binding and anything else that goes through <see cref="TypeDescriptor"/>. A malformed key
/// throws: a typo in an allow-list must stop start-up, not silently admit fewer clients.
/// </summary>
public sealed class OssuaryPublicKeyConverter : TypeConverter
{
    /// <inheritdoc />
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    /// <inheritdoc />
    public override bool CanConvertTo(ITypeDescriptorContext? context, Type? destinationType) =>
        destinationType == typeof(string) || base.CanConvertTo(context, destinationType);

    /// <inheritdoc />
    /// <exception cref="FormatException">The text is not 64 hex characters.</exception>
    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string text ? OssuaryPublicKey.Parse(text, CultureInfo.InvariantCulture) : base.ConvertFrom(context, culture, value);

    /// <inheritdoc />
    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType) =>
        destinationType == typeof(string) && value is OssuaryPublicKey key ? key.ToString() : base.ConvertTo(context, culture, value, destinationType);
}

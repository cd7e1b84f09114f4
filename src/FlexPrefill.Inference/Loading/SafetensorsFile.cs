using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Loading;

/// <summary>Where one tensor lies in a safetensors file.</summary>
/// <param name="Name">Checkpoint key.</param>
/// <param name="DType">Stored dtype as written in the header (F32, BF16, F16, …).</param>
/// <param name="Shape">Stored shape.</param>
/// <param name="Offset">Absolute byte offset of the data in the file.</param>
/// <param name="Length">Bytes of data.</param>
internal sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Offset, long Length);

/// <summary>
/// One .safetensors file: an 8-byte little-endian header length, a JSON header, then raw little-endian tensor data.
/// The header is validated on open; tensors are read on demand straight into a tensor's memory.
/// </summary>
internal sealed class SafetensorsFile : IDisposable
{
    const long MaxHeaderBytes = 100L << 20;
    readonly SafeFileHandle _handle;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

    SafetensorsFile(string path, SafeFileHandle handle, Dictionary<string, SafetensorsEntry> entries)
    {
        Path = path;
        _handle = handle;
        Entries = entries;
    }

    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found");
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try { return new SafetensorsFile(path, handle, ReadHeader(path, handle)); }
        catch { handle.Dispose(); throw; }
    }

    static Dictionary<string, SafetensorsEntry> ReadHeader(string path, SafeFileHandle handle)
    {
        long fileLength = RandomAccess.GetLength(handle);
        Span<byte> prefix = stackalloc byte[8];
        if (fileLength < 8 || RandomAccess.Read(handle, prefix, 0) != 8)
            throw Corrupt(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > fileLength)
            throw Corrupt(path, $"header length {headerLength} does not fit the file's {fileLength} bytes");

        byte[] header = new byte[headerLength];
        if (RandomAccess.Read(handle, header, 8) != headerLength) throw Corrupt(path, "the header is truncated");
        long dataStart = 8 + headerLength, dataLength = fileLength - dataStart;

        var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(path, "the header is not a JSON object");
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__") continue;
                var e = property.Value;
                string dtype = e.GetProperty("dtype").GetString() ?? throw Corrupt(path, $"tensor {property.Name} has no dtype");
                long[] shape = e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                long[] offsets = e.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                    throw Corrupt(path, $"tensor {property.Name} has data_offsets [{string.Join(", ", offsets)}] outside the {dataLength} data bytes");
                if (shape.Any(d => d < 0)) throw Corrupt(path, $"tensor {property.Name} has a negative dimension");
                long length = offsets[1] - offsets[0];
                if (ElementSize(dtype) is int size && length != shape.Aggregate(1L, (a, b) => a * b) * size)
                    throw Corrupt(path, $"tensor {property.Name} ({dtype} [{string.Join(", ", shape)}]) has {length} bytes of data");
                entries[property.Name] = new SafetensorsEntry(property.Name, dtype, shape, dataStart + offsets[0], length);
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Corrupt(path, e.Message, e);
        }
        return entries;
    }

    static ModelLoadException Corrupt(string path, string why, Exception? inner = null) =>
        new($"{path}: corrupt safetensors header: {why}", inner);

    /// <summary>Bytes per element of a safetensors dtype; null for dtypes this loader does not convert.</summary>
    public static int? ElementSize(string dtype) => dtype switch
    {
        "F32" => 4,
        "BF16" or "F16" => 2,
        "F64" or "I64" or "U64" => 8,
        "I32" or "U32" => 4,
        "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };

    /// <summary>The torch dtype of a stored dtype this loader reads.</summary>
    public static ScalarType? TorchType(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32,
        "BF16" => ScalarType.BFloat16,
        "F16" => ScalarType.Float16,
        _ => null,
    };

    /// <summary>Reads the entry's bytes into <paramref name="destination"/> (contiguous CPU tensor of the stored dtype and size).</summary>
    public void ReadInto(SafetensorsEntry entry, Tensor destination)
    {
        long elementSize = destination.element_size();
        long elementsPerChunk = (1L << 30) / elementSize; // Span lengths are int: fill in chunks of 1 GiB
        using var flat = destination.view(-1);
        long total = flat.shape[0];
        for (long start = 0; start < total; start += elementsPerChunk)
        {
            long count = Math.Min(elementsPerChunk, total - start);
            using var chunk = flat.narrow(0, start, count);
            Span<byte> span = chunk.bytes;
            long offset = entry.Offset + start * elementSize;
            while (span.Length > 0)
            {
                int read = RandomAccess.Read(_handle, span, offset);
                if (read <= 0) throw new ModelLoadException($"{Path}: tensor {entry.Name}: the file ended before its data");
                span = span[read..];
                offset += read;
            }
        }
    }

    public void Dispose() => _handle.Dispose();
}

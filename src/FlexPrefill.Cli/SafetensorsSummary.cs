using System.Buffers.Binary;
using System.Text.Json;

namespace FlexPrefill.Cli;

/// <summary>Tensor count, parameter count and stored dtypes of a model folder, read from the safetensors headers only
/// (a few KB per file; the weights are not touched, so inspecting an 8B model is instant).</summary>
sealed record SafetensorsSummary(IReadOnlyList<string> Files, long Tensors, long Parameters, IReadOnlyDictionary<string, long> ParametersByDType)
{
    public static SafetensorsSummary Read(string directory)
    {
        var files = Directory.GetFiles(directory, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new InvalidOperationException($"{directory} has no *.safetensors file");
        long tensors = 0, parameters = 0;
        var byDType = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            foreach (var (dtype, count) in ReadHeader(Path.Combine(directory, file!)))
            {
                tensors++;
                parameters += count;
                byDType[dtype] = byDType.GetValueOrDefault(dtype) + count;
            }
        }
        return new SafetensorsSummary(files!, tensors, parameters, byDType);
    }

    /// <summary>(dtype, element count) of every tensor in one file's header.</summary>
    static IEnumerable<(string DType, long Count)> ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        if (stream.Read(prefix) != 8)
            throw new InvalidDataException($"{path}: shorter than a safetensors header");
        var length = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (length == 0 || length > 100_000_000 || (long)length > stream.Length - 8)
            throw new InvalidDataException($"{path}: corrupt safetensors header (length {length})");
        var header = new byte[length];
        stream.ReadExactly(header);
        using var doc = JsonDocument.Parse(header);
        var result = new List<(string, long)>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var count = 1L;
            foreach (var d in entry.Value.GetProperty("shape").EnumerateArray()) count *= d.GetInt64();
            result.Add((entry.Value.GetProperty("dtype").GetString() ?? "?", count));
        }
        return result;
    }
}

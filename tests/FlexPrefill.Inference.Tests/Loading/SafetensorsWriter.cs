using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Loading;

/// <summary>Writes safetensors files from tests: the format is 8 bytes of header length, a JSON header, raw data.</summary>
public static class SafetensorsWriter
{
    public static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float16 => "F16",
        ScalarType.Int8 => "I8",
        ScalarType.Int64 => "I64",
        _ => throw new ArgumentException($"no safetensors name for {t}"),
    };

    public static void Write(string path, IEnumerable<(string Name, Tensor Value)> tensors)
    {
        var header = new Dictionary<string, object>();
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, value) in tensors)
        {
            using var contiguous = value.contiguous().cpu();
            byte[] bytes = contiguous.bytes.ToArray();
            header[name] = new { dtype = DTypeName(value.dtype), shape = value.shape, data_offsets = new[] { offset, offset + bytes.Length } };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        header["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" };
        WriteRaw(path, JsonSerializer.Serialize(header), blobs.SelectMany(b => b).ToArray());
    }

    /// <summary>A file with the given header text and data, for malformed cases.</summary>
    public static void WriteRaw(string path, string headerJson, byte[] data, long? declaredHeaderLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(headerJson);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)(declaredHeaderLength ?? json.Length)));
        f.Write(json);
        f.Write(data);
    }
}

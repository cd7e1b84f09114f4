using System.Text.Json;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Loading;

/// <summary>
/// The weights of a model folder: model.safetensors, or the shards listed by model.safetensors.index.json.
/// Each tensor is read into an empty CPU tensor of its stored dtype, converted, and moved to the device one at a time,
/// so the model is never held twice in memory.
/// </summary>
internal sealed class Checkpoint : IDisposable
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    readonly Dictionary<string, SafetensorsFile> _byTensor;
    readonly List<SafetensorsFile> _files;

    public string Directory { get; }

    Checkpoint(string directory, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> byTensor)
    {
        Directory = directory;
        _files = files;
        _byTensor = byTensor;
    }

    /// <summary>Every tensor key in the checkpoint.</summary>
    public IEnumerable<string> Keys => _byTensor.Keys;

    public bool Contains(string key) => _byTensor.ContainsKey(key);

    public static Checkpoint Open(string directory)
    {
        string single = Path.Combine(directory, SingleFile), index = Path.Combine(directory, IndexFile);
        var files = new List<SafetensorsFile>();
        var byTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(index))
            {
                foreach (var group in ReadIndex(index).GroupBy(p => p.Value, p => p.Key))
                {
                    string shardPath = Path.Combine(directory, group.Key);
                    if (!File.Exists(shardPath))
                        throw new ModelLoadException($"{index}: shard {group.Key} (holding {group.First()}) not found in {directory}");
                    var shard = SafetensorsFile.Open(shardPath);
                    files.Add(shard);
                    foreach (string key in group)
                    {
                        if (!shard.Entries.ContainsKey(key))
                            throw new ModelLoadException($"{shardPath}: tensor {key} is listed in {IndexFile} but not in the shard");
                        byTensor[key] = shard;
                    }
                }
            }
            else if (File.Exists(single))
            {
                var file = SafetensorsFile.Open(single);
                files.Add(file);
                foreach (string key in file.Entries.Keys) byTensor[key] = file;
            }
            else
            {
                throw new ModelLoadException($"{directory}: no {SingleFile} or {IndexFile} (only safetensors weights are supported)");
            }
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return new Checkpoint(directory, files, byTensor);
    }

    static Dictionary<string, string> ReadIndex(string index)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            return doc.RootElement.GetProperty("weight_map").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetString() ?? throw new JsonException($"weight_map[{p.Name}] is not a file name"), StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelLoadException($"{index}: not a valid index ({e.Message}); expected {{\"weight_map\": {{tensor: shard file}}}}", e);
        }
    }

    /// <summary>
    /// Reads tensor <paramref name="key"/>, checks its shape, converts it to <paramref name="dtype"/> and places it on
    /// <paramref name="device"/>. The result belongs to no dispose scope.
    /// </summary>
    public Tensor Read(string key, long[] expectedShape, ScalarType dtype, Device device)
    {
        if (!_byTensor.TryGetValue(key, out var file))
            throw new ModelLoadException($"{Directory}: tensor {key} not found in {string.Join(", ", _files.Select(f => Path.GetFileName(f.Path)))} (expected shape [{string.Join(", ", expectedShape)}])");
        var entry = file.Entries[key];
        if (!entry.Shape.SequenceEqual(expectedShape))
            throw new ModelLoadException($"{file.Path}: tensor {key} has shape [{string.Join(", ", entry.Shape)}]; the config expects [{string.Join(", ", expectedShape)}]");
        ScalarType stored = SafetensorsFile.TorchType(entry.DType)
            ?? throw new ModelLoadException($"{file.Path}: tensor {key} is stored as {entry.DType}; supported: F32, BF16, F16");

        using var scope = NewDisposeScope();
        Tensor cpu = empty(expectedShape, stored);
        file.ReadInto(entry, cpu);
        // Move in the stored dtype, then convert where the tensor will live (on a GPU that is also the fast place).
        Tensor placed = device.type == TorchSharp.DeviceType.CPU ? cpu : cpu.to(device);
        Tensor result = placed.dtype == dtype ? placed : placed.to(dtype);
        return result.DetachFromDisposeScope();
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Loading;

/// <summary>Hands each module its tensors by checkpoint key, in the model's dtype and on its device.</summary>
internal interface IWeightSource
{
    /// <summary>The tensor stored under <paramref name="key"/>, of shape <paramref name="shape"/>, outside any dispose scope.</summary>
    Tensor Take(string key, long[] shape);
}

/// <summary>Weights from a model folder's safetensors, found through <see cref="KeyRemap.CheckpointKey"/>.</summary>
internal sealed class CheckpointWeights(Checkpoint checkpoint, ScalarType dtype, Device device) : IWeightSource
{
    readonly HashSet<string> _taken = new(StringComparer.Ordinal);

    public Tensor Take(string key, long[] shape)
    {
        string stored = KeyRemap.CheckpointKey(key, checkpoint.Contains);
        _taken.Add(stored);
        return checkpoint.Read(stored, shape, dtype, device);
    }

    /// <summary>Checkpoint keys no module asked for (rotary caches and the like are expected; weights are not).</summary>
    public IEnumerable<string> Unused => checkpoint.Keys.Where(k => !_taken.Contains(k));
}

/// <summary>
/// Random weights for benchmarks and tests: normal(0, std) matrices, unit norm weights, seeded. Drawn on the target
/// device (an 8B model's weights take about a second on a GPU, a minute on one CPU thread); the same seed gives the
/// same weights on the same kind of device, not across kinds. On the CPU the draws come from a generator of their
/// own; on CUDA from the device's default generator, seeded here (TorchSharp 0.107's Generator(seed, device) is a
/// CPU generator whatever the device, which CUDA's randn refuses).
/// </summary>
internal sealed class RandomWeights : IWeightSource
{
    readonly ScalarType _dtype;
    readonly Device _device;
    readonly double _std;
    readonly Generator? _generator;

    public RandomWeights(long seed, ScalarType dtype, Device device, double std = 0.02)
    {
        (_dtype, _device, _std) = (dtype, device, std);
        if (device.type == DeviceType.CPU) _generator = new Generator((ulong)seed, device);
        else random.manual_seed(seed);
    }

    /// <summary>The standard deviation of the matrices.</summary>
    public double Std => _std;

    public Tensor Take(string key, long[] shape)
    {
        using var scope = NewDisposeScope();
        Tensor t = key.EndsWith("norm.weight", StringComparison.Ordinal) ? ones(shape, _dtype, _device) : Normal(shape).to(_dtype);
        return t.DetachFromDisposeScope();
    }

    /// <summary>The next normal(0, std) draw of <paramref name="shape"/>, float32 on the device: what <see cref="Take"/>
    /// returns for a matrix before the cast to the model's dtype.</summary>
    public Tensor Normal(long[] shape) => randn(shape, ScalarType.Float32, _device, generator: _generator).mul_(_std);
}

/// <summary>The one place where a model key becomes a checkpoint key.</summary>
internal static class KeyRemap
{
    /// <summary>
    /// The stored name of the model's <paramref name="modelKey"/> (e.g. model.layers.0.self_attn.q_proj.weight): the
    /// same key, or the key without its "model." prefix as a bare decoder (LlamaModel, Qwen2Model) saves it.
    /// A key found in neither form is returned unchanged, so the reader's error names what the model expected.
    /// </summary>
    public static string CheckpointKey(string modelKey, Func<string, bool> exists)
    {
        if (exists(modelKey)) return modelKey;
        const string prefix = "model.";
        if (modelKey.StartsWith(prefix, StringComparison.Ordinal) && exists(modelKey[prefix.Length..])) return modelKey[prefix.Length..];
        return modelKey;
    }
}

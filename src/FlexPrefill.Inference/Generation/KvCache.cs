using FlexPrefill.Inference.Models;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Generation;

/// <summary>
/// Keys and values of every layer, preallocated for one request: per layer [B, Hkv, capacity, D]. Steps write into it
/// in place; <see cref="Length"/> counts the positions whose entries are complete in every layer.
/// </summary>
internal sealed class KvCache : IDisposable
{
    readonly Tensor[] _keys, _values;

    public KvCache(ModelConfig config, int batch, int capacity, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _keys = new Tensor[config.NumLayers];
        _values = new Tensor[config.NumLayers];
        long[] shape = [batch, config.NumKvHeads, capacity, config.HeadDim];
        for (int i = 0; i < config.NumLayers; i++)
        {
            _keys[i] = empty(shape, dtype, device).DetachFromDisposeScope();
            _values[i] = empty(shape, dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions whose keys and values are written in every layer.</summary>
    public int Length { get; set; }

    /// <summary>Bytes held on the device.</summary>
    public long Bytes => _keys.Sum(k => k.NumberOfElements * k.ElementSize) * 2;

    /// <summary>
    /// Writes k, v [B, Hkv, S, D] at positions start … start + S - 1 of <paramref name="layer"/> and returns views of
    /// every key and value so far, [B, Hkv, start + S, D]. The views belong to the caller's dispose scope.
    /// </summary>
    public (Tensor Keys, Tensor Values) Write(int layer, Tensor k, Tensor v, long start)
    {
        long s = k.size(2);
        if (start + s > Capacity)
            throw new InvalidOperationException($"the KV cache holds {Capacity} positions; writing {s} at {start} overflows it");
        _keys[layer].narrow(2, start, s).copy_(k);
        _values[layer].narrow(2, start, s).copy_(v);
        return (_keys[layer].narrow(2, 0, start + s), _values[layer].narrow(2, 0, start + s));
    }

    /// <summary>Copies the first <paramref name="length"/> positions of <paramref name="source"/> into this cache.</summary>
    public void CopyPrefixFrom(KvCache source, int length)
    {
        if (length > Capacity || length > source.Length)
            throw new InvalidOperationException($"cannot copy {length} positions: source has {source.Length}, capacity {Capacity}");
        using var scope = NewDisposeScope();
        for (int i = 0; i < _keys.Length; i++)
        {
            _keys[i].narrow(2, 0, length).copy_(source._keys[i].narrow(2, 0, length));
            _values[i].narrow(2, 0, length).copy_(source._values[i].narrow(2, 0, length));
        }
        Length = length;
    }

    /// <summary>A cache of exactly <see cref="Length"/> positions holding a copy of these entries (for the prefix cache).</summary>
    public KvCache Compact(ModelConfig config)
    {
        var copy = new KvCache(config, (int)_keys[0].shape[0], Math.Max(1, Length), _keys[0].dtype, _keys[0].device);
        copy.CopyPrefixFrom(this, Length);
        return copy;
    }

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}

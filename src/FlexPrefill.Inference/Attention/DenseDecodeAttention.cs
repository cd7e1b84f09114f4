using static TorchSharp.torch;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// Decode attention as two matmuls on the KV cache, the managed default on every device: the G = Hq / Hkv query heads
/// of a KV head are stacked as G rows, so GQA needs no copy of the keys and values.
/// </summary>
/// <remarks>SDPA on the grouped queries measured slower here (12 against 37 tokens/s at 8K for an 8B shape on an H200,
/// docs/benchmarks.md), so the two matmuls stay. At long contexts they are far from the memory roofline (a [G, T]
/// by [T, D] product is a handful of output tiles streaming all of T), which is what the native decode kernel is for.</remarks>
public sealed class DenseDecodeAttention : IDecodeAttention
{
    /// <inheritdoc />
    public string Name => "dense";

    /// <inheritdoc />
    public Tensor Forward(Tensor q, Tensor keys, Tensor values)
    {
        long b = q.size(0), hq = q.size(1), s = q.size(2), d = q.size(3), hkv = keys.size(1);
        Tensor qg = q.reshape(b, hkv, hq / hkv * s, d);                                // [B, Hkv, G·S, D]
        Tensor scores = qg.matmul(keys.transpose(-2, -1)) * (1.0 / Math.Sqrt(d));     // [B, Hkv, G·S, T]
        Tensor p = scores.to(ScalarType.Float32).softmax(-1).to(q.dtype);
        return p.matmul(values).reshape(b, hq, s, d);                                  // [B, Hq, S, D]
    }
}

using static TorchSharp.torch;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// Dense causal attention through scaled_dot_product_attention, the default prefill backend. A whole prompt (T = S)
/// runs with enable_gqa: each query head reads its key/value head in place, no repeated copy of K and V. With a
/// cached prefix (T &gt; S) the causal mask is offset so that query i sees keys 0 … T - S + i, and the key/value heads
/// are repeated to the query heads.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's scaled_dot_product_attention has no enable_gqa argument; libtorch's op has, and TorchScript
/// reaches it. Repeating K/V instead cost 3.0 ms a Llama-3.1-8B layer at 128K in PyTorch on an H200 (95 ms a prefill)
/// and 2 GiB of temporaries; with enable_gqa cuDNN ran the same attention in the same time (docs/benchmarks.md, the
/// prefill floor, <c>--gqa enable</c>). The masked call keeps the repeat: which fused kernels take enable_gqa together
/// with an arbitrary mask varies with the libtorch version, and falling back to the math kernel would materialise the
/// [Hq, S, T] scores of a long chunk after a long cached prefix.
/// </remarks>
public sealed class DenseAttention : IAttentionBackend
{
    // One compilation unit per process (the TorchScript parser wants the final newline); a call returns its tensor in
    // the caller's dispose scope like any op.
    static readonly Lazy<jit.CompilationUnit> Sdpa = new(() => jit.compile("""
        def causal(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            return torch.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        """ + "\n"));

    /// <inheritdoc />
    public string Name => "dense";

    /// <inheritdoc />
    public Tensor Forward(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        long hq = q.shape[1], hkv = k.shape[1], s = q.shape[2], t = k.shape[2];
        if (hq % hkv != 0) throw new ArgumentException($"query heads {hq} are not a multiple of key/value heads {hkv}");
        if (t < s) throw new ArgumentException($"keys ({t}) must cover the queries ({s})");
        if (t == s) return Sdpa.Value.invoke<Tensor>("causal", q, k, v); // [B, Hq, S, D]
        using var scope = NewDisposeScope();
        if (hq != hkv)
        {
            k = k.repeat_interleave(hq / hkv, dim: 1); // [B, Hq, T, D]
            v = v.repeat_interleave(hq / hkv, dim: 1);
        }
        // allowed[i, j] = j <= i + (T - S)
        Tensor rows = arange(s, device: q.device).unsqueeze(1) + (t - s);
        Tensor cols = arange(t, device: q.device).unsqueeze(0);
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: cols <= rows).MoveToOuterDisposeScope();
    }
}

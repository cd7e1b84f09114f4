using static TorchSharp.torch;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// Dense causal attention through scaled_dot_product_attention, the default prefill backend. TorchSharp's SDPA has no
/// GQA argument, so key/value heads are repeated to the query heads; with a cached prefix (T &gt; S) the causal mask
/// is offset so that query i sees keys 0 … T - S + i.
/// </summary>
public sealed class DenseAttention : IAttentionBackend
{
    /// <inheritdoc />
    public string Name => "dense";

    /// <inheritdoc />
    public Tensor Forward(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        long hq = q.shape[1], hkv = k.shape[1], s = q.shape[2], t = k.shape[2];
        if (hq % hkv != 0) throw new ArgumentException($"query heads {hq} are not a multiple of key/value heads {hkv}");
        if (t < s) throw new ArgumentException($"keys ({t}) must cover the queries ({s})");
        using var scope = NewDisposeScope();
        if (hq != hkv)
        {
            k = k.repeat_interleave(hq / hkv, dim: 1); // [B, Hq, T, D]
            v = v.repeat_interleave(hq / hkv, dim: 1);
        }
        Tensor y;
        if (t == s)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        }
        else
        {
            // allowed[i, j] = j <= i + (T - S)
            Tensor rows = arange(s, device: q.device).unsqueeze(1) + (t - s);
            Tensor cols = arange(t, device: q.device).unsqueeze(0);
            y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: cols <= rows);
        }
        return y.MoveToOuterDisposeScope(); // [B, Hq, S, D]
    }
}

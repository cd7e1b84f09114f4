using FlexPrefill.Inference.Attention;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

public class DenseAttentionTests
{
    /// <summary>Query heads 8 over 8, 2 and 1 key/value heads; T = S (causal) and a cached prefix (T &gt; S, masked).</summary>
    public static TheoryData<int, int, int> Shapes => new() { { 8, 97, 97 }, { 2, 97, 97 }, { 1, 97, 97 }, { 2, 33, 130 }, { 1, 1, 17 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Grouped_query_attention_matches_float64_and_the_repeated_heads_it_replaces(int hkv, int s, int t)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = AttentionReference.RandomQkv(1, 8, hkv, s, t, 16, seed: hkv * 1000 + t);
        q = q.transpose(1, 2).contiguous().transpose(1, 2); // [B, Hq, S, D] over [B, S, Hq, D] memory, as the model has it
        Tensor ours = new DenseAttention().Forward(q, k, v, new AttentionCall(0));
        Assert.Equal(new long[] { 1, 8, s, 16 }, ours.shape);

        var (exact, _) = AttentionReference.CausalAttention(q, k, v);
        double error = (ours.to(ScalarType.Float64) - exact).abs().max().item<double>();
        Assert.True(error < 1e-5, $"max error {error:E2} against float64");

        // the form before enable_gqa: K/V repeated to the query heads, then TorchSharp's SDPA
        Tensor rows = arange(s).unsqueeze(1) + (t - s), cols = arange(t).unsqueeze(0);
        Tensor repeated = nn.functional.scaled_dot_product_attention(q, k.repeat_interleave(8 / hkv, dim: 1),
            v.repeat_interleave(8 / hkv, dim: 1), attn_mask: cols <= rows);
        double moved = (ours - repeated).abs().max().item<float>();
        Assert.True(moved <= 1e-6, $"differs from the repeated-heads form by {moved:E2}");
    }
}

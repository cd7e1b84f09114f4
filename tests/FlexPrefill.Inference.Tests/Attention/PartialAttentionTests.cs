using FlexPrefill.Inference.Attention;
using TorchSharp;
using static FlexPrefill.Inference.Tests.Attention.AttentionReference;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

[Collection(nameof(AttentionReference))] // one at a time: they share two cores with the rest of the suite
public class PartialAttentionTests
{
    [Fact]
    public void Merging_a_cached_prefix_with_a_sparse_chunk_equals_attention_over_all_keys()
    {
        using var scope = NewDisposeScope();
        int prefix = 640, chunk = 1100, t = prefix + chunk, d = 16;
        var (q, k, v) = RandomQkv(1, 2, 1, chunk, t, d, seed: 21);
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = 64, BlockSize = 64 });
        // The chunk attends to itself sparsely (its own coordinates: prefix is a multiple of bs) ...
        var chunkK = k.narrow(2, prefix, chunk);
        var chunkV = v.narrow(2, prefix, chunk);
        var selection = attention.Select(q, chunkK);
        var (chunkOut, chunkLse) = attention.ForwardWithLse(q, chunkK, chunkV, new AttentionCall(0));
        // ... and to the whole cached prefix densely (every prefix key precedes every query).
        var prefixAll = ones(chunk, prefix, ScalarType.Bool);
        var (prefixOut, prefixLse) = CausalAttention(q, k, v, (_, _) => cat([prefixAll, zeros(chunk, chunk, ScalarType.Bool)], 1));

        var (merged, mergedLse) = PartialAttention.Merge(prefixOut.to(ScalarType.Float32), prefixLse.to(ScalarType.Float32), chunkOut, chunkLse);

        Assert.False(selection.IsDenseFallback);
        var (expected, expectedLse) = CausalAttention(q, k, v, (b, h) => cat([prefixAll, TokenMask(selection, b, h)], 1));
        Assert.True(MaxAbsDiff(merged, expected) < 1e-5, $"output differs by {MaxAbsDiff(merged, expected)}");
        Assert.True(MaxAbsDiff(mergedLse, expectedLse) < 1e-5, $"LSE differs by {MaxAbsDiff(mergedLse, expectedLse)}");
    }

    [Fact]
    public void A_side_without_keys_leaves_the_other_unchanged()
    {
        using var scope = NewDisposeScope();
        var o1 = tensor(new float[] { 1, 2, 3, 4 }).view(2, 2);
        var lse1 = tensor(new float[] { 0.5f, float.NegativeInfinity });
        var o2 = tensor(new float[] { 5, 6, 7, 8 }).view(2, 2);
        var lse2 = tensor(new float[] { float.NegativeInfinity, 2f });

        var (o, lse) = PartialAttention.Merge(o1, lse1, o2, lse2);

        Assert.Equal([1f, 2f, 7f, 8f], o.data<float>().ToArray());
        Assert.Equal([0.5f, 2f], lse.data<float>().ToArray());
    }

    [Fact]
    public void Equal_weights_average_the_two_sides()
    {
        using var scope = NewDisposeScope();
        var (o, lse) = PartialAttention.Merge(tensor(new float[] { 0, 2 }).view(1, 2), tensor(new float[] { 1f }),
            tensor(new float[] { 2, 4 }).view(1, 2), tensor(new float[] { 1f }));
        Assert.Equal([1f, 3f], o.data<float>().ToArray());
        Assert.Equal(1 + Math.Log(2), lse.item<float>(), 1e-6);
    }
}

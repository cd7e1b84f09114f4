using FlexPrefill.Inference.Attention;
using TorchSharp;
using static FlexPrefill.Inference.Tests.Attention.AttentionReference;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

[Collection(nameof(AttentionReference))] // one at a time: they share two cores with the rest of the suite
public class FlexPrefillAttentionTests
{
    [Theory]
    [InlineData(97, 8, 1, 16, 16)]     // GQA 8, partial last block
    [InlineData(1025, 8, 2, 16, 128)]  // GQA 4
    [InlineData(4097, 2, 2, 8, 128)]   // GQA 1, few heads and a small D to stay fast
    public void With_every_block_selected_it_equals_dense_causal_attention(int n, int hq, int hkv, int d, int bs)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = RandomQkv(1, hq, hkv, n, n, d, seed: n);
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = n, BlockSize = bs });
        var statistics = new PrefillStatistics();

        var (output, lse) = attention.ForwardWithLse(q, k, v, new AttentionCall(3, statistics));

        var (expected, expectedLse) = CausalAttention(q, k, v);
        Assert.True(MaxAbsDiff(output, expected) < 1e-5, $"output differs by {MaxAbsDiff(output, expected)}");
        Assert.True(MaxAbsDiff(lse, expectedLse) < 1e-5, $"LSE differs by {MaxAbsDiff(lse, expectedLse)}");
        Assert.Equal(hq, statistics.Heads.Count);
        Assert.All(statistics.Heads, h => { Assert.Equal(AttentionPattern.Dense, h.Pattern); Assert.Equal(3, h.Layer); Assert.Equal(1.0, h.DensityOfCausalBlocks); });
    }

    [Theory]
    [InlineData(1025, 300, 4, 1)]  // chunk starts inside block 5
    [InlineData(2100, 700, 4, 1)]  // GQA 4, partial last block
    public void A_chunk_after_a_cached_prefix_with_every_block_equals_dense_over_all_keys(int t, int s, int hq, int hkv)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = RandomQkv(1, hq, hkv, s, t, 16, seed: t + s);
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = t });

        var (output, lse) = attention.ForwardWithLse(q, k, v, new AttentionCall(0));

        var (expected, expectedLse) = CausalAttention(q, k, v);
        Assert.True(MaxAbsDiff(output, expected) < 1e-5, $"output differs by {MaxAbsDiff(output, expected)}");
        Assert.True(MaxAbsDiff(lse, expectedLse) < 1e-5, $"LSE differs by {MaxAbsDiff(lse, expectedLse)}");
    }

    [Theory]
    [InlineData(1, 1500, 1500, 2, 2)]
    [InlineData(2, 1100, 1100, 4, 1)]  // batch 2, GQA 4
    [InlineData(1, 900, 2100, 8, 1)]   // chunk after a prefix, GQA 8
    public void Sparse_attention_equals_dense_attention_restricted_to_the_selected_blocks(int batch, int s, int t, int hq, int hkv)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = RandomQkv(batch, hq, hkv, s, t, 16, seed: s * 7 + t);
        q = q * 3; // sharper attention, so that the budgets stay below nb
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = 128, BlockSize = 64 });

        var selection = attention.Select(q, k);
        var (output, lse) = attention.ForwardWithLse(q, k, v, new AttentionCall(0));

        Assert.False(selection.IsDenseFallback);
        Assert.True(selection.Heads.Average(h => (double)h.ComputedBlocks) < selection.CausalBlocks, "random inputs should not select everything");
        var (expected, expectedLse) = CausalAttention(q, k, v, (b, h) => TokenMask(selection, b, h));
        Assert.True(MaxAbsDiff(output, expected) < 1e-5, $"output differs by {MaxAbsDiff(output, expected)}");
        Assert.True(MaxAbsDiff(lse, expectedLse) < 1e-5, $"LSE differs by {MaxAbsDiff(lse, expectedLse)}");
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 2e-2)]
    [InlineData(ScalarType.Float16, 2e-3)]
    public void Half_precision_inputs_give_output_in_their_dtype_close_to_fp32(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = RandomQkv(1, 2, 1, 600, 600, 32, seed: 5);
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = 64, BlockSize = 64 });
        var (q16, k16, v16) = (q.to(dtype), k.to(dtype), v.to(dtype));

        var output = attention.Forward(q16, k16, v16, new AttentionCall(0));

        Assert.Equal(dtype, output.dtype);
        var selection = attention.Select(q16, k16);
        var (expected, _) = CausalAttention(q16.to(ScalarType.Float32), k16.to(ScalarType.Float32), v16.to(ScalarType.Float32), (b, h) => TokenMask(selection, b, h));
        Assert.True(MaxAbsDiff(output, expected) < tolerance, $"output differs by {MaxAbsDiff(output, expected)}");
    }

    [Fact]
    public void Statistics_record_every_head_with_its_pattern_distance_and_blocks()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = RandomQkv(1, 4, 2, 1000, 1000, 16, seed: 11);
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = 64, BlockSize = 64 });
        var statistics = new PrefillStatistics();

        attention.Forward(q, k, v, new AttentionCall(7, statistics));

        var selection = attention.Select(q, k);
        Assert.Equal(Enumerable.Range(0, 4), statistics.Heads.Select(h => h.Head));
        foreach (var h in statistics.Heads)
        {
            var chosen = selection[0, h.Head];
            Assert.Equal(7, h.Layer);
            Assert.Equal(chosen.Pattern, h.Pattern);
            Assert.Equal(chosen.JsDistance, h.JsDistance);
            Assert.Equal(chosen.ComputedBlocks, h.ComputedBlocks);
            Assert.Equal(16L * 17 / 2, h.CausalBlocks);
            Assert.InRange(h.JsDistance, 0, 1);
        }
    }

    [Fact]
    public void The_constructor_validates_the_options()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlexPrefillAttention(new FlexPrefillOptions { Gamma = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlexPrefillAttention(new FlexPrefillOptions { BlockSize = 100 }));
        Assert.Equal("flexprefill", new FlexPrefillAttention(new FlexPrefillOptions()).Name);
    }

    [Fact]
    public void Shapes_that_do_not_fit_are_refused_with_a_message()
    {
        using var scope = NewDisposeScope();
        var attention = new FlexPrefillAttention(new FlexPrefillOptions());
        var ex = Assert.Throws<ArgumentException>(() => attention.Forward(zeros(1, 3, 10, 8), zeros(1, 2, 10, 8), zeros(1, 2, 10, 8), new AttentionCall(0)));
        Assert.Contains("multiple", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => attention.Forward(zeros(1, 2, 11, 8), zeros(1, 2, 10, 8), zeros(1, 2, 10, 8), new AttentionCall(0)));
        Assert.Contains("S ≤ T", ex.Message);
    }

    [Theory]
    [InlineData(97, 16, 4, 4, 0)]
    [InlineData(1025, 128, 8, 2, 0)]
    [InlineData(1025, 64, 8, 1, 200)]
    [InlineData(4097, 128, 8, 8, 1000)]
    public void Every_head_gets_a_well_formed_csr_with_the_diagonal(int t, int bs, int hq, int hkv, int cached)
    {
        using var scope = NewDisposeScope();
        int s = t - cached;
        var (q, k, _) = RandomQkv(1, hq, hkv, s, t, 8, seed: t + bs);
        // Make some heads peaky so that several patterns and budgets occur.
        q = q * linspace(0.5, 6, hq).view(1, hq, 1, 1);
        foreach (var tau in new[] { 0.0, 0.3 })
        {
            var selection = new FlexPrefillAttention(new FlexPrefillOptions { MinBudget = bs, BlockSize = bs, Tau = tau, Gamma = 0.9 }).Select(q, k);

            Assert.Equal((t - s) / bs, selection.FirstRow);
            foreach (var head in selection.Heads)
            {
                Assert.Equal(selection.Rows + 1, head.RowPtr.Count);
                Assert.Equal(0, head.RowPtr[0]);
                Assert.Equal(head.ColIdx.Count, head.RowPtr[^1]);
                for (int i = 0; i < selection.Rows; i++)
                {
                    var cols = head.Columns(i).ToArray();
                    int r = selection.FirstRow + i;
                    Assert.Contains(r, cols);
                    Assert.Contains(0, cols);
                    Assert.True(cols.Zip(cols.Skip(1)).All(p => p.First < p.Second), $"row {r} is not ascending and unique");
                    Assert.All(cols, c => Assert.InRange(c, 0, r));
                }
                Assert.InRange(head.ComputedBlocks, selection.Rows, selection.CausalBlocks);
                if (tau == 0) Assert.Equal(AttentionPattern.VerticalSlash, head.Pattern);
            }
        }
    }
}

using FlexPrefill.Inference.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

/// <summary>Hand-built heads whose attention is known, and the blocks FlexPrefill must pick for them.</summary>
[Collection(nameof(AttentionReference))] // one at a time: they share two cores with the rest of the suite
public class FlexPrefillPatternTests
{
    const int N = 1024, D = 64, Bs = 64, Frequencies = 16;

    /// <summary>
    /// q_i · k_j / sqrt(D) = (a²/8) Σ_f cos(ω_f (i - j)) + (j == strongKey ? s²/8 : 0): a local band around the diagonal
    /// (rotary-like features, period 2048 > N) plus one key that every query attends to (key 0 = a sink).
    /// </summary>
    static (Tensor Q, Tensor K) BandAndColumn(double amplitude, double columnStrength, int strongKey)
    {
        var q = new float[N * D];
        var k = new float[N * D];
        for (int i = 0; i < N; i++)
        {
            for (int f = 0; f < Frequencies; f++)
            {
                double w = 2 * Math.PI * (f + 1) / 2048;
                q[i * D + 2 * f] = k[i * D + 2 * f] = (float)(amplitude * Math.Cos(w * i));
                q[i * D + 2 * f + 1] = k[i * D + 2 * f + 1] = (float)(amplitude * Math.Sin(w * i));
            }
            q[i * D + D - 1] = (float)columnStrength;
        }
        k[strongKey * D + D - 1] = (float)columnStrength;
        return (tensor(q).view(1, 1, N, D), tensor(k).view(1, 1, N, D));
    }

    static int[][] Rows(HeadSelection head, int rows) => Enumerable.Range(0, rows).Select(i => head.Columns(i).ToArray()).ToArray();

    [Fact]
    public void A_sink_column_plus_a_local_band_picks_vertical_slash_with_exactly_the_sink_and_the_two_diagonals()
    {
        using var scope = NewDisposeScope();
        var (q, k) = BandAndColumn(amplitude: 3, columnStrength: 12, strongKey: 0);
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { BlockSize = Bs, MinBudget = Bs });

        var selection = attention.Select(q, k);

        var head = selection[0, 0];
        Assert.Equal(AttentionPattern.VerticalSlash, head.Pattern);
        Assert.True(head.JsDistance >= 0.1, $"JS distance {head.JsDistance}");
        // sink column, band 0 = block diagonals 0 and 1
        var expected = Enumerable.Range(0, 16).Select(r => new[] { 0, r - 1, r }.Where(c => c >= 0).Distinct().ToArray()).ToArray();
        Assert.Equal(expected, Rows(head, selection.Rows));
    }

    [Fact]
    public void One_strong_stripe_is_found_and_selected_for_every_row_below_it()
    {
        using var scope = NewDisposeScope();
        var (q, k) = BandAndColumn(amplitude: 3, columnStrength: 14, strongKey: 300); // key block 4
        // Two blocks of budget: the forced sink block and one more, which must be the stripe's.
        var attention = new FlexPrefillAttention(new FlexPrefillOptions { BlockSize = Bs, MinBudget = 2 * Bs });

        var head = attention.Select(q, k)[0, 0];

        Assert.Equal(AttentionPattern.VerticalSlash, head.Pattern);
        Assert.Equal(2, head.VerticalBlocks);
        for (int r = 4; r < 16; r++) Assert.Contains(4, head.Columns(r).ToArray());
        for (int r = 0; r < 16; r++) Assert.Contains(0, head.Columns(r).ToArray());
    }

    /// <summary>Keys constant inside each block (block 3 strongly aligned with the query), every query the same.</summary>
    static (Tensor Q, Tensor K) BlockConstantKeys()
    {
        var q = new float[N * D];
        var k = new float[N * D];
        for (int i = 0; i < N; i++)
        {
            q[i * D] = 1;
            int block = i / Bs;
            k[i * D] = block == 3 ? 40 : 0; // q·k/sqrt(D) = 5 on block 3, 0 elsewhere
            k[i * D + 1 + block] = 1;       // distinct blocks, orthogonal to q
        }
        return (tensor(q).view(1, 1, N, D), tensor(k).view(1, 1, N, D));
    }

    [Fact]
    public void A_head_whose_pooled_estimate_matches_is_query_aware_and_the_union_option_is_honoured()
    {
        using var scope = NewDisposeScope();
        var (q, k) = BlockConstantKeys();
        var options = new FlexPrefillOptions { BlockSize = Bs, MinBudget = Bs, Gamma = 0.8 };

        var union = new FlexPrefillAttention(options).Select(q, k)[0, 0];
        var alone = new FlexPrefillAttention(options with { QueryAwareUnionWithVerticalSlash = false }).Select(q, k)[0, 0];

        Assert.Equal(AttentionPattern.QueryAware, union.Pattern);
        Assert.True(union.JsDistance < 0.02, $"JS distance {union.JsDistance}");
        Assert.Equal(AttentionPattern.QueryAware, alone.Pattern);
        // The query-aware map puts e^5 / (e^5 + r) ≈ 0.98..0.91 on block 3 of every row r ≥ 3; γ·Rows = 12.8 is reached
        // by (0, 0) = 1 and those 13 entries (13.26; without row 15's it would be 12.36), before any entry of 0.5.
        var aloneRows = Rows(alone, 16);
        Assert.Equal([0], aloneRows[0]);
        Assert.Equal([1], aloneRows[1]);
        Assert.Equal([2], aloneRows[2]);
        for (int r = 3; r < 16; r++) Assert.Equal(r == 3 ? [3] : new[] { 3, r }, aloneRows[r]);
        Assert.Equal(0, alone.VerticalBlocks);
        // The union adds the minimal vertical-slash set: the sink column and block diagonals 0 and 1.
        var unionRows = Rows(union, 16);
        for (int r = 0; r < 16; r++)
            Assert.Equal(aloneRows[r].Concat([0, r, r - 1]).Where(c => c >= 0).Distinct().Order().ToArray(), unionRows[r]);
        Assert.Equal(1, union.VerticalBlocks);
    }

    [Fact]
    public void Tau_zero_never_picks_query_aware()
    {
        using var scope = NewDisposeScope();
        var (q, k) = BlockConstantKeys();
        var head = new FlexPrefillAttention(new FlexPrefillOptions { BlockSize = Bs, MinBudget = Bs, Tau = 0 }).Select(q, k)[0, 0];
        Assert.Equal(AttentionPattern.VerticalSlash, head.Pattern);
    }

    [Fact]
    public void A_short_call_is_the_dense_fallback_with_every_causal_block()
    {
        using var scope = NewDisposeScope();
        var (q, k) = BandAndColumn(3, 12, 0);
        var selection = new FlexPrefillAttention(new FlexPrefillOptions { BlockSize = Bs, MinBudget = N }).Select(q, k);
        Assert.True(selection.IsDenseFallback);
        var head = selection[0, 0];
        Assert.Equal(AttentionPattern.Dense, head.Pattern);
        Assert.True(double.IsNaN(head.JsDistance));
        Assert.Equal(selection.CausalBlocks, head.ComputedBlocks);
    }
}

using FlexPrefill.Inference.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

[Collection(nameof(AttentionReference))] // one at a time: they share two cores with the rest of the suite
public class FlexPrefillStepsTests
{
    [Theory]
    [InlineData(256, 128, 1024, true)]   // S ≤ mb·bs
    [InlineData(1024, 128, 1024, true)]  // the boundary is dense
    [InlineData(1025, 128, 1024, false)]
    [InlineData(256, 128, 0, true)]      // S ≤ 2·bs
    [InlineData(257, 128, 0, false)]
    [InlineData(192, 64, 130, true)]     // min_budget rounds up to 3 blocks = 192 tokens
    [InlineData(193, 64, 130, false)]
    public void The_dense_fallback_covers_short_calls(int s, int bs, int minBudget, bool dense)
    {
        Assert.Equal(dense, FlexPrefillSteps.UsesDenseFallback(s, bs, minBudget));
    }

    [Fact]
    public void The_probe_marginals_equal_the_direct_sums_over_the_attention_matrix()
    {
        using var scope = NewDisposeScope();
        int t = 50, p = 16, d = 8;
        var g = new Generator(3);
        var probe = randn([2, p, d], generator: g);
        var keys = randn([t, d], generator: g);

        var (vertical, slash) = FlexPrefillSteps.ProbeDistributions(probe, keys);

        var a = matmul(probe.to(ScalarType.Float64), keys.to(ScalarType.Float64).t());
        var expectedVertical = new double[2, t];
        var expectedSlash = new double[2, t];
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < p; i++)
            {
                int pos = t - p + i;
                var row = a[h, i].data<double>().ToArray()[..(pos + 1)];
                double max = row.Max(), sum = row.Sum(x => Math.Exp(x - max));
                for (int j = 0; j <= pos; j++)
                {
                    double w = Math.Exp(row[j] - max) / sum / p;
                    expectedVertical[h, j] += w;
                    expectedSlash[h, pos - j] += w;
                }
            }
        var v = vertical.data<float>().ToArray();
        var s = slash.data<float>().ToArray();
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < t; j++)
            {
                Assert.Equal(expectedVertical[h, j], v[h * t + j], 1e-6);
                Assert.Equal(expectedSlash[h, j], s[h * t + j], 1e-6);
            }
        Assert.Equal(1.0, v[..t].Sum(), 1e-5);
        Assert.Equal(1.0, s[..t].Sum(), 1e-5);
    }

    [Fact]
    public void Gamma_cover_counts_match_a_brute_force_count()
    {
        var random = new Random(7);
        foreach (var gamma in new[] { 0.5, 0.9, 0.95, 0.999, 1.0 })
            for (int trial = 0; trial < 20; trial++)
            {
                int n = random.Next(1, 300);
                var x = Enumerable.Range(0, n).Select(_ => (float)Math.Pow(random.NextDouble(), 4)).ToArray();
                if (trial % 5 == 0) x[random.Next(n)] = 50; // one dominant entry
                var descending = x.OrderByDescending(v => v).ToArray();
                double total = descending.Sum(v => (double)v);
                int expected = Enumerable.Range(1, n).First(t => descending.Take(t).Sum(v => (double)v) >= gamma * total || t == n);

                Assert.Equal(expected, FlexPrefillSteps.GammaCoverCount(x, gamma));
            }
    }

    [Fact]
    public void Gamma_one_covers_everything_and_a_point_mass_is_covered_by_one_entry()
    {
        Assert.Equal(4, FlexPrefillSteps.GammaCoverCount([0.1f, 0.2f, 0.3f, 0.4f], 1.0));
        Assert.Equal(1, FlexPrefillSteps.GammaCoverCount([0f, 1f, 0f], 0.95));
        Assert.Equal(2, FlexPrefillSteps.GammaCoverCount([0.5f, 0.5f, 0f], 0.95));
    }

    [Theory]
    [InlineData(500, 128, 8, 16, 8)]   // 500/128 + 1 = 4, raised to mb
    [InlineData(1500, 128, 8, 16, 12)] // inside the clamp
    [InlineData(5000, 128, 8, 16, 16)] // capped
    [InlineData(10, 128, 8, 4, 4)]     // the cap wins over min_budget
    [InlineData(100, 64, 0, 16, 2)]    // bs, not the reference's hard-coded 128 (which would give 1)
    [InlineData(0, 128, 0, 16, 1)]
    public void Block_budgets_are_cover_over_bs_plus_one_clamped(int cover, int bs, int mb, int cap, int expected)
    {
        Assert.Equal(expected, FlexPrefillSteps.BlockBudget(cover, bs, mb, cap));
    }

    [Fact]
    public void The_budget_cap_is_nb_or_max_budget_in_blocks()
    {
        Assert.Equal(10, FlexPrefillSteps.BudgetCap(10, null, 128));
        Assert.Equal(3, FlexPrefillSteps.BudgetCap(10, 300, 128));
        Assert.Equal(10, FlexPrefillSteps.BudgetCap(10, 100_000, 128));
        Assert.Equal(3, FlexPrefillSteps.MinBudgetBlocks(257, 128));
        Assert.Equal(0, FlexPrefillSteps.MinBudgetBlocks(0, 128));
    }

    [Fact]
    public void Sum_pooling_handles_a_partial_last_block()
    {
        var pooled = FlexPrefillSteps.SumPool([1f, 2f, 3f, 4f, 5f], 2, 3);
        Assert.Equal([3.0, 7.0, 5.0], pooled);
    }

    [Fact]
    public void Top_k_forces_index_zero_and_breaks_ties_toward_the_smaller_index()
    {
        double[] scores = [0, 5, 7, 5, 7];
        Assert.Equal([0, 2, 4], FlexPrefillSteps.TopKWithFirstForced(scores, 3));
        Assert.Equal([0, 2, 4, 1], FlexPrefillSteps.TopKWithFirstForced(scores, 4));
        Assert.Equal([0], FlexPrefillSteps.TopKWithFirstForced(scores, 1));
        Assert.Empty(FlexPrefillSteps.TopKWithFirstForced(scores, 0)); // a query-aware head's minimal set at min_budget 0
        Assert.Equal([0, 2, 4, 1, 3], FlexPrefillSteps.TopKWithFirstForced(scores, 99));
    }

    [Fact]
    public void Js_distance_matches_the_entropy_formula_and_handles_zeros()
    {
        var random = new Random(1);
        for (int trial = 0; trial < 10; trial++)
        {
            int n = 2 + trial * 3;
            var p = Normalize(Enumerable.Range(0, n).Select(i => i % 3 == 0 ? 0 : random.NextDouble()).ToArray());
            var q = Normalize(Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray());
            var m = p.Zip(q, (a, b) => (a + b) / 2).ToArray();
            double expected = Math.Sqrt(Entropy(m) - (Entropy(p) + Entropy(q)) / 2);

            Assert.Equal(expected, FlexPrefillSteps.JsDistance(p, q), 1e-12);
        }
        Assert.Equal(0, FlexPrefillSteps.JsDistance([0.25, 0.75], [0.25, 0.75]), 1e-15);
        Assert.Equal(Math.Sqrt(Math.Log(2)), FlexPrefillSteps.JsDistance([1, 0], [0, 1]), 1e-12); // disjoint: the maximum

        static double[] Normalize(double[] x) => x.Select(v => v / x.Sum()).ToArray();
        static double Entropy(double[] x) => -x.Where(v => v > 0).Sum(v => v * Math.Log(v));
    }

    [Fact]
    public void Block_means_divide_a_partial_block_by_its_true_length()
    {
        using var scope = NewDisposeScope();
        var keys = arange(5, ScalarType.Float32).unsqueeze(1); // [5, 1]: 0..4
        var means = FlexPrefillSteps.KeyBlockMeans(keys, 2).data<float>().ToArray();
        Assert.Equal([0.5f, 2.5f, 4f], means);

        // a chunk of S = 4 queries at positions 3..6 of T = 7, bs 2: rows 1 (pos 3), 2 (4, 5), 3 (6)
        var grid = new BlockGrid(7, 4, 2);
        var queries = tensor(new float[] { 3, 4, 5, 6 }).unsqueeze(1);
        Assert.Equal([3f, 4.5f, 6f], FlexPrefillSteps.QueryBlockMeans(queries, grid).data<float>().ToArray());
    }

    [Fact]
    public void The_grid_uses_absolute_block_coordinates()
    {
        var grid = new BlockGrid(KeyLength: 1025, QueryLength: 300, BlockSize: 128);
        Assert.Equal(9, grid.NumBlocks);
        Assert.Equal(725, grid.FirstQuery);
        Assert.Equal(5, grid.FirstRow);
        Assert.Equal(4, grid.Rows);
        Assert.Equal(6 + 7 + 8 + 9, grid.CausalBlocks);
        Assert.Equal(768 - 725, grid.QueriesInRow(5));
        Assert.Equal(1, grid.QueriesInRow(8));
    }

    [Fact]
    public void A_slash_band_selects_both_block_diagonals_it_touches_so_every_token_offset_in_it_is_computed()
    {
        // T = 300 with bs 64: not aligned; band 2 = offsets 128..191.
        var grid = new BlockGrid(300, 300, 64);
        var mask = new bool[grid.Rows * grid.NumBlocks];
        FlexPrefillSteps.MarkVerticalSlash(grid, [], [2], mask);
        for (int qpos = 0; qpos < 300; qpos++)
            for (int o = 128; o < 192 && o <= qpos; o++)
            {
                int r = qpos / 64, c = (qpos - o) / 64;
                Assert.True(mask[r * grid.NumBlocks + c], $"offset {o} at query {qpos} falls on block ({r}, {c})");
            }
        for (int r = 0; r < grid.NumBlocks; r++)
            for (int c = 0; c <= r; c++)
                Assert.Equal(r - c is 2 or 3, mask[r * grid.NumBlocks + c]);
    }

    [Fact]
    public void Vertical_blocks_select_their_column_below_the_diagonal_on_existing_rows_only()
    {
        var grid = new BlockGrid(KeyLength: 640, QueryLength: 300, BlockSize: 128); // rows 2..4
        var mask = new bool[grid.Rows * grid.NumBlocks];
        FlexPrefillSteps.MarkVerticalSlash(grid, [3], [], mask);
        var marked = Enumerable.Range(0, mask.Length).Where(i => mask[i]).Select(i => (grid.FirstRow + i / grid.NumBlocks, i % grid.NumBlocks));
        Assert.Equal([(3, 3), (4, 3)], marked);
    }

    [Fact]
    public void Query_aware_takes_the_smallest_prefix_whose_sum_reaches_gamma_times_rows()
    {
        var grid = new BlockGrid(KeyLength: 6, QueryLength: 6, BlockSize: 2); // 3 rows, 3 blocks
        float[] scores =
        [
            1.0f, 0, 0,
            0.5f, 0.5f, 0,
            0.7f, 0.2f, 0.1f,
        ];
        var mask = new bool[9];

        int taken = FlexPrefillSteps.MarkQueryAware(grid, scores, 0.7, mask); // target 2.1

        // sorted: 1.0 (0,0), 0.7 (2,0), 0.5 (1,0), 0.5 (1,1) → 1.0 + 0.7 + 0.5 = 2.2 ≥ 2.1 after three entries; the
        // published reference stops before the entry that crosses the target (two entries here).
        Assert.Equal(3, taken);
        Assert.Equal([true, false, false, true, false, false, true, false, false], mask);
    }

    [Fact]
    public void The_block_causal_estimate_is_a_softmax_over_the_blocks_up_to_the_diagonal()
    {
        using var scope = NewDisposeScope();
        var grid = new BlockGrid(KeyLength: 6, QueryLength: 4, BlockSize: 2); // rows 1, 2
        var p = FlexPrefillSteps.BlockCausalScores(ones(2, 4), ones(3, 4), grid).data<float>().ToArray();
        Assert.Equal([0.5f, 0.5f, 0f, 1f / 3, 1f / 3, 1f / 3], p);
    }

    [Fact]
    public void The_csr_adds_the_diagonal_and_lists_columns_ascending()
    {
        var grid = new BlockGrid(KeyLength: 5, QueryLength: 3, BlockSize: 1); // rows 2, 3, 4
        var mask = new bool[3 * 5];
        mask[0 * 5 + 0] = true;
        mask[2 * 5 + 3] = true;
        mask[2 * 5 + 1] = true;

        var (rowPtr, colIdx) = FlexPrefillSteps.ToCsr(grid, mask);

        Assert.Equal([0, 2, 3, 6], rowPtr);
        Assert.Equal([0, 2, 3, 1, 3, 4], colIdx);
    }
}

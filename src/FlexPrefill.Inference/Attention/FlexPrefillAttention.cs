using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// FlexPrefill (Lai et al., ICLR 2025) written once over TorchSharp ops: the managed reference that the CUDA kernels
/// must match, the CPU fallback and the engine's first sparse prefill. Per head it probes the last query block's
/// attention, decides between the query-aware and the vertical-slash pattern, selects blocks covering γ of the
/// attention mass and runs block-sparse attention over them. The rules, including where this departs from the
/// published reference, are in docs/flexprefill.md. CPU or CUDA tensors, fp32/bf16/fp16 in (fp32 math), GQA of any
/// group size, any length, and chunks after a cached prefix (S &lt; T, absolute coordinates).
/// </summary>
public sealed class FlexPrefillAttention : IAttentionBackend
{
    /// <summary>Creates the backend; the options are validated here.</summary>
    /// <param name="options">γ, τ, budgets, block size.</param>
    public FlexPrefillAttention(FlexPrefillOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Validate();
    }

    /// <summary>The validated options.</summary>
    public FlexPrefillOptions Options { get; }

    /// <inheritdoc />
    public string Name => "flexprefill";

    /// <inheritdoc />
    public Tensor Forward(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        var (output, lse) = ForwardWithLse(q, k, v, call);
        lse.Dispose();
        return output;
    }

    /// <summary>
    /// Like <see cref="Forward"/>, and also returns the log-sum-exp of every query row so that attention over other keys
    /// (a cached prefix, another chunk) can be merged exactly with <see cref="PartialAttention.Merge"/>.
    /// </summary>
    /// <param name="q">Queries after RoPE: [B, Hq, S, D].</param>
    /// <param name="k">Keys after RoPE: [B, Hkv, T, D], T ≥ S.</param>
    /// <param name="v">Values: [B, Hkv, T, D].</param>
    /// <param name="call">Layer and the statistics sink.</param>
    /// <returns>Output [B, Hq, S, D] in q's dtype and LSE [B, Hq, S] (natural log, fp32).</returns>
    public (Tensor Output, Tensor Lse) ForwardWithLse(Tensor q, Tensor k, Tensor v, AttentionCall call)
    {
        ArgumentNullException.ThrowIfNull(call);
        CheckShapes(q, k, v);
        var selection = Select(q, k);
        var result = BlockSparseAttention.Forward(q, k, v, selection);
        if (call.Statistics is { } statistics)
            foreach (var head in selection.Heads)
                statistics.Add(new HeadStatistics(call.Layer, head.Head, head.Pattern, head.JsDistance, head.ComputedBlocks, selection.CausalBlocks));
        return result;
    }

    /// <summary>
    /// The block selection of one layer without computing attention: per (batch, query head) the pattern, the JS distance
    /// and the CSR (row_ptr/col_idx over the existing query block rows). This is the oracle the native kernels' block
    /// lists are compared against.
    /// </summary>
    /// <param name="q">Queries after RoPE: [B, Hq, S, D] (positions T-S..T-1).</param>
    /// <param name="k">Keys after RoPE: [B, Hkv, T, D].</param>
    /// <returns>The selection; for a call short enough for the dense fallback every head lists all its causal blocks.</returns>
    public BlockSelection Select(Tensor q, Tensor k)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        CheckShapes(q, k, k);
        int batch = (int)q.shape[0], hq = (int)q.shape[1], s = (int)q.shape[2], d = (int)q.shape[3];
        int hkv = (int)k.shape[1], t = (int)k.shape[2], group = hq / hkv;
        int bs = Options.BlockSize;
        var grid = new BlockGrid(t, s, bs);
        var heads = new HeadSelection[batch * hq];
        if (FlexPrefillSteps.UsesDenseFallback(s, bs, Options.MinBudget))
        {
            var (rowPtr, colIdx) = FlexPrefillSteps.DenseCsr(grid);
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < hq; h++)
                    heads[b * hq + h] = new HeadSelection(b, h, AttentionPattern.Dense, double.NaN, 0, 0, rowPtr, colIdx);
            return new BlockSelection(bs, t, s, batch, hq, isDenseFallback: true, heads);
        }

        int probeLength = bs; // S > 2·bs here
        int chunk = Math.Min(group, FlexPrefillSteps.ProbeHeadsPerChunk(probeLength, t));
        using var scope = NewDisposeScope();
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < hkv; g++)
            {
                using var kvScope = NewDisposeScope();
                var keys = k[b, g].to(ScalarType.Float32); // [T, D]
                var keyMeans = FlexPrefillSteps.KeyBlockMeans(keys, bs); // [nb, D]
                for (int h0 = 0; h0 < group; h0 += chunk)
                {
                    using var chunkScope = NewDisposeScope();
                    int n = Math.Min(chunk, group - h0);
                    int first = g * group + h0;
                    // probe: [n, P, D], scaled by 1/sqrt(D)
                    var probe = q[b].narrow(0, first, n).narrow(1, s - probeLength, probeLength).to(ScalarType.Float32) / Math.Sqrt(d);
                    var (vertical, slash) = FlexPrefillSteps.ProbeDistributions(probe, keys);
                    var estimate = FlexPrefillSteps.EstimatedBlockLogits(probe, keyMeans);
                    var verticals = ToHost(vertical);
                    var slashes = ToHost(slash);
                    var estimates = ToHost(estimate);
                    for (int i = 0; i < n; i++)
                    {
                        int h = first + i;
                        heads[b * hq + h] = SelectHead(b, h, grid,
                            verticals.AsSpan(i * t, t), slashes.AsSpan(i * t, t), estimates.AsSpan(i * grid.NumBlocks, grid.NumBlocks),
                            () => ToHost(FlexPrefillSteps.BlockCausalScores(FlexPrefillSteps.QueryBlockMeans(q[b, h].to(ScalarType.Float32), grid), keyMeans, grid)));
                    }
                }
            }
        return new BlockSelection(bs, t, s, batch, hq, isDenseFallback: false, heads);
    }

    /// <summary>Steps 3-10 for one head, from its probe marginals and its pooled estimate.</summary>
    HeadSelection SelectHead(int batch, int head, BlockGrid grid, ReadOnlySpan<float> vertical, ReadOnlySpan<float> slash,
        ReadOnlySpan<float> estimateLogits, Func<float[]> blockCausalScores)
    {
        int bs = grid.BlockSize, nb = grid.NumBlocks;
        int mb = FlexPrefillSteps.MinBudgetBlocks(Options.MinBudget, bs);
        int cap = FlexPrefillSteps.BudgetCap(nb, Options.MaxBudget, bs);
        var verticalBlocks = FlexPrefillSteps.SumPool(vertical, bs, nb);
        var slashBands = FlexPrefillSteps.SumPool(slash, bs, nb);
        var estimated = FlexPrefillSteps.Softmax(estimateLogits);
        double js = FlexPrefillSteps.JsDistance(estimated, verticalBlocks);
        var mask = new bool[grid.Rows * nb];
        AttentionPattern pattern;
        int kv, ks;
        if (js < Options.Tau)
        {
            pattern = AttentionPattern.QueryAware;
            kv = ks = 0;
            if (Options.QueryAwareUnionWithVerticalSlash)
            {
                kv = ks = Math.Min(mb, cap);
                MarkMinimalOrFull(grid, verticalBlocks, slashBands, kv, ks, mask);
            }
            FlexPrefillSteps.MarkQueryAware(grid, blockCausalScores(), Options.Gamma, mask);
        }
        else
        {
            pattern = AttentionPattern.VerticalSlash;
            kv = FlexPrefillSteps.BlockBudget(FlexPrefillSteps.GammaCoverCount(vertical, Options.Gamma), bs, mb, cap);
            ks = FlexPrefillSteps.BlockBudget(FlexPrefillSteps.GammaCoverCount(slash, Options.Gamma), bs, mb, cap);
            MarkMinimalOrFull(grid, verticalBlocks, slashBands, kv, ks, mask);
        }
        var (rowPtr, colIdx) = FlexPrefillSteps.ToCsr(grid, mask);
        return new HeadSelection(batch, head, pattern, js, kv, ks, rowPtr, colIdx);
    }

    static void MarkMinimalOrFull(BlockGrid grid, double[] verticalBlocks, double[] slashBands, int kv, int ks, bool[] mask) =>
        FlexPrefillSteps.MarkVerticalSlash(grid, FlexPrefillSteps.TopKWithFirstForced(verticalBlocks, kv), FlexPrefillSteps.TopKWithFirstForced(slashBands, ks), mask);

    static float[] ToHost(Tensor t)
    {
        using var host = t.to(ScalarType.Float32).cpu().contiguous();
        return host.data<float>().ToArray();
    }

    static void CheckShapes(Tensor q, Tensor k, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
            throw new ArgumentException($"q, k and v must be 4-d ([B, H, S|T, D]); got {q.dim()}, {k.dim()} and {v.dim()} dimensions");
        long b = q.shape[0], hq = q.shape[1], s = q.shape[2], d = q.shape[3];
        long hkv = k.shape[1], t = k.shape[2];
        if (k.shape[0] != b || k.shape[3] != d || !v.shape.SequenceEqual(k.shape))
            throw new ArgumentException($"shapes do not fit: q [{string.Join(", ", q.shape)}], k [{string.Join(", ", k.shape)}], v [{string.Join(", ", v.shape)}]");
        if (hkv == 0 || hq % hkv != 0)
            throw new ArgumentException($"{hq} query heads are not a multiple of {hkv} key/value heads");
        if (s < 1 || t < s)
            throw new ArgumentException($"the call has {s} queries and {t} keys; it needs 1 ≤ S ≤ T");
        if (t > int.MaxValue / 2)
            throw new ArgumentException($"{t} keys is more than this implementation indexes");
    }
}

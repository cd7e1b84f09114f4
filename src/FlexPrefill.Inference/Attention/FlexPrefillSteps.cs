using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// The steps of FlexPrefill's block selection, one function each, in the order of docs/flexprefill.md (which follows
/// SELECTION.md, the contract shared with the CUDA kernels). Statistics come from tensor ops (CPU or CUDA, fp32);
/// the selection itself runs on host arrays, one head at a time.
/// </summary>
internal static class FlexPrefillSteps
{
    /// <summary>Probe scores held at once, in floats (64 MB): bounds the probe's memory at any N.</summary>
    const long ProbeScoreBudget = 1L << 24;

    /// <summary>min_budget in blocks: mb = ceil(min_budget / bs).</summary>
    internal static int MinBudgetBlocks(int minBudget, int blockSize) => (minBudget + blockSize - 1) / blockSize;

    /// <summary>Step 1: a call of S queries runs dense when S ≤ max(2·bs, mb·bs).</summary>
    internal static bool UsesDenseFallback(int queryLength, int blockSize, int minBudget) =>
        queryLength <= Math.Max(2 * blockSize, MinBudgetBlocks(minBudget, blockSize) * blockSize);

    /// <summary>Probe heads per chunk so that [heads, P, T] fp32 scores stay within the budget (at least one).</summary>
    internal static int ProbeHeadsPerChunk(int probeLength, int keyLength) =>
        (int)Math.Max(1, ProbeScoreBudget / ((long)probeLength * keyLength));

    /// <summary>
    /// Step 2: attention of the probe queries over all keys and its two marginals.
    /// vertical[j] = mean over probe rows of A[row, j]; slash[o] = mean over probe rows of A[row, p_row - o].
    /// </summary>
    /// <param name="probe">Probe queries of n heads, already scaled by 1/sqrt(D), fp32: [n, P, D]; row i sits at position T-P+i.</param>
    /// <param name="keys">Keys of their KV head, fp32: [T, D].</param>
    /// <returns>vertical [n, T] and slash [n, T], fp32.</returns>
    internal static (Tensor Vertical, Tensor Slash) ProbeDistributions(Tensor probe, Tensor keys)
    {
        long n = probe.shape[0], p = probe.shape[1], t = keys.shape[0];
        using var scope = NewDisposeScope();
        var scores = matmul(probe, keys.t()); // [n, P, T]
        // Only the last P keys can lie after a probe query: mask there by absolute position (key > query).
        var future = ones(p, p, ScalarType.Bool, probe.device).triu(1);
        scores.narrow(-1, t - p, p).masked_fill_(future, float.NegativeInfinity);
        var a = scores.softmax(-1);
        var vertical = a.mean([1]);
        // Row i wants A[i, p_i - o] at offset o. With the keys reversed that is the row shifted left by P-1-i, which a
        // strided view over the zero-padded rows reads in place: element (i, o) sits at (P-1) + i·(W-1) + o.
        long w = t + p;
        var reversed = nn.functional.pad(a.flip(-1), [0, p]).contiguous(); // [n, P, T+P]
        var diagonals = reversed.as_strided([n, p, t], [p * w, w - 1, 1], p - 1);
        var slash = diagonals.sum(1) / p;
        return (vertical.MoveToOuterDisposeScope(), slash.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Step 3: the γ-cover count, the smallest t ≥ 1 whose t largest entries sum to at least γ·Σx (float64 sums, both in
    /// descending order so that γ = 1 always ends at the full length).
    /// </summary>
    internal static int GammaCoverCount(ReadOnlySpan<float> x, double gamma)
    {
        var sorted = x.ToArray();
        Array.Sort(sorted);
        int n = sorted.Length;
        double total = 0;
        for (int i = n - 1; i >= 0; i--) total += sorted[i];
        double target = gamma * total, covered = 0;
        for (int t = 1; t <= n; t++)
        {
            covered += sorted[n - t];
            if (covered >= target) return t;
        }
        return n;
    }

    /// <summary>The upper clamp of K_v and K_s: nb, or min(nb, ceil(max_budget / bs)).</summary>
    internal static int BudgetCap(int numBlocks, int? maxBudget, int blockSize) =>
        maxBudget is int max ? Math.Min(numBlocks, (max + blockSize - 1) / blockSize) : numBlocks;

    /// <summary>
    /// Step 3: K = cover / bs + 1 (bs, where the published reference hard-codes 128), raised to mb, then capped (the cap wins).
    /// </summary>
    internal static int BlockBudget(int coverCount, int blockSize, int minBudgetBlocks, int cap) =>
        Math.Min(Math.Max(coverCount / blockSize + 1, minBudgetBlocks), cap);

    /// <summary>
    /// Step 4: sum-pooling into blocks: pooled[c] = Σ x over [c·bs, (c+1)·bs) ∩ [0, len), in float64. For vertical these
    /// are key blocks; for slash they are bands of token offsets.
    /// </summary>
    internal static double[] SumPool(ReadOnlySpan<float> x, int blockSize, int numBlocks)
    {
        var pooled = new double[numBlocks];
        for (int i = 0; i < x.Length; i++) pooled[i / blockSize] += x[i];
        return pooled;
    }

    /// <summary>
    /// Step 5: the top <paramref name="k"/> indices of <paramref name="scores"/>, index 0 forced first (score +∞, inside
    /// the budget), then higher score first, ties → smaller index. A budget of 0 (the minimal set of a query-aware head
    /// when min_budget is 0) takes nothing; the diagonal is added later in any case.
    /// </summary>
    internal static int[] TopKWithFirstForced(ReadOnlySpan<double> scores, int k)
    {
        var values = scores.ToArray();
        var order = Enumerable.Range(0, values.Length).ToArray();
        Array.Sort(order, (a, b) =>
        {
            if (a == b) return 0;
            if (a == 0) return -1;
            if (b == 0) return 1;
            int byScore = values[b].CompareTo(values[a]);
            return byScore != 0 ? byScore : a.CompareTo(b);
        });
        return order[..Math.Clamp(k, 0, values.Length)];
    }

    /// <summary>
    /// Step 6: marks the vertical-slash set in <paramref name="mask"/> ([Rows, nb], row i = query block r0 + i).
    /// Vertical block c selects (r, c) for every existing r ≥ c. Band u holds token offsets [u·bs, (u+1)·bs), which fall
    /// on block diagonals u and u+1 (a pair at offset o lies on diagonal floor(o/bs) or floor(o/bs)+1, wherever the
    /// blocks start), so it selects both; diagonal s selects (r, r - s) for every existing r ≥ s.
    /// </summary>
    internal static void MarkVerticalSlash(BlockGrid grid, ReadOnlySpan<int> verticalBlocks, ReadOnlySpan<int> bands, bool[] mask)
    {
        int nb = grid.NumBlocks, r0 = grid.FirstRow;
        foreach (int c in verticalBlocks)
            for (int r = Math.Max(c, r0); r < nb; r++) mask[(r - r0) * nb + c] = true;
        foreach (int u in bands)
            for (int s = u; s <= u + 1 && s < nb; s++)
                for (int r = Math.Max(s, r0); r < nb; r++) mask[(r - r0) * nb + r - s] = true;
    }

    /// <summary>Step 7: k̄, the mean key of each key block (true length for a partial last block): [.., T, D] → [.., nb, D].</summary>
    internal static Tensor KeyBlockMeans(Tensor keys, int blockSize)
    {
        long t = keys.shape[^2], d = keys.shape[^1];
        long nb = (t + blockSize - 1) / blockSize;
        using var scope = NewDisposeScope();
        var padded = nn.functional.pad(keys, [0, 0, 0, nb * blockSize - t]);
        var shape = keys.shape[..^2].Concat([nb, blockSize, d]).ToArray();
        var counts = (arange(nb, ScalarType.Float32, keys.device) * blockSize).neg().add(t).clamp_max(blockSize).unsqueeze(-1);
        return (padded.view(shape).sum(-2) / counts).MoveToOuterDisposeScope();
    }

    /// <summary>Step 7: the logits of the estimate, q̂ · k̄[b] with q̂ the mean of the (scaled) probe queries: [n, nb].</summary>
    internal static Tensor EstimatedBlockLogits(Tensor probe, Tensor keyBlockMeans)
    {
        using var scope = NewDisposeScope();
        return matmul(probe.mean([1]), keyBlockMeans.t()).MoveToOuterDisposeScope();
    }

    /// <summary>Step 7: ā = softmax over all nb blocks (no mask) of the estimate's logits, in float64.</summary>
    internal static double[] Softmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity, sum = 0;
        foreach (float z in logits) max = Math.Max(max, z);
        var p = new double[logits.Length];
        for (int i = 0; i < p.Length; i++) sum += p[i] = Math.Exp(logits[i] - max);
        for (int i = 0; i < p.Length; i++) p[i] /= sum;
        return p;
    }

    /// <summary>
    /// Step 7: d = sqrt(JS(p, q)), natural log, m = (p+q)/2, terms with a zero weight count 0.
    /// </summary>
    internal static double JsDistance(ReadOnlySpan<double> p, ReadOnlySpan<double> q)
    {
        double js = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double m = (p[i] + q[i]) / 2;
            if (p[i] > 0) js += 0.5 * p[i] * Math.Log(p[i] / m);
            if (q[i] > 0) js += 0.5 * q[i] * Math.Log(q[i] / m);
        }
        return Math.Sqrt(Math.Max(js, 0));
    }

    /// <summary>
    /// Step 8: q̄[r], the mean of the queries of this call inside query block r (true count for partial blocks),
    /// unscaled: [.., S, D] → [.., Rows, D].
    /// </summary>
    internal static Tensor QueryBlockMeans(Tensor queries, BlockGrid grid)
    {
        int bs = grid.BlockSize;
        long d = queries.shape[^1];
        long lead = grid.FirstQuery - (long)grid.FirstRow * bs, tail = (long)grid.NumBlocks * bs - grid.KeyLength;
        using var scope = NewDisposeScope();
        var padded = nn.functional.pad(queries, [0, 0, lead, tail]);
        var shape = queries.shape[..^2].Concat([grid.Rows, bs, d]).ToArray();
        var counts = Enumerable.Range(grid.FirstRow, grid.Rows).Select(r => (float)grid.QueriesInRow(r)).ToArray();
        var countTensor = tensor(counts, device: queries.device).unsqueeze(-1);
        return (padded.view(shape).sum(-2) / countTensor).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Step 8: P = softmax_row(q̄[r] · k̄[c] / sqrt(D)) over c ≤ r (block-causal, diagonal included): [Rows, nb], zero above
    /// the diagonal.
    /// </summary>
    internal static Tensor BlockCausalScores(Tensor queryBlockMeans, Tensor keyBlockMeans, BlockGrid grid)
    {
        long d = queryBlockMeans.shape[^1];
        using var scope = NewDisposeScope();
        var scores = matmul(queryBlockMeans, keyBlockMeans.t()) / Math.Sqrt(d);
        var rows = arange(grid.FirstRow, grid.NumBlocks, ScalarType.Int64, scores.device).unsqueeze(1);
        var cols = arange(grid.NumBlocks, ScalarType.Int64, scores.device).unsqueeze(0);
        return scores.masked_fill(cols.gt(rows), float.NegativeInfinity).softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Step 8: marks the query-aware blocks: every causal entry of <paramref name="blockScores"/> ([Rows, nb]) sorted
    /// descending (ties → smaller row, then smaller column), the smallest prefix whose sum reaches γ·Rows (all of them
    /// if rounding keeps the sum below). The published reference instead stops before the entry that crosses γ·nb.
    /// </summary>
    /// <returns>The number of entries taken.</returns>
    internal static int MarkQueryAware(BlockGrid grid, ReadOnlySpan<float> blockScores, double gamma, bool[] mask)
    {
        int nb = grid.NumBlocks, r0 = grid.FirstRow;
        var entries = new List<int>(grid.Rows * (nb + 1) / 2);
        for (int i = 0; i < grid.Rows; i++)
            for (int c = 0; c <= r0 + i; c++) entries.Add(i * nb + c);
        var values = blockScores.ToArray();
        // Linear index i·nb + c orders ties by row, then column.
        entries.Sort((a, b) => { int byScore = values[b].CompareTo(values[a]); return byScore != 0 ? byScore : a.CompareTo(b); });
        double target = gamma * grid.Rows, covered = 0;
        int taken = 0;
        foreach (int e in entries)
        {
            mask[e] = true;
            taken++;
            covered += values[e];
            if (covered >= target) break;
        }
        return taken;
    }

    /// <summary>
    /// Steps 9-10: the CSR of a [Rows, nb] mask, the diagonal (r, r) added to every row: row_ptr [Rows + 1], col_idx
    /// ascending and unique per row.
    /// </summary>
    internal static (int[] RowPtr, int[] ColIdx) ToCsr(BlockGrid grid, bool[] mask)
    {
        int nb = grid.NumBlocks, r0 = grid.FirstRow, rows = grid.Rows;
        var rowPtr = new int[rows + 1];
        var cols = new List<int>();
        for (int i = 0; i < rows; i++)
        {
            mask[i * nb + r0 + i] = true;
            for (int c = 0; c <= r0 + i; c++)
                if (mask[i * nb + c]) cols.Add(c);
            rowPtr[i + 1] = cols.Count;
        }
        return (rowPtr, cols.ToArray());
    }

    /// <summary>All causal blocks of every existing row: the CSR of the dense fallback.</summary>
    internal static (int[] RowPtr, int[] ColIdx) DenseCsr(BlockGrid grid)
    {
        var cols = new List<int>();
        var rowPtr = new int[grid.Rows + 1];
        for (int i = 0; i < grid.Rows; i++)
        {
            for (int c = 0; c <= grid.FirstRow + i; c++) cols.Add(c);
            rowPtr[i + 1] = cols.Count;
        }
        return (rowPtr, cols.ToArray());
    }
}

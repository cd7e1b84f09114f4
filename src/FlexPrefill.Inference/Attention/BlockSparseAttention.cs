using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Attention;

/// <summary>
/// Step 11: causal attention over the blocks of a <see cref="BlockSelection"/>, FlashAttention-style: per chunk of query
/// block rows, the listed key blocks are gathered a few at a time and folded in with an online softmax (fp32), so that
/// memory stays bounded and the work is batched matmuls, not token loops.
/// </summary>
internal static class BlockSparseAttention
{
    /// <summary>Key blocks folded in per online-softmax step.</summary>
    const int KeyBlocksPerStep = 16;

    /// <summary>Scores held at once per step, in floats (16 MB).</summary>
    const long ScoreBudget = 1L << 22;

    /// <summary>
    /// Attention of the S queries over the selected blocks, masked by absolute position (key ≤ query) wherever a block
    /// reaches past a query (the diagonal, a partial last block, the first row of a chunk).
    /// </summary>
    /// <param name="q">[B, Hq, S, D], any float dtype.</param>
    /// <param name="k">[B, Hkv, T, D].</param>
    /// <param name="v">[B, Hkv, T, D].</param>
    /// <param name="selection">The CSR of every head, for these T, S and block size.</param>
    /// <returns>Output [B, Hq, S, D] in q's dtype and the natural-log LSE per query row [B, Hq, S] in fp32.</returns>
    internal static (Tensor Output, Tensor Lse) Forward(Tensor q, Tensor k, Tensor v, BlockSelection selection)
    {
        long batch = q.shape[0], hq = q.shape[1], s = q.shape[2], d = q.shape[3], hkv = k.shape[1];
        long group = hq / hkv;
        var grid = selection.Grid;
        int bs = grid.BlockSize;
        long lead = grid.FirstQuery - (long)grid.FirstRow * bs, tail = (long)grid.NumBlocks * bs - grid.KeyLength;
        double scale = 1.0 / Math.Sqrt(d);
        using var scope = NewDisposeScope();
        var output = empty(batch, hq, s, d, ScalarType.Float32, q.device);
        var lse = empty(batch, hq, s, ScalarType.Float32, q.device);
        // inside a diagonal block key j is after query i exactly when j > i
        var diagonalBias = zeros(bs, bs, ScalarType.Float32, q.device).masked_fill_(ones(bs, bs, ScalarType.Bool, q.device).triu(1), float.NegativeInfinity);
        for (long b = 0; b < batch; b++)
            for (long g = 0; g < hkv; g++)
            {
                using var kvScope = NewDisposeScope();
                // keys padded to whole blocks [nb·bs, D]; values too, with a column of ones appended [nb·bs, D+1]
                var kp = nn.functional.pad(k[b, g].to(ScalarType.Float32), [0, 0, 0, tail]);
                var values = v[b, g].to(ScalarType.Float32);
                var vp1 = nn.functional.pad(cat([values, ones(values.shape[0], 1, ScalarType.Float32, q.device)], 1), [0, 0, 0, tail]);
                for (long h = g * group; h < (g + 1) * group; h++)
                {
                    // queries scaled by 1/sqrt(D) and padded so that row i is query block r0 + i: [Rows, bs, D]
                    var qp = nn.functional.pad(q[b, h].to(ScalarType.Float32) * scale, [0, 0, lead, tail]).view(grid.Rows, bs, d);
                    var (o, l) = AttendRows(qp, kp, vp1, diagonalBias, selection[(int)b, (int)h], grid);
                    output[b, h].copy_(o.narrow(0, lead, s));
                    lse[b, h].copy_(l.narrow(0, lead, s));
                }
            }
        return (output.to(q.dtype).MoveToOuterDisposeScope(), lse.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// One head: qp [Rows, bs, D] (scaled), kp [nb·bs, D], vp1 [nb·bs, D+1] (values with a column of ones, so that the same matmul
    /// also sums the softmax weights) → output [Rows·bs, D] and LSE [Rows·bs], padded query rows included.
    /// Only the diagonal block needs the causal mask: a block left of the diagonal lies wholly before every query of its
    /// row, and the padding after T exists only in the last block, which is a diagonal one. The diagonal goes first, so
    /// the running maximum is finite from the start (every query sees the first key of its own block).
    /// </summary>
    static (Tensor Output, Tensor Lse) AttendRows(Tensor qp, Tensor kp, Tensor vp1, Tensor diagonalBias, HeadSelection head, BlockGrid grid)
    {
        int bs = grid.BlockSize, rows = grid.Rows, r0 = grid.FirstRow;
        long d = qp.shape[2];
        var rowPtr = head.RowPtrArray;
        var colIdx = head.ColIdxArray;
        // off-diagonal blocks of row i: colIdx[rowPtr[i] .. rowPtr[i+1] - 1) (the diagonal is the last, columns ascend)
        int widest = Enumerable.Range(0, rows).Max(i => rowPtr[i + 1] - rowPtr[i] - 1);
        int step = Math.Clamp(widest, 1, KeyBlocksPerStep);
        int rowsPerChunk = (int)Math.Clamp(ScoreBudget / ((long)bs * step * bs), 1, rows);
        var kb = kp.view(grid.NumBlocks, bs, d);
        var vb1 = vp1.view(grid.NumBlocks, bs, d + 1);
        var outputs = new List<Tensor>();
        var lses = new List<Tensor>();
        for (int ra = 0; ra < rows; ra += rowsPerChunk)
        {
            int nr = Math.Min(rowsPerChunk, rows - ra);
            var qc = qp.narrow(0, ra, nr); // [nr, bs, D]
            var kd = kp.narrow(0, (long)(r0 + ra) * bs, (long)nr * bs).view(nr, bs, d);
            var vd = vp1.narrow(0, (long)(r0 + ra) * bs, (long)nr * bs).view(nr, bs, d + 1);
            var scores = bmm(qc, kd.transpose(1, 2)).add_(diagonalBias);
            var m = scores.amax([-1], keepdim: true);
            var acc = bmm(scores.sub_(m).exp_(), vd); // [nr, bs, D+1]: weighted values and the weight sum
            int chunkWidest = Enumerable.Range(ra, nr).Max(i => rowPtr[i + 1] - rowPtr[i] - 1);
            for (int ja = 0; ja < chunkWidest; ja += step)
            {
                int nj = Math.Min(step, chunkWidest - ja);
                // key block of each slot, and a -inf bias on the empty slots of shorter rows: [nr, nj]
                var blocks = new long[nr * nj];
                var bias = new float[nr * nj];
                for (int i = 0; i < nr; i++)
                    for (int j = 0; j < nj; j++)
                    {
                        int at = rowPtr[ra + i] + ja + j;
                        bool used = at < rowPtr[ra + i + 1] - 1;
                        blocks[i * nj + j] = used ? colIdx[at] : 0;
                        bias[i * nj + j] = used ? 0 : float.NegativeInfinity;
                    }
                var gather = tensor(blocks, device: qp.device);
                var slotBias = tensor(bias, device: qp.device).view(nr, 1, nj, 1).expand(nr, 1, nj, bs).reshape(nr, 1, nj * bs);
                // whole blocks are copied (bs·D contiguous values each), not single keys
                var kg = kb.index_select(0, gather).view(nr, nj * bs, d);
                var vg = vb1.index_select(0, gather).view(nr, nj * bs, d + 1);
                scores = bmm(qc, kg.transpose(1, 2)).add_(slotBias);
                var mNew = maximum(m, scores.amax([-1], keepdim: true));
                acc = acc.mul_((m - mNew).exp_()).add_(bmm(scores.sub_(mNew).exp_(), vg));
                m = mNew;
            }
            var l = acc.narrow(2, d, 1);
            outputs.Add((acc.narrow(2, 0, d) / l).view(nr * bs, d));
            lses.Add((m + l.log()).view(nr * bs));
        }
        return (cat(outputs, 0), cat(lses, 0));
    }
}

/// <summary>Exact combination of attentions computed over disjoint key sets (a cached prefix and a chunk, two block sets).</summary>
public static class PartialAttention
{
    /// <summary>
    /// Merges two partial attentions of the same queries over disjoint keys into the attention over their union:
    /// lse = log(e^lse1 + e^lse2), o = (e^lse1·o1 + e^lse2·o2) / e^lse (computed stably, fp32).
    /// A row whose LSE is -∞ (no keys on that side) takes the other side unchanged.
    /// </summary>
    /// <param name="output1">[.., S, D].</param>
    /// <param name="lse1">Natural-log LSE [.., S].</param>
    /// <param name="output2">[.., S, D].</param>
    /// <param name="lse2">Natural-log LSE [.., S].</param>
    /// <returns>The merged output in the dtype of <paramref name="output1"/> and its LSE (fp32).</returns>
    public static (torch.Tensor Output, torch.Tensor Lse) Merge(torch.Tensor output1, torch.Tensor lse1, torch.Tensor output2, torch.Tensor lse2)
    {
        ArgumentNullException.ThrowIfNull(output1);
        ArgumentNullException.ThrowIfNull(lse1);
        ArgumentNullException.ThrowIfNull(output2);
        ArgumentNullException.ThrowIfNull(lse2);
        using var scope = torch.NewDisposeScope();
        var a = lse1.to(ScalarType.Float32);
        var b = lse2.to(ScalarType.Float32);
        var m = maximum(a, b);
        m = m.masked_fill(m.isinf(), 0);
        var wa = (a - m).exp();
        var wb = (b - m).exp();
        var total = wa + wb;
        var merged = (output1.to(ScalarType.Float32) * (wa / total).unsqueeze(-1) + output2.to(ScalarType.Float32) * (wb / total).unsqueeze(-1))
            .to(output1.dtype);
        return (merged.MoveToOuterDisposeScope(), (m + total.log()).MoveToOuterDisposeScope());
    }
}

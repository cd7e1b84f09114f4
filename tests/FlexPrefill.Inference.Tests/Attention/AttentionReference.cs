using FlexPrefill.Inference.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Attention;

/// <summary>Float64 attention written the direct way (full score matrix per head), to judge the block-sparse kernel.</summary>
static class AttentionReference
{
    /// <summary>Random q [B, Hq, S, D], k and v [B, Hkv, T, D] (normal, fp32).</summary>
    public static (Tensor Q, Tensor K, Tensor V) RandomQkv(int batch, int hq, int hkv, int s, int t, int d, long seed)
    {
        var g = new Generator((ulong)seed);
        return (randn([batch, hq, s, d], generator: g), randn([batch, hkv, t, d], generator: g), randn([batch, hkv, t, d], generator: g));
    }

    /// <summary>
    /// Causal attention of the last S positions over T keys in float64; <paramref name="allowed"/> (per batch and head,
    /// [S, T] bool) restricts the keys further.
    /// </summary>
    /// <returns>Output [B, Hq, S, D] and LSE [B, Hq, S], float64.</returns>
    public static (Tensor Output, Tensor Lse) CausalAttention(Tensor q, Tensor k, Tensor v, Func<int, int, Tensor>? allowed = null)
    {
        long batch = q.shape[0], hq = q.shape[1], s = q.shape[2], d = q.shape[3], hkv = k.shape[1], t = k.shape[2];
        long group = hq / hkv;
        var output = zeros(batch, hq, s, d, ScalarType.Float64);
        var lse = zeros(batch, hq, s, ScalarType.Float64);
        using var qpos = arange(t - s, t, ScalarType.Int64).unsqueeze(1);
        using var kpos = arange(t, ScalarType.Int64).unsqueeze(0);
        using var future = kpos.gt(qpos);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < hq; h++)
            {
                using var scope = NewDisposeScope();
                var kh = k[b, h / group].to(ScalarType.Float64);
                var vh = v[b, h / group].to(ScalarType.Float64);
                var scores = matmul(q[b, h].to(ScalarType.Float64), kh.t()) / Math.Sqrt(d);
                var blocked = allowed is null ? future : future.logical_or(allowed(b, h).logical_not());
                scores = scores.masked_fill(blocked, double.NegativeInfinity);
                var rowLse = scores.logsumexp(-1);
                output[b, h].copy_(matmul((scores - rowLse.unsqueeze(-1)).exp(), vh));
                lse[b, h].copy_(rowLse);
            }
        return (output, lse);
    }

    /// <summary>The token mask [S, T] of one head's selected blocks (true = the block is computed).</summary>
    public static Tensor TokenMask(BlockSelection selection, int batch, int head)
    {
        var head1 = selection[batch, head];
        int nb = selection.NumBlocks, rows = selection.Rows, bs = selection.BlockSize;
        int t = selection.KeyLength, s = selection.QueryLength;
        var blocks = new bool[rows * nb];
        for (int i = 0; i < rows; i++)
            foreach (int c in head1.Columns(i)) blocks[i * nb + c] = true;
        using var blockMask = tensor(blocks).view(rows, nb);
        using var qIdx = arange(t - s, t, ScalarType.Int64).div(bs, rounding_mode: RoundingMode.floor).sub(selection.FirstRow);
        using var kIdx = arange(t, ScalarType.Int64).div(bs, rounding_mode: RoundingMode.floor);
        using var byRow = blockMask.index_select(0, qIdx);
        return byRow.index_select(1, kIdx);
    }

    /// <summary>Largest absolute difference, in float64.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var diff = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return diff.item<double>();
    }
}

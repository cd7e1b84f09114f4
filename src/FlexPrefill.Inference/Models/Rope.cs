using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Models;

/// <summary>
/// Rotary position embedding: inverse frequencies for the config's rope type (default, linear, llama3, yarn), computed
/// in float32 with the same operations as transformers, and cos/sin for the positions of one forward step.
/// </summary>
internal sealed class Rope : IDisposable
{
    readonly Tensor _invFreq; // [D] float32 on the model's device: the D/2 frequencies twice, as rotate_half pairs them

    /// <summary>Multiplier of cos and sin (yarn's attention factor; 1 otherwise).</summary>
    public double AttentionScaling { get; }

    public Rope(ModelConfig config, Device device)
    {
        using var scope = NewDisposeScope();
        var (invFreq, scaling) = InverseFrequencies(config.Rope, config.HeadDim, config.MaxPositionEmbeddings);
        _invFreq = cat([invFreq, invFreq]).to(device).DetachFromDisposeScope();
        AttentionScaling = scaling;
    }

    /// <summary>The inverse frequencies [D/2] (float32, CPU) and the cos/sin multiplier, as transformers computes them.</summary>
    public static (Tensor InvFreq, double AttentionScaling) InverseFrequencies(RopeParameters rope, int headDim, int maxPositionEmbeddings)
    {
        using var scope = NewDisposeScope();
        int dim = headDim;
        // base ** (arange(0, dim, 2) / dim), in float32
        Tensor exponent = arange(0, dim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / dim;
        Tensor powers = pow(tensor((float)rope.Theta), exponent);
        Tensor invFreq = 1.0f / powers;
        double scaling = 1.0;
        switch (rope.Type)
        {
            case RopeType.Default:
                break;
            case RopeType.Linear:
                invFreq = invFreq / rope.Factor;
                break;
            case RopeType.Llama3:
                invFreq = Llama3(invFreq, rope);
                break;
            case RopeType.Yarn:
                (invFreq, scaling) = Yarn(powers, rope, dim, maxPositionEmbeddings);
                break;
        }
        return (invFreq.MoveToOuterDisposeScope(), scaling);
    }

    static Tensor Llama3(Tensor invFreq, RopeParameters rope)
    {
        double factor = rope.Factor, low = rope.LowFreqFactor, high = rope.HighFreqFactor;
        double oldContext = rope.OriginalMaxPositionEmbeddings ?? throw new ArgumentException("llama3 rope needs original_max_position_embeddings");
        double lowFreqWavelen = oldContext / low, highFreqWavelen = oldContext / high;
        Tensor wavelen = 2 * Math.PI / invFreq;
        // long wavelengths are interpolated by the factor, short ones kept, the band between smoothed
        Tensor scaled = where(wavelen > lowFreqWavelen, invFreq / factor, invFreq);
        Tensor smooth = (oldContext / wavelen - low) / (high - low);
        Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
        Tensor medium = (wavelen < highFreqWavelen).logical_not().logical_and((wavelen > lowFreqWavelen).logical_not());
        return where(medium, smoothed, scaled);
    }

    static (Tensor InvFreq, double Scaling) Yarn(Tensor posFreqs, RopeParameters rope, int dim, int maxPositionEmbeddings)
    {
        double factor = rope.Factor;
        int original = rope.OriginalMaxPositionEmbeddings ?? maxPositionEmbeddings;
        static double MScale(double scale, double m = 1) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
        double scaling = rope.AttentionFactor
            ?? (rope.MScale is double m && rope.MScaleAllDim is double mAll && m != 0 && mAll != 0
                ? MScale(factor, m) / MScale(factor, mAll)
                : MScale(factor));

        double CorrectionDim(double rotations) =>
            dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(rope.Theta));
        double lowDim = CorrectionDim(rope.BetaFast), highDim = CorrectionDim(rope.BetaSlow);
        if (rope.Truncate) { lowDim = Math.Floor(lowDim); highDim = Math.Ceiling(highDim); }
        lowDim = Math.Max(lowDim, 0);
        highDim = Math.Min(highDim, dim - 1);
        if (lowDim == highDim) highDim += 0.001; // as transformers: avoid a zero-width ramp

        Tensor extrapolation = 1.0f / posFreqs;
        Tensor interpolation = 1.0f / (factor * posFreqs);
        Tensor ramp = ((arange(dim / 2, dtype: ScalarType.Float32) - lowDim) / (highDim - lowDim)).clamp(0, 1);
        Tensor extrapolationWeight = 1 - ramp;
        Tensor invFreq = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
        return (invFreq, scaling);
    }

    /// <summary>
    /// cos [S, D] and sin [S, D/2] for positions start … start + length - 1, in <paramref name="dtype"/>, made once per
    /// forward step for every layer: the D/2 angles twice for cos (x·cos covers both halves at once), once for sin
    /// (each half of x meets it once, with its own sign: see <see cref="Apply"/>).
    /// </summary>
    public (Tensor Cos, Tensor Sin) CosSin(long start, long length, ScalarType dtype)
    {
        Tensor positions = arange(start, start + length, dtype: ScalarType.Float32, device: _invFreq.device);
        Tensor angles = positions.outer(_invFreq); // [S, D], the values of transformers' cat([freqs, freqs])
        Tensor cos = angles.cos(), sin = angles.narrow(1, 0, angles.size(1) / 2).sin();
        if (AttentionScaling != 1.0) { cos = cos * AttentionScaling; sin = sin * AttentionScaling; }
        return (cos.to(dtype), sin.to(dtype));
    }

    /// <summary>
    /// Rotates x [B, H, S, D] by cos [S, D] and sin [S, D/2] from <see cref="CosSin"/>: transformers'
    /// x·cos + rotate_half(x)·sin, rotate_half(x) = cat(-x2, x1), written half by half into y = x·cos:
    /// y1 = x1·cos - x2·sin, y2 = x2·cos + x1·sin.
    /// </summary>
    /// <remarks>
    /// Five passes over q/k's bytes where the roll form (x·cos + roll(x, D/2)·signed sin) made nine and a temporary
    /// as large as q and k. One Llama-3.1-8B layer at 128K in PyTorch on an H200: 5.0 ms half by half (mul into each
    /// half, then addcmul_: the same passes as here, TorchSharp has no out= mul), 10.5 ms the roll form
    /// (docs/benchmarks.md, the prefill floor). addcmul_ adds x2·sin to the rounded x1·cos in one rounding where
    /// transformers rounds x2·sin first: an element may differ by one step of the dtype.
    /// </remarks>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long h = sin.size(-1);
        Tensor y = x.mul(cos);
        y.narrow(-1, 0, h).addcmul_(x.narrow(-1, h, h), sin, -1); // narrow: a view (chunk is slower on the host)
        y.narrow(-1, h, h).addcmul_(x.narrow(-1, 0, h), sin, 1);
        return y;
    }

    public void Dispose() => _invFreq.Dispose();
}

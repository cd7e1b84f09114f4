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
    readonly Tensor _sinSign; // [D] float32: -1 over the first half, +1 over the second (rotate_half's sign, folded into sin)

    /// <summary>Multiplier of cos and sin (yarn's attention factor; 1 otherwise).</summary>
    public double AttentionScaling { get; }

    public Rope(ModelConfig config, Device device)
    {
        using var scope = NewDisposeScope();
        var (invFreq, scaling) = InverseFrequencies(config.Rope, config.HeadDim, config.MaxPositionEmbeddings);
        _invFreq = cat([invFreq, invFreq]).to(device).DetachFromDisposeScope();
        long half = invFreq.shape[0];
        _sinSign = cat([full(half, -1.0f), ones(half)]).to(device).DetachFromDisposeScope();
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
    /// cos and sin [S, D] for positions start … start + length - 1, in <paramref name="dtype"/>, made once per forward
    /// step for every layer. The sin carries rotate_half's sign (negative over the first half) for <see cref="Apply"/>.
    /// </summary>
    public (Tensor Cos, Tensor Sin) CosSin(long start, long length, ScalarType dtype)
    {
        Tensor positions = arange(start, start + length, dtype: ScalarType.Float32, device: _invFreq.device);
        Tensor angles = positions.unsqueeze(1) * _invFreq; // [S, D], the values of transformers' cat([freqs, freqs])
        Tensor cos = angles.cos(), sin = angles.sin().mul_(_sinSign);
        if (AttentionScaling != 1.0) { cos = cos * AttentionScaling; sin = sin * AttentionScaling; }
        return (cos.to(dtype), sin.to(dtype));
    }

    /// <summary>
    /// Rotates x [B, H, S, D] by cos/sin [S, D] from <see cref="CosSin"/>: transformers' x·cos + rotate_half(x)·sin,
    /// where rotate_half(x) = cat(-x2, x1) is roll(x, D/2) = cat(x2, x1) times the sign that sin already carries.
    /// The same products and sum, so the same values, in four calls instead of seven.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin) =>
        x.mul(cos).add_(x.roll(x.size(-1) / 2, -1).mul_(sin));

    public void Dispose()
    {
        _invFreq.Dispose();
        _sinSign.Dispose();
    }
}

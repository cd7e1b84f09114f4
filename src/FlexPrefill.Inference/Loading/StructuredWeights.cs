using System.Text.RegularExpressions;
using FlexPrefill.Inference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Loading;

/// <summary>
/// Random weights whose attention has the structure trained LLMs show, local attention (slash lines) plus a few
/// vertical stripes, so that FlexPrefill selects sparsely and a benchmark shows what sparse prefill does to the time to
/// first token without a checkpoint. The structure is planted, not learned: it says nothing about accuracy, and the
/// model's outputs mean nothing. Every matrix starts as the draw <see cref="RandomWeights"/> makes with the same seed
/// (same device, same memory, no second copy); three things are added:
/// <list type="number">
/// <item><b>A common direction.</b> Every embedding row is M·(u + ρ·z): one rms-1 direction u shared by all tokens plus
/// per-token noise z (ρ = 0.3). RMSNorm hands each sublayer about u whatever M is, so a layer adds a vector of a fixed
/// size (about σ²·sqrt(H·(Hq·D + I)) per entry for σ-std matrices); M is 50 times what all the layers add together, so
/// the residual stream stays along u and every layer sees the structure of the first.</item>
/// <item><b>Slash lines from RoPE.</b> Each layer's q_proj and k_proj are corrected by a rank-one term
/// (W += (t − W·u)·uᵀ / H) so that they map u to chosen vectors: q⋆ per query head, k⋆ per KV head. Every position's
/// query and key are then about q⋆ and k⋆ before RoPE, and a score depends on the distance m − n alone. q⋆ and k⋆ are
/// parallel in each rotary pair j that turns at least once in 4,096 tokens and zero in the slower ones, so
/// score(m − n) = s/P · Σ_j cos(θ_j·(m − n)) over those P pairs: s at distance 0, falling as the pairs dephase. That is
/// local attention, a slash band along the diagonal; s (16 to 24, per head) sets how sharp.</item>
/// <item><b>Vertical stripes.</b> Tokens whose id is a multiple of 1,024 also carry a second direction w ⊥ u, which
/// k_proj maps onto the slowest rotary pairs (they hardly turn over the context) where q⋆ has a matching part: those
/// keys score s − 3 to s − 7 for every later query, like the delimiter and sink tokens of real models.</item>
/// </list>
/// Everything else (v_proj, o_proj, the MLP, norms, lm_head) is the Gaussian draw unchanged.
/// </summary>
internal sealed partial class StructuredWeights : IWeightSource
{
    const double TokenNoise = 0.3;        // ρ: per-token content against the common direction
    const double ResidualMargin = 50;     // M over the rms that all the layers' random updates add
    const double LocalWavelength = 4096;  // rotary pairs slower than this carry no local score
    const double MinSharpness = 16, MaxSharpness = 24; // s: the local score at distance 0, per query head
    const double MinStripeDrop = 3, MaxStripeDrop = 7; // a stripe key scores s minus this, per query head
    /// <summary>Token ids that are multiples of this carry the stripe direction: one random prompt token in 1,024.</summary>
    public const int StripeEvery = 1024;

    readonly ModelConfig _config;
    readonly long _seed;
    readonly ScalarType _dtype;
    readonly RandomWeights _gaussian;
    readonly Tensor _u, _w;    // [hidden] float32 on the device, rms 1, orthogonal
    readonly double _scale;    // M
    readonly bool[] _local;    // per rotary pair: carries the local score
    readonly int _stripePairs; // the slowest pairs, which carry the stripe score

    public StructuredWeights(ModelConfig config, long seed, ScalarType dtype, Device device, double std = 0.02)
    {
        (_config, _seed, _dtype) = (config, seed, dtype);
        _gaussian = new RandomWeights(seed, dtype, device, std);

        // u and w from a generator of their own, so that the matrices are the Gaussian source's draws.
        using (var scope = NewDisposeScope())
        {
            var directions = randn([2, config.HiddenSize], generator: new Generator((ulong)seed ^ 0x5EED, CPU)).to(float64);
            var u = directions[0];
            var w = directions[1] - u * (u.dot(directions[1]) / u.dot(u)); // Gram-Schmidt: w ⊥ u
            double rms1 = Math.Sqrt(config.HiddenSize);
            _u = (u * (rms1 / u.norm().item<double>())).to(float32).to(device).DetachFromDisposeScope();
            _w = (w * (rms1 / w.norm().item<double>())).to(float32).to(device).DetachFromDisposeScope();
        }

        // Sublayer output entries are about std²·sqrt(H·width): two std-σ matrices over an rms-1 input, the second of
        // width Hq·D (attention) or I (MLP). The L layers' updates are independent, so they add up as sqrt(L).
        int hidden = config.HiddenSize;
        double perLayer = std * std * Math.Sqrt((double)hidden * (config.NumHeads * config.HeadDim + config.IntermediateSize));
        _scale = ResidualMargin * perLayer * Math.Sqrt(config.NumLayers);

        int pairs = config.HeadDim / 2;
        _stripePairs = Math.Max(1, pairs / 8);
        using var invFreq = Rope.InverseFrequencies(config.Rope, config.HeadDim, config.MaxPositionEmbeddings).InvFreq;
        var frequencies = invFreq.data<float>().ToArray();
        _local = frequencies.Select((f, j) => j < pairs - _stripePairs && 2 * Math.PI / f <= LocalWavelength).ToArray();
        if (!_local.Any(l => l)) _local[0] = true; // a rope too slow for the window still gets its fastest pair
    }

    /// <summary>The embedding and each layer's q_proj and k_proj get their structure; every other tensor is the
    /// Gaussian source's.</summary>
    public Tensor Take(string key, long[] shape)
    {
        var projection = ProjectionKey().Match(key);
        if (key != "model.embed_tokens.weight" && !projection.Success)
            return _gaussian.Take(key, shape);

        using var scope = NewDisposeScope();
        Tensor weight = _gaussian.Normal(shape); // the draw the Gaussian source makes for this key, float32
        if (!projection.Success)
        {
            // rows M·(u + ρ·z), z the unit-variance draw; stripe tokens also M·w
            weight.mul_(_scale * TokenNoise / _gaussian.Std).add_(_u * _scale);
            weight[TensorIndex.Slice(0, null, StripeEvery)].add_(_w * _scale);
        }
        else
        {
            var (queryTarget, keyTarget, stripeTarget) = Targets(int.Parse(projection.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            if (projection.Groups[2].Value == "q")
            {
                Plant(weight, _u, queryTarget);
            }
            else
            {
                Plant(weight, _u, keyTarget);
                Plant(weight, _w, stripeTarget); // w ⊥ u: this leaves weight·u as planted
            }
        }
        return weight.to(_dtype).DetachFromDisposeScope();
    }

    /// <summary>weight [out, H] ← weight + (target − weight·v)·vᵀ / H: now weight·v = target, and weight is unchanged
    /// on every direction orthogonal to v (v has rms 1, so |v|² = H).</summary>
    static void Plant(Tensor weight, Tensor v, Tensor target) =>
        weight.addr_(target.to(weight.device) - weight.mv(v), v, beta: 1, alpha: 1f / v.shape[0]);

    /// <summary>
    /// Layer <paramref name="layer"/>'s planted vectors, float32 on the CPU: q⋆ [Hq·D], k⋆ [Hkv·D] (what k_proj maps u
    /// to) and the stripe key [Hkv·D] (what it maps w to), in the rotate_half layout (pair j = dimensions j and j + D/2).
    /// In each pair, the query heads of a group point where their KV head points (one random angle per pair), so every
    /// head's score peaks at distance 0. A stripe token's normed input is (u + w)/√2, hence the √2 in its part.
    /// </summary>
    (Tensor Query, Tensor Key, Tensor StripeKey) Targets(int layer)
    {
        var random = new Random(unchecked((int)_seed * 7919 + layer));
        int d = _config.HeadDim, pairs = d / 2, heads = _config.NumHeads, kvHeads = _config.NumKvHeads, group = heads / kvHeads;
        int localPairs = _local.Count(l => l), stripePairs = _stripePairs;
        double rootD = Math.Sqrt(d);
        // key amplitudes per pair, chosen so that |q⋆| ≈ |k⋆| at s = 20 (keeps either from drowning in the noise)
        double localKey = Math.Sqrt(20 * rootD / localPairs), stripeKey = Math.Sqrt(20 * rootD / stripePairs);
        var q = new float[heads * d];
        var k = new float[kvHeads * d];
        var stripe = new float[kvHeads * d];
        var angle = new double[pairs];
        for (int g = 0; g < kvHeads; g++)
        {
            for (int j = 0; j < pairs; j++) angle[j] = 2 * Math.PI * random.NextDouble();
            for (int j = 0; j < pairs; j++)
            {
                bool isStripe = j >= pairs - stripePairs;
                if (!_local[j] && !isStripe) continue;
                var (cos, sin) = (Math.Cos(angle[j]), Math.Sin(angle[j]));
                double amplitude = isStripe ? stripeKey : localKey;
                float[] keys = isStripe ? stripe : k;
                keys[g * d + j] = (float)(amplitude * cos);
                keys[g * d + j + pairs] = (float)(amplitude * sin);
            }
            for (int h = g * group; h < (g + 1) * group; h++)
            {
                double sharpness = MinSharpness + (MaxSharpness - MinSharpness) * random.NextDouble();
                double stripeScore = sharpness - (MinStripeDrop + (MaxStripeDrop - MinStripeDrop) * random.NextDouble());
                for (int j = 0; j < pairs; j++)
                {
                    bool isStripe = j >= pairs - stripePairs;
                    if (!_local[j] && !isStripe) continue;
                    // local: Σ over the local pairs of q·k / sqrt(D) = s; stripe: Σ over the stripe pairs of q·(k/√2) / sqrt(D) = stripe score
                    double amplitude = isStripe
                        ? stripeScore * rootD * Math.Sqrt(2) / (stripePairs * stripeKey)
                        : sharpness * rootD / (localPairs * localKey);
                    q[h * d + j] = (float)(amplitude * Math.Cos(angle[j]));
                    q[h * d + j + pairs] = (float)(amplitude * Math.Sin(angle[j]));
                }
            }
        }
        return (tensor(q), tensor(k), tensor(stripe));
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.self_attn\.([qk])_proj\.weight$")]
    private static partial Regex ProjectionKey();
}

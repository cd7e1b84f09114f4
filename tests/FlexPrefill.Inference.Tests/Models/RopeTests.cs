using FlexPrefill.Inference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Models;

public class RopeTests
{
    static float[] InvFreq(RopeParameters p, int d, int maxPositions, out double scaling)
    {
        var (t, s) = Rope.InverseFrequencies(p, d, maxPositions);
        using (t)
        {
            scaling = s;
            return t.data<float>().ToArray();
        }
    }

    [Fact]
    public void Default_frequencies_are_theta_to_the_minus_2i_over_d()
    {
        float[] f = InvFreq(new RopeParameters { Theta = 10000 }, 64, 4096, out double scaling);
        Assert.Equal(32, f.Length);
        for (int i = 0; i < f.Length; i++)
            Assert.Equal(Math.Pow(10000, -2.0 * i / 64), f[i], 1e-6 * Math.Max(1, f[i]));
        Assert.Equal(1.0, scaling);
    }

    [Fact]
    public void Linear_scaling_divides_every_frequency()
    {
        float[] plain = InvFreq(new RopeParameters { Theta = 10000 }, 32, 4096, out _);
        float[] linear = InvFreq(new RopeParameters { Type = RopeType.Linear, Theta = 10000, Factor = 4 }, 32, 4096, out _);
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i] / 4, linear[i], 1e-7);
    }

    [Fact]
    public void Llama3_keeps_short_wavelengths_divides_long_ones_and_smooths_between()
    {
        var p = new RopeParameters { Type = RopeType.Llama3, Theta = 500000, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 8192 };
        float[] plain = InvFreq(new RopeParameters { Theta = 500000 }, 128, 131072, out _);
        float[] scaled = InvFreq(p, 128, 131072, out _);
        int kept = 0, divided = 0, smoothed = 0;
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelength = 2 * Math.PI / plain[i];
            if (wavelength < 8192 / 4.0) { Assert.Equal(plain[i], scaled[i]); kept++; }
            else if (wavelength > 8192 / 1.0) { Assert.Equal(plain[i] / 8, scaled[i], 1e-6 * plain[i]); divided++; }
            else
            {
                double smooth = (8192 / wavelength - 1) / (4 - 1);
                Assert.Equal((1 - smooth) * plain[i] / 8 + smooth * plain[i], scaled[i], 1e-5 * plain[i]);
                smoothed++;
            }
        }
        Assert.True(kept > 0 && divided > 0 && smoothed > 0, $"kept {kept}, divided {divided}, smoothed {smoothed}");
    }

    [Fact]
    public void Yarn_interpolates_low_frequencies_extrapolates_high_ones_and_scales_attention()
    {
        var p = new RopeParameters { Type = RopeType.Yarn, Theta = 1000000, Factor = 4, OriginalMaxPositionEmbeddings = 32768 };
        float[] plain = InvFreq(new RopeParameters { Theta = 1000000 }, 128, 131072, out _);
        float[] yarn = InvFreq(p, 128, 131072, out double scaling);
        Assert.Equal(0.1 * Math.Log(4) + 1, scaling, 1e-12);
        Assert.Equal(plain[0], yarn[0]);                              // fastest rotations: unchanged
        Assert.Equal(plain[^1] / 4, yarn[^1], 1e-6 * plain[^1]);      // slowest: interpolated by the factor
        for (int i = 0; i < plain.Length; i++)
            Assert.InRange(yarn[i], plain[i] / 4 * (1 - 1e-6), plain[i] * (1 + 1e-6));
    }

    [Fact]
    public void Rotated_dot_products_depend_only_on_the_distance()
    {
        var config = new ModelConfig { ModelType = "llama", VocabSize = 10, HiddenSize = 32, IntermediateSize = 8, NumLayers = 1, NumHeads = 2, NumKvHeads = 2 };
        using var rope = new Rope(config, CPU);
        using var scope = NewDisposeScope();
        var g = new torch.Generator(3);
        Tensor q = randn([1, 1, 1, 16], generator: g), k = randn([1, 1, 1, 16], generator: g);
        double Score(long qPos, long kPos)
        {
            var (cq, sq) = rope.CosSin(qPos, 1, ScalarType.Float32);
            var (ck, sk) = rope.CosSin(kPos, 1, ScalarType.Float32);
            return (Rope.Apply(q, cq, sq) * Rope.Apply(k, ck, sk)).sum().item<float>();
        }
        Assert.Equal(Score(7, 3), Score(107, 103), 1e-4);
        Assert.NotEqual(Score(7, 3), Score(7, 5), 3);
        var (c0, s0) = rope.CosSin(0, 1, ScalarType.Float32);
        Assert.True(Rope.Apply(q, c0, s0).allclose(q)); // position 0 does not rotate
    }

    /// <summary>transformers' apply_rotary_pos_emb: sin [S, D] = cat(sin, sin), rotate_half(x) = cat(-x2, x1).</summary>
    static Tensor Transformers(Tensor x, Tensor cos, Tensor halfSin)
    {
        Tensor[] halves = x.chunk(2, -1);
        return x * cos + cat([-halves[1], halves[0]], -1) * cat([halfSin, halfSin], -1);
    }

    /// <summary>q and k heads [1, H, S, D] as the model has them: a view of the [B, S, H, D] projection, not contiguous.</summary>
    static (Tensor X, Tensor Cos, Tensor Sin) Heads(ScalarType dtype, long start)
    {
        var config = new ModelConfig { ModelType = "llama", VocabSize = 10, HiddenSize = 256, IntermediateSize = 8, NumLayers = 1, NumHeads = 4, NumKvHeads = 2,
            Rope = new RopeParameters { Type = RopeType.Llama3, Theta = 500000, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 64 } };
        using var rope = new Rope(config, CPU);
        var (cos, sin) = rope.CosSin(start, 97, dtype);
        Tensor x = randn([1, 97, 6, 64], generator: new torch.Generator(5)).to(dtype).transpose(1, 2);
        return (x, cos, sin);
    }

    /// <summary>
    /// Rope.Apply adds x2·sin to the rounded x1·cos in one rounding (addcmul), where transformers rounds x2·sin first:
    /// one step of the dtype at the largest of the two products and the sum bounds what that changes (the sum may be
    /// far smaller than the products: cancellation), and summed over the elements ours is no further from float64.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, 23)]
    [InlineData(ScalarType.BFloat16, 7)]
    public void The_rotation_is_within_one_step_of_transformers_and_no_less_accurate(ScalarType dtype, int mantissaBits)
    {
        using var scope = NewDisposeScope();
        var (x, cos, sin) = Heads(dtype, start: 1000);
        Tensor ours = Rope.Apply(x, cos, sin).to(ScalarType.Float64), theirs = Transformers(x, cos, sin).to(ScalarType.Float64);
        var (x64, cos64, sin64) = (x.to(ScalarType.Float64), cos.to(ScalarType.Float64), sin.to(ScalarType.Float64));
        Tensor exact = Transformers(x64, cos64, sin64);
        Tensor largest = (x64 * cos64).abs().maximum((x64.roll(32, -1) * cat([sin64, sin64], -1)).abs()).maximum(exact.abs());
        Tensor step = pow(tensor(2.0, ScalarType.Float64), largest.clamp_min(1e-30).log2().floor() - mantissaBits);
        double moved = ((ours - theirs).abs() / step).max().item<double>();
        Assert.True(moved <= 1, $"an element moved by {moved} steps");
        Assert.True((ours - exact).abs().sum().item<double>() <= (theirs - exact).abs().sum().item<double>(),
            "one rounding of x1·cos - x2·sin should not be less accurate than two");
    }
}

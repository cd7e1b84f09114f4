using FlexPrefill.Inference.Generation;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Generation;

public class SamplerTests
{
    static Tensor Logits(params float[] values) => tensor(values);

    static int[] Draws(GenerationOptions o, float[] logits, int n, long seed)
    {
        var s = new Sampler(o, seed);
        using var t = Logits(logits);
        return Enumerable.Range(0, n).Select(_ => s.Sample(t, Array.Empty<int>())).ToArray();
    }

    static readonly float[] Flat = [1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f];

    [Fact]
    public void Temperature_zero_is_greedy()
    {
        Assert.All(Draws(new GenerationOptions(), [0.1f, 3f, -1f, 2.9f], 5, 1), t => Assert.Equal(1, t));
    }

    [Fact]
    public void Sampling_with_a_seed_is_reproducible()
    {
        var o = new GenerationOptions { Temperature = 1.0 };
        int[] a = Draws(o, Flat, 50, 42), b = Draws(o, Flat, 50, 42), c = Draws(o, Flat, 50, 43);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.True(a.Distinct().Count() > 3, "temperature 1 over a flat distribution should vary");
    }

    [Fact]
    public void Top_k_keeps_only_the_k_most_likely()
    {
        int[] d = Draws(new GenerationOptions { Temperature = 1.0, TopK = 2 }, Flat, 200, 5);
        Assert.All(d, t => Assert.InRange(t, 0, 1));
        Assert.Contains(0, d);
        Assert.Contains(1, d);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_the_mass()
    {
        // probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps the first two (0.5 < 0.7 ≤ 0.8)
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        int[] d = Draws(new GenerationOptions { Temperature = 1.0, TopP = 0.7 }, logits, 300, 9);
        Assert.All(d, t => Assert.InRange(t, 0, 1));
        Assert.Contains(1, d);
    }

    [Fact]
    public void Min_p_drops_tokens_far_below_the_top()
    {
        float[] logits = [MathF.Log(0.6f), MathF.Log(0.3f), MathF.Log(0.05f), MathF.Log(0.05f)];
        int[] d = Draws(new GenerationOptions { Temperature = 1.0, MinP = 0.2 }, logits, 300, 11); // cut below 0.12
        Assert.All(d, t => Assert.InRange(t, 0, 1));
    }

    [Fact]
    public void Repetition_penalty_pushes_a_seen_token_below_an_unseen_one()
    {
        var o = new GenerationOptions { RepetitionPenalty = 2.0 };
        using var t = Logits(2.0f, 1.5f, -1f);
        Assert.Equal(0, new Sampler(o, 1).Sample(t, Array.Empty<int>()));
        Assert.Equal(1, new Sampler(o, 1).Sample(t, new[] { 0 })); // 2.0 / 2 = 1.0 < 1.5
        using var negative = Logits(-0.5f, -0.6f);
        Assert.Equal(1, new Sampler(o, 1).Sample(negative, new[] { 0 })); // -0.5 · 2 = -1.0 < -0.6
    }
}

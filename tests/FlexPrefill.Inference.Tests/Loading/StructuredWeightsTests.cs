using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Loading;
using FlexPrefill.Inference.Models;
using FlexPrefill.Inference.Tests.Engine;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Loading;

public class StructuredWeightsTests
{
    /// <summary>A small Llama-3.1: 4 layers, hidden 256, 8 query / 2 KV heads of 32, Llama-3.1's rope.</summary>
    static readonly ModelConfig Small = new()
    {
        ModelType = "llama", VocabSize = 4096, HiddenSize = 256, IntermediateSize = 512, NumLayers = 4, NumHeads = 8,
        NumKvHeads = 2, ExplicitHeadDim = 32, MaxPositionEmbeddings = 8192, RmsNormEps = 1e-5, EosTokenIds = [],
        Rope = new RopeParameters
        {
            Type = RopeType.Llama3, Theta = 500000, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 8192,
        },
    };

    static async Task<PrefillStatistics> FlexPrefillStatistics(RandomWeightKind weights)
    {
        using var model = LanguageModel.CreateRandom(Small, seed: 1, weights: weights);
        var summary = await Run.Generate(model, Run.Prompt(4096, Small.VocabSize, seed: 7), new GenerationOptions
        {
            MaxTokens = 1,
            Attention = AttentionMode.FlexPrefill,
            FlexPrefill = new FlexPrefillOptions { BlockSize = 64, MinBudget = 128 }, // 64 blocks a row; at least 2 per head
        });
        return summary.Attention ?? throw new Xunit.Sdk.XunitException("a FlexPrefill prefill returned no statistics");
    }

    static double Density(IEnumerable<HeadStatistics> heads) =>
        heads.Sum(h => h.ComputedBlocks) / (double)heads.Sum(h => h.CausalBlocks);

    [Fact]
    public async Task FlexPrefill_selects_few_blocks_in_every_layer_of_structured_weights_and_nearly_all_of_gaussian_ones()
    {
        var gaussian = await FlexPrefillStatistics(RandomWeightKind.Gaussian);
        var structured = await FlexPrefillStatistics(RandomWeightKind.Structured);

        // Measured (4,096 tokens, 2,080 causal blocks a head): Gaussian 0.91 (every head query-aware, near-uniform);
        // structured 0.14 overall, 0.14-0.15 per layer, 0.12-0.16 per head (vertical-slash at or near the minimum budget).
        Assert.InRange(gaussian.DensityOfCausalBlocks, 0.8, 1.0);
        Assert.InRange(structured.DensityOfCausalBlocks, 0.0, 0.25);
        Assert.Empty(structured.DenseFallbackLayers);
        Assert.Equal(Small.NumLayers * Small.NumHeads, structured.Heads.Count);
        foreach (var layer in structured.Heads.GroupBy(h => h.Layer))
        {
            Assert.InRange(Density(layer), 0.0, 0.3);
            // local attention and stripes are the vertical-slash pattern; no head is left near-uniform
            Assert.All(layer, h => Assert.Equal(AttentionPattern.VerticalSlash, h.Pattern));
            Assert.All(layer, h => Assert.InRange(h.DensityOfCausalBlocks, 0.0, 0.4));
        }
    }

    [Fact]
    public void Only_the_embedding_and_the_query_and_key_projections_differ_from_the_gaussian_draws_of_the_same_seed()
    {
        var gaussian = new RandomWeights(3, ScalarType.Float32, CPU);
        var structured = new StructuredWeights(Small, 3, ScalarType.Float32, CPU);
        var again = new StructuredWeights(Small, 3, ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        long hidden = Small.HiddenSize, q = Small.NumHeads * Small.HeadDim, kv = Small.NumKvHeads * Small.HeadDim;
        // in the model's order of taking them, so that both sources are at the same point of their draws
        (string Key, long[] Shape, bool Planted)[] keys =
        [
            ("model.embed_tokens.weight", [Small.VocabSize, hidden], true),
            ("model.layers.0.input_layernorm.weight", [hidden], false),
            ("model.layers.0.self_attn.q_proj.weight", [q, hidden], true),
            ("model.layers.0.self_attn.k_proj.weight", [kv, hidden], true),
            ("model.layers.0.self_attn.v_proj.weight", [kv, hidden], false),
            ("model.layers.0.self_attn.o_proj.weight", [hidden, q], false),
            ("model.layers.0.mlp.gate_proj.weight", [Small.IntermediateSize, hidden], false),
        ];
        foreach (var (key, shape, planted) in keys)
        {
            Tensor g = gaussian.Take(key, shape), s = structured.Take(key, shape), a = again.Take(key, shape);
            Assert.True(s.allclose(a, rtol: 0, atol: 0), $"{key}: the same seed gave other weights");
            Assert.True(planted != g.allclose(s, rtol: 0, atol: 0), $"{key}: {(planted ? "no structure planted" : "not the Gaussian draw")}");
            g.Dispose(); s.Dispose(); a.Dispose();
        }
    }
}

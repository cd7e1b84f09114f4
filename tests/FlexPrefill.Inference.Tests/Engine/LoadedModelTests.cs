using FlexPrefill.Inference.Loading;
using FlexPrefill.Inference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FlexPrefill.Inference.Tests.Engine;

public class LoadedModelTests
{
    static void AssertClose(double[,] expected, IReadOnlyDictionary<int, float[]> actual, double tolerance)
    {
        double worst = 0;
        foreach (var (pos, row) in actual)
            for (int j = 0; j < row.Length; j++)
                worst = Math.Max(worst, Math.Abs(row[j] - expected[pos, j]));
        Assert.True(worst <= tolerance, $"max abs logit error {worst:E2} > {tolerance:E0}");
    }

    [Fact]
    public async Task A_sharded_gqa_llama_with_explicit_head_dim_matches_a_float64_reference()
    {
        using var tiny = TinyModel.Create(heads: 4, kvHeads: 2, hidden: 32, headDim: 12, shards: 3);
        using var model = LanguageModel.Load(tiny.Directory);
        int[] prompt = Run.Prompt(23, 97);
        var logits = await model.LogitsAsync(prompt, Enumerable.Range(0, 23).ToArray(), Run.Ct);
        AssertClose(ReferenceForward.Logits(tiny, prompt, 2, 4, 2, 12), logits, 1e-4);
    }

    [Fact]
    public async Task A_qwen2_with_bias_and_tied_embeddings_stored_in_bfloat16_matches_a_float64_reference()
    {
        using var tiny = TinyModel.Create(modelType: "qwen2", tie: true, stored: ScalarType.BFloat16, heads: 4, kvHeads: 1);
        using var model = LanguageModel.Load(tiny.Directory);
        Assert.True(model.Config.AttentionBias);
        int[] prompt = Run.Prompt(19, 97, seed: 2);
        var logits = await model.LogitsAsync(prompt, [0, 5, 18], Run.Ct);
        AssertClose(ReferenceForward.Logits(tiny, prompt, 2, 4, 1, 8), logits, 1e-4);
    }

    [Fact]
    public async Task Llama_attention_bias_and_float16_storage_load()
    {
        using var tiny = TinyModel.Create(attentionBias: true, stored: ScalarType.Float16, kvHeads: 4);
        using var model = LanguageModel.Load(tiny.Directory);
        Assert.True(model.Config.OutputBias);
        int[] prompt = Run.Prompt(9, 97, seed: 3);
        var logits = await model.LogitsAsync(prompt, [-1, 0], Run.Ct);
        var reference = ReferenceForward.Logits(tiny, prompt, 2, 4, 4, 8);
        AssertClose(reference, new Dictionary<int, float[]> { [8] = logits[-1], [0] = logits[0] }, 1e-4);
    }

    /// <summary>The checkpoint key of a module parameter: q/k/v_proj and gate/up_proj are fused at load.</summary>
    static string FusedName(string key) => System.Text.RegularExpressions.Regex.Replace(
        System.Text.RegularExpressions.Regex.Replace(key, @"self_attn\.[qkv]_proj", "self_attn.qkv_proj"), @"mlp\.(gate|up)_proj", "mlp.gate_up_proj");

    [Fact]
    public void Module_parameter_names_are_the_checkpoint_keys_with_qkv_and_gate_up_fused()
    {
        foreach (bool tie in new[] { false, true })
        {
            using var tiny = TinyModel.Create(modelType: tie ? "qwen2" : "llama", tie: tie);
            using var ckpt = Checkpoint.Open(tiny.Directory);
            var weights = new CheckpointWeights(ckpt, ScalarType.Float32, CPU);
            using var transformer = new Transformer(ModelConfig.Load(Path.Combine(tiny.Directory, "config.json")), weights, ScalarType.Float32, CPU);
            var names = transformer.named_parameters().Select(p => p.name).Order().ToArray();
            Assert.Equal(tiny.Weights.Keys.Select(FusedName).Distinct().Order().ToArray(), names);
            Assert.Empty(weights.Unused);
        }
    }

    [Fact]
    public void Fused_projections_hold_the_checkpoint_matrices_and_biases_in_order()
    {
        using var tiny = TinyModel.Create(modelType: "qwen2", heads: 4, kvHeads: 2);
        using var ckpt = Checkpoint.Open(tiny.Directory);
        using var transformer = new Transformer(ModelConfig.Load(Path.Combine(tiny.Directory, "config.json")), new CheckpointWeights(ckpt, ScalarType.Float32, CPU), ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        var parameters = transformer.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        Tensor Stacked(params string[] keys) => cat(keys.Select(k => tiny.Weights[k]).ToArray(), 0);
        string p = "model.layers.1";
        Assert.True(parameters[$"{p}.self_attn.qkv_proj.weight"].allclose(Stacked($"{p}.self_attn.q_proj.weight", $"{p}.self_attn.k_proj.weight", $"{p}.self_attn.v_proj.weight"), rtol: 0, atol: 0));
        Assert.True(parameters[$"{p}.self_attn.qkv_proj.bias"].allclose(Stacked($"{p}.self_attn.q_proj.bias", $"{p}.self_attn.k_proj.bias", $"{p}.self_attn.v_proj.bias"), rtol: 0, atol: 0));
        Assert.True(parameters[$"{p}.mlp.gate_up_proj.weight"].allclose(Stacked($"{p}.mlp.gate_proj.weight", $"{p}.mlp.up_proj.weight"), rtol: 0, atol: 0));
    }

    /// <summary>Hands out random weights and keeps the tensors of the parts that are fused at load.</summary>
    sealed class RecordingWeights(IWeightSource inner) : IWeightSource
    {
        public readonly List<(string Key, Tensor Tensor)> FusedParts = [];
        public int MostAliveAtOnce;

        public Tensor Take(string key, long[] shape)
        {
            Tensor t = inner.Take(key, shape);
            if (FusedName(key) != key)
            {
                FusedParts.Add((key, t));
                MostAliveAtOnce = Math.Max(MostAliveAtOnce, FusedParts.Count(p => !p.Tensor.IsInvalid));
            }
            return t;
        }
    }

    [Fact]
    public void Fused_parts_are_released_as_they_are_copied_so_loading_holds_one_part_more_at_most()
    {
        var config = new ModelConfig { ModelType = "qwen2", VocabSize = 97, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, AttentionBias = true };
        var weights = new RecordingWeights(new RandomWeights(1, ScalarType.Float32, CPU));
        using var transformer = new Transformer(config, weights, ScalarType.Float32, CPU);
        Assert.Equal(2 * (3 * 2 + 2), weights.FusedParts.Count); // per layer q/k/v weights and biases, gate and up
        Assert.Equal(1, weights.MostAliveAtOnce);
        Assert.All(weights.FusedParts, p => Assert.True(p.Tensor.IsInvalid, $"{p.Key} is still held after loading"));
    }

    [Fact]
    public void A_missing_tensor_fails_the_load_naming_it()
    {
        using var tiny = TinyModel.Create();
        // rewrite the checkpoint without one matrix
        var kept = tiny.Weights.Where(kv => kv.Key != "model.layers.1.mlp.up_proj.weight").Select(kv => (kv.Key, kv.Value));
        Loading.SafetensorsWriter.Write(Path.Combine(tiny.Directory, "model.safetensors"), kept);
        var e = Assert.Throws<ModelLoadException>(() => LanguageModel.Load(tiny.Directory));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message);
    }

    [Fact]
    public void A_config_that_disagrees_with_the_weights_names_the_tensor_and_shapes()
    {
        using var tiny = TinyModel.Create();
        string path = Path.Combine(tiny.Directory, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"intermediate_size\":48", "\"intermediate_size\":40"));
        var e = Assert.Throws<ModelLoadException>(() => LanguageModel.Load(tiny.Directory));
        Assert.Contains("gate_proj.weight", e.Message);
        Assert.Contains("[48, 32]", e.Message);
        Assert.Contains("[40, 32]", e.Message);
    }

    [Fact]
    public void A_folder_without_a_tokenizer_works_in_token_ids_and_says_so_for_text()
    {
        using var tiny = TinyModel.Create();
        using var model = LanguageModel.Load(tiny.Directory);
        var e = Assert.Throws<InvalidOperationException>(() => model.Encode("hello"));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Equal(256, model.ContextLength);
        Assert.Equal(Path.GetFileName(tiny.Directory), model.ModelId);
    }
}

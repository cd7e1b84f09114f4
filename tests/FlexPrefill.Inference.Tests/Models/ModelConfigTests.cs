using System.Text.Json.Nodes;
using FlexPrefill.Inference.Models;

namespace FlexPrefill.Inference.Tests.Models;

public class ModelConfigTests
{
    const string LlamaBase = " \"model_type\": \"llama\", \"vocab_size\": 128256, \"hidden_size\": 4096, \"intermediate_size\": 14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-5, \"max_position_embeddings\": 131072, \"tie_word_embeddings\": false, \"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009] ";

    static ModelConfig Parse(string json) => ModelConfig.Parse((JsonObject)JsonNode.Parse(json)!, "test/config.json");

    static ModelConfig Llama(string extra) => Parse("{" + LlamaBase + ", " + extra + "}");

    [Fact]
    public void The_transformers_4_and_5_forms_of_llama3_rope_scaling_read_the_same()
    {
        var v4 = Llama(" \"rope_theta\": 500000.0, \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"} ");
        var v5 = Llama(" \"rope_parameters\": {\"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"} ");
        Assert.Equal(v4.Rope, v5.Rope);
        Assert.Equal(RopeType.Llama3, v5.Rope.Type);
        Assert.Equal(500000.0, v5.Rope.Theta);
        Assert.Equal(8192, v5.Rope.OriginalMaxPositionEmbeddings);
        Assert.Equal(128, v5.HeadDim);
        Assert.Equal(4, v5.KvGroups);
        Assert.Equal([128001, 128008, 128009], v5.EosTokenIds);
        Assert.False(v5.AttentionBias);
    }

    [Fact]
    public void Numbers_set_in_code_read_like_numbers_parsed_from_text()
    {
        var root = (JsonObject)JsonNode.Parse("{" + LlamaBase + "}")!;
        root["max_position_embeddings"] = 131201; // an int-typed JsonValue, as the bench presets write
        root["rms_norm_eps"] = 1e-6f;
        var c = ModelConfig.Parse(root, "code");
        Assert.Equal(131201, c.MaxPositionEmbeddings);
        Assert.Equal(1e-6, c.RmsNormEps, 1e-12);
    }

    [Fact]
    public void Qwen2_has_qkv_bias_without_output_bias_and_reads_the_4x_yarn_form()
    {
        var c = Parse("{\"model_type\": \"qwen2\", \"vocab_size\": 152064, \"hidden_size\": 3584, \"intermediate_size\": 18944, \"num_hidden_layers\": 28, \"num_attention_heads\": 28, \"num_key_value_heads\": 4, \"max_position_embeddings\": 32768, \"rope_theta\": 1000000.0, \"sliding_window\": 131072, \"use_sliding_window\": false, \"tie_word_embeddings\": false, \"rope_scaling\": {\"factor\": 4.0, \"original_max_position_embeddings\": 32768, \"type\": \"yarn\"}, \"eos_token_id\": 151645}");
        Assert.True(c.AttentionBias);
        Assert.False(c.OutputBias);
        Assert.Null(c.SlidingWindow); // written but unused without use_sliding_window
        Assert.Equal(RopeType.Yarn, c.Rope.Type);
        Assert.Equal(4.0, c.Rope.Factor);
        Assert.Equal(1000000.0, c.Rope.Theta);
        Assert.Equal(32768, c.Rope.OriginalMaxPositionEmbeddings);
        Assert.Equal(7, c.KvGroups);
        Assert.Equal([151645], c.EosTokenIds);
    }

    [Fact]
    public void Llama_attention_bias_covers_the_output_projection_too()
    {
        var c = Llama("\"attention_bias\": true, \"mlp_bias\": true");
        Assert.True(c.AttentionBias);
        Assert.True(c.OutputBias);
        Assert.True(c.MlpBias);
        Assert.Equal(RopeType.Default, c.Rope.Type);
        Assert.Equal(10000.0, c.Rope.Theta);
    }

    [Fact]
    public void An_explicit_head_dim_wins_over_hidden_over_heads()
    {
        var c = Parse("{\"model_type\": \"mistral\", \"vocab_size\": 131072, \"hidden_size\": 5120, \"intermediate_size\": 14336, \"num_hidden_layers\": 40, \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"head_dim\": 128, \"max_position_embeddings\": 1024000, \"rope_theta\": 1000000.0, \"sliding_window\": null}");
        Assert.Equal(128, c.HeadDim); // 5120 / 32 would be 160
        Assert.Equal(1024000, c.ContextLength);
    }

    [Fact]
    public void A_mistral_sliding_window_limits_the_context()
    {
        var c = Parse("{\"model_type\": \"mistral\", \"vocab_size\": 32000, \"hidden_size\": 4096, \"intermediate_size\": 14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"max_position_embeddings\": 32768, \"rope_theta\": 10000.0, \"sliding_window\": 4096}");
        Assert.Equal(4096, c.ContextLength);
    }

    [Fact]
    public void An_unknown_architecture_names_the_file_and_the_value()
    {
        var e = Assert.Throws<ModelLoadException>(() => Parse("{\"model_type\": \"gpt2\", \"vocab_size\": 5}"));
        Assert.Contains("test/config.json", e.Message);
        Assert.Contains("gpt2", e.Message);
    }

    [Fact]
    public void An_unsupported_rope_type_is_refused_by_name()
    {
        var e = Assert.Throws<ModelLoadException>(() => Llama("\"rope_scaling\": {\"type\": \"longrope\", \"factor\": 2.0}"));
        Assert.Contains("longrope", e.Message);
    }

    [Fact]
    public void A_missing_config_file_is_named()
    {
        string path = Path.Combine(Path.GetTempPath(), $"nope-{Guid.NewGuid():N}", "config.json");
        var e = Assert.Throws<ModelLoadException>(() => ModelConfig.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_missing_required_field_is_named()
    {
        var e = Assert.Throws<ModelLoadException>(() => Parse("{\"model_type\": \"llama\", \"vocab_size\": 5, \"hidden_size\": 8, \"num_attention_heads\": 2, \"num_hidden_layers\": 1}"));
        Assert.Contains("intermediate_size", e.Message);
    }

    [Fact]
    public void Heads_that_do_not_group_are_refused()
    {
        var e = Assert.Throws<ModelLoadException>(() => Parse("{\"model_type\": \"llama\", \"vocab_size\": 5, \"hidden_size\": 12, \"intermediate_size\": 8, \"num_attention_heads\": 6, \"num_key_value_heads\": 4, \"num_hidden_layers\": 1}"));
        Assert.Contains("num_key_value_heads", e.Message);
    }
}

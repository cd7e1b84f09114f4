using System.Text.Json;
using FlexPrefill.Inference.Generation;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace FlexPrefill.SemanticKernel.Tests;

public sealed class SettingsTests
{
    [Fact]
    public void Plain_settings_with_snake_case_extension_data_become_typed_settings()
    {
        var plain = new PromptExecutionSettings
        {
            ServiceId = "local",
            ModelId = "m",
            FunctionChoiceBehavior = FunctionChoiceBehavior.Auto(),
            ExtensionData = new Dictionary<string, object>
            {
                ["temperature"] = 0.4, ["top_p"] = 0.95, ["top_k"] = 50, ["seed"] = 11L, ["max_tokens"] = 99,
                ["stop_sequences"] = new[] { "END" }, ["response_format"] = "json_object",
                ["flexprefill_gamma"] = 0.9, ["flexprefill_tau"] = 0.2, ["flexprefill_min_budget"] = 2048, ["attention"] = "dense",
            },
        };

        var s = FlexPrefillPromptExecutionSettings.FromExecutionSettings(plain);

        Assert.Equal((0.4, 0.95, 50, 11L, 99), (s.Temperature, s.TopP, s.TopK, s.Seed, s.MaxTokens));
        Assert.Equal(["END"], s.StopSequences!);
        Assert.Equal("json_object", ((JsonElement)s.ResponseFormat!).GetString());
        Assert.Equal((0.9, 0.2, 2048, "dense"), (s.FlexPrefillGamma, s.FlexPrefillTau, s.FlexPrefillMinBudget, s.Attention));
        Assert.Equal(("local", "m"), (s.ServiceId, s.ModelId));
        Assert.IsType<AutoFunctionChoiceBehavior>(s.FunctionChoiceBehavior);
    }

    [Fact]
    public void Settings_read_from_json_with_numbers_as_strings()
    {
        var s = FlexPrefillPromptExecutionSettings.FromJson("""{ "temperature": "0.25", "max_tokens": 10, "flexprefill_tau": 0.0, "attention": "flexprefill", "unknown_key": 1 }""");

        Assert.Equal(0.25, s.Temperature);
        Assert.Equal(10, s.MaxTokens);
        Assert.Equal(0.0, s.FlexPrefillTau);
        Assert.Equal("flexprefill", s.Attention);
        Assert.Null(s.TopP);
        Assert.True(s.ExtensionData!.ContainsKey("unknown_key"));
    }

    [Fact]
    public void Malformed_settings_json_names_the_problem()
    {
        var e = Assert.Throws<ArgumentException>(() => FlexPrefillPromptExecutionSettings.FromJson("""{ "max_tokens": "many" }"""));
        Assert.Contains("invalid FlexPrefill execution settings", e.Message);
    }

    [Fact]
    public void The_same_instance_comes_back_and_null_gives_defaults()
    {
        var s = new FlexPrefillPromptExecutionSettings { MaxTokens = 5 };

        Assert.Same(s, FlexPrefillPromptExecutionSettings.FromExecutionSettings(s));
        Assert.Null(FlexPrefillPromptExecutionSettings.FromExecutionSettings(null).MaxTokens);
    }

    [Fact]
    public void Settings_convert_to_chat_options_the_way_the_client_reads_them()
    {
        var progress = new Progress<PrefillProgress>();
        var s = new FlexPrefillPromptExecutionSettings
        {
            Temperature = 0.1, TopP = 0.5, TopK = 3, Seed = 9, MaxTokens = 64, StopSequences = ["x"], ResponseFormat = "json_object",
            FlexPrefillGamma = 0.85, FlexPrefillTau = 0.15, FlexPrefillMinBudget = 128, Attention = "dense", PrefillProgress = progress,
        };

        var o = s.ToChatOptions(kernel: null);

        Assert.Equal((0.1f, 0.5f, 3, 9L, 64), (o.Temperature, o.TopP, o.TopK, o.Seed, o.MaxOutputTokens));
        Assert.Equal(["x"], o.StopSequences!);
        Assert.IsType<ChatResponseFormatJson>(o.ResponseFormat);
        Assert.Equal(0.85, o.AdditionalProperties!["flexprefill_gamma"]);
        Assert.Equal(128.0, o.AdditionalProperties["flexprefill_min_budget"]);
        Assert.Equal("dense", o.AdditionalProperties["attention"]);
        Assert.Same(progress, o.AdditionalProperties[FlexPrefillPromptExecutionSettings.PrefillProgressKey]);
    }

    [Fact]
    public void Frozen_settings_refuse_changes_and_clones_are_independent()
    {
        var s = new FlexPrefillPromptExecutionSettings { FlexPrefillGamma = 0.9, StopSequences = ["a"] };
        var clone = (FlexPrefillPromptExecutionSettings)s.Clone();
        s.Freeze();

        Assert.Throws<InvalidOperationException>(() => s.FlexPrefillGamma = 0.5);
        clone.StopSequences!.Add("b");
        Assert.Equal(["a"], s.StopSequences!);
        Assert.Equal(0.9, clone.FlexPrefillGamma);
    }
}

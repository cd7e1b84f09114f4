using System.Text.Json;

namespace FlexPrefill.Cli.Tests;

public sealed class GenerateCommandTests : IDisposable
{
    readonly TinyModelFolder _model = TinyModelFolder.Create();

    public void Dispose() => _model.Dispose();

    JsonElement GenerateJson(params string[] extra)
    {
        var run = CliRun.Of(["generate", "--model", _model.Path, "--json", .. extra]);
        Assert.True(run.ExitCode == 0, run.Error);
        var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return JsonDocument.Parse(lines[0]).RootElement;
    }

    [Fact]
    public void Json_output_has_the_contract_fields()
    {
        var json = GenerateJson("--tokens", "1,2,3", "--max-tokens", "5");

        Assert.Equal(JsonValueKind.String, json.GetProperty("text").ValueKind);
        var tokens = json.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        Assert.InRange(tokens.Length, 1, 5);
        Assert.All(tokens, t => Assert.InRange(t, 0, _model.VocabSize - 1));
        Assert.Equal(3, json.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(tokens.Length, json.GetProperty("completion_tokens").GetInt32());
        Assert.True(json.GetProperty("prefill_ms").GetDouble() > 0);
        Assert.True(json.GetProperty("decode_tokens_per_s").GetDouble() >= 0);
        Assert.False(json.TryGetProperty("attention_density", out _));
    }

    [Fact]
    public void Json_output_with_flexprefill_carries_the_attention_density()
    {
        var json = GenerateJson("--tokens", string.Join(",", Enumerable.Range(0, 300).Select(i => i % _model.VocabSize)), "--max-tokens", "2",
            "--attention", "flexprefill", "--min-budget", "0");

        Assert.InRange(json.GetProperty("attention_density").GetDouble(), 1e-6, 1.0);
    }

    [Fact]
    public void A_folder_without_tokenizer_streams_the_generated_ids()
    {
        var expected = GenerateJson("--tokens", "4,5,6", "--max-tokens", "4").GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32());

        var run = CliRun.Of("generate", "--model", _model.Path, "--tokens", "4,5,6", "--max-tokens", "4");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(expected, run.Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
        Assert.Contains("3 prompt tokens", run.Error);
    }

    [Fact]
    public void A_text_prompt_on_a_folder_without_tokenizer_is_a_usage_error()
    {
        var run = CliRun.Of("generate", "--model", _model.Path, "--prompt", "hello");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--tokens", run.OneErrorLine());
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_are_a_usage_error()
    {
        var run = CliRun.Of("generate", "--model", _model.Path, "--tokens", $"1,{_model.VocabSize}");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains($"id {_model.VocabSize}", run.OneErrorLine());
    }

    [Fact]
    public void Sampling_with_a_seed_is_reproducible()
    {
        string[] args = ["--tokens", "9,8,7", "--max-tokens", "8", "--temperature", "1.5", "--seed", "42"];

        var first = GenerateJson(args).GetProperty("tokens").ToString();
        var second = GenerateJson(args).GetProperty("tokens").ToString();

        Assert.Equal(first, second);
    }

    [Fact]
    public void Greedy_generation_starts_with_the_argmax_of_the_last_logits()
    {
        var first = GenerateJson("--tokens", "3,1,4,1,5", "--max-tokens", "1").GetProperty("tokens")[0].GetInt32();

        var run = CliRun.Of("logits", "--model", _model.Path, "--tokens", "3,1,4,1,5");
        var logits = JsonDocument.Parse(run.Output).RootElement.GetProperty("positions").GetProperty("-1").EnumerateArray().Select(v => v.GetSingle()).ToArray();

        Assert.Equal(Array.IndexOf(logits, logits.Max()), first);
    }

    [Fact]
    public void A_text_prompt_goes_through_the_chat_template_unless_raw()
    {
        using var model = TinyModelFolder.CreateWithLlama3Tokenizer();
        if (model is null)
            Assert.Skip("the Llama-3 tokenizer is not in the test data (run eng/fetch-data.sh)");

        var chat = CliRun.Of("generate", "--model", model.Path, "--prompt", "Hello there", "--max-tokens", "2", "--json");
        var raw = CliRun.Of("generate", "--model", model.Path, "--prompt", "Hello there", "--raw", "--max-tokens", "2", "--json");

        Assert.True(chat.ExitCode == 0, chat.Error);
        Assert.True(raw.ExitCode == 0, raw.Error);
        // Raw: <|begin_of_text|> Hello ␣there. Chat: the same words inside the Llama-3 headers.
        Assert.Equal(3, JsonDocument.Parse(raw.Output).RootElement.GetProperty("prompt_tokens").GetInt32());
        Assert.True(JsonDocument.Parse(chat.Output).RootElement.GetProperty("prompt_tokens").GetInt32() > 8);
    }
}

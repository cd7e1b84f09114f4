using System.Text.Json;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>The project's default model (models/default): its own ~8K byte-level BPE with Llama-3's special tokens and chat format.</summary>
public sealed class DefaultModelTokenizerTests
{
    private static string ModelDirectory => Path.Combine(TokenizerTestData.RepositoryRoot, "models", "default");

    private static HfTokenizer Load()
    {
        if (!File.Exists(Path.Combine(ModelDirectory, "tokenizer.json")))
        {
            Assert.Skip($"{ModelDirectory} has no tokenizer.json yet");
        }
        return HfTokenizer.Load(ModelDirectory);
    }

    [Fact]
    public void Its_own_split_regex_is_used()
    {
        var tokenizer = Load();
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(ModelDirectory, "tokenizer.json")));
        var stages = document.RootElement.GetProperty("pre_tokenizer").GetProperty("pretokenizers");
        Assert.Equal(stages[0].GetProperty("pattern").GetProperty("Regex").GetString(), tokenizer.SplitPattern);
    }

    [Fact]
    public void Ids_equal_the_reference_tokenizer_on_the_model_s_golden_file()
    {
        var tokenizer = Load();
        // Written by tools/default-model/golden.mjs with the tokenizers library when the tokenizer was trained.
        string path = Path.Combine(TokenizerTestData.RepositoryRoot, "tools", "default-model", "golden", "tokenizer-golden.json");
        if (!File.Exists(path))
        {
            Assert.Skip($"{path} is missing");
        }
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var cases = document.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.NotEmpty(cases);
        foreach (var golden in cases)
        {
            string text = golden.GetProperty("text").GetString()!;
            var ids = golden.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(ids, tokenizer.Encode(text));
            Assert.Equal(golden.GetProperty("decoded").GetString(), tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void Every_golden_string_round_trips()
    {
        var tokenizer = Load();
        foreach (var golden in TokenizerTestData.Cases("llama3"))
        {
            var ids = tokenizer.Encode(golden.Text);
            Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
            Assert.Equal(golden.Text, tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void Llama_3_special_tokens_and_chat_format_work()
    {
        var tokenizer = Load();
        Assert.True(tokenizer.TryGetTokenId("<|eot_id|>", out int eot));
        Assert.True(tokenizer.TryGetTokenId("<|begin_of_text|>", out int bos));
        Assert.Equal(bos, tokenizer.BosId);
        Assert.Contains(eot, tokenizer.EosIds);

        var template = Assert.IsType<Llama3ChatTemplate>(ChatTemplates.ForModel(ModelDirectory));
        string prompt = template.Render(ChatTemplateScenarios.SystemUser, []);
        var ids = tokenizer.Encode(prompt);
        Assert.Equal(bos, ids[0]);
        Assert.Equal(2, ids.Count(id => id == eot));
        Assert.Equal(prompt, tokenizer.Decode(ids));
        string text = tokenizer.Decode(ids, skipSpecialTokens: true);
        Assert.DoesNotContain("<|", text);
        Assert.Contains("You are a terse assistant.user\n\nWhat is 2+2?", text);
    }
}

using System.Text.Json.Nodes;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>Files a loader cannot use give a ModelLoadException naming the file and what is wrong.</summary>
public sealed class HfTokenizerLoadErrorTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("flexprefill-tok-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_missing_tokenizer_json_is_named()
    {
        var error = Assert.Throws<ModelLoadException>(() => HfTokenizer.Load(_directory));
        Assert.Contains(Path.Combine(_directory, "tokenizer.json"), error.Message);
        Assert.Contains("not found", error.Message);
    }

    [Fact]
    public void Invalid_json_is_reported_with_the_file()
    {
        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), "{\"model\": ");
        var error = Assert.Throws<ModelLoadException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("tokenizer.json: cannot be read as JSON", error.Message);
    }

    [Theory]
    [InlineData("model.type", "WordPiece", "model.type is \"WordPiece\"")]
    [InlineData("model.byte_fallback", true, "byte_fallback")]
    [InlineData("pre_tokenizer", "Metaspace", "pre_tokenizer [Metaspace] is not supported")]
    [InlineData("normalizer", "Lowercase", "normalizer Lowercase is not supported")]
    [InlineData("vocab", "▁the", "\"▁the\" (id 1009) is not in the byte-level alphabet")]
    public void Unsupported_tokenizer_forms_are_named(string change, object value, string expected)
    {
        var json = TinyTokenizerJson();
        switch (change)
        {
            case "model.type": json["model"]!["type"] = (string)value; break;
            case "model.byte_fallback": json["model"]!["byte_fallback"] = (bool)value; break;
            case "pre_tokenizer": json["pre_tokenizer"] = new JsonObject { ["type"] = (string)value }; break;
            case "normalizer": json["normalizer"] = new JsonObject { ["type"] = (string)value }; break;
            default: json["model"]!["vocab"]![(string)value] = 1009; break;
        }
        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), json.ToJsonString());
        var error = Assert.Throws<ModelLoadException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("tokenizer.json", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void An_eos_token_missing_from_the_vocabulary_names_tokenizer_config()
    {
        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), TinyTokenizerJson().ToJsonString());
        File.WriteAllText(Path.Combine(_directory, "tokenizer_config.json"), "{\"eos_token\": \"<|eot_id|>\"}");
        var error = Assert.Throws<ModelLoadException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("tokenizer_config.json: eos_token \"<|eot_id|>\" is not a token", error.Message);
    }

    [Fact]
    public void A_malformed_generation_config_is_named()
    {
        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), TinyTokenizerJson().ToJsonString());
        File.WriteAllText(Path.Combine(_directory, "generation_config.json"), "{\"eos_token_id\": \"two\"}");
        var error = Assert.Throws<ModelLoadException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("generation_config.json: eos_token_id must be a number or a list", error.Message);
    }

    private static JsonNode TinyTokenizerJson() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerTestData.RepositoryRoot, "tests", "fixtures", "tokenizer", "tiny-bytelevel", "tokenizer.json")))!;
}

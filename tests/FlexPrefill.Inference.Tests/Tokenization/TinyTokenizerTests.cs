using System.Text.Json;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>
/// Tokenizer forms the Llama-3 and Qwen3 files do not use, on tiny tokenizers trained with the tokenizers library
/// (tests/fixtures/tokenizer/tiny-*, made by tools/fixtures/make_tiny_tokenizers.mjs): GPT-2's lone ByteLevel
/// pre-tokenizer with add_prefix_space, NFKC, lstrip/rstrip added tokens, bytes missing from the vocabulary.
/// </summary>
public sealed class TinyTokenizerTests
{
    private static readonly Lazy<Dictionary<string, GoldenCase[]>> Golden = new(() =>
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, "tiny-golden-ids.json")));
        return document.RootElement.GetProperty("tokenizers").EnumerateObject().ToDictionary(
            f => f.Name,
            f => f.Value.EnumerateArray().Select(c => new GoldenCase(
                c.GetProperty("name").GetString()!,
                c.GetProperty("text").GetString()!,
                c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
                c.GetProperty("decoded").GetString()!)).ToArray());
    });

    private static string FixtureDirectory => Path.Combine(TokenizerTestData.RepositoryRoot, "tests", "fixtures", "tokenizer");

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var (family, cases) in Golden.Value)
        {
            foreach (var c in cases)
            {
                data.Add(family, c.Name);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Ids_and_decode_equal_the_reference_tokenizer(string family, string name)
    {
        var golden = Golden.Value[family].Single(c => c.Name == name);
        var tokenizer = HfTokenizer.Load(Path.Combine(FixtureDirectory, family));
        Assert.Equal(golden.Ids, tokenizer.Encode(golden.Text));
        Assert.Equal(golden.Decoded, tokenizer.Decode(golden.Ids));
    }

    [Fact]
    public void A_lone_byte_level_pre_tokenizer_uses_the_gpt2_split()
    {
        var tokenizer = HfTokenizer.Load(Path.Combine(FixtureDirectory, "tiny-bytelevel"));
        Assert.StartsWith("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+", tokenizer.SplitPattern);
        Assert.Equal("bpe", tokenizer.Backend);
        Assert.Null(tokenizer.BosId);
        Assert.Empty(tokenizer.EosIds);
    }

    [Fact]
    public void Ignore_merges_with_a_merge_list_lacking_splits_is_not_encoded_by_rank()
    {
        // "Ġseaing" is in the vocabulary but no merge makes it: merging by rank (tiktoken) would turn " seaingly" into
        // "Ġseaing" + "ly", the tokenizers library stops at "Ġsea" + "ing" + "ly".
        var tokenizer = HfTokenizer.Load(Path.Combine(FixtureDirectory, "tiny-ignore-merges"));
        Assert.Equal("bpe+whole-word", tokenizer.Backend);
        Assert.True(tokenizer.TryGetTokenId("Ġseaing", out int seaing));
        Assert.Equal([seaing], tokenizer.Encode(" seaing"));
        Assert.Equal(3, tokenizer.Encode(" seaingly").Count);
    }

    [Fact]
    public void Eos_ids_come_from_tokenizer_config_and_generation_config()
    {
        var tokenizer = HfTokenizer.Load(Path.Combine(FixtureDirectory, "tiny-split"));
        Assert.True(tokenizer.TryGetTokenId("<|endoftext|>", out int end));
        Assert.True(tokenizer.TryGetTokenId("<|sep|>", out int sep));
        Assert.Equal([end, sep], tokenizer.EosIds);
        Assert.Equal(Math.Max(end, sep) + 2, tokenizer.VocabSize); // <|pad|> comes last
    }
}

using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>Ids and decodes equal those of the Hugging Face tokenizers library (tests/fixtures/tokenizer/golden-ids.json).</summary>
public sealed class HfTokenizerGoldenTests
{
    public static TheoryData<string, string> Cases => TokenizerTestData.AllCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_gives_the_ids_of_the_reference_tokenizer(string family, string name)
    {
        var golden = TokenizerTestData.Case(family, name);
        var ids = TokenizerTestData.Tokenizer(family).Encode(golden.Text);
        Assert.Equal(golden.Ids, ids);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_gives_the_text_of_the_reference_tokenizer(string family, string name)
    {
        var golden = TokenizerTestData.Case(family, name);
        Assert.Equal(golden.Decoded, TokenizerTestData.Tokenizer(family).Decode(golden.Ids));
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Golden_file_covers_at_least_25_strings_and_both_tokenizers(string family)
    {
        Assert.True(TokenizerTestData.Cases(family).Length >= 25);
    }

    [Theory]
    [InlineData("llama3", "<|eot_id|>", 128009)]
    [InlineData("llama3", "<|begin_of_text|>", 128000)]
    [InlineData("qwen3", "<|im_end|>", 151645)]
    [InlineData("qwen3", "<think>", 151667)]
    public void Special_tokens_written_as_text_become_one_id(string family, string token, int id)
    {
        var tokenizer = TokenizerTestData.Tokenizer(family);
        Assert.Equal([id], tokenizer.Encode(token));
        Assert.True(tokenizer.TryGetTokenId(token, out int found));
        Assert.Equal(id, found);
    }

    [Fact]
    public void Llama3_reads_bos_eos_and_vocabulary_size_from_its_files()
    {
        var tokenizer = TokenizerTestData.Tokenizer("llama3");
        Assert.Equal(128000, tokenizer.BosId);
        Assert.Contains(128001, tokenizer.EosIds);
        Assert.Equal(128256, tokenizer.VocabSize);
        Assert.Equal("tiktoken", tokenizer.Backend);
    }

    [Fact]
    public void Qwen3_has_no_bos_and_ends_on_im_end()
    {
        var tokenizer = TokenizerTestData.Tokenizer("qwen3");
        Assert.Null(tokenizer.BosId);
        Assert.Equal([151645], tokenizer.EosIds);
        Assert.Equal(151669, tokenizer.VocabSize);
        Assert.Equal("bpe", tokenizer.Backend);
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Skipping_special_tokens_keeps_only_the_text(string family)
    {
        var tokenizer = TokenizerTestData.Tokenizer(family);
        string marker = family == "llama3" ? "<|eot_id|>" : "<|im_end|>";
        var ids = tokenizer.Encode($"Hello{marker} world");
        Assert.Equal($"Hello{marker} world", tokenizer.Decode(ids));
        Assert.Equal("Hello world", tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void The_split_regex_is_read_from_the_file(string family)
    {
        // Llama-3 groups digits by three, Qwen splits every digit: the two files' own regexes.
        var tokenizer = TokenizerTestData.Tokenizer(family);
        Assert.Contains(family == "llama3" ? @"\p{N}{1,3}" : @"\p{N}|", tokenizer.SplitPattern);
        Assert.Equal(family == "llama3" ? 3 : 9, tokenizer.Encode("123456789").Count);
    }

    [Fact]
    public void Decoding_an_unknown_id_names_it()
    {
        var tokenizer = TokenizerTestData.Tokenizer("llama3");
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([5, 999_999]));
        Assert.Contains("999999", error.Message);
    }
}

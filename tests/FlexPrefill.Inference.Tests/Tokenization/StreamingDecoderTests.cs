using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Inference.Tests.Tokenization;

public sealed class StreamingDecoderTests
{
    public static TheoryData<string, string> Cases => TokenizerTestData.AllCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Deltas_add_up_to_the_decoded_text_and_never_hold_half_a_character(string family, string name)
    {
        var golden = TokenizerTestData.Case(family, name);
        var decoder = TokenizerTestData.Tokenizer(family).CreateStreamingDecoder();
        var text = new System.Text.StringBuilder();
        foreach (int id in golden.Ids)
        {
            string delta = decoder.Append(id);
            AssertWholeCharacters(delta);
            text.Append(delta);
        }
        text.Append(decoder.Flush());
        Assert.Equal(golden.Decoded, text.ToString());
    }

    [Theory]
    [InlineData("llama3", "Emoji: 😀👍🏽🎉 👨‍👩‍👧‍👦 🇫🇷")]
    [InlineData("qwen3", "Emoji: 😀👍🏽🎉 👨‍👩‍👧‍👦 🇫🇷")]
    [InlineData("llama3", "Rare CJK: 𠀋𡈽𩸽 and fraktur 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")]
    [InlineData("qwen3", "Rare CJK: 𠀋𡈽𩸽 and fraktur 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")]
    public void Tokens_ending_inside_a_character_yield_nothing_until_it_completes(string family, string text)
    {
        var tokenizer = TokenizerTestData.Tokenizer(family);
        var decoder = tokenizer.CreateStreamingDecoder();
        var deltas = tokenizer.Encode(text).Select(decoder.Append).ToList();
        // These characters are spread over several byte-level tokens: some token must have completed nothing.
        Assert.Contains("", deltas);
        Assert.DoesNotContain(deltas, d => d.Contains('\uFFFD'));
        Assert.Equal(text, string.Concat(deltas) + decoder.Flush());
    }

    [Fact]
    public void An_unfinished_character_at_the_end_becomes_a_replacement_character()
    {
        var tokenizer = TokenizerTestData.Tokenizer("llama3");
        // The single-byte token for 0xE4 starts a three-byte character (e.g. 你) that never completes.
        Assert.True(tokenizer.TryGetTokenId(ByteLevelAlphabet.ByteToChar[0xE4].ToString(), out int lead));
        var decoder = tokenizer.CreateStreamingDecoder();
        Assert.Equal("", decoder.Append(lead));
        Assert.Equal("\uFFFD", decoder.Flush());
        Assert.Equal("Hi", decoder.Append(tokenizer.Encode("Hi").Single()));
    }

    [Fact]
    public void Special_tokens_can_be_left_out_of_the_stream()
    {
        var tokenizer = TokenizerTestData.Tokenizer("qwen3");
        var decoder = tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        string text = string.Concat(tokenizer.Encode("Done.<|im_end|>").Select(decoder.Append)) + decoder.Flush();
        Assert.Equal("Done.", text);
    }

    private static void AssertWholeCharacters(string delta)
    {
        for (int i = 0; i < delta.Length; i++)
        {
            if (char.IsHighSurrogate(delta[i]))
            {
                Assert.True(i + 1 < delta.Length && char.IsLowSurrogate(delta[i + 1]), $"delta ends inside a surrogate pair: {delta}");
                i++;
            }
            else
            {
                Assert.False(char.IsLowSurrogate(delta[i]), $"delta starts inside a surrogate pair: {delta}");
                Assert.NotEqual('\uFFFD', delta[i]);
            }
        }
    }
}

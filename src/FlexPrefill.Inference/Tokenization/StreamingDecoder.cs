using System.Text;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// Turns generated token ids into text deltas one token at a time. A token may end in the middle of a UTF-8
/// character (emoji and CJK often span two or three byte-level tokens); those bytes wait for the next token, so a
/// delta never holds half a character. Not thread-safe: one decoder per generation.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly HfTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly Decoder _utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    internal StreamingDecoder(HfTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one token and returns the text it completes (empty while a character is still incomplete).</summary>
    public string Append(int tokenId)
    {
        if (_skipSpecialTokens && _tokenizer.IsSpecialToken(tokenId))
        {
            return string.Empty;
        }
        return Convert(_tokenizer.GetTokenBytes(tokenId), flush: false);
    }

    /// <summary>Ends the stream: bytes of an unfinished character come back as U+FFFD. The decoder can then start again.</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        int needed = _utf8.GetCharCount(bytes, flush: false) + 4;
        if (_chars.Length < needed)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }
        int count = _utf8.GetChars(bytes, _chars, flush);
        return new string(_chars, 0, count);
    }
}

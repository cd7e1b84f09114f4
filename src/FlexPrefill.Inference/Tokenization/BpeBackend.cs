using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// Encodes pre-split-free text segments (added tokens already taken out, normalizer applied) with the
/// Microsoft.ML.Tokenizers model that reproduces the tokenizers library for this file:
/// <list type="bullet">
/// <item>"tiktoken": <c>ignore_merges</c>, all 256 single bytes, and a merge list that holds every split of every token
/// into two tokens, in rank order. Then merging by rank (tiktoken) and by merge priority (tokenizers) pick the same pairs; this is the case
/// of vocabularies converted from tiktoken (Llama-3) and the fastest path.</item>
/// <item>"bpe": no <c>ignore_merges</c>: <see cref="BpeTokenizer"/> applies the merge list as tokenizers does (Qwen).</item>
/// <item>"bpe+whole-word": <c>ignore_merges</c> with a merge list that lacks some splits (vocabularies trained with
/// tokenizers): a pre-token found whole in the vocabulary is one token, the rest goes through <see cref="BpeTokenizer"/>.</item>
/// </list>
/// </summary>
internal sealed class BpeBackend
{
    private readonly Tokenizer _tokenizer;
    private readonly Regex? _wholeWordSplit;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabulary;

    private BpeBackend(string name, Tokenizer tokenizer, Regex? wholeWordSplit, Dictionary<string, int> vocabulary)
    {
        Name = name;
        _tokenizer = tokenizer;
        _wholeWordSplit = wholeWordSplit;
        _vocabulary = vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>"tiktoken", "bpe" or "bpe+whole-word".</summary>
    public string Name { get; }

    public static BpeBackend Create(TokenizerDefinition definition)
    {
        var split = new Regex(definition.SplitPattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        if (definition.IgnoreMerges && HasEveryByte(definition) && MergesCoverEverySplit(definition))
        {
            return new BpeBackend("tiktoken", CreateTiktoken(definition, split), null, definition.Vocabulary);
        }
        var bpe = BpeTokenizer.Create(new BpeOptions(definition.Vocabulary)
        {
            Merges = definition.Merges,
            ByteLevel = true,
            PreTokenizer = definition.IgnoreMerges ? null : new RegexPreTokenizer(split, specialTokens: null),
        });
        return definition.IgnoreMerges
            ? new BpeBackend("bpe+whole-word", bpe, split, definition.Vocabulary)
            : new BpeBackend("bpe", bpe, null, definition.Vocabulary);
    }

    public void Encode(string segment, List<int> ids)
    {
        if (_wholeWordSplit is null)
        {
            ids.AddRange(_tokenizer.EncodeToIds(segment, considerPreTokenization: true, considerNormalization: false));
            return;
        }
        Span<char> stackBuffer = stackalloc char[256];
        foreach (var piece in _wholeWordSplit.EnumerateMatches(segment))
        {
            var text = segment.AsSpan(piece.Index, piece.Length);
            int maxBytes = Encoding.UTF8.GetMaxByteCount(text.Length);
            var buffer = maxBytes <= stackBuffer.Length ? stackBuffer : new char[maxBytes];
            if (_vocabulary.TryGetValue(ToByteLevel(text, buffer), out int id))
            {
                ids.Add(id);
            }
            else
            {
                ids.AddRange(_tokenizer.EncodeToIds(text, considerPreTokenization: false, considerNormalization: false));
            }
        }
    }

    private static ReadOnlySpan<char> ToByteLevel(ReadOnlySpan<char> text, Span<char> buffer)
    {
        Span<byte> bytes = buffer.Length <= 256 ? stackalloc byte[buffer.Length] : new byte[buffer.Length];
        int count = Encoding.UTF8.GetBytes(text, bytes);
        for (int i = 0; i < count; i++)
        {
            buffer[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        }
        return buffer[..count];
    }

    private static TiktokenTokenizer CreateTiktoken(TokenizerDefinition definition, Regex split)
    {
        // TiktokenTokenizer reads "base64(token bytes) rank" lines; the rank is the id.
        using var ranks = new MemoryStream();
        using (var writer = new StreamWriter(ranks, new UTF8Encoding(false), leaveOpen: true))
        {
            foreach (var (_, id) in definition.Vocabulary)
            {
                writer.Write(Convert.ToBase64String(definition.VocabularyBytes[id]));
                writer.Write(' ');
                writer.Write(id);
                writer.Write('\n');
            }
        }
        ranks.Position = 0;
        return TiktokenTokenizer.Create(ranks, new RegexPreTokenizer(split, specialTokens: null), normalizer: null, specialTokens: null, cacheSize: 65536);
    }

    // Tiktoken byte-pair-encodes from single bytes, so it needs a token for each of the 256.
    private static bool HasEveryByte(TokenizerDefinition definition) =>
        Enumerable.Range(0, 256).All(b => definition.Vocabulary.ContainsKey(ByteLevelAlphabet.ByteToChar[b].ToString()));

    /// <summary>
    /// True when ranks and merges agree: every way of writing a token as two tokens is a merge, and the merges come in
    /// the order of the ranks of what they make. Checked in a few hundred milliseconds for a 128K vocabulary.
    /// </summary>
    private static bool MergesCoverEverySplit(TokenizerDefinition definition)
    {
        var merges = new HashSet<string>(definition.Merges, StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        var vocabulary = definition.Vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
        int previousRank = -1;
        foreach (string merge in definition.Merges)
        {
            int space = merge.IndexOf(' ');
            string joined = string.Concat(merge.AsSpan(0, space), merge.AsSpan(space + 1));
            if (!definition.Vocabulary.TryGetValue(joined, out int rank) || rank < previousRank)
            {
                return false;
            }
            previousRank = rank;
        }
        Span<char> pair = stackalloc char[512];
        foreach (string token in definition.Vocabulary.Keys)
        {
            if (token.Length + 1 > pair.Length)
            {
                return false;
            }
            for (int k = 1; k < token.Length; k++)
            {
                var left = token.AsSpan(0, k);
                var right = token.AsSpan(k);
                if (vocabulary.ContainsKey(left) && vocabulary.ContainsKey(right))
                {
                    left.CopyTo(pair);
                    pair[k] = ' ';
                    right.CopyTo(pair[(k + 1)..]);
                    if (!merges.Contains(pair[..(token.Length + 1)]))
                    {
                        return false;
                    }
                }
            }
        }
        return true;
    }
}

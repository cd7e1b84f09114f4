using System.Text;
using System.Text.RegularExpressions;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// A Hugging Face byte-level BPE tokenizer (Llama-3, Qwen2/2.5/3 and others saved as <c>tokenizer.json</c>), built on
/// Microsoft.ML.Tokenizers and giving the same ids as the Hugging Face <c>tokenizers</c> library. Added tokens
/// written as text (<c>&lt;|eot_id|&gt;</c>) become their ids; nothing is added around the text (chat templates
/// write the bos token themselves). Thread-safe after loading.
/// </summary>
public sealed class HfTokenizer
{
    private readonly BpeBackend _bpe;
    private readonly Regex? _addedTokenPattern;
    private readonly Dictionary<string, int> _addedTokens;
    private readonly Dictionary<string, int> _vocabulary;
    private readonly byte[][] _tokenBytes;
    private readonly string?[] _tokenText;
    private readonly bool[] _special;
    private readonly NormalizationForm[] _normalization;
    private readonly bool _addPrefixSpace;

    private HfTokenizer(TokenizerDefinition definition, BpeBackend bpe)
    {
        _bpe = bpe;
        _normalization = definition.Normalization;
        _addPrefixSpace = definition.AddPrefixSpace;
        _vocabulary = definition.Vocabulary;
        _addedTokens = definition.AddedTokens.ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);

        int size = Math.Max(definition.Vocabulary.Values.DefaultIfEmpty(-1).Max(), definition.AddedTokens.Select(t => t.Id).DefaultIfEmpty(-1).Max()) + 1;
        _tokenBytes = new byte[size][];
        _tokenText = new string?[size];
        _special = new bool[size];
        foreach (var (token, id) in definition.Vocabulary)
        {
            _tokenText[id] = token;
            _tokenBytes[id] = definition.VocabularyBytes[id];
        }
        foreach (var added in definition.AddedTokens)
        {
            _tokenText[added.Id] = added.Content;
            _tokenBytes[added.Id] = Encoding.UTF8.GetBytes(added.Content);
            _special[added.Id] = added.Special;
        }
        VocabSize = size;
        _addedTokenPattern = BuildAddedTokenPattern(definition.AddedTokens);
        SplitPattern = definition.SplitPattern;
        Backend = bpe.Name;
    }

    /// <summary>Id of the beginning-of-text token (<c>bos_token</c> in tokenizer_config.json), or null when the model has none.</summary>
    public int? BosId { get; private init; }

    /// <summary>Ids that end generation: <c>eos_token</c> of tokenizer_config.json plus <c>eos_token_id</c> of generation_config.json.</summary>
    public IReadOnlyList<int> EosIds { get; private init; } = [];

    /// <summary>Number of token ids (largest id plus one), added tokens included.</summary>
    public int VocabSize { get; }

    /// <summary>The pre-tokenizer's split regex as read from tokenizer.json.</summary>
    public string SplitPattern { get; }

    /// <summary>
    /// Which Microsoft.ML.Tokenizers model encodes: "tiktoken" (rank merges, for vocabularies whose merges hold every
    /// split), "bpe" (the merge list) or "bpe+whole-word" (the merge list after a whole-word lookup, for ignore_merges).
    /// </summary>
    public string Backend { get; }

    /// <summary>
    /// Loads <c>tokenizer.json</c> from <paramref name="directory"/>, with <c>tokenizer_config.json</c> (bos, eos)
    /// and <c>generation_config.json</c> (more eos ids) when present.
    /// </summary>
    /// <exception cref="ModelLoadException">A file is missing, unreadable or describes something this loader does not support; the message names the file.</exception>
    public static HfTokenizer Load(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var definition = TokenizerDefinition.Read(Path.Combine(directory, "tokenizer.json"));
        var (bosToken, eosToken) = TokenizerConfig.ReadSpecialTokens(Path.Combine(directory, "tokenizer_config.json"));
        var generationEos = TokenizerConfig.ReadGenerationEosIds(Path.Combine(directory, "generation_config.json"));

        var tokenizer = new HfTokenizer(definition, BpeBackend.Create(definition))
        {
            BosId = bosToken is null ? null : RequireId(definition, bosToken, directory, "bos_token"),
            EosIds = (eosToken is null ? [] : new[] { RequireId(definition, eosToken, directory, "eos_token") }).Concat(generationEos).Distinct().ToArray(),
        };
        return tokenizer;
    }

    /// <summary>Token ids of <paramref name="text"/>; added tokens written as text become their ids.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (_addedTokenPattern is null)
        {
            EncodeSegment(text, ids);
            return ids;
        }
        int start = 0;
        for (var match = _addedTokenPattern.Match(text); match.Success; match = match.NextMatch())
        {
            EncodeSegment(text[start..match.Index], ids);
            ids.Add(_addedTokens[match.Groups["t"].Value]);
            start = match.Index + match.Length;
        }
        EncodeSegment(text[start..], ids);
        return ids;
    }

    /// <summary>Text of <paramref name="ids"/>; bytes that are not valid UTF-8 become U+FFFD.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Leave out special tokens (bos, eos, headers); added tokens not marked special stay.</param>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecialToken(id))
            {
                continue;
            }
            bytes.AddRange(GetTokenBytes(id));
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>A decoder for generated tokens that never splits a UTF-8 character across deltas.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    /// <summary>The id of a vocabulary entry or added token given as text (e.g. "&lt;|eot_id|&gt;"); byte-level entries are spelled as in tokenizer.json ("Ġthe").</summary>
    public bool TryGetTokenId(string token, out int id) => _addedTokens.TryGetValue(token, out id) || _vocabulary.TryGetValue(token, out id);

    /// <summary>The token as written in tokenizer.json, or null for an id the file does not define.</summary>
    public string? GetTokenText(int id) => (uint)id < (uint)_tokenText.Length ? _tokenText[id] : null;

    /// <summary>True for added tokens marked special (skipped by <c>skipSpecialTokens</c>).</summary>
    public bool IsSpecialToken(int id) => (uint)id < (uint)_special.Length && _special[id];

    internal ReadOnlySpan<byte> GetTokenBytes(int id)
    {
        if ((uint)id >= (uint)_tokenBytes.Length || _tokenBytes[id] is null)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is not in the tokenizer's vocabulary of {VocabSize:N0}");
        }
        return _tokenBytes[id];
    }

    private void EncodeSegment(string segment, List<int> ids)
    {
        if (segment.Length == 0)
        {
            return;
        }
        foreach (var form in _normalization)
        {
            segment = segment.Normalize(form);
        }
        if (_addPrefixSpace && segment[0] != ' ')
        {
            segment = " " + segment;
        }
        _bpe.Encode(segment, ids);
    }

    private static Regex? BuildAddedTokenPattern(IReadOnlyList<AddedToken> tokens)
    {
        if (tokens.Count == 0)
        {
            return null;
        }
        // Longest first, so that at one position the longest added token wins (leftmost-longest, as tokenizers does).
        var alternatives = tokens.OrderByDescending(t => t.Content.Length).Select(t =>
            (t.LeftStrip ? @"\s*" : "") + "(?<t>" + Regex.Escape(t.Content) + ")" + (t.RightStrip ? @"\s*" : ""));
        return new Regex(string.Join("|", alternatives), RegexOptions.Compiled | RegexOptions.CultureInvariant);
    }

    private static int RequireId(TokenizerDefinition definition, string token, string directory, string field)
    {
        if (definition.AddedTokens.FirstOrDefault(t => t.Content == token) is { } added)
        {
            return added.Id;
        }
        if (definition.Vocabulary.TryGetValue(token, out int id))
        {
            return id;
        }
        throw new ModelLoadException($"{Path.Combine(directory, "tokenizer_config.json")}: {field} \"{token}\" is not a token of tokenizer.json");
    }
}

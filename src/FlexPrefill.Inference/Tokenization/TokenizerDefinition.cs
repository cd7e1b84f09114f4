using System.Text;
using System.Text.Json;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>A token from tokenizer.json's <c>added_tokens</c>: matched in the text before any splitting.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LeftStrip, bool RightStrip);

/// <summary>What HfTokenizer needs from a tokenizer.json, checked against what it supports.</summary>
internal sealed class TokenizerDefinition
{
    // GPT-2's split, used when tokenizer.json has only a ByteLevel pre-tokenizer with use_regex.
    private const string Gpt2SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public required Dictionary<string, int> Vocabulary { get; init; }
    public required Dictionary<int, byte[]> VocabularyBytes { get; init; }
    public required List<string> Merges { get; init; }
    public required List<AddedToken> AddedTokens { get; init; }
    public required string SplitPattern { get; init; }
    public required bool AddPrefixSpace { get; init; }
    public required bool IgnoreMerges { get; init; }
    public required NormalizationForm[] Normalization { get; init; }

    public static TokenizerDefinition Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"{path}: file not found (a Hugging Face tokenizer folder holds tokenizer.json)");
        }
        JsonDocument document;
        try
        {
            using var stream = File.OpenRead(path);
            document = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"{path}: cannot be read as JSON: {e.Message}", e);
        }
        using (document)
        {
            try
            {
                return Parse(document.RootElement, path);
            }
            catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
            {
                throw new ModelLoadException($"{path}: unexpected structure: {e.Message}", e);
            }
        }
    }

    private static TokenizerDefinition Parse(JsonElement root, string path)
    {
        var model = Property(root, "model", path);
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "BPE";
        if (type != "BPE")
        {
            throw new ModelLoadException($"{path}: model.type is \"{type}\"; only byte-level BPE tokenizers are supported");
        }
        if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True)
        {
            throw new ModelLoadException($"{path}: model.byte_fallback is true (a SentencePiece-style BPE); only byte-level BPE tokenizers are supported");
        }
        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (model.TryGetProperty(affix, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() != "")
            {
                throw new ModelLoadException($"{path}: model.{affix} is \"{value.GetString()}\"; byte-level BPE uses none");
            }
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        var bytes = new Dictionary<int, byte[]>();
        foreach (var entry in Property(model, "vocab", path).EnumerateObject())
        {
            int id = entry.Value.GetInt32();
            if (!ByteLevelAlphabet.TryGetBytes(entry.Name, out var tokenBytes))
            {
                throw new ModelLoadException($"{path}: vocabulary entry \"{entry.Name}\" (id {id}) is not in the byte-level alphabet; only byte-level BPE tokenizers are supported");
            }
            vocabulary[entry.Name] = id;
            bytes[id] = tokenBytes;
        }

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mergeList))
        {
            foreach (var merge in mergeList.EnumerateArray())
            {
                // Older files write "a b", newer ones ["a", "b"]; byte-level tokens never hold a space.
                merges.Add(merge.ValueKind == JsonValueKind.Array ? merge[0].GetString() + " " + merge[1].GetString() : merge.GetString()!);
            }
        }

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var addedList))
        {
            foreach (var token in addedList.EnumerateArray())
            {
                string content = Property(token, "content", path).GetString()!;
                if (Flag(token, "single_word"))
                {
                    throw new ModelLoadException($"{path}: added token \"{content}\" has single_word, which is not supported");
                }
                added.Add(new AddedToken(Property(token, "id", path).GetInt32(), content, Flag(token, "special"), Flag(token, "lstrip"), Flag(token, "rstrip")));
            }
        }

        var (pattern, addPrefixSpace) = ReadPreTokenizer(root, path);
        return new TokenizerDefinition
        {
            Vocabulary = vocabulary,
            VocabularyBytes = bytes,
            Merges = merges,
            AddedTokens = added,
            SplitPattern = pattern,
            AddPrefixSpace = addPrefixSpace,
            IgnoreMerges = Flag(model, "ignore_merges"),
            Normalization = ReadNormalizer(root.TryGetProperty("normalizer", out var n) ? n : default, path),
        };
    }

    private static (string Pattern, bool AddPrefixSpace) ReadPreTokenizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{path}: no pre_tokenizer; a byte-level BPE tokenizer needs a ByteLevel pre-tokenizer");
        }
        var stages = TypeOf(pre) == "Sequence" ? Property(pre, "pretokenizers", path).EnumerateArray().ToList() : [pre];
        string description = string.Join(", ", stages.Select(TypeOf));
        if (stages.Count == 1 && TypeOf(stages[0]) == "ByteLevel" && Flag(stages[0], "use_regex", true))
        {
            return (Gpt2SplitPattern, Flag(stages[0], "add_prefix_space"));
        }
        if (stages.Count == 2 && TypeOf(stages[0]) == "Split" && TypeOf(stages[1]) == "ByteLevel" && !Flag(stages[1], "use_regex", true))
        {
            var split = stages[0];
            if (Flag(split, "invert") || (split.TryGetProperty("behavior", out var behavior) && behavior.GetString() != "Isolated"))
            {
                throw new ModelLoadException($"{path}: pre_tokenizer Split must have behavior Isolated and invert false");
            }
            if (Flag(stages[1], "add_prefix_space"))
            {
                throw new ModelLoadException($"{path}: pre_tokenizer ByteLevel after Split has add_prefix_space true, which is not supported");
            }
            var pattern = Property(split, "pattern", path);
            if (pattern.TryGetProperty("Regex", out var regex))
            {
                return (regex.GetString()!, false);
            }
            if (pattern.TryGetProperty("String", out var literal))
            {
                return (System.Text.RegularExpressions.Regex.Escape(literal.GetString()!), false);
            }
            throw new ModelLoadException($"{path}: pre_tokenizer Split has neither a Regex nor a String pattern");
        }
        throw new ModelLoadException($"{path}: pre_tokenizer [{description}] is not supported; expected ByteLevel(use_regex) or Sequence[Split(regex), ByteLevel]");
    }

    private static NormalizationForm[] ReadNormalizer(JsonElement normalizer, string path)
    {
        if (normalizer.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return [];
        }
        var stages = TypeOf(normalizer) == "Sequence" ? Property(normalizer, "normalizers", path).EnumerateArray().ToList() : [normalizer];
        var forms = stages.Select(stage => TypeOf(stage) switch
        {
            "NFC" => NormalizationForm.FormC,
            "NFD" => NormalizationForm.FormD,
            "NFKC" => NormalizationForm.FormKC,
            "NFKD" => NormalizationForm.FormKD,
            var other => throw new ModelLoadException($"{path}: normalizer {other} is not supported (only NFC, NFD, NFKC, NFKD)"),
        }).ToArray();
        // With InvariantGlobalization, .NET may not normalize non-ASCII text; other ids would follow silently.
        try
        {
            if ("e\u0301".Normalize(NormalizationForm.FormC) != "\u00e9")
            {
                throw new PlatformNotSupportedException("NFC left a combining sequence unchanged");
            }
        }
        catch (PlatformNotSupportedException e)
        {
            throw new ModelLoadException($"{path}: the tokenizer normalizes Unicode ({string.Join(", ", stages.Select(TypeOf))}) but this process cannot " +
                $"(globalization-invariant mode or no ICU: {e.Message}); run without InvariantGlobalization or install libicu", e);
        }
        return forms;
    }

    private static JsonElement Property(JsonElement element, string name, string path) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value)
            ? value
            : throw new ModelLoadException($"{path}: missing \"{name}\"");

    private static string TypeOf(JsonElement element) =>
        element.TryGetProperty("type", out var type) ? type.GetString() ?? "?" : "?";

    private static bool Flag(JsonElement element, string name, bool fallback = false) =>
        element.TryGetProperty(name, out var value) ? value.ValueKind == JsonValueKind.True : fallback;
}

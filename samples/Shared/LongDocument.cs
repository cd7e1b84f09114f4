using System.Text.RegularExpressions;

namespace FlexPrefill.Samples;

/// <summary>A span of a document, cited by its 1-based line and 0-based character offset.</summary>
/// <param name="Line">Line (1-based) where the passage starts.</param>
/// <param name="CharOffset">Character offset (0-based) of the passage in the document.</param>
/// <param name="Text">The passage.</param>
public sealed record Passage(int Line, int CharOffset, string Text)
{
    /// <summary>"line 1,204, chars 61,020-61,081".</summary>
    public string Citation => $"line {Line:N0}, chars {CharOffset:N0}-{CharOffset + Text.Length:N0}";
}

/// <summary>
/// A long text held in memory with its line starts, split into paragraphs for search. Passages keep their offsets so
/// that an answer can cite where it came from.
/// </summary>
public sealed partial class LongDocument
{
    readonly int[] _lineStarts;
    readonly Passage[] _paragraphs;
    string? _unwrapped;

    LongDocument(string name, string text)
    {
        Name = name;
        Text = text;
        var starts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
        _paragraphs = [.. SplitParagraphs()];
    }

    /// <summary>A name for prompts and logs (the file name).</summary>
    public string Name { get; }

    /// <summary>The whole text.</summary>
    public string Text { get; }

    /// <summary>
    /// The text as a prompt should carry it: each paragraph on one line (the hard line breaks of an e-text wrapped at
    /// 70 columns are layout, not content, and a small model reads them as noise), whitespace runs collapsed,
    /// paragraphs separated by one blank line. Citations still refer to <see cref="Text"/>.
    /// </summary>
    public string Unwrapped => _unwrapped ??= string.Join("\n\n", _paragraphs.Select(p => WhitespaceRun().Replace(p.Text, " ").Trim()));

    /// <summary>Number of lines.</summary>
    public int LineCount => _lineStarts.Length;

    /// <summary>Paragraphs (blocks separated by blank lines), in order.</summary>
    public IReadOnlyList<Passage> Paragraphs => _paragraphs;

    /// <summary>Reads a UTF-8 text file.</summary>
    public static LongDocument Load(string path) => new(Path.GetFileName(path), File.ReadAllText(path).ReplaceLineEndings("\n"));

    /// <summary>Wraps text that did not come from a file.</summary>
    public static LongDocument FromText(string name, string text) => new(name, text.ReplaceLineEndings("\n"));

    /// <summary>The 1-based line holding character <paramref name="charOffset"/>.</summary>
    public int LineAt(int charOffset)
    {
        int i = Array.BinarySearch(_lineStarts, charOffset);
        return (i >= 0 ? i : ~i - 1) + 1;
    }

    /// <summary>Lines <paramref name="firstLine"/> (1-based) onwards, at most <paramref name="count"/>, as one passage.</summary>
    public Passage ReadLines(int firstLine, int count)
    {
        firstLine = Math.Clamp(firstLine, 1, LineCount);
        int last = Math.Clamp(firstLine + Math.Max(1, count) - 1, firstLine, LineCount);
        int start = _lineStarts[firstLine - 1];
        int end = last < LineCount ? _lineStarts[last] : Text.Length;
        return new Passage(firstLine, start, Text[start..end].TrimEnd('\n'));
    }

    /// <summary>
    /// The paragraphs that share the most distinct words with <paramref name="query"/> (stop words ignored), best
    /// first; a paragraph holding the whole query verbatim ranks above all others.
    /// </summary>
    public IReadOnlyList<Passage> Search(string query, int maxPassages = 3)
    {
        var terms = Words(query).Where(w => !StopWords.Contains(w)).ToHashSet();
        if (terms.Count == 0) return [];
        return _paragraphs
            .Select(p => (Passage: p, Score: Score(p.Text, terms, query)))
            .Where(x => x.Score > 0)
            .OrderByDescending(x => x.Score).ThenBy(x => x.Passage.CharOffset)
            .Take(maxPassages)
            .Select(x => x.Passage)
            .ToArray();
    }

    /// <summary>
    /// The sentence that supports <paramref name="answer"/>: the first sentence containing the answer verbatim (case
    /// ignored, as whole words: "2" is not found inside "128"); null when the document does not contain it.
    /// </summary>
    public Passage? FindSupportingSentence(string answer)
    {
        string needle = answer.Trim().TrimEnd('.', '!', '?', '"', '\'').Trim();
        if (needle.Length == 0) return null;
        for (int at = Text.IndexOf(needle, StringComparison.OrdinalIgnoreCase); at >= 0;
             at = Text.IndexOf(needle, at + 1, StringComparison.OrdinalIgnoreCase))
        {
            bool wordStart = at == 0 || !char.IsLetterOrDigit(Text[at - 1]) || !char.IsLetterOrDigit(needle[0]);
            int end = at + needle.Length;
            bool wordEnd = end == Text.Length || !char.IsLetterOrDigit(Text[end]) || !char.IsLetterOrDigit(needle[^1]);
            if (wordStart && wordEnd) return SentenceAround(at);
        }
        return null;
    }

    /// <summary>The sentence around character <paramref name="charOffset"/> (bounded by . ! ? or a blank line).</summary>
    public Passage SentenceAround(int charOffset)
    {
        int start = charOffset;
        while (start > 0 && !IsSentenceEnd(start - 1)) start--;
        int end = charOffset;
        while (end < Text.Length && !IsSentenceEnd(end)) end++;
        if (end < Text.Length) end++;
        while (start < end && char.IsWhiteSpace(Text[start])) start++;
        return new Passage(LineAt(start), start, Text[start..end].TrimEnd());
    }

    bool IsSentenceEnd(int i) =>
        Text[i] is '.' or '!' or '?' && (i + 1 == Text.Length || char.IsWhiteSpace(Text[i + 1]))
        || Text[i] == '\n' && i > 0 && Text[i - 1] == '\n';

    IEnumerable<Passage> SplitParagraphs()
    {
        foreach (Match m in ParagraphPattern().Matches(Text))
            yield return new Passage(LineAt(m.Index), m.Index, m.Value.TrimEnd());
    }

    static double Score(string text, HashSet<string> terms, string query)
    {
        var words = Words(text).ToHashSet();
        double score = terms.Count(words.Contains);
        if (score > 0 && text.Contains(query.Trim().TrimEnd('?', '.'), StringComparison.OrdinalIgnoreCase)) score += terms.Count + 1;
        return score;
    }

    static IEnumerable<string> Words(string text) =>
        WordPattern().Matches(text).Select(m => m.Value.ToLowerInvariant());

    static readonly HashSet<string> StopWords =
    [
        "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is", "it",
        "its", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "why",
        "with", "about", "document", "text", "say", "says",
    ];

    // A paragraph: a run of non-blank lines.
    [GeneratedRegex(@"[^\n]+(\n[^\n]+)*")]
    private static partial Regex ParagraphPattern();

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhitespaceRun();

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex WordPattern();
}

using System.ComponentModel;
using Microsoft.SemanticKernel;

namespace FlexPrefill.Samples;

/// <summary>
/// Kernel functions an agent uses to read a long document piece by piece: load it, search it, read lines. Every
/// passage handed to the model is remembered so the answer can cite it.
/// </summary>
public sealed class DocumentPlugin(DocumentPathPolicy paths)
{
    readonly List<Passage> _retrieved = [];
    LongDocument? _document;

    /// <summary>The loaded document, if any.</summary>
    public LongDocument? Document => _document;

    /// <summary>Passages returned to the model so far, in order.</summary>
    public IReadOnlyList<Passage> Retrieved => _retrieved;

    /// <summary>Loads a document directly (the sample does this when the file is given on the command line).</summary>
    public void Use(LongDocument document) => _document = document;

    [KernelFunction("load_document"), Description("Loads a text document; returns its name and number of lines.")]
    public string LoadDocument([Description("Path of the document file")] string path)
    {
        if (!paths.TryResolve(path, out var full, out var error)) return "error: " + error;
        _document = LongDocument.Load(full);
        return $"loaded '{_document.Name}': {_document.LineCount:N0} lines, {_document.Text.Length:N0} characters";
    }

    [KernelFunction("search_document"), Description("Finds the passages of the loaded document that best match the query; each passage comes with its line and character offset.")]
    public string SearchDocument(
        [Description("Words to look for")] string query,
        [Description("How many passages to return")] int maxPassages = 3)
    {
        var found = RequireDocument().Search(query, Math.Clamp(maxPassages, 1, 10));
        _retrieved.AddRange(found);
        return found.Count == 0 ? "no passage matches" : string.Join("\n\n", found.Select(Format));
    }

    [KernelFunction("read_lines"), Description("Returns lines of the loaded document, starting at a 1-based line number.")]
    public string ReadLines(
        [Description("First line, 1-based")] int firstLine,
        [Description("Number of lines")] int count = 20)
    {
        var passage = RequireDocument().ReadLines(firstLine, Math.Clamp(count, 1, 200));
        _retrieved.Add(passage);
        return Format(passage);
    }

    // Plain text with the offsets in front: what a model quotes back most easily.
    static string Format(Passage p) => $"[{p.Citation}]\n{p.Text}";

    LongDocument RequireDocument() =>
        _document ?? throw new InvalidOperationException("no document is loaded; call load_document first");
}

using System.Text.RegularExpressions;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Tests.Shared;

/// <summary>
/// Needle-in-a-haystack prompts for the committed default model in its trained phrasing (tools/default-model/README.md):
/// held-out Moby Dick sentences with the needle sentence between two of them, then the question, as one user turn of
/// the Llama-3 chat template. Linked into the test projects that run the model end to end.
/// </summary>
static partial class NeedlePrompts
{
    /// <summary>Keys and values of the needles; prompt p uses entry p.</summary>
    public static readonly (string Key, string Value)[] Needles =
    [
        ("amber-lantern", "4826191"), ("quiet-harbor", "7361045"), ("silver-meadow", "2915033"), ("hollow-cedar", "8530172"),
        ("crimson-anchor", "6094209"), ("velvet-summit", "3172817"), ("frozen-orchard", "5209941"), ("gentle-compass", "9461802"),
    ];

    /// <summary>The committed default model's folder, or a skip when this checkout has no weights.</summary>
    public static string DefaultModelOrSkip()
    {
        string dir = Path.Combine(TestPaths.RepositoryRoot, "models", "default");
        if (!File.Exists(Path.Combine(dir, "model.safetensors"))) Assert.Skip($"{dir}/model.safetensors is not in this checkout");
        return dir;
    }

    /// <summary>Prompt p of <paramref name="count"/> at about <paramref name="length"/> tokens (at most length - 32):
    /// needle p at depth (p + 0.5) / count, the haystack starting at a different sentence per prompt.</summary>
    public static IReadOnlyList<int> Prompt(LanguageModel model, string[] sentences, int length, int p, int count)
    {
        var (key, value) = Needles[p];
        double depth = (p + 0.5) / count;
        IReadOnlyList<int> Render(int n)
        {
            var body = Enumerable.Range(p * 997, n).Select(i => sentences[i % sentences.Length]).ToList();
            body.Insert((int)Math.Round(depth * n), $"The special magic number for {key} is {value}.");
            string user = string.Join(' ', body) + $"\n\nWhat is the special magic number for {key}?";
            return model.Encode(model.ChatTemplate.Render([new ChatTurn(ChatRole.User, user)], []));
        }
        int lo = 1, hi = length; // the most sentences that fit: Render(lo) fits, Render(hi) does not
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (Render(mid).Count <= length - 32) lo = mid; else hi = mid;
        }
        return Render(lo);
    }

    /// <summary>Sentences of the last 10% of Moby Dick: the part the default model never trained on.</summary>
    public static string[] HeldOutSentences()
    {
        string file = Path.Combine(TestPaths.DataDirectory, "text", "moby-dick.txt");
        if (!File.Exists(file)) Assert.Skip($"{file} is missing: run eng/fetch-data.sh (or set FLEXPREFILL_DATA)");
        string flat = string.Join(' ', File.ReadAllText(file).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        var all = SentenceEnd().Split(flat).Where(s => s.Length is >= 3 and <= 600).ToArray();
        return all[(int)(all.Length * 0.9)..];
    }

    /// <summary>Runs a generation to its end and returns its summary.</summary>
    public static async Task<GenerationSummary> GenerateAsync(LanguageModel model, IReadOnlyList<int> prompt, GenerationOptions options)
    {
        GenerationSummary? summary = null;
        await foreach (var update in model.GenerateAsync(prompt, options, TestContext.Current.CancellationToken))
            summary = update.Summary ?? summary;
        return summary ?? throw new InvalidOperationException("generation ended without a summary");
    }

    [GeneratedRegex("""(?<=[.!?])\s+(?=[A-Z"'(])""")]
    private static partial Regex SentenceEnd();
}

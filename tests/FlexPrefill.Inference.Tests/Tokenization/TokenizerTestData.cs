using System.Text.Json;
using FlexPrefill.Inference.Tokenization;
using FlexPrefill.Tests.Shared;

namespace FlexPrefill.Inference.Tests.Tokenization;

/// <summary>Finds the fetched tokenizer files (eng/fetch-data.sh) and the committed golden ids; loads each tokenizer once.</summary>
internal static class TokenizerTestData
{
    private static readonly Dictionary<string, Lazy<HfTokenizer>> Tokenizers = new()
    {
        ["llama3"] = new(() => HfTokenizer.Load(TokenizerDirectory("llama3"))),
        ["qwen3"] = new(() => HfTokenizer.Load(TokenizerDirectory("qwen3"))),
    };

    private static readonly Lazy<Dictionary<string, GoldenCase[]>> Golden = new(() =>
    {
        using var stream = File.OpenRead(Path.Combine(RepositoryRoot, "tests", "fixtures", "tokenizer", "golden-ids.json"));
        using var document = JsonDocument.Parse(stream);
        return document.RootElement.GetProperty("tokenizers").EnumerateObject().ToDictionary(
            family => family.Name,
            family => family.Value.EnumerateArray().Select(c => new GoldenCase(
                c.GetProperty("name").GetString()!,
                c.GetProperty("text").GetString()!,
                c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
                c.GetProperty("decoded").GetString()!)).ToArray());
    });

    public static string RepositoryRoot => TestPaths.RepositoryRoot;

    public static string DataDirectory => TestPaths.DataDirectory;

    public static string TokenizerDirectory(string family) => Path.Combine(DataDirectory, "tokenizers", family);

    /// <summary>The tokenizer of a family, or a visible skip when eng/fetch-data.sh has not run.</summary>
    public static HfTokenizer Tokenizer(string family)
    {
        string file = Path.Combine(TokenizerDirectory(family), "tokenizer.json");
        if (!File.Exists(file))
        {
            Assert.Skip($"{file} is missing: run eng/fetch-data.sh (or set FLEXPREFILL_DATA)");
        }
        return Tokenizers[family].Value;
    }

    public static GoldenCase[] Cases(string family) => Golden.Value[family];

    /// <summary>Case names for [MemberData]: every golden string.</summary>
    public static TheoryData<string, string> AllCases()
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

    public static GoldenCase Case(string family, string name) => Cases(family).Single(c => c.Name == name);
}

internal sealed record GoldenCase(string Name, string Text, int[] Ids, string Decoded);

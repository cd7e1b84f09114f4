using System.Text.Json;

namespace FlexPrefill.Inference.Tests.Engine;

/// <summary>
/// The tiny transformers models of tests/fixtures/hf (made by tools/fixtures/make_hf_models.py, copied to the test
/// output) and what transformers computed for them.
/// </summary>
public sealed class HfFixture
{
    public required string Directory { get; init; }
    public required int[] Prompt { get; init; }
    public required int[] Positions { get; init; }
    public required Dictionary<int, float[]> Logits { get; init; }
    public required Dictionary<int, double> Top2Margin { get; init; }
    public required int[] Greedy { get; init; }
    public required int[] GreedyStepPositions { get; init; }
    public required float[][] GreedyStepLogits { get; init; }
    public Dictionary<int, int>? Bf16CudaTop1 { get; init; }

    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf");

    /// <summary>The fixture, or a visible skip when the fixtures have not been generated.</summary>
    public static HfFixture Load(string name)
    {
        string dir = Path.Combine(Root, name), path = Path.Combine(dir, "expected.json");
        if (!File.Exists(path))
            Assert.Skip($"HF fixture {name} not present at {dir}: run tools/fixtures/make_hf_models.py tests/fixtures/hf on a machine with transformers 5.x");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var r = doc.RootElement;
        static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();
        return new HfFixture
        {
            Directory = dir,
            Prompt = Ints(r.GetProperty("prompt")),
            Positions = Ints(r.GetProperty("positions")),
            Logits = r.GetProperty("logits").EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => Floats(p.Value)),
            Top2Margin = r.GetProperty("top2_margin").EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value.GetDouble()),
            Greedy = Ints(r.GetProperty("greedy")),
            GreedyStepPositions = Ints(r.GetProperty("greedy_step_positions")),
            GreedyStepLogits = r.GetProperty("greedy_step_logits").EnumerateArray().Select(Floats).ToArray(),
            Bf16CudaTop1 = r.TryGetProperty("bf16_cuda_top1", out var b)
                ? b.EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value.GetInt32())
                : null,
        };
    }

    public static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    public static int ArgMax(float[] row) => Array.IndexOf(row, row.Max());
}

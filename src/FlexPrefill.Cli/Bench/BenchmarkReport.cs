using System.Text.Json;
using System.Text.Json.Serialization;

namespace FlexPrefill.Cli.Bench;

/// <summary>One measured prefill + decode: a row of the table.</summary>
/// <param name="Tokens">Prompt tokens (N).</param>
/// <param name="Attention">"dense" or "flexprefill".</param>
/// <param name="Backend">The attention backend that ran ("dense", "flexprefill", "flexprefill-native").</param>
/// <param name="TtftMs">Time to first token: the prefill with the first token's logits, synchronized.</param>
/// <param name="PrefillTokensPerSecond">N / TTFT.</param>
/// <param name="DecodeTokensPerSecond">Decode throughput after the first token.</param>
/// <param name="DecodeSteps">Decode steps run (fewer than asked when the model sampled an end-of-sequence token).</param>
/// <param name="PeakGpuMb">Peak GPU memory of the process over this row in MiB; null without a GPU monitor.</param>
/// <param name="ModelGpuMb">GPU memory held after the model was built, before this row, in MiB; null without a GPU monitor.</param>
/// <param name="Density">Computed attention blocks over causal blocks in the prefill (1 = dense).</param>
/// <param name="Error">Why the row has no numbers (out of memory, context exceeded); null when it ran.</param>
sealed record BenchmarkRow(
    int Tokens, string Attention, string Backend, double TtftMs, double PrefillTokensPerSecond, double DecodeTokensPerSecond,
    int DecodeSteps, double? PeakGpuMb, double? ModelGpuMb, double Density, string? Error = null)
{
    public static BenchmarkRow Failed(int tokens, string attention, string error) =>
        new(tokens, attention, "-", double.NaN, double.NaN, double.NaN, 0, null, null, double.NaN, error);
}

/// <summary>A benchmark run: what ran where, and the rows. Written with --json, read back from child processes.
/// Model is the preset with its weights ("llama-3.1-8b (structured random weights)") or the model folder's name;
/// Weights is "gaussian" or "structured" (a preset's random weights) or "checkpoint" (a folder), and null in reports
/// written before it existed (all Gaussian or checkpoints).</summary>
sealed record BenchmarkReport(
    DateTimeOffset Date, string Command, string Model, string? Weights, string Device, string? Gpu, [property: JsonPropertyName("dtype")] string DType, int DecodeSteps,
    double Gamma, double Tau, int MinBudget, string MemorySource, IReadOnlyList<BenchmarkRow> Rows)
{
    static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        // Failed rows carry NaN timings; JSON has no NaN, so they are written as the strings "NaN".
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static BenchmarkReport FromJson(string json) =>
        JsonSerializer.Deserialize<BenchmarkReport>(json, JsonOptions) ?? throw new InvalidDataException("empty benchmark report");
}

using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace FlexPrefill.Samples;

/// <summary>
/// Counts and timings of one or more chat calls, read from the reply metadata the FlexPrefill connector writes
/// (<c>prefill_ms</c>, <c>attention_density</c>, usage). A value no reply reported stays null.
/// </summary>
public sealed record CallStatistics
{
    /// <summary>Chat calls made.</summary>
    public int Calls { get; init; }
    /// <summary>Prompt tokens over all calls.</summary>
    public long? PromptTokens { get; init; }
    /// <summary>Generated tokens over all calls.</summary>
    public long? CompletionTokens { get; init; }
    /// <summary>Prefill time over all calls.</summary>
    public double? PrefillMilliseconds { get; init; }
    /// <summary>Attention density (computed / causal blocks) of the largest prefill; 1 = dense.</summary>
    public double? AttentionDensity { get; init; }
    /// <summary>Wall time over all calls.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Nothing measured yet.</summary>
    public static CallStatistics None { get; } = new();

    /// <summary>The statistics of one reply that took <paramref name="elapsed"/>.</summary>
    public static CallStatistics FromReply(ChatMessageContent reply, TimeSpan elapsed)
    {
        var meta = reply.Metadata;
        long? prompt = null, completion = null;
        if (meta is not null)
        {
            foreach (var value in meta.Values)
                if (value is UsageDetails usage) { prompt = usage.InputTokenCount; completion = usage.OutputTokenCount; }
            prompt ??= Number(meta, "prompt_tokens") is { } p ? (long)p : null;
            completion ??= Number(meta, "completion_tokens") is { } c ? (long)c : null;
        }
        return new CallStatistics
        {
            Calls = 1,
            PromptTokens = prompt,
            CompletionTokens = completion,
            PrefillMilliseconds = meta is null ? null : Number(meta, "prefill_ms"),
            AttentionDensity = meta is null ? null : Number(meta, "attention_density"),
            Elapsed = elapsed,
        };
    }

    /// <summary>Both sets of calls together.</summary>
    public CallStatistics Add(CallStatistics other) => new()
    {
        Calls = Calls + other.Calls,
        PromptTokens = Sum(PromptTokens, other.PromptTokens),
        CompletionTokens = Sum(CompletionTokens, other.CompletionTokens),
        PrefillMilliseconds = Sum(PrefillMilliseconds, other.PrefillMilliseconds),
        // The density that matters is the one of the longest prompt, where sparsity pays.
        AttentionDensity = (other.PromptTokens ?? 0) > (PromptTokens ?? 0) || AttentionDensity is null ? other.AttentionDensity ?? AttentionDensity : AttentionDensity,
        Elapsed = Elapsed + other.Elapsed,
    };

    /// <summary>"prompt 16,384 tokens · output 9 tokens · prefill 12.3 s · attention density 34% · 13.1 s in 1 call".</summary>
    public override string ToString()
    {
        var parts = new List<string>
        {
            PromptTokens is { } p ? $"prompt {p:N0} tokens" : "prompt tokens n/a",
            CompletionTokens is { } c ? $"output {c:N0} tokens" : "output tokens n/a",
            PrefillMilliseconds is { } ms ? $"prefill {Seconds(ms)}" : "prefill time n/a",
            AttentionDensity is { } d ? $"attention density {d:P0}" : "attention density n/a",
            $"{Seconds(Elapsed.TotalMilliseconds)} in {Calls} call{(Calls == 1 ? "" : "s")}",
        };
        return string.Join(" · ", parts);
    }

    static string Seconds(double ms) => ms < 1000 ? $"{ms:N0} ms" : $"{ms / 1000:N1} s";

    static long? Sum(long? a, long? b) => a is null && b is null ? null : (a ?? 0) + (b ?? 0);
    static double? Sum(double? a, double? b) => a is null && b is null ? null : (a ?? 0) + (b ?? 0);

    static double? Number(IReadOnlyDictionary<string, object?> meta, string key) =>
        meta.TryGetValue(key, out var v) ? v switch
        {
            null => null,
            double d => d,
            float f => f,
            int i => i,
            long l => l,
            JsonElement { ValueKind: JsonValueKind.Number } j => j.GetDouble(),
            string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            IConvertible c => c.ToDouble(CultureInfo.InvariantCulture),
            _ => null,
        } : null;
}

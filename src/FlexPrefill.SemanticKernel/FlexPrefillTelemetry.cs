using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// Names of the connector's telemetry. Listen with <c>AddSource(FlexPrefillTelemetry.SourceName)</c> and
/// <c>AddMeter(FlexPrefillTelemetry.SourceName)</c> (OpenTelemetry) or an <see cref="ActivityListener"/> /
/// <see cref="MeterListener"/>.
/// </summary>
public static class FlexPrefillTelemetry
{
    /// <summary>Name of the <see cref="ActivitySource"/> and the <see cref="Meter"/>: the package name.</summary>
    public const string SourceName = "FlexPrefill.SemanticKernel";

    /// <summary>Histogram (s): request start to the first generated token, queueing and prefill included.</summary>
    public const string TimeToFirstTokenMetric = "flexprefill.time_to_first_token";

    /// <summary>Histogram ({token}/s): prompt tokens prefilled (cached ones excluded) per second of prefill.</summary>
    public const string PrefillThroughputMetric = "flexprefill.prefill.throughput";

    /// <summary>Histogram ({token}/s): decode throughput after the first token.</summary>
    public const string DecodeThroughputMetric = "flexprefill.decode.throughput";

    /// <summary>Histogram (1): computed attention blocks over causal blocks of the prefill (1 = dense).</summary>
    public const string AttentionDensityMetric = "flexprefill.attention.density";

    /// <summary>Counter ({token}), tagged <c>flexprefill.token.type</c> = input | cached_input | output.</summary>
    public const string TokensMetric = "flexprefill.tokens";

    internal static readonly ActivitySource ActivitySource = new(SourceName, typeof(FlexPrefillTelemetry).Assembly.GetName().Version?.ToString());
    internal static readonly Meter Meter = new(SourceName, typeof(FlexPrefillTelemetry).Assembly.GetName().Version?.ToString());

    internal static readonly Histogram<double> TimeToFirstToken = Meter.CreateHistogram<double>(TimeToFirstTokenMetric, "s", "Time from request to first token");
    internal static readonly Histogram<double> PrefillThroughput = Meter.CreateHistogram<double>(PrefillThroughputMetric, "{token}/s", "Prefill tokens per second");
    internal static readonly Histogram<double> DecodeThroughput = Meter.CreateHistogram<double>(DecodeThroughputMetric, "{token}/s", "Decode tokens per second");
    internal static readonly Histogram<double> AttentionDensity = Meter.CreateHistogram<double>(AttentionDensityMetric, "1", "Attention density of the prefill");
    internal static readonly Counter<long> Tokens = Meter.CreateCounter<long>(TokensMetric, "{token}", "Tokens processed");
}

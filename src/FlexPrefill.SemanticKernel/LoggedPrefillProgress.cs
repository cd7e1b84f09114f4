using FlexPrefill.Inference.Generation;
using Microsoft.Extensions.Logging;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// Forwards prefill progress to the caller's <see cref="IProgress{T}"/> and logs it: every quarter at Information for
/// long prompts, at Debug otherwise. Runs on the inference thread, so it only formats when a quarter is crossed.
/// </summary>
internal sealed class LoggedPrefillProgress(ILogger logger, IProgress<PrefillProgress>? inner, int informationAboveTokens) : IProgress<PrefillProgress>
{
    int _lastQuarter = -1;

    public void Report(PrefillProgress value)
    {
        inner?.Report(value);
        int quarter = (int)(value.Fraction * 4);
        if (quarter <= _lastQuarter) return;
        _lastQuarter = quarter;
        var level = value.Tokens - value.TokensDone >= informationAboveTokens && value.LayersDone > 0 ? LogLevel.Information : LogLevel.Debug;
        if (logger.IsEnabled(level))
            logger.Log(level, "Prefill {Percent:F0}%: layer {LayersDone}/{Layers}, {Tokens} prompt tokens ({Cached} cached)",
                value.Fraction * 100, value.LayersDone, value.Layers, value.Tokens, value.TokensDone);
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using FlexPrefill.SemanticKernel.Tests.TestDoubles;
using Microsoft.Extensions.AI;

namespace FlexPrefill.SemanticKernel.Tests;

public sealed class TelemetryTests
{
    [Fact]
    public async Task A_request_emits_an_activity_and_the_connectors_metrics()
    {
        var model = new ScriptedLanguageModel(RecordingTemplate.ChatMl(), Scripted.Says("measured")) { ModelId = "telemetry-model" };
        var client = Scripted.Client(model);
        ConcurrentBag<Activity> activities = [];
        ConcurrentBag<(string Name, double Value, string? Model)> measurements = [];
        using var activityListener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == FlexPrefillTelemetry.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Add,
        };
        ActivitySource.AddActivityListener(activityListener);
        using var meterListener = new MeterListener();
        meterListener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == FlexPrefillTelemetry.SourceName) l.EnableMeasurementEvents(instrument); };
        void Record<T>(Instrument i, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? _)
        {
            string? m = null;
            foreach (var t in tags) if (t.Key == "gen_ai.request.model") m = t.Value as string;
            measurements.Add((i.Name, Convert.ToDouble(value), m));
        }
        meterListener.SetMeasurementEventCallback<double>(Record);
        meterListener.SetMeasurementEventCallback<long>(Record);
        meterListener.Start();

        await client.GetResponseAsync("Hi", new ChatOptions { AdditionalProperties = new() { ["attention"] = "flexprefill" } }, TestContext.Current.CancellationToken);

        var activity = Assert.Single(activities, a => a.GetTagItem("gen_ai.request.model") as string == "telemetry-model");
        Assert.Equal("chat telemetry-model", activity.DisplayName);
        Assert.Equal(8, activity.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.Equal(0.25, activity.GetTagItem("flexprefill.attention_density"));
        Assert.Contains(activity.Events, e => e.Name == "first_token");
        var mine = measurements.Where(m => m.Model == "telemetry-model").ToList();
        Assert.Contains(mine, m => m.Name == FlexPrefillTelemetry.TimeToFirstTokenMetric && m.Value > 0);
        Assert.Contains(mine, m => m.Name == FlexPrefillTelemetry.AttentionDensityMetric && m.Value == 0.25);
        Assert.Contains(mine, m => m.Name == FlexPrefillTelemetry.PrefillThroughputMetric && m.Value > 0);
        Assert.Contains(mine, m => m.Name == FlexPrefillTelemetry.TokensMetric && m.Value == 8);
    }
}

namespace FlexPrefill.Samples.HostedWorker.Jobs;

/// <summary>What the outbox receives for a finished job.</summary>
public sealed record JobResult
{
    /// <summary>Job id.</summary>
    public required string Id { get; init; }
    /// <summary>"answer" or "summarize".</summary>
    public required string Task { get; init; }
    /// <summary>The document's name.</summary>
    public required string Document { get; init; }
    /// <summary>The question asked (answer jobs).</summary>
    public string? Question { get; init; }
    /// <summary>The answer (answer jobs).</summary>
    public string? Answer { get; init; }
    /// <summary>The sentence of the document that contains the answer, when there is one.</summary>
    public Passage? Citation { get; init; }
    /// <summary>The summary (summarize jobs).</summary>
    public string? Summary { get; init; }
    /// <summary>Prompt tokens.</summary>
    public long? PromptTokens { get; init; }
    /// <summary>Generated tokens.</summary>
    public long? CompletionTokens { get; init; }
    /// <summary>Prefill time.</summary>
    public double? PrefillMs { get; init; }
    /// <summary>Attention density of the prefill (1 = dense).</summary>
    public double? AttentionDensity { get; init; }
    /// <summary>Wall time of the model call.</summary>
    public required double ElapsedMs { get; init; }
    /// <summary>When the job finished.</summary>
    public required DateTimeOffset CompletedAt { get; init; }
}

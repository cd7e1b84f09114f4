using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace FlexPrefill.Samples.HostedWorker.Jobs;

/// <summary>
/// Settings for the model calls of one job. The default is connector-neutral (greedy, "max_tokens" as SK's
/// execution-settings JSON names it); Program replaces it with the FlexPrefill connector's own settings.
/// </summary>
public sealed class JobPromptSettings(Func<int, PromptExecutionSettings>? create = null)
{
    readonly Func<int, PromptExecutionSettings> _create = create ?? (maxTokens => new PromptExecutionSettings
    {
        ExtensionData = new Dictionary<string, object> { ["max_tokens"] = maxTokens, ["temperature"] = 0.0 },
    });

    /// <summary>Settings allowing <paramref name="maxTokens"/> output tokens.</summary>
    public PromptExecutionSettings Create(int maxTokens) => _create(maxTokens);
}

/// <summary>Runs one validated job against the chat service: an in-context answer with a citation, or a summary.</summary>
public sealed class JobProcessor(IChatCompletionService chat, JobPromptSettings settings, TimeProvider clock)
{
    /// <summary>Does the job; exceptions (context too long, cancellation) go to the caller.</summary>
    public async Task<JobResult> RunAsync(JobRequest job, CancellationToken cancellationToken)
    {
        var document = LongDocument.FromText(job.DocumentName, job.DocumentText);
        var execution = settings.Create(job.MaxTokens);
        if (job.Task == JobTask.Answer)
        {
            var qa = await new DocumentQuestionAnswerer(chat).AnswerInContextAsync(document, job.Question!, execution, cancellationToken);
            return Result(job, qa.Statistics) with { Question = job.Question, Answer = qa.Answer, Citation = qa.Citation };
        }
        var summary = await new DocumentSummarizer(chat, s => s.Length / 4).SummarizeWholeAsync(document.Text, execution, cancellationToken);
        return Result(job, summary.Statistics) with { Summary = summary.Summary };
    }

    JobResult Result(JobRequest job, CallStatistics stats) => new()
    {
        Id = job.Id,
        Task = job.Task == JobTask.Answer ? "answer" : "summarize",
        Document = job.DocumentName,
        PromptTokens = stats.PromptTokens,
        CompletionTokens = stats.CompletionTokens,
        PrefillMs = stats.PrefillMilliseconds,
        AttentionDensity = stats.AttentionDensity,
        ElapsedMs = stats.Elapsed.TotalMilliseconds,
        CompletedAt = clock.GetUtcNow(),
    };
}

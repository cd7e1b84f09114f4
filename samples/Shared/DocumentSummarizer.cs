using System.Diagnostics;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Text;

namespace FlexPrefill.Samples;

/// <summary>A summary and what it cost.</summary>
/// <param name="Method">"long context" or "map-reduce".</param>
/// <param name="Summary">The summary text.</param>
/// <param name="Chunks">Chunks the document was split into (1 for long context).</param>
/// <param name="Statistics">Tokens and timings over every call.</param>
public sealed record SummaryResult(string Method, string Summary, int Chunks, CallStatistics Statistics);

/// <summary>
/// Summarises a document two ways: the whole document in one long-context call, or SK's <see cref="TextChunker"/>
/// map-reduce (summarise each chunk, then summarise the summaries) that short-context models need.
/// </summary>
/// <param name="chat">The chat service.</param>
/// <param name="countTokens">Token counter used to size the chunks (the model's tokenizer when available).</param>
public sealed class DocumentSummarizer(IChatCompletionService chat, Func<string, int> countTokens)
{
    /// <summary>The instruction put after the text.</summary>
    public const string Instruction = "Summarize the text above in a few sentences.";

    /// <summary>One call with the whole document in the prompt.</summary>
    public async Task<SummaryResult> SummarizeWholeAsync(string text, PromptExecutionSettings? settings = null, CancellationToken cancellationToken = default)
    {
        var (summary, stats) = await SummarizeOnceAsync(text, settings, cancellationToken);
        return new SummaryResult("long context", summary, 1, stats);
    }

    /// <summary>
    /// Splits the document into chunks of at most <paramref name="chunkTokens"/> tokens, summarises each, then
    /// summarises the joined summaries (again in chunks while they do not fit one call).
    /// </summary>
    public async Task<SummaryResult> SummarizeMapReduceAsync(string text, int chunkTokens, PromptExecutionSettings? settings = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkTokens, 16);
        var total = CallStatistics.None;
        var chunks = Split(text, chunkTokens);
        int firstChunks = chunks.Count;
        while (true)
        {
            var summaries = new List<string>(chunks.Count);
            foreach (var chunk in chunks)
            {
                var (summary, stats) = await SummarizeOnceAsync(chunk, settings, cancellationToken);
                summaries.Add(summary);
                total = total.Add(stats);
            }
            if (summaries.Count == 1) return new SummaryResult("map-reduce", summaries[0], firstChunks, total);
            string joined = string.Join("\n\n", summaries);
            var next = Split(joined, chunkTokens);
            // A model that does not shorten its input would loop forever; one last call over everything ends it.
            chunks = next.Count < chunks.Count ? next : [joined];
        }
    }

    List<string> Split(string text, int chunkTokens)
    {
        // TextChunker is marked experimental (SKEXP0050) in Semantic Kernel 1.82; it is the baseline we compare against.
#pragma warning disable SKEXP0050
        TextChunker.TokenCounter counter = s => countTokens(s);
        var lines = TextChunker.SplitPlainTextLines(text, Math.Max(8, chunkTokens / 4), counter);
        return TextChunker.SplitPlainTextParagraphs(lines, chunkTokens, overlapTokens: 0, chunkHeader: null, tokenCounter: counter);
#pragma warning restore SKEXP0050
    }

    async Task<(string Summary, CallStatistics Stats)> SummarizeOnceAsync(string text, PromptExecutionSettings? settings, CancellationToken ct)
    {
        var history = new ChatHistory();
        history.AddUserMessage($"{text.TrimEnd()}\n\n{Instruction}");
        var clock = Stopwatch.StartNew();
        var reply = await chat.GetChatMessageContentAsync(history, settings, cancellationToken: ct);
        string summary = (reply.Content ?? "").Trim();
        if (summary.Length == 0) throw new AnswerNotProducedException("the model returned an empty summary");
        return (summary, CallStatistics.FromReply(reply, clock.Elapsed));
    }
}

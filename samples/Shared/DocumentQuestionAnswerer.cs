using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace FlexPrefill.Samples;

/// <summary>An answer, the passage that supports it, and what it cost.</summary>
/// <param name="Answer">The model's answer (trimmed).</param>
/// <param name="Citation">The document sentence that contains the answer; null when the document does not contain it.</param>
/// <param name="PassagesRead">Passages the agent retrieved through the plugin (empty for the in-context path).</param>
/// <param name="Statistics">Tokens and timings of every call.</param>
public sealed record QaResult(string Answer, Passage? Citation, IReadOnlyList<Passage> PassagesRead, CallStatistics Statistics);

/// <summary>The model produced no usable answer; the message says why.</summary>
public sealed class AnswerNotProducedException(string message) : Exception(message);

/// <summary>
/// Answers a question about a long document in one of two ways: <b>in context</b> (the whole document in the prompt,
/// one long prefill: what FlexPrefill speeds up) or as a small <b>agent</b> that reads the document through the
/// <see cref="DocumentPlugin"/> with automatic function choice (for models that can call tools).
/// </summary>
public sealed partial class DocumentQuestionAnswerer(IChatCompletionService chat)
{
    /// <summary>System prompt of the agent path.</summary>
    public const string AgentInstructions =
        "You answer questions about a document using the document tools. Search the document for the passage that " +
        "answers the question, then reply with a short answer taken from that passage.";

    /// <summary>
    /// The in-context prompt: the document (paragraphs unwrapped), then the question. This is the layout the default
    /// model was trained on (document first, question last), and it lets a prefix cache reuse the document across
    /// questions.
    /// </summary>
    public static string InContextPrompt(LongDocument document, string question) => $"{document.Unwrapped}\n\n{question.Trim()}";

    /// <summary>Puts the whole document and the question into one prompt and cites the sentence holding the answer.</summary>
    public async Task<QaResult> AnswerInContextAsync(LongDocument document, string question, PromptExecutionSettings? settings = null, CancellationToken cancellationToken = default)
    {
        var history = new ChatHistory();
        history.AddUserMessage(InContextPrompt(document, question));
        var (reply, stats) = await CallAsync(history, settings, null, cancellationToken);
        string answer = RequireAnswer(reply);
        return new QaResult(answer, FindCitation(document, answer), [], stats);
    }

    /// <summary>
    /// Runs the agent loop: the model calls the plugin's functions (invoked here, results appended to the history)
    /// until it answers in text or <paramref name="maxSteps"/> calls have been made.
    /// </summary>
    public async Task<QaResult> AnswerWithAgentAsync(Kernel kernel, DocumentPlugin plugin, string question, PromptExecutionSettings? settings = null, int maxSteps = 6, CancellationToken cancellationToken = default)
    {
        settings ??= new PromptExecutionSettings();
        // Invoke functions here rather than inside the connector, so each step is visible and bounded.
        settings.FunctionChoiceBehavior = FunctionChoiceBehavior.Auto(autoInvoke: false);
        var history = new ChatHistory(AgentInstructions);
        history.AddUserMessage(plugin.Document is { } d ? $"The document '{d.Name}' is loaded. {question}" : question);

        var total = CallStatistics.None;
        for (int step = 0; step < maxSteps; step++)
        {
            var (reply, stats) = await CallAsync(history, settings, kernel, cancellationToken);
            total = total.Add(stats);
            history.Add(reply);
            var calls = FunctionCallContent.GetFunctionCalls(reply).ToArray();
            if (calls.Length == 0)
            {
                string answer = RequireAnswer(reply);
                var citation = plugin.Document is { } doc ? FindCitation(doc, answer) : null;
                return new QaResult(answer, citation, plugin.Retrieved.ToArray(), total);
            }
            foreach (var call in calls)
            {
                FunctionResultContent result;
                try
                {
                    result = await call.InvokeAsync(kernel, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The model sees the error and may try again, as with SK's own auto-invocation.
                    result = new FunctionResultContent(call, $"error: {e.Message}");
                }
                history.Add(result.ToChatMessage());
            }
        }
        throw new AnswerNotProducedException($"the agent made {maxSteps} model calls without answering; raise the step limit or use a model that answers after reading");
    }

    /// <summary>
    /// The sentence supporting <paramref name="answer"/>: the answer verbatim, else its longest number (needles are
    /// numbers), else its longest quoted phrase.
    /// </summary>
    public static Passage? FindCitation(LongDocument document, string answer)
    {
        if (document.FindSupportingSentence(answer) is { } whole) return whole;
        var candidates = NumberPattern().Matches(answer).Select(m => m.Value)
            .Concat(QuotedPattern().Matches(answer).Select(m => m.Groups[1].Value))
            .OrderByDescending(s => s.Length);
        foreach (var c in candidates)
            if (document.FindSupportingSentence(c) is { } found) return found;
        return null;
    }

    async Task<(ChatMessageContent Reply, CallStatistics Stats)> CallAsync(ChatHistory history, PromptExecutionSettings? settings, Kernel? kernel, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var reply = await chat.GetChatMessageContentAsync(history, settings, kernel, ct);
        return (reply, CallStatistics.FromReply(reply, clock.Elapsed));
    }

    static string RequireAnswer(ChatMessageContent reply)
    {
        string answer = (reply.Content ?? "").Trim();
        return answer.Length > 0 ? answer : throw new AnswerNotProducedException("the model returned an empty answer");
    }

    [GeneratedRegex(@"\d[\d,.]*\d|\d")]
    private static partial Regex NumberPattern();

    [GeneratedRegex("[\"“']([^\"”']{3,})[\"”']")]
    private static partial Regex QuotedPattern();
}

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;
using TurnRole = FlexPrefill.Inference.Tokenization.ChatRole;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// An <see cref="IChatClient"/> over a local FlexPrefill model: renders the conversation and tools with the model's
/// chat template, generates on the engine's inference thread (requests served FIFO from its bounded queue) and
/// parses tool calls back into <see cref="FunctionCallContent"/>. It does not invoke functions itself: wrap it with
/// <c>UseKernelFunctionInvocation()</c> or <c>UseFunctionInvocation()</c> (the registration extensions do).
/// </summary>
/// <remarks>
/// <para><see cref="ChatOptions"/> honoured: Temperature, TopP, TopK, Seed, MaxOutputTokens (default
/// <see cref="FlexPrefillServiceOptions.MaxOutputTokens"/>, capped to the context left), StopSequences (plus the
/// template's), Instructions, Tools, ToolMode, ResponseFormat, and in AdditionalProperties
/// <c>flexprefill_gamma</c>, <c>flexprefill_tau</c>, <c>flexprefill_min_budget</c>, <c>attention</c>
/// ("dense" | "flexprefill") and <see cref="FlexPrefillPromptExecutionSettings.PrefillProgressKey"/>.</para>
/// <para><see cref="ChatToolMode.RequireAny"/>: a local model cannot be forced to call a tool, so the last user turn
/// asks for a tool call and the request otherwise runs as Auto.</para>
/// <para>JSON response format: the last user turn asks for JSON only; a reply that is not JSON is retried once with
/// the parser's message (non-streaming), then <see cref="JsonResponseFormatException"/> is thrown.</para>
/// <para>A reply whose tool call cannot be parsed is returned as plain text and logged as a warning.</para>
/// </remarks>
public sealed class FlexPrefillChatClient : IChatClient
{
    /// <summary>The <see cref="ChatClientMetadata.ProviderName"/> of this client.</summary>
    public const string ProviderName = "flexprefill";

    // Characters that can open a tool call in the supported formats (Llama-3.1 JSON, <|python_tag|>, Qwen
    // <tool_call>, Mistral [TOOL_CALLS]); streamed text is held back from the first one until the reply is parsed.
    static readonly char[] s_toolCallOpeners = ['{', '<', '['];

    readonly ILanguageModel _model;
    readonly FlexPrefillServiceOptions _defaults;
    readonly ILogger _logger;
    readonly ChatClientMetadata _metadata;

    /// <summary>Creates a client over <paramref name="model"/>; the caller keeps ownership of the model.</summary>
    /// <param name="model">The loaded model (shared by every client of the process).</param>
    /// <param name="defaults">Request defaults (max output tokens, attention, γ, τ, min budget); null for the built-in ones.</param>
    /// <param name="loggerFactory">Logging; null for none.</param>
    public FlexPrefillChatClient(ILanguageModel model, FlexPrefillServiceOptions? defaults = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _defaults = defaults ?? new FlexPrefillServiceOptions();
        _logger = (ILogger?)loggerFactory?.CreateLogger<FlexPrefillChatClient>() ?? NullLogger.Instance;
        _metadata = new ChatClientMetadata(ProviderName, providerUri: null, defaultModelId: _defaults.ModelId ?? model.ModelId);
    }

    /// <summary>The model id reported in responses.</summary>
    public string ModelId => _metadata.DefaultModelId!;

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var request = Prepare(messages, options);
        var (text, summary, ttft) = await GenerateTextAsync(request, cancellationToken).ConfigureAwait(false);

        if (request.WantsJson && !TryNormalizeJson(ReplyText(request, text), out _, out string? jsonError))
        {
            // One corrective turn: the model sees its reply and the parser's complaint (the prefix cache keeps this cheap).
            _logger.LogWarning("Reply is not valid JSON ({Error}); retrying once", jsonError);
            List<ChatTurn> turns = [.. request.Turns,
                new ChatTurn(TurnRole.Assistant, text),
                new ChatTurn(TurnRole.User, $"That reply is not valid JSON ({jsonError}). {ChatRequest.JsonInstruction}")];
            request = request.WithTurns(_model, turns, options, _defaults);
            (text, summary, ttft) = await GenerateTextAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var (contents, hasCalls) = ToContents(request, text);
        if (request.WantsJson && !hasCalls)
            contents = [new TextContent(RequireJson(contents))];

        // The metadata sits on the message too: SK copies a message's AdditionalProperties into its Metadata and the
        // raw representation (the engine's summary) into InnerContent.
        var metadata = MetadataOf(summary, ttft);
        return new ChatResponse(new ChatMessage(AIChatRole.Assistant, contents) { MessageId = NewId("msg"), AdditionalProperties = metadata, RawRepresentation = summary })
        {
            ResponseId = NewId("resp"),
            RawRepresentation = summary,
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = FinishReasonOf(summary, hasCalls, cancellationToken),
            Usage = UsageOf(summary),
            AdditionalProperties = metadata,
        };
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var request = Prepare(messages, options);
        string responseId = NewId("resp"), messageId = NewId("msg");
        ChatResponseUpdate Update(IList<AIContent> contents) => new(AIChatRole.Assistant, contents)
        {
            ResponseId = responseId,
            MessageId = messageId,
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
        };

        var reply = new StringBuilder();
        int emitted = 0;
        bool holding = false;
        GenerationSummary? summary = null;
        double ttft = 0;
        var run = new RequestRun(this, request);
        try
        {
            await foreach (var update in StartAsync(request, cancellationToken).ConfigureAwait(false))
            {
                run.OnUpdate(update);
                summary = update.Summary ?? summary;
                if (update.Text.Length == 0) continue;
                reply.Append(update.Text);
                if (request.Tools.Count == 0)
                {
                    yield return Update([new TextContent(update.Text)]);
                    continue;
                }
                if (holding) continue;
                int opener = reply.ToString(emitted, reply.Length - emitted).IndexOfAny(s_toolCallOpeners);
                int safeEnd = opener < 0 ? reply.Length : emitted + opener;
                holding = opener >= 0;
                if (safeEnd > emitted)
                {
                    string safe = reply.ToString(emitted, safeEnd - emitted);
                    emitted = safeEnd;
                    yield return Update([new TextContent(safe)]);
                }
            }
            ttft = run.TimeToFirstTokenSeconds;
        }
        finally
        {
            run.End(summary);
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (summary is null) throw new InvalidOperationException("the engine ended the request without a summary");

        string text = reply.ToString();
        List<AIContent> tail = [];
        bool hasCalls = false;
        if (request.Tools.Count > 0)
        {
            var (contents, calls) = ToContents(request, text);
            hasCalls = calls;
            string shown = text[..emitted];
            foreach (var content in contents)
            {
                if (content is TextContent t)
                {
                    string rest = RemainderAfter(t.Text, shown);
                    if (rest.Length > 0) tail.Add(new TextContent(rest));
                }
                else tail.Add(content);
            }
        }
        if (request.WantsJson && !hasCalls)
            RequireJson([new TextContent(ReplyText(request, text))]);

        tail.Add(new UsageContent(UsageOf(summary)));
        var last = Update(tail);
        last.FinishReason = FinishReasonOf(summary, hasCalls, cancellationToken);
        last.AdditionalProperties = MetadataOf(summary, ttft);
        last.RawRepresentation = summary;
        yield return last;
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_model)) return _model;
        return null;
    }

    /// <summary>Nothing to release: the model belongs to whoever created it (the DI container, in hosted use).</summary>
    public void Dispose()
    {
    }

    ChatRequest Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options) =>
        ChatRequest.Create(_model, ChatConversion.ToTurns(messages, options?.Instructions, _logger), options, _defaults);

    IAsyncEnumerable<GenerationUpdate> StartAsync(ChatRequest request, CancellationToken cancellationToken)
    {
        var progress = new LoggedPrefillProgress(_logger, request.UserProgress, _defaults.LogPrefillProgressAboveTokens);
        return _model.GenerateAsync(request.PromptTokens, request.Generation with { PrefillProgress = progress }, cancellationToken);
    }

    async Task<(string Text, GenerationSummary Summary, double Ttft)> GenerateTextAsync(ChatRequest request, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        GenerationSummary? summary = null;
        var run = new RequestRun(this, request);
        try
        {
            await foreach (var update in StartAsync(request, cancellationToken).ConfigureAwait(false))
            {
                run.OnUpdate(update);
                text.Append(update.Text);
                summary = update.Summary ?? summary;
            }
        }
        finally
        {
            run.End(summary);
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (summary is null) throw new InvalidOperationException("the engine ended the request without a summary");
        return (text.ToString(), summary, run.TimeToFirstTokenSeconds);
    }

    /// <summary>The reply as contents: tool calls (when tools were offered and the reply holds valid ones) and text.</summary>
    (List<AIContent> Contents, bool HasCalls) ToContents(ChatRequest request, string text)
    {
        if (request.Tools.Count == 0) return ([new TextContent(text)], false);

        var parsed = _model.ChatTemplate.ParseReply(text);
        if (parsed.Error is not null)
        {
            _logger.LogWarning("The model's tool call could not be parsed ({Error}); returning the reply as text", parsed.Error);
            return ([new TextContent(text)], false);
        }
        if (parsed.ToolCalls.Count == 0) return ([new TextContent(parsed.Content)], false);

        var toolCalls = request.SingleToolCall ? parsed.ToolCalls.Take(1).ToList() : parsed.ToolCalls;
        var calls = ChatConversion.ToFunctionCalls(toolCalls, out string? error);
        if (calls is null)
        {
            _logger.LogWarning("The model's tool call could not be used ({Error}); returning the reply as text", error);
            return ([new TextContent(text)], false);
        }
        List<AIContent> contents = [];
        if (!string.IsNullOrWhiteSpace(parsed.Content)) contents.Add(new TextContent(parsed.Content));
        contents.AddRange(calls);
        _logger.LogDebug("Reply holds {Count} tool call(s): {Names}", calls.Count, string.Join(", ", calls.Select(c => c.Name)));
        return (contents, true);
    }

    string ReplyText(ChatRequest request, string text) =>
        request.Tools.Count == 0 ? text : _model.ChatTemplate.ParseReply(text) is { Error: null } p ? p.Content : text;

    static string RequireJson(List<AIContent> contents)
    {
        string text = string.Concat(contents.OfType<TextContent>().Select(t => t.Text));
        return TryNormalizeJson(text, out string? json, out string? error) ? json! : throw new JsonResponseFormatException(text, error!);
    }

    /// <summary>Valid JSON after trimming whitespace and a Markdown code fence (models add one despite being asked not to).</summary>
    static bool TryNormalizeJson(string text, out string? json, out string? error)
    {
        string s = text.Trim();
        if (s.StartsWith("```", StringComparison.Ordinal))
        {
            int firstLine = s.IndexOf('\n');
            int close = s.LastIndexOf("```", StringComparison.Ordinal);
            if (firstLine > 0 && close > firstLine) s = s[(firstLine + 1)..close].Trim();
        }
        try
        {
            using var _ = JsonDocument.Parse(s);
            json = s;
            error = null;
            return true;
        }
        catch (JsonException e)
        {
            json = null;
            error = s.Length == 0 ? "the reply is empty" : e.Message;
            return false;
        }
    }

    /// <summary>What of <paramref name="content"/> has not been streamed yet (the parser may have trimmed whitespace).</summary>
    static string RemainderAfter(string content, string shown)
    {
        if (content.StartsWith(shown, StringComparison.Ordinal)) return content[shown.Length..];
        string trimmed = shown.Trim();
        int at = trimmed.Length == 0 ? 0 : content.IndexOf(trimmed, StringComparison.Ordinal);
        return at < 0 ? content : content[(at + trimmed.Length)..];
    }

    static ChatFinishReason FinishReasonOf(GenerationSummary summary, bool hasCalls, CancellationToken cancellationToken)
    {
        if (hasCalls) return ChatFinishReason.ToolCalls;
        if (summary.FinishReason == FinishReason.Cancelled) cancellationToken.ThrowIfCancellationRequested();
        return summary.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;
    }

    static UsageDetails UsageOf(GenerationSummary s) => new()
    {
        InputTokenCount = s.PromptTokens,
        OutputTokenCount = s.CompletionTokens,
        TotalTokenCount = s.PromptTokens + s.CompletionTokens,
        CachedInputTokenCount = s.CachedPromptTokens,
    };

    static AdditionalPropertiesDictionary MetadataOf(GenerationSummary s, double ttft) => new()
    {
        [FlexPrefillMetadataKeys.PrefillMilliseconds] = s.PrefillMilliseconds,
        [FlexPrefillMetadataKeys.DecodeTokensPerSecond] = s.DecodeTokensPerSecond,
        [FlexPrefillMetadataKeys.AttentionDensity] = s.Attention?.DensityOfCausalBlocks ?? 1.0,
        [FlexPrefillMetadataKeys.CachedPromptTokens] = s.CachedPromptTokens,
        [FlexPrefillMetadataKeys.AttentionBackend] = s.AttentionBackend,
        [FlexPrefillMetadataKeys.TimeToFirstTokenSeconds] = ttft,
    };

    static string NewId(string prefix) => $"{prefix}_{Guid.NewGuid():N}";

    /// <summary>Telemetry of one engine request: an activity, time to first token, metrics and a log line at the end.</summary>
    sealed class RequestRun
    {
        readonly FlexPrefillChatClient _client;
        readonly ChatRequest _request;
        readonly Activity? _activity;
        readonly long _start = Stopwatch.GetTimestamp();
        long _firstToken;
        bool _ended;

        public RequestRun(FlexPrefillChatClient client, ChatRequest request)
        {
            _client = client;
            _request = request;
            _activity = FlexPrefillTelemetry.ActivitySource.StartActivity($"chat {client.ModelId}", ActivityKind.Internal);
            _activity?.SetTag("gen_ai.operation.name", "chat");
            _activity?.SetTag("gen_ai.provider.name", ProviderName);
            _activity?.SetTag("gen_ai.request.model", client.ModelId);
            _activity?.SetTag("gen_ai.request.max_tokens", request.Generation.MaxTokens);
            _activity?.SetTag("flexprefill.prompt_tokens", request.PromptTokens.Count);
            _activity?.SetTag("flexprefill.attention", request.Generation.Attention.ToString());
            client._logger.LogDebug("Request: {PromptTokens} prompt tokens, max {MaxTokens} new, {Tools} tools, attention {Attention}, {Queued} queued before it",
                request.PromptTokens.Count, request.Generation.MaxTokens, request.Tools.Count, request.Generation.Attention, client._model.QueuedRequests);
        }

        public double TimeToFirstTokenSeconds => _firstToken == 0 ? 0 : Stopwatch.GetElapsedTime(_start, _firstToken).TotalSeconds;

        public void OnUpdate(GenerationUpdate update)
        {
            if (_firstToken != 0) return;
            _firstToken = Stopwatch.GetTimestamp();
            _activity?.AddEvent(new ActivityEvent("first_token"));
        }

        public void End(GenerationSummary? summary)
        {
            if (_ended) return;
            _ended = true;
            var tags = new TagList { { "gen_ai.request.model", _client.ModelId }, { "flexprefill.attention_backend", summary?.AttentionBackend } };
            if (_firstToken != 0) FlexPrefillTelemetry.TimeToFirstToken.Record(TimeToFirstTokenSeconds, tags);
            if (summary is null)
            {
                _activity?.SetStatus(ActivityStatusCode.Error, "ended without a summary (cancelled or failed)");
                _activity?.Dispose();
                return;
            }

            int prefilled = summary.PromptTokens - summary.CachedPromptTokens;
            double density = summary.Attention?.DensityOfCausalBlocks ?? 1.0;
            if (summary.PrefillMilliseconds > 0) FlexPrefillTelemetry.PrefillThroughput.Record(prefilled / (summary.PrefillMilliseconds / 1000), tags);
            if (summary.CompletionTokens > 1) FlexPrefillTelemetry.DecodeThroughput.Record(summary.DecodeTokensPerSecond, tags);
            FlexPrefillTelemetry.AttentionDensity.Record(density, tags);
            FlexPrefillTelemetry.Tokens.Add(prefilled, [.. tags, new("flexprefill.token.type", "input")]);
            FlexPrefillTelemetry.Tokens.Add(summary.CachedPromptTokens, [.. tags, new("flexprefill.token.type", "cached_input")]);
            FlexPrefillTelemetry.Tokens.Add(summary.CompletionTokens, [.. tags, new("flexprefill.token.type", "output")]);

            _activity?.SetTag("gen_ai.usage.input_tokens", summary.PromptTokens);
            _activity?.SetTag("gen_ai.usage.output_tokens", summary.CompletionTokens);
            _activity?.SetTag("gen_ai.response.finish_reasons", summary.FinishReason.ToString());
            _activity?.SetTag("flexprefill.cached_prompt_tokens", summary.CachedPromptTokens);
            _activity?.SetTag("flexprefill.prefill_ms", summary.PrefillMilliseconds);
            _activity?.SetTag("flexprefill.attention_density", density);
            _activity?.SetTag("flexprefill.attention_backend", summary.AttentionBackend);
            _activity?.Dispose();

            _client._logger.LogInformation(
                "Generated {CompletionTokens} tokens for a {PromptTokens}-token prompt ({CachedTokens} cached): prefill {PrefillMs:F0} ms ({Backend}, density {Density:F3}), first token after {Ttft:F2} s, decode {DecodeTps:F1} tokens/s, {FinishReason}",
                summary.CompletionTokens, summary.PromptTokens, summary.CachedPromptTokens, summary.PrefillMilliseconds, summary.AttentionBackend, density,
                TimeToFirstTokenSeconds, summary.DecodeTokensPerSecond, summary.FinishReason);
        }
    }
}

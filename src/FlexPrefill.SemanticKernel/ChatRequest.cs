using System.Globalization;
using System.Text.Json;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Tokenization;
using Microsoft.Extensions.AI;
using TurnRole = FlexPrefill.Inference.Tokenization.ChatRole;

namespace FlexPrefill.SemanticKernel;

/// <summary>One request, ready for the engine: turns, tools, prompt tokens and generation options.</summary>
internal sealed record ChatRequest
{
    public required List<ChatTurn> Turns { get; init; }
    public required List<ToolDefinition> Tools { get; init; }
    public required GenerationOptions Generation { get; init; }
    public required IReadOnlyList<int> PromptTokens { get; init; }
    /// <summary>Set when the caller asked for JSON; null otherwise.</summary>
    public JsonElement? JsonSchema { get; init; }
    public bool WantsJson { get; init; }
    /// <summary><see cref="ChatOptions.AllowMultipleToolCalls"/> is false: only the first call of a reply is kept.</summary>
    public bool SingleToolCall { get; init; }
    /// <summary>The caller's progress receiver (the client adds logging around it per engine request).</summary>
    public IProgress<PrefillProgress>? UserProgress { get; init; }

    internal const string JsonInstruction = "Reply with one valid JSON value only: no prose before or after it, no code fences.";
    internal const string RequireToolInstruction = "Answer by calling one of the provided tools.";

    /// <summary>
    /// Builds the request. Instructions that depend on the options (JSON only, tool required) are appended to the
    /// last user turn rather than the system prompt, so that a request over the same document with a new question
    /// still shares the document's tokens with the previous one (prefix KV reuse).
    /// </summary>
    public static ChatRequest Create(ILanguageModel model, List<ChatTurn> turns, ChatOptions? options, FlexPrefillServiceOptions defaults)
    {
        var tools = ChatConversion.ToToolDefinitions(options);
        bool wantsJson = options?.ResponseFormat is ChatResponseFormatJson;
        JsonElement? schema = (options?.ResponseFormat as ChatResponseFormatJson)?.Schema;

        List<string> extra = [];
        if (wantsJson)
            extra.Add(schema is { } s ? $"{JsonInstruction} It must match this JSON schema: {s.GetRawText()}" : JsonInstruction);
        // RequireAny / RequireSpecific: our templates cannot force a tool call, so the request asks for one and
        // otherwise runs as Auto (only the required function is offered for RequireSpecific).
        if (tools.Count > 0 && options?.ToolMode is RequiredChatToolMode)
            extra.Add(RequireToolInstruction);
        if (extra.Count > 0)
            turns = AppendToLastUserTurn(turns, string.Join(" ", extra));

        return Create(model, turns, tools, options, defaults, wantsJson, schema);
    }

    /// <summary>The same request with more turns (the JSON retry), everything else unchanged.</summary>
    public ChatRequest WithTurns(ILanguageModel model, List<ChatTurn> turns, ChatOptions? options, FlexPrefillServiceOptions defaults) =>
        Create(model, turns, Tools, options, defaults, WantsJson, JsonSchema);

    static ChatRequest Create(ILanguageModel model, List<ChatTurn> turns, List<ToolDefinition> tools, ChatOptions? options,
        FlexPrefillServiceOptions defaults, bool wantsJson, JsonElement? schema)
    {
        var template = model.ChatTemplate;
        string prompt = template.Render(turns, tools, addGenerationPrompt: true);
        var tokens = model.Encode(prompt);

        // Checked here, before the engine queues anything, so the error names both numbers at once.
        int context = model.ContextLength;
        int maxTokens;
        if (options?.MaxOutputTokens is { } requested)
        {
            if (requested < 1) throw new ArgumentOutOfRangeException(nameof(options), requested, "max_tokens must be ≥ 1");
            maxTokens = requested;
        }
        else
        {
            maxTokens = Math.Min(defaults.MaxOutputTokens, context - tokens.Count);
            if (maxTokens < 1) maxTokens = defaults.MaxOutputTokens;
        }
        if (tokens.Count + maxTokens > context)
            throw new ContextLengthExceededException(tokens.Count, maxTokens, context);

        var extra = options?.AdditionalProperties;
        var flex = new FlexPrefillOptions
        {
            Gamma = GetDouble(extra, "flexprefill_gamma") ?? defaults.Gamma,
            Tau = GetDouble(extra, "flexprefill_tau") ?? defaults.Tau,
            MinBudget = (int?)GetDouble(extra, "flexprefill_min_budget") ?? defaults.MinBudget,
        }.Validate();

        var generation = new GenerationOptions
        {
            MaxTokens = maxTokens,
            Temperature = options?.Temperature ?? 0,
            TopP = options?.TopP ?? 1.0,
            TopK = options?.TopK ?? 0,
            Seed = options?.Seed,
            StopSequences = [.. (options?.StopSequences ?? []).Concat(template.StopSequences).Distinct(StringComparer.Ordinal)],
            Attention = GetAttention(extra) ?? defaults.Attention,
            FlexPrefill = flex,
            ReusePrefix = true,
        };
        if (generation.Temperature < 0) throw new ArgumentOutOfRangeException(nameof(options), generation.Temperature, "temperature must be ≥ 0");
        if (!(generation.TopP > 0 && generation.TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(options), generation.TopP, "top_p must be in (0, 1]");
        if (generation.TopK < 0) throw new ArgumentOutOfRangeException(nameof(options), generation.TopK, "top_k must be ≥ 0");

        return new ChatRequest
        {
            Turns = turns,
            Tools = tools,
            Generation = generation,
            PromptTokens = tokens,
            WantsJson = wantsJson,
            JsonSchema = schema,
            SingleToolCall = options?.AllowMultipleToolCalls == false,
            UserProgress = extra?.GetValueOrDefault(FlexPrefillPromptExecutionSettings.PrefillProgressKey) as IProgress<PrefillProgress>,
        };
    }

    static List<ChatTurn> AppendToLastUserTurn(List<ChatTurn> turns, string instruction)
    {
        List<ChatTurn> copy = [.. turns];
        if (copy.Count > 0 && copy[^1].Role == TurnRole.User)
            copy[^1] = copy[^1] with { Content = copy[^1].Content + "\n\n" + instruction };
        else
            copy.Add(new ChatTurn(TurnRole.User, instruction));
        return copy;
    }

    static AttentionMode? GetAttention(AdditionalPropertiesDictionary? extra)
    {
        if (extra is null || !extra.TryGetValue("attention", out object? value) || value is null) return null;
        string? text = value switch { string s => s, JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(), AttentionMode m => m.ToString(), _ => null };
        return text?.Trim().ToLowerInvariant() switch
        {
            "dense" => AttentionMode.Dense,
            "flexprefill" => AttentionMode.FlexPrefill,
            _ => throw new ArgumentException($"attention is '{value}'; it must be 'dense' or 'flexprefill'", nameof(extra)),
        };
    }

    static double? GetDouble(AdditionalPropertiesDictionary? extra, string key)
    {
        if (extra is null || !extra.TryGetValue(key, out object? value) || value is null) return null;
        try
        {
            return value switch
            {
                JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
                JsonElement { ValueKind: JsonValueKind.String } e => double.Parse(e.GetString()!, CultureInfo.InvariantCulture),
                string s => double.Parse(s, CultureInfo.InvariantCulture),
                IConvertible c => c.ToDouble(CultureInfo.InvariantCulture),
                _ => throw new FormatException(),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException)
        {
            throw new ArgumentException($"{key} is '{value}'; it must be a number", nameof(extra), e);
        }
    }
}

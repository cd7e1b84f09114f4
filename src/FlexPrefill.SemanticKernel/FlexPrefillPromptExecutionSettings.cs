using System.Text.Json;
using System.Text.Json.Serialization;
using FlexPrefill.Inference.Generation;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// Per-request settings of the FlexPrefill connector. Every property is optional: null falls back to the
/// service defaults (<see cref="FlexPrefillServiceOptions"/>). The JSON names are the snake_case names that Semantic
/// Kernel's settings converter understands, so prompt configs written for other connectors keep working.
/// </summary>
public sealed class FlexPrefillPromptExecutionSettings : PromptExecutionSettings
{
    /// <summary>Key of <see cref="ChatOptions.AdditionalProperties"/> that carries <see cref="PrefillProgress"/>.</summary>
    public const string PrefillProgressKey = "flexprefill_prefill_progress";

    static readonly JsonSerializerOptions s_readOptions = new()
    {
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        PropertyNameCaseInsensitive = true,
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    double? _temperature;
    double? _topP;
    int? _topK;
    long? _seed;
    int? _maxTokens;
    IList<string>? _stopSequences;
    object? _responseFormat;
    double? _gamma;
    double? _tau;
    int? _minBudget;
    string? _attention;
    IProgress<PrefillProgress>? _prefillProgress;

    /// <summary>Sampling temperature; 0 is greedy (the default).</summary>
    [JsonPropertyName("temperature")]
    public double? Temperature { get => _temperature; set { ThrowIfFrozen(); _temperature = value; } }

    /// <summary>Nucleus sampling mass in (0, 1].</summary>
    [JsonPropertyName("top_p")]
    public double? TopP { get => _topP; set { ThrowIfFrozen(); _topP = value; } }

    /// <summary>Keep only the K most likely tokens; 0 disables.</summary>
    [JsonPropertyName("top_k")]
    public int? TopK { get => _topK; set { ThrowIfFrozen(); _topK = value; } }

    /// <summary>Random seed: the same seed and inputs give the same output.</summary>
    [JsonPropertyName("seed")]
    public long? Seed { get => _seed; set { ThrowIfFrozen(); _seed = value; } }

    /// <summary>Most tokens to generate; null uses <see cref="FlexPrefillServiceOptions.MaxOutputTokens"/>.</summary>
    [JsonPropertyName("max_tokens")]
    public int? MaxTokens { get => _maxTokens; set { ThrowIfFrozen(); _maxTokens = value; } }

    /// <summary>Strings that end the reply (the chat template's own end markers are always added).</summary>
    [JsonPropertyName("stop_sequences")]
    public IList<string>? StopSequences { get => _stopSequences; set { ThrowIfFrozen(); _stopSequences = value; } }

    /// <summary>
    /// <c>"text"</c>, <c>"json_object"</c>, or a JSON schema object. JSON asks the model for JSON only and validates
    /// the reply (one corrective retry, then <see cref="JsonResponseFormatException"/>).
    /// </summary>
    [JsonPropertyName("response_format")]
    public object? ResponseFormat { get => _responseFormat; set { ThrowIfFrozen(); _responseFormat = value; } }

    /// <summary>FlexPrefill γ: attention mass the selected blocks must cover, in (0, 1].</summary>
    [JsonPropertyName("flexprefill_gamma")]
    public double? FlexPrefillGamma { get => _gamma; set { ThrowIfFrozen(); _gamma = value; } }

    /// <summary>FlexPrefill τ: JS-distance threshold for the query-aware pattern, in [0, 1].</summary>
    [JsonPropertyName("flexprefill_tau")]
    public double? FlexPrefillTau { get => _tau; set { ThrowIfFrozen(); _tau = value; } }

    /// <summary>FlexPrefill minimum budget in tokens per head.</summary>
    [JsonPropertyName("flexprefill_min_budget")]
    public int? FlexPrefillMinBudget { get => _minBudget; set { ThrowIfFrozen(); _minBudget = value; } }

    /// <summary>Prefill attention for this request: <c>"dense"</c> or <c>"flexprefill"</c>.</summary>
    [JsonPropertyName("attention")]
    public string? Attention { get => _attention; set { ThrowIfFrozen(); _attention = value; } }

    /// <summary>
    /// Receives prefill progress on the inference thread (keep it cheap). Not serialized; it reaches the chat client
    /// through <see cref="ChatOptions.AdditionalProperties"/> under <see cref="PrefillProgressKey"/>.
    /// </summary>
    [JsonIgnore]
    public IProgress<PrefillProgress>? PrefillProgress { get => _prefillProgress; set { ThrowIfFrozen(); _prefillProgress = value; } }

    /// <summary>
    /// Returns <paramref name="executionSettings"/> as FlexPrefill settings: the same instance when it already is one,
    /// otherwise a copy that reads the snake_case keys of its <see cref="PromptExecutionSettings.ExtensionData"/>.
    /// </summary>
    /// <param name="executionSettings">Settings of any connector, or null for defaults.</param>
    /// <exception cref="ArgumentException">A known key has a value of the wrong type.</exception>
    public static FlexPrefillPromptExecutionSettings FromExecutionSettings(PromptExecutionSettings? executionSettings)
    {
        switch (executionSettings)
        {
            case null:
                return new FlexPrefillPromptExecutionSettings();
            case FlexPrefillPromptExecutionSettings settings:
                return settings;
        }

        // The base type keeps unknown keys in ExtensionData; a JSON round trip maps them onto our properties.
        string json = JsonSerializer.Serialize(executionSettings, executionSettings.GetType(), s_readOptions);
        var result = FromJson(json);
        result.ServiceId = executionSettings.ServiceId;
        result.ModelId = executionSettings.ModelId;
        result.FunctionChoiceBehavior = executionSettings.FunctionChoiceBehavior;
        return result;
    }

    /// <summary>Reads settings from a JSON object such as a prompt config's <c>execution_settings</c> entry.</summary>
    /// <param name="json">A JSON object with snake_case keys.</param>
    /// <exception cref="ArgumentException">The JSON is malformed or a key has a value of the wrong type.</exception>
    public static FlexPrefillPromptExecutionSettings FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return JsonSerializer.Deserialize<FlexPrefillPromptExecutionSettings>(json, s_readOptions)
                ?? throw new ArgumentException("execution settings JSON is null", nameof(json));
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"invalid FlexPrefill execution settings: {e.Message}", nameof(json), e);
        }
    }

    /// <inheritdoc/>
    public override PromptExecutionSettings Clone() => new FlexPrefillPromptExecutionSettings
    {
        ServiceId = ServiceId,
        ModelId = ModelId,
        FunctionChoiceBehavior = FunctionChoiceBehavior,
        ExtensionData = ExtensionData is null ? null : new Dictionary<string, object>(ExtensionData),
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        Seed = Seed,
        MaxTokens = MaxTokens,
        StopSequences = StopSequences is null ? null : [.. StopSequences],
        ResponseFormat = ResponseFormat,
        FlexPrefillGamma = FlexPrefillGamma,
        FlexPrefillTau = FlexPrefillTau,
        FlexPrefillMinBudget = FlexPrefillMinBudget,
        Attention = Attention,
        PrefillProgress = PrefillProgress,
    };

    /// <inheritdoc/>
    protected override void PrepareChatOptionsForRequest(ChatOptions options)
    {
        // The JSON round trip that builds ChatOptions drops what JSON cannot hold; put it back.
        if (PrefillProgress is not null)
            (options.AdditionalProperties ??= [])[PrefillProgressKey] = PrefillProgress;
    }
}

using FlexPrefill.Inference.Attention;
using FlexPrefill.Inference.Generation;
using FlexPrefill.Inference.Loading;
using FlexPrefill.Inference.Models;
using FlexPrefill.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using Generator = FlexPrefill.Inference.Generation.Generator;

namespace FlexPrefill.Inference;

/// <summary>
/// A transformer loaded from a Hugging Face folder (config.json, safetensors, tokenizer.json) and served by one
/// inference thread with a bounded queue. Prefill attention is dense or FlexPrefill per request.
/// </summary>
public sealed class LanguageModel : ILanguageModel
{
    readonly InferenceWorker _worker;
    readonly Transformer _model;
    readonly PrefixCache? _prefixCache;
    readonly Generator _generator;
    readonly DenseAttention _dense = new();
    readonly Func<FlexPrefillOptions, IAttentionBackend> _flexPrefill;
    readonly HashSet<int> _eosIds;
    readonly IChatTemplate? _chatTemplate;
    readonly string? _chatTemplateProblem;
    readonly CancellationTokenSource _shutdown = new();
    int _disposed;

    LanguageModel(string modelId, ModelConfig config, ModelLoadOptions options, Func<ScalarType, Device, IWeightSource> weights,
        HfTokenizer? tokenizer = null, string? modelDirectory = null)
    {
        if (options.QueueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(options), options.QueueCapacity, "QueueCapacity must be at least 1");
        if (options.MaxContextTokens is < 2) throw new ArgumentOutOfRangeException(nameof(options), options.MaxContextTokens, "MaxContextTokens must be at least 2");
        ModelId = modelId;
        Config = config;
        Options = options;
        Device device = ParseDevice(options.Device);
        DType = options.DType ?? (device.type == DeviceType.CUDA ? ScalarType.BFloat16 : ScalarType.Float32);
        if (DType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"dtype {DType} is not supported; use Float32, BFloat16 or Float16", nameof(options));
        ContextLength = Math.Min(config.ContextLength, options.MaxContextTokens ?? int.MaxValue);
        Tokenizer = tokenizer;
        _eosIds = [.. config.EosTokenIds, .. tokenizer?.EosIds ?? []];
        _flexPrefill = options.FlexPrefillBackend ?? (o => new FlexPrefillAttention(o));
        (_chatTemplate, _chatTemplateProblem) = FindChatTemplate(modelDirectory, config.ModelType);

        _worker = new InferenceWorker(options.QueueCapacity);
        try
        {
            // Weights are created on the inference thread, like every other tensor of this model; the norm and silu·mul
            // kernels (which hold nothing to free) and the decode attention first, so that nothing needs freeing when a
            // factory throws.
            _model = _worker.Invoke(() =>
            {
                IRmsNormKernel? norm = options.RmsNormKernel?.Invoke();
                ISiluMulKernel? siluMul = options.SiluMulKernel?.Invoke();
                IDecodeAttention decode = options.DecodeAttention?.Invoke() ?? new DenseDecodeAttention();
                return new Transformer(config, weights(DType, device), DType, device)
                {
                    DecodeAttention = decode, RmsNormKernel = norm, SiluMulKernel = siluMul,
                };
            });
        }
        catch
        {
            _worker.Dispose();
            throw;
        }
        _prefixCache = options.PrefixCacheBytes > 0 ? new PrefixCache(options.PrefixCacheBytes) : null;
        _generator = new Generator(_model, _prefixCache);
    }

    /// <summary>
    /// Loads a Hugging Face model folder: config.json (llama, qwen2, mistral), model.safetensors or its sharded index,
    /// and tokenizer.json when present (without it, work in token ids).
    /// </summary>
    /// <exception cref="ModelLoadException">A file is missing or malformed; the message names the file, the tensor and the expectation.</exception>
    public static LanguageModel Load(string modelDirectory, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDirectory);
        if (!System.IO.Directory.Exists(modelDirectory)) throw new ModelLoadException($"{modelDirectory}: model folder not found");
        var config = ModelConfig.Load(Path.Combine(modelDirectory, "config.json"));
        var tokenizer = File.Exists(Path.Combine(modelDirectory, "tokenizer.json")) ? HfTokenizer.Load(modelDirectory) : null;
        var checkpoint = Checkpoint.Open(modelDirectory);
        try
        {
            string id = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory)));
            return new LanguageModel(id, config, options ?? new(), (dtype, device) => new CheckpointWeights(checkpoint, dtype, device), tokenizer, modelDirectory);
        }
        finally
        {
            checkpoint.Dispose();
        }
    }

    /// <summary>A model of <paramref name="config"/>'s shape with seeded random weights (benchmarks, tests), drawn on the
    /// model's device: <paramref name="weights"/> says whether they are plain Gaussian or carry attention structure.</summary>
    public static LanguageModel CreateRandom(ModelConfig config, ModelLoadOptions? options = null, long seed = 0,
        RandomWeightKind weights = RandomWeightKind.Gaussian)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!Enum.IsDefined(weights)) throw new ArgumentOutOfRangeException(nameof(weights), weights, "expected Gaussian or Structured");
        return new($"random-{config.ModelType}", config, options ?? new(), (dtype, device) => weights == RandomWeightKind.Structured
            ? new StructuredWeights(config, seed, dtype, device)
            : new RandomWeights(seed, dtype, device));
    }

    /// <summary>The configuration read from config.json.</summary>
    public ModelConfig Config { get; }

    /// <summary>The folder's tokenizer.json; null when there is none (work in token ids).</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>The options the model was loaded with.</summary>
    public ModelLoadOptions Options { get; }

    /// <summary>Compute dtype of weights and activations.</summary>
    public ScalarType DType { get; }

    /// <inheritdoc />
    public string ModelId { get; }

    /// <inheritdoc />
    public int ContextLength { get; }

    /// <summary>Name of the attention that decode steps run: "dense" (two matmuls) or "native" (libflexprefill's kernel).</summary>
    public string DecodeAttention => _model.DecodeAttention.Name;

    /// <summary>Parameters in the model (tied matrices counted once).</summary>
    public long ParameterCount => _model.named_parameters().Sum(p => p.parameter.NumberOfElements);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">No template is known for this folder (the message says what was looked for).</exception>
    public IChatTemplate ChatTemplate => _chatTemplate ?? throw new InvalidOperationException(_chatTemplateProblem);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The folder has no tokenizer.json.</exception>
    public IReadOnlyList<int> Encode(string text) => (Tokenizer ?? throw NoTokenizer("pass token ids instead of text")).Encode(text);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The folder has no tokenizer.json.</exception>
    public string Decode(IReadOnlyList<int> tokens) => (Tokenizer ?? throw NoTokenizer("its output is token ids only")).Decode(tokens);

    InvalidOperationException NoTokenizer(string advice) => new($"{ModelId} has no tokenizer.json: {advice}");

    /// <inheritdoc />
    public int QueuedRequests => _worker.Waiting;

    /// <inheritdoc />
    public IAsyncEnumerable<GenerationUpdate> GenerateAsync(IReadOnlyList<int> promptTokens, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentNullException.ThrowIfNull(promptTokens);
        ArgumentNullException.ThrowIfNull(options);
        CheckTokens(promptTokens);
        if (options.MaxTokens < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxTokens, "MaxTokens must be at least 1");
        if (promptTokens.Count + options.MaxTokens > ContextLength)
            throw new ContextLengthExceededException(promptTokens.Count, options.MaxTokens, ContextLength);
        if (options.Attention == AttentionMode.FlexPrefill) options.FlexPrefill.Validate();
        int[] prompt = promptTokens.ToArray();
        HashSet<int> eos = EosIds(options);

        var stream = new GenerationStream(cancellationToken, _shutdown.Token);
        stream.CloseIfCancelledWhileQueued(NotStarted(prompt.Length, options));
        try
        {
            _worker.Post(() => RunQueued(stream, prompt, options, eos));
        }
        catch
        {
            stream.Complete();
            throw;
        }
        return stream;
    }

    /// <summary>One request on the inference thread.</summary>
    void RunQueued(GenerationStream stream, int[] prompt, GenerationOptions options, HashSet<int> eos)
    {
        if (!stream.TryStart()) return; // cancelled while queued: its stream is closed already
        Exception? error = null;
        try
        {
            // the backend is made here: a backend may hold tensors, and tensors live on this thread
            var request = new GenerationRequest(prompt, options, Backend(options), eos,
                Tokenizer is null ? null : new TextDecoder(Tokenizer.CreateStreamingDecoder()));
            _generator.Run(request, stream.Write, stream.Token);
        }
        catch (Exception e)
        {
            error = e;
        }
        stream.Complete(error);
    }

    /// <summary>
    /// Float32 logits over the vocabulary at <paramref name="positions"/> of one dense prefill of <paramref name="tokens"/>
    /// (negative positions count from the end). Keys are the positions as given.
    /// </summary>
    public Task<IReadOnlyDictionary<int, float[]>> LogitsAsync(IReadOnlyList<int> tokens, IReadOnlyList<int> positions, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(positions);
        CheckTokens(tokens);
        if (tokens.Count > ContextLength) throw new ContextLengthExceededException(tokens.Count, 0, ContextLength);
        long[] rows = positions.Select(p => (long)(p < 0 ? tokens.Count + p : p)).ToArray();
        for (int i = 0; i < rows.Length; i++)
            if (rows[i] < 0 || rows[i] >= tokens.Count)
                throw new ArgumentOutOfRangeException(nameof(positions), positions[i], $"position {positions[i]} is outside the {tokens.Count} tokens");
        long[] ids = tokens.Select(t => (long)t).ToArray();
        int[] keys = positions.ToArray();

        return _worker.RunAsync<IReadOnlyDictionary<int, float[]>>(() =>
        {
            using var cache = new KvCache(Config, 1, ids.Length, DType, _model.Device);
            using var scope = NewDisposeScope();
            Tensor input = tensor(ids, device: _model.Device).unsqueeze(0);
            Tensor logits = _model.Prefill(input, cache, _dense, tensor(rows, device: _model.Device), cancellationToken: ct); // [1, R, V]
            Tensor cpu = logits[0].cpu();
            var result = new Dictionary<int, float[]>();
            for (int i = 0; i < keys.Length; i++) result[keys[i]] = cpu[i].data<float>().ToArray();
            return result;
        });
    }

    /// <summary>Runs <paramref name="work"/> on the inference thread (tests read TorchSharp's per-thread statistics there).</summary>
    internal Task<T> RunOnInferenceThreadAsync<T>(Func<T> work) => _worker.RunAsync(work, bypassCapacity: true);

    internal PrefixCache? PrefixCache => _prefixCache;

    IAttentionBackend Backend(GenerationOptions options) => options.Attention switch
    {
        AttentionMode.Dense => _dense,
        AttentionMode.FlexPrefill => _flexPrefill(options.FlexPrefill.Validate()),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Attention, "unknown attention mode"),
    };

    static (IChatTemplate?, string?) FindChatTemplate(string? modelDirectory, string modelType)
    {
        if (modelDirectory is null)
            return ChatTemplates.FromTemplateText(null, modelType) is { } byType
                ? (byType, null)
                : (null, $"no chat template is known for model_type \"{modelType}\"");
        try { return (ChatTemplates.ForModel(modelDirectory, modelType), null); }
        catch (ModelLoadException e) { return (null, e.Message); } // token-id use needs no template
    }

    sealed class TextDecoder(StreamingDecoder decoder) : ITokenTextDecoder
    {
        public string Append(int tokenId) => decoder.Append(tokenId);
        public string Flush() => decoder.Flush();
    }

    HashSet<int> EosIds(GenerationOptions options)
    {
        var ids = new HashSet<int>(_eosIds);
        ids.UnionWith(options.StopTokenIds);
        return ids;
    }

    void CheckTokens(IReadOnlyList<int> tokens)
    {
        if (tokens.Count == 0) throw new ArgumentException("the prompt has no tokens", nameof(tokens));
        foreach (int t in tokens)
            if ((uint)t >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id {t} is outside the vocabulary of {Config.VocabSize}");
    }

    static GenerationUpdate NotStarted(int promptTokens, GenerationOptions options) => new("", -1)
    {
        Summary = new GenerationSummary
        {
            PromptTokens = promptTokens,
            CachedPromptTokens = 0,
            CompletionTokens = 0,
            PrefillMilliseconds = 0,
            DecodeTokensPerSecond = 0,
            FinishReason = FinishReason.Cancelled,
            AttentionBackend = options.Attention == AttentionMode.Dense ? "dense" : "flexprefill",
            Tokens = [],
            Text = "",
        },
    };

    static Device ParseDevice(string device)
    {
        if (device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !cuda.is_available())
            throw new ModelLoadException($"device \"{device}\" was asked for but CUDA is not available to TorchSharp " +
                "(build with -p:TorchBackend=cuda, or -p:TorchBackend=external with FLEXPREFILL_LIBTORCH naming a PyTorch install's torch/lib)");
        try { return torch.device(device); }
        catch (Exception e) { throw new ArgumentException($"device \"{device}\" is not a torch device (cpu, cuda, cuda:N)", nameof(device), e); }
    }

    /// <summary>Cancels running and queued requests, stops the inference thread and frees the weights and caches.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _shutdown.Cancel();
        _worker.Invoke(() =>
        {
            _prefixCache?.Dispose();
            (_model.DecodeAttention as IDisposable)?.Dispose();
            _model.Dispose();
            return 0;
        });
        _worker.Dispose();
        _shutdown.Dispose();
    }
}

using System.Collections.Concurrent;
using FlexPrefill.Inference;
using FlexPrefill.Inference.Attention;
using FlexPrefill.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FlexPrefill.SemanticKernel;

/// <summary>
/// Owns the process's one model: loaded on first use (thread-safe, once) from <see cref="FlexPrefillServiceOptions"/>
/// and disposed with the container. A hosted service can warm it up by reading <see cref="Model"/> at start.
/// </summary>
public sealed class FlexPrefillModelHost : IDisposable
{
    readonly Lazy<ILanguageModel> _model;
    volatile bool _disposed;

    /// <summary>Creates the host; nothing is loaded until <see cref="Model"/> is read.</summary>
    /// <param name="options">Validated load options.</param>
    /// <param name="loggerFactory">Logging; null for none.</param>
    public FlexPrefillModelHost(IOptions<FlexPrefillServiceOptions> options, ILoggerFactory? loggerFactory = null)
        : this(options, FlexPrefillModelLoader.Default, loggerFactory)
    {
    }

    internal FlexPrefillModelHost(IOptions<FlexPrefillServiceOptions> options, FlexPrefillModelLoader loader, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loader);
        _model = new Lazy<ILanguageModel>(() =>
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var o = options.Value; // validation runs here when the host did not validate on start
            var logger = loggerFactory?.CreateLogger<FlexPrefillModelHost>();
            logger?.LogInformation("Loading model from {ModelPath} on {Device}", o.ModelPath, o.Device);
            var started = System.Diagnostics.Stopwatch.StartNew();
            var model = loader.Load(o, loggerFactory);
            logger?.LogInformation("Loaded {ModelId} in {Seconds:F1} s: context {Context} tokens, template {Template}",
                model.ModelId, started.Elapsed.TotalSeconds, model.ContextLength, model.ChatTemplate.Name);
            return model;
        }, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The model, loaded on first access.</summary>
    /// <exception cref="ModelLoadException">The folder could not be loaded.</exception>
    /// <exception cref="ObjectDisposedException">The host was disposed.</exception>
    public ILanguageModel Model
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _model.Value;
        }
    }

    /// <summary>Whether the model has been loaded.</summary>
    public bool IsLoaded => _model.IsValueCreated;

    /// <summary>Disposes the model if it was loaded.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_model.IsValueCreated) _model.Value.Dispose();
    }
}

/// <summary>How the host turns options into a model; tests register their own to script the model.</summary>
/// <param name="Load">Loads the model described by the options.</param>
internal sealed record FlexPrefillModelLoader(Func<FlexPrefillServiceOptions, ILoggerFactory?, ILanguageModel> Load)
{
    /// <summary>Loads the folder with the engine (<see cref="LanguageModel.Load"/>).</summary>
    public static FlexPrefillModelLoader Default { get; } = new((options, _) => LanguageModel.Load(options.ModelPath, ToLoadOptions(options)));

    internal static ModelLoadOptions ToLoadOptions(FlexPrefillServiceOptions o) => new()
    {
        Device = o.Device,
        DType = o.DType switch
        {
            null => null,
            "bfloat16" => TorchSharp.torch.ScalarType.BFloat16,
            "float16" => TorchSharp.torch.ScalarType.Float16,
            "float32" => TorchSharp.torch.ScalarType.Float32,
            _ => throw new ArgumentException($"{FlexPrefillServiceOptions.SectionName}:DType is '{o.DType}'; it must be 'bfloat16', 'float16' or 'float32'"),
        },
        MaxContextTokens = o.MaxContextTokens,
        QueueCapacity = o.QueueCapacity,
        PrefixCacheBytes = o.PrefixCacheBytes,
        FlexPrefillBackend = o.NativeKernels && o.Device.StartsWith("cuda", StringComparison.Ordinal) ? NativeBackends(o.NativeLibraryPath) : null,
        DecodeAttention = o.NativeKernels && o.Device.StartsWith("cuda", StringComparison.Ordinal)
            ? () => NativeDecodeAttention.CreateOrManaged(o.NativeLibraryPath)
            : null,
        RmsNormKernel = o.NativeKernels && o.Device.StartsWith("cuda", StringComparison.Ordinal)
            ? () => NativeRmsNorm.CreateIfAvailable(o.NativeLibraryPath)
            : null,
    };

    /// <summary>
    /// The engine asks for a backend per request; the native one holds a device workspace, so one is kept per distinct
    /// FlexPrefill setting (a handful in practice; beyond 8 they are made per request).
    /// </summary>
    static Func<FlexPrefillOptions, IAttentionBackend> NativeBackends(string? libraryPath)
    {
        var backends = new ConcurrentDictionary<FlexPrefillOptions, IAttentionBackend>();
        return options => backends.TryGetValue(options, out var backend) ? backend
            : backends.Count < 8 ? backends.GetOrAdd(options, o => NativeFlexPrefillAttention.CreateOrManaged(o, libraryPath))
            : NativeFlexPrefillAttention.CreateOrManaged(options, libraryPath);
    }
}

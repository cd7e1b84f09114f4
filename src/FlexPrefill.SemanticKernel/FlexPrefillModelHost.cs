using FlexPrefill.Inference;
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
    /// <summary>Loads with the engine. Until the engine's <c>LanguageModel</c> is on main this refuses clearly.</summary>
    public static FlexPrefillModelLoader Default { get; } = new((options, _) =>
        throw new ModelLoadException($"cannot load '{options.ModelPath}': this build has no model loader (FlexPrefill.Inference.LanguageModel is missing)"));
}

namespace FlexPrefill.Samples.HostedWorker;

/// <summary>Where the model is in its life: the warm-up service moves it forward, the worker and health check read it.</summary>
public enum ModelStatus
{
    /// <summary>Not started.</summary>
    NotLoaded,
    /// <summary>Loading and warming up.</summary>
    Loading,
    /// <summary>Warmed up; jobs can run.</summary>
    Ready,
    /// <summary>Loading or warm-up failed; see <see cref="ModelState.Error"/>.</summary>
    Failed,
}

/// <summary>The model's status, shared by the warm-up service, the job worker and the health check.</summary>
public sealed class ModelState
{
    readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Current status.</summary>
    public ModelStatus Status { get; private set; }

    /// <summary>Why loading failed.</summary>
    public string? Error { get; private set; }

    /// <summary>How long loading plus warm-up took.</summary>
    public TimeSpan? LoadTime { get; private set; }

    internal void MarkLoading() => Status = ModelStatus.Loading;

    internal void MarkReady(TimeSpan loadTime)
    {
        LoadTime = loadTime;
        Status = ModelStatus.Ready;
        _ready.TrySetResult();
    }

    internal void MarkFailed(Exception error)
    {
        Error = error.Message;
        Status = ModelStatus.Failed;
        _ready.TrySetException(new InvalidOperationException($"the model failed to load: {error.Message}", error));
    }

    /// <summary>Completes when the model is ready; throws if it failed to load.</summary>
    public Task WaitUntilReadyAsync(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);
}

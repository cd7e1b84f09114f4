using System.Collections.Concurrent;
using TorchSharp;

namespace FlexPrefill.Inference.Generation;

/// <summary>
/// The one thread that touches tensors. Work runs in arrival order; at most <c>capacity</c> requests wait (the running
/// one excluded). TorchSharp's dispose scopes and autograd state are per thread, so keeping all tensor work here keeps
/// both simple.
/// </summary>
internal sealed class InferenceWorker : IDisposable
{
    readonly BlockingCollection<Action> _queue = new();
    readonly Thread _thread;
    readonly int _capacity;
    int _waiting;

    public InferenceWorker(int capacity, string name = "flexprefill-inference")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Work items waiting to run.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>True on the inference thread.</summary>
    public bool IsCurrentThread => Thread.CurrentThread == _thread;

    /// <summary>Queues <paramref name="work"/>; throws <see cref="InferenceQueueFullException"/> when the queue is full.</summary>
    public void Post(Action work)
    {
        if (Interlocked.Increment(ref _waiting) > _capacity)
        {
            Interlocked.Decrement(ref _waiting);
            throw new InferenceQueueFullException(_capacity);
        }
        try { _queue.Add(work); }
        catch (InvalidOperationException)
        {
            Interlocked.Decrement(ref _waiting);
            throw new ObjectDisposedException("LanguageModel");
        }
    }

    /// <summary>Runs <paramref name="work"/> on the inference thread and returns its result (continuations run elsewhere).</summary>
    public Task<T> RunAsync<T>(Func<T> work, bool bypassCapacity = false)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Run()
        {
            try { done.TrySetResult(work()); }
            catch (OperationCanceledException e) { done.TrySetCanceled(e.CancellationToken); }
            catch (Exception e) { done.TrySetException(e); }
        }
        if (bypassCapacity)
        {
            Interlocked.Increment(ref _waiting);
            _queue.Add(Run);
        }
        else
        {
            Post(Run);
        }
        return done.Task;
    }

    /// <summary>Runs <paramref name="work"/> on the inference thread and waits for it (loading, disposal).</summary>
    public T Invoke<T>(Func<T> work) => IsCurrentThread ? work() : RunAsync(work, bypassCapacity: true).GetAwaiter().GetResult();

    void Loop()
    {
        // Inference only, on this thread: no autograd graphs, and every op skips the dispatcher's autograd and
        // view-tracking layers (a sixth of a small decode layer's CPU time, docs/benchmarks.md). Tensors made here are
        // inference tensors, which is all they ever need to be: they are not used on other threads.
        using var inference = torch.inference_mode();
        foreach (var work in _queue.GetConsumingEnumerable())
        {
            Interlocked.Decrement(ref _waiting);
            work(); // every item handles its own exceptions
        }
    }

    /// <summary>Lets queued work finish, then stops the thread.</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        if (!IsCurrentThread) _thread.Join();
        _queue.Dispose();
    }
}

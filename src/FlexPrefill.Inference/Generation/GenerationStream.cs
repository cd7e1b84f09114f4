using System.Threading.Channels;

namespace FlexPrefill.Inference.Generation;

/// <summary>
/// The reader's side of one request: updates arrive through an unbounded channel (at most MaxTokens + 1 of them).
/// Disposing the enumerator (leaving an await foreach early) cancels the request, so generation stops with its reader.
/// </summary>
internal sealed class GenerationStream : IAsyncEnumerable<GenerationUpdate>
{
    readonly Channel<GenerationUpdate> _channel = Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    readonly CancellationTokenSource _cancel;
    CancellationTokenRegistration _whileQueued;
    int _enumerated;
    int _state; // Queued, Running, Finished

    const int Queued = 0, Running = 1, Finished = 2;

    public GenerationStream(CancellationToken cancellationToken, CancellationToken shutdown)
    {
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, shutdown);
    }

    /// <summary>Cancelled by the caller's token or by the reader leaving.</summary>
    public CancellationToken Token => _cancel.Token;

    public void Write(GenerationUpdate update) => _channel.Writer.TryWrite(update);

    /// <summary>
    /// A cancellation that arrives while the request still waits in the queue ends the stream at once with
    /// <paramref name="closing"/>, instead of when the inference thread reaches the request.
    /// </summary>
    public void CloseIfCancelledWhileQueued(GenerationUpdate closing)
    {
        _whileQueued = _cancel.Token.Register(() =>
        {
            if (Interlocked.CompareExchange(ref _state, Finished, Queued) != Queued) return;
            _channel.Writer.TryWrite(closing);
            _channel.Writer.TryComplete();
        });
    }

    /// <summary>Called by the inference thread when it reaches the request: false when it was cancelled while queued.</summary>
    public bool TryStart()
    {
        if (Interlocked.CompareExchange(ref _state, Running, Queued) == Queued) return true;
        Release();
        return false;
    }

    /// <summary>Ends the stream (with <paramref name="error"/> for the reader to see) and releases the token's registrations.</summary>
    public void Complete(Exception? error = null)
    {
        Volatile.Write(ref _state, Finished);
        _channel.Writer.TryComplete(error);
        Release();
    }

    void Release()
    {
        _whileQueued.Dispose();
        _cancel.Dispose();
    }

    static void Cancel(CancellationTokenSource source)
    {
        try { source.Cancel(); }
        catch (ObjectDisposedException) { } // the request already finished
    }

    public IAsyncEnumerator<GenerationUpdate> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _enumerated, 1) != 0)
            throw new InvalidOperationException("a generation stream can be enumerated once");
        return Read(cancellationToken);
    }

    async IAsyncEnumerator<GenerationUpdate> Read(CancellationToken cancellationToken)
    {
        using var registration = cancellationToken.Register(static s => Cancel((CancellationTokenSource)s!), _cancel);
        try
        {
            // Not reading with the token: after a cancellation the worker still sends the closing update with the summary.
            while (await _channel.Reader.WaitToReadAsync().ConfigureAwait(false))
                while (_channel.Reader.TryRead(out var update))
                    yield return update;
        }
        finally
        {
            if (!_channel.Reader.Completion.IsCompleted) Cancel(_cancel);
        }
    }
}

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
    int _enumerated;

    public GenerationStream(CancellationToken cancellationToken, CancellationToken shutdown)
    {
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, shutdown);
    }

    /// <summary>Cancelled by the caller's token or by the reader leaving.</summary>
    public CancellationToken Token => _cancel.Token;

    public void Write(GenerationUpdate update) => _channel.Writer.TryWrite(update);

    /// <summary>Ends the stream (with <paramref name="error"/> for the reader to see) and releases the token's registration.</summary>
    public void Complete(Exception? error = null)
    {
        _channel.Writer.TryComplete(error);
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

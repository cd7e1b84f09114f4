namespace FlexPrefill.Native;

/// <summary>Status codes of libflexprefill (include/flexprefill.h).</summary>
public enum FlexPrefillStatus
{
    /// <summary>Success.</summary>
    Ok = 0,
    /// <summary>A parameter is out of range; the message names it.</summary>
    InvalidArgument = 1,
    /// <summary>Valid, but not implemented natively (head dim, block size, batch); the managed path can run it.</summary>
    Unsupported = 2,
    /// <summary>The workspace passed is smaller than the call needs.</summary>
    WorkspaceTooSmall = 3,
    /// <summary>A CUDA call failed.</summary>
    Cuda = 4,
    /// <summary>The library was built without CUDA, or no device is visible.</summary>
    NoCuda = 5,
}

/// <summary>A failed libflexprefill call: the status and the library's own message (with its file:line).</summary>
public sealed class FlexPrefillException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="status">The native status.</param>
    /// <param name="message">What went wrong.</param>
    public FlexPrefillException(FlexPrefillStatus status, string message) : base(message) => Status = status;

    /// <summary>Creates the exception for a failure before any native call (the library cannot be loaded).</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="inner">The loader's exception.</param>
    public FlexPrefillException(string message, Exception? inner) : base(message, inner) => Status = FlexPrefillStatus.NoCuda;

    /// <summary>The native status.</summary>
    public FlexPrefillStatus Status { get; }
}

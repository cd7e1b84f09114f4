using System.Reflection;
using System.Runtime.InteropServices;

namespace FlexPrefill.Native;

/// <summary>
/// Finds and loads libflexprefill once per process: an explicit path, else the <c>FLEXPREFILL_NATIVE</c> environment
/// variable, else <c>libflexprefill.so</c> beside the application, else the system's library search. Every P/Invoke of
/// this assembly resolves "flexprefill" to the loaded handle.
/// </summary>
public static class NativeLibraryLoader
{
    /// <summary>The environment variable naming the library file.</summary>
    public const string EnvironmentVariable = "FLEXPREFILL_NATIVE";

    static readonly object Gate = new();
    static nint _handle;
    static string? _loadedFrom;
    static bool? _emulated;

    static NativeLibraryLoader() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraryLoader).Assembly, Resolve);

    /// <summary>Where the library was loaded from; null before the first successful <see cref="Load"/>.</summary>
    public static string? LoadedFrom
    {
        get { lock (Gate) return _loadedFrom; }
    }

    /// <summary>
    /// Loads the library (the first call wins; later calls return the same path) and checks that its structs match
    /// this binding.
    /// </summary>
    /// <param name="path">A library file; null to use FLEXPREFILL_NATIVE or the default search.</param>
    /// <returns>The path or name the library was loaded from.</returns>
    /// <exception cref="FlexPrefillException">The library is missing, cannot be loaded, or does not match this binding.</exception>
    public static string Load(string? path = null)
    {
        lock (Gate)
        {
            if (_handle != 0)
            {
                if (path is not null && !SameFile(path, _loadedFrom!))
                    throw new FlexPrefillException($"libflexprefill is already loaded from '{_loadedFrom}'; cannot also load '{path}'", null);
                return _loadedFrom!;
            }
            var (candidate, origin) = Locate(path);
            if (origin is not null && !File.Exists(candidate))
                throw new FlexPrefillException($"libflexprefill not found at '{candidate}' ({origin}); build it with " +
                    "'cmake -S native -B native/build && cmake --build native/build' or point " + EnvironmentVariable + " at libflexprefill.so", null);
            nint handle;
            try
            {
                handle = NativeLibrary.Load(candidate);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                throw new FlexPrefillException($"libflexprefill could not be loaded from '{candidate}'" +
                    (origin is null ? $" (set {EnvironmentVariable} to its path)" : $" ({origin})") + $": {e.Message}", e);
            }
            CheckAbi(handle, candidate);
            _handle = handle;
            _loadedFrom = candidate;
            return candidate;
        }
    }

    /// <summary>
    /// True when the library loads and sees a CUDA device: the probe for choosing the native backend automatically.
    /// Never throws.
    /// </summary>
    /// <param name="path">As for <see cref="Load"/>.</param>
    public static bool IsAvailable(string? path = null)
    {
        try
        {
            Load(path);
            return NativeMethods.CudaAvailable() == 1;
        }
        catch (FlexPrefillException)
        {
            return false;
        }
    }

    /// <summary>The library's version string, e.g. "0.1.0 (cuda sm_90a,sm_80)".</summary>
    public static string Version
    {
        get
        {
            Load();
            return Marshal.PtrToStringUTF8(NativeMethods.Version()) ?? "";
        }
    }

    /// <summary>
    /// True when the loaded library is libflexprefill_emu (the kernels on native/emu's CPU emulator, for tests): its
    /// "device" memory is host memory, so it takes CPU tensors.
    /// </summary>
    public static bool IsEmulated
    {
        get
        {
            Load();
            lock (Gate) return _emulated ??= Version.Contains("emulated", StringComparison.Ordinal);
        }
    }

    static (string Candidate, string? Origin) Locate(string? path)
    {
        if (!string.IsNullOrWhiteSpace(path)) return (Path.GetFullPath(path), "the configured path");
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return (Path.GetFullPath(env), EnvironmentVariable);
        var beside = Path.Combine(AppContext.BaseDirectory, "libflexprefill.so");
        return File.Exists(beside) ? (beside, "beside the application") : ("libflexprefill.so", null);
    }

    static void CheckAbi(nint handle, string from)
    {
        if (!NativeLibrary.TryGetExport(handle, "flexprefill_abi_sizes", out var export))
            throw new FlexPrefillException($"'{from}' is not libflexprefill (no flexprefill_abi_sizes)", null);
        int paramsBytes, headBytes;
        unsafe
        {
            ((delegate* unmanaged<int*, int*, void>)export)(&paramsBytes, &headBytes);
        }
        if (paramsBytes != Marshal.SizeOf<NativeParams>() || headBytes != Marshal.SizeOf<NativeHeadInfo>())
            throw new FlexPrefillException($"'{from}' has flexprefill_params of {paramsBytes} bytes and flexprefill_head_info of " +
                $"{headBytes}; this binding expects {Marshal.SizeOf<NativeParams>()} and {Marshal.SizeOf<NativeHeadInfo>()}: rebuild one of them", null);
    }

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != NativeMethods.Library) return 0;
        Load();
        return _handle;
    }

    static bool SameFile(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
}

using FlexPrefill.Native;
using TorchSharp;

namespace FlexPrefill.Native.Tests;

/// <summary>Finds the libflexprefill these tests load: FLEXPREFILL_NATIVE, else native/build*/ of the repository.</summary>
static class TestLibrary
{
    static readonly Lazy<string?> Found = new(() =>
    {
        var env = Environment.GetEnvironmentVariable(NativeLibraryLoader.EnvironmentVariable);
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            foreach (var build in new[] { "build-gpu", "build", "build-test" })
            {
                var candidate = Path.Combine(dir.FullName, "native", build, "libflexprefill.so");
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    });

    /// <summary>The library path, or skips the test saying how to build it.</summary>
    public static string PathOrSkip()
    {
        if (Found.Value is null)
            Assert.Skip("libflexprefill.so is not built (cmake -S native -B native/build-test && cmake --build native/build-test), " +
                        "or FLEXPREFILL_NATIVE names a missing file");
        return Found.Value!;
    }

    /// <summary>The library path on a machine with CUDA (libtorch and libflexprefill both see a device), or skips.</summary>
    public static string GpuPathOrSkip()
    {
        var path = PathOrSkip();
        if (!torch.cuda.is_available()) Assert.Skip("no CUDA device visible to libtorch (TorchSharp-cpu or no GPU): GPU test skipped");
        if (!NativeLibraryLoader.IsAvailable(path)) Assert.Skip($"libflexprefill at {path} sees no CUDA device ({NativeLibraryLoader.Version})");
        return path;
    }
}

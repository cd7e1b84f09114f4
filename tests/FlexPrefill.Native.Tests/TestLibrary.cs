using FlexPrefill.Native;
using TorchSharp;

namespace FlexPrefill.Native.Tests;

/// <summary>
/// Finds the libflexprefill these tests load: FLEXPREFILL_NATIVE, else native/build*/ of the repository. Without a
/// CUDA libtorch the emulated library (libflexprefill_emu.so: the same kernels on native/emu's CPU emulator, CPU
/// tensors) is preferred, so the end-to-end tests run on any machine.
/// </summary>
static class TestLibrary
{
    static readonly Lazy<string?> Found = new(() =>
    {
        var env = Environment.GetEnvironmentVariable(NativeLibraryLoader.EnvironmentVariable);
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
        var names = torch.cuda.is_available()
            ? new[] { "libflexprefill.so" }
            : new[] { "libflexprefill_emu.so", "libflexprefill.so" };
        foreach (var name in names)
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                foreach (var build in new[] { "build-gpu", "build", "build-test" })
                {
                    var candidate = Path.Combine(dir.FullName, "native", build, name);
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

    /// <summary>
    /// The library and the device its kernels run on: CUDA with the real library and a CUDA libtorch, the CPU with the
    /// emulated library; otherwise skips, saying why.
    /// </summary>
    public static (string Path, torch.Device Device, bool Emulated) KernelsOrSkip()
    {
        var path = PathOrSkip();
        NativeLibraryLoader.Load(path);
        if (NativeLibraryLoader.IsEmulated) return (path, torch.CPU, true);
        if (!torch.cuda.is_available())
            Assert.Skip("no CUDA device visible to libtorch (TorchSharp-cpu or no GPU) and no libflexprefill_emu.so: kernel test skipped");
        if (!NativeLibraryLoader.IsAvailable(path)) Assert.Skip($"libflexprefill at {path} sees no CUDA device ({NativeLibraryLoader.Version})");
        return (path, torch.CUDA, false);
    }
}

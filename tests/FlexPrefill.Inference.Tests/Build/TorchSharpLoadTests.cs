using System.Runtime.InteropServices;
using FlexPrefill.Build;
using TorchSharp;

namespace FlexPrefill.Inference.Tests.Build;

public class TorchSharpLoadTests
{
    static string NuGetCacheLibrary()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    static string OutputLibrary()
    {
        string copy = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(copy)) copy = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(copy), "libLibTorchSharp.so is not in the test output");
        return copy;
    }

    [Fact]
    public void The_built_TorchSharp_runs_a_tensor_operation()
    {
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = a.matmul(a.t());
        Assert.Equal(50f, b[1, 1].item<float>()); // [3,4,5]·[3,4,5]
    }

    [Fact]
    public void The_output_copy_of_LibTorchSharp_has_its_GLIBCXX_3_4_32_requirement_weakened()
    {
        string copy = OutputLibrary();
        string scratch = Path.Combine(Path.GetTempPath(), $"elfcheck-{Guid.NewGuid():N}.so");
        File.Copy(copy, scratch);
        try
        {
            // Patching an already patched file changes nothing: the build did it.
            Assert.Equal(ElfVersionPatcher.Result.AlreadyWeak, ElfVersionPatcher.MakeVersionWeak(scratch, "GLIBCXX_3.4.32"));
        }
        finally { File.Delete(scratch); }
    }

    [Fact]
    public void The_unpatched_library_needs_the_patch_and_the_patch_is_idempotent()
    {
        string original = NuGetCacheLibrary();
        if (!File.Exists(original)) Assert.Skip($"TorchSharp's NuGet cache copy is not at {original}");
        string scratch = Path.Combine(Path.GetTempPath(), $"elfcheck-{Guid.NewGuid():N}.so");
        File.Copy(original, scratch);
        try
        {
            byte[] before = File.ReadAllBytes(scratch);
            Assert.Equal(ElfVersionPatcher.Result.Patched, ElfVersionPatcher.MakeVersionWeak(scratch, "GLIBCXX_3.4.32"));
            byte[] after = File.ReadAllBytes(scratch);
            Assert.Equal(before.Length, after.Length);
            int changed = before.Zip(after).Count(p => p.First != p.Second);
            Assert.Equal(1, changed); // one flags byte
            Assert.Equal(ElfVersionPatcher.Result.AlreadyWeak, ElfVersionPatcher.MakeVersionWeak(scratch, "GLIBCXX_3.4.32"));
            Assert.Equal(ElfVersionPatcher.Result.NotRequired, ElfVersionPatcher.MakeVersionWeak(scratch, "GLIBCXX_9.9.99"));
        }
        finally { File.Delete(scratch); }
    }

    [Fact]
    public void On_a_system_libstdcxx_without_GLIBCXX_3_4_32_the_unpatched_library_fails_to_load()
    {
        if (!OperatingSystem.IsLinux()) Assert.Skip("ELF loading is a Linux matter");
        string original = NuGetCacheLibrary();
        if (!File.Exists(original)) Assert.Skip($"TorchSharp's NuGet cache copy is not at {original}");
        if (SystemLibstdcxxHas("GLIBCXX_3.4.32")) Assert.Skip("this system's libstdc++ has GLIBCXX_3.4.32: the patch is not needed here");
        // Beside the output's libtorch.so, so that only the version requirement can stop the unpatched copy.
        string nativeDir = Path.GetDirectoryName(OutputLibrary())!;
        string unpatched = Path.Combine(nativeDir, $"libLibTorchSharp-unpatched-{Guid.NewGuid():N}.so");
        File.Copy(original, unpatched);
        try
        {
            var ex = Assert.ThrowsAny<DllNotFoundException>(() => NativeLibrary.Load(unpatched));
            Assert.Contains("GLIBCXX_3.4.32", ex.Message);
        }
        finally { File.Delete(unpatched); }
    }

    static bool SystemLibstdcxxHas(string version)
    {
        foreach (var dir in new[] { "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib" })
        {
            string path = Path.Combine(dir, "libstdc++.so.6");
            if (File.Exists(path))
                return File.ReadAllText(path, System.Text.Encoding.Latin1).Contains(version + "\0", StringComparison.Ordinal);
        }
        return false;
    }
}

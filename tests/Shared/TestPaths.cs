namespace FlexPrefill.Tests.Shared;

/// <summary>Where a test finds the checkout and the fetched data, also when it runs as a published executable away
/// from the checkout (the GPU machine): FLEXPREFILL_REPO and FLEXPREFILL_DATA then say where they are.</summary>
static class TestPaths
{
    static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FlexPrefill.SemanticKernel.sln"))) return dir.FullName;
        if (Environment.GetEnvironmentVariable("FLEXPREFILL_REPO") is { Length: > 0 } repo) return repo;
        throw new InvalidOperationException("repository root (FlexPrefill.SemanticKernel.sln) not found above " + AppContext.BaseDirectory + "; set FLEXPREFILL_REPO");
    });

    /// <summary>The checkout's root: the folder with the solution file above the test binaries, else FLEXPREFILL_REPO.</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>FLEXPREFILL_DATA, else the checkout's .cache/data (eng/fetch-data.sh).</summary>
    public static string DataDirectory =>
        Environment.GetEnvironmentVariable("FLEXPREFILL_DATA") is { Length: > 0 } data ? data : Path.Combine(RepositoryRoot, ".cache", "data");
}

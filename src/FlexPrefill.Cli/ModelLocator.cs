namespace FlexPrefill.Cli;

/// <summary>Finds the model folder: the one given with --model, else the embedded default model.</summary>
static class ModelLocator
{
    /// <summary>The default model's folder relative to the executable (copied there at build) and to the repository root.</summary>
    public const string DefaultModelPath = "models/default";

    /// <summary>Returns <paramref name="given"/>'s full path, or the first default-model folder that holds a config.json.</summary>
    /// <exception cref="UsageException">No --model and no default model found; the message names every path tried.</exception>
    public static string Resolve(DirectoryInfo? given)
    {
        if (given is not null)
            return given.FullName;
        var tried = Candidates().ToList();
        foreach (var candidate in tried)
        {
            if (File.Exists(Path.Combine(candidate, "config.json")))
                return candidate;
        }
        throw new UsageException($"no --model given and no default model found (tried {string.Join(", ", tried)}); pass --model DIR");
    }

    static IEnumerable<string> Candidates()
    {
        var seen = new HashSet<string>();
        var beside = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, DefaultModelPath));
        if (seen.Add(beside)) yield return beside;
        // Running from a checkout (dotnet run, test binaries): walk up to the repository root.
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            var root = FindRepositoryRoot(start);
            if (root is null) continue;
            var inRepo = Path.GetFullPath(Path.Combine(root, DefaultModelPath));
            if (seen.Add(inRepo)) yield return inRepo;
        }
    }

    static string? FindRepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FlexPrefill.SemanticKernel.sln")))
                return dir.FullName;
        }
        return null;
    }
}

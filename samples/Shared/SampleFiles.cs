namespace FlexPrefill.Samples;

/// <summary>Finds the repository's bundled files (models/default, samples/data) from wherever a sample runs.</summary>
public static class SampleFiles
{
    /// <summary>The default model folder, relative to the repository root.</summary>
    public const string DefaultModel = "models/default";

    /// <summary>The bundled long document, relative to the repository root.</summary>
    public const string DefaultDocument = "samples/data/moby-dick-excerpt.txt";

    /// <summary>The question the bundled document answers (its one inserted needle sentence).</summary>
    public const string DefaultQuestion = "What is the special magic number for ocean-sailor?";

    /// <summary>The answer to <see cref="DefaultQuestion"/>.</summary>
    public const string DefaultAnswer = "7302529";

    /// <summary>
    /// <paramref name="relativePath"/> under the current directory or the nearest parent that has it, then the same
    /// from the program's own folder (for a published or `dotnet run` build); null when none has it.
    /// </summary>
    public static string? Find(string relativePath)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relativePath);
                if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
            }
        }
        return null;
    }
}

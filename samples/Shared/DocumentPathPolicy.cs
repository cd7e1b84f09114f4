namespace FlexPrefill.Samples;

/// <summary>
/// Which document files may be read: only files inside the configured folders, after resolving "..", relative paths
/// and symbolic links. A relative path is taken relative to the first folder.
/// </summary>
public sealed class DocumentPathPolicy
{
    readonly string[] _roots;

    /// <summary>Allows the files under <paramref name="allowedFolders"/> (at least one).</summary>
    public DocumentPathPolicy(IEnumerable<string> allowedFolders)
    {
        _roots = [.. allowedFolders.Select(f => WithSeparator(Path.GetFullPath(f)))];
        if (_roots.Length == 0) throw new ArgumentException("at least one document folder is needed", nameof(allowedFolders));
    }

    /// <summary>The allowed folders, absolute.</summary>
    public IReadOnlyList<string> Folders => _roots;

    /// <summary>
    /// The absolute path of an allowed, existing file, or an error naming why <paramref name="path"/> is refused.
    /// </summary>
    public bool TryResolve(string path, out string fullPath, out string error)
    {
        fullPath = "";
        if (string.IsNullOrWhiteSpace(path)) { error = "the document path is empty"; return false; }
        string candidate = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(_roots[0], path));
        if (!IsInside(candidate))
        {
            error = $"document path '{path}' is outside the allowed folders ({string.Join(", ", _roots)})";
            return false;
        }
        var file = new FileInfo(candidate);
        if (!file.Exists) { error = $"document '{path}' does not exist"; return false; }
        // A link inside an allowed folder must not lead out of it.
        if (file.LinkTarget is not null)
        {
            var target = file.ResolveLinkTarget(returnFinalTarget: true);
            if (target is null || !target.Exists) { error = $"document '{path}' is a broken link"; return false; }
            if (!IsInside(target.FullName))
            {
                error = $"document path '{path}' links to '{target.FullName}', outside the allowed folders";
                return false;
            }
        }
        fullPath = candidate;
        error = "";
        return true;
    }

    bool IsInside(string fullPath) => _roots.Any(r => fullPath.StartsWith(r, StringComparison.Ordinal));

    static string WithSeparator(string folder) =>
        folder.EndsWith(Path.DirectorySeparatorChar) ? folder : folder + Path.DirectorySeparatorChar;
}

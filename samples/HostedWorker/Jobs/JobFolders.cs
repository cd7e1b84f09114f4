using System.Text.Json;
using Microsoft.Extensions.Options;

namespace FlexPrefill.Samples.HostedWorker.Jobs;

/// <summary>
/// The job folders as a durable queue. A job file moves inbox → processing → (result in outbox | rejected); each move
/// is a rename within one file system, so a job is always in exactly one folder, and a crash leaves it in processing,
/// where the next start finds it. Results and error files are written to a temp file and renamed, so a reader never
/// sees half a file.
/// </summary>
public sealed class JobFolders(IOptions<WorkerOptions> options)
{
    readonly WorkerOptions _o = options.Value;

    /// <summary>Serialisation of results and error files: snake_case, indented.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        // Files, not HTML: keep quotes and non-ASCII text readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Creates the four folders if they are missing.</summary>
    public void EnsureCreated()
    {
        foreach (var folder in _o.JobFolders) Directory.CreateDirectory(folder);
    }

    /// <summary>Jobs waiting in the inbox, oldest first. Hidden files ('.name') are producers' temp files.</summary>
    public IReadOnlyList<string> Pending() => Jobs(_o.InboxFolder);

    /// <summary>Jobs left in processing by a run that did not finish them.</summary>
    public IReadOnlyList<string> Interrupted() => Jobs(_o.ProcessingFolder);

    /// <summary>Jobs in the inbox.</summary>
    public int InboxCount => Pending().Count;

    /// <summary>Jobs in processing.</summary>
    public int ProcessingCount => Interrupted().Count;

    /// <summary>Moves a job from the inbox to processing; false if it vanished or a job of that name is already running.</summary>
    public bool TryClaim(string inboxPath, out string processingPath)
    {
        processingPath = Path.Combine(_o.ProcessingFolder, Path.GetFileName(inboxPath));
        try
        {
            File.Move(inboxPath, processingPath, overwrite: false);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Writes the result to the outbox, then removes the job from processing.</summary>
    public string Complete(string processingPath, JobResult result)
    {
        string path = Path.Combine(_o.OutboxFolder, $"{Id(processingPath)}.result.json");
        WriteAtomically(path, JsonSerializer.Serialize(result, Json));
        File.Delete(processingPath);
        return path;
    }

    /// <summary>Moves the job to the rejected folder beside an error file that lists what was wrong.</summary>
    public string Reject(string processingPath, IReadOnlyList<string> errors)
    {
        string id = Id(processingPath);
        string errorPath = Path.Combine(_o.RejectedFolder, $"{id}.error.json");
        WriteAtomically(errorPath, JsonSerializer.Serialize(new JobError(id, errors, DateTimeOffset.UtcNow), Json));
        File.Move(processingPath, Path.Combine(_o.RejectedFolder, Path.GetFileName(processingPath)), overwrite: true);
        return errorPath;
    }

    /// <summary>Puts an unfinished job back in the inbox (shutdown), under a new name if the inbox has one like it.</summary>
    public string ReturnToInbox(string processingPath)
    {
        string name = Path.GetFileName(processingPath);
        string target = Path.Combine(_o.InboxFolder, name);
        for (int n = 1; File.Exists(target); n++)
            target = Path.Combine(_o.InboxFolder, $"{Path.GetFileNameWithoutExtension(name)}.returned-{n}.json");
        File.Move(processingPath, target, overwrite: false);
        return target;
    }

    /// <summary>Writes a temp file in the target's folder, flushes it to disk, then renames it over the target.</summary>
    public static void WriteAtomically(string path, string content)
    {
        string temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(content);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>The job id: the file name without ".json".</summary>
    public static string Id(string jobPath) => Path.GetFileNameWithoutExtension(jobPath);

    static IReadOnlyList<string> Jobs(string folder) =>
        Directory.Exists(folder)
            ? new DirectoryInfo(folder).EnumerateFiles("*.json")
                .Where(f => !f.Name.StartsWith('.'))
                .OrderBy(f => f.LastWriteTimeUtc).ThenBy(f => f.Name, StringComparer.Ordinal)
                .Select(f => f.FullName).ToArray()
            : [];
}

/// <summary>The error file written beside a rejected job.</summary>
/// <param name="Id">Job id.</param>
/// <param name="Errors">What was wrong, one problem per entry.</param>
/// <param name="RejectedAt">When.</param>
public sealed record JobError(string Id, IReadOnlyList<string> Errors, DateTimeOffset RejectedAt);

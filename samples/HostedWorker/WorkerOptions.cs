using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FlexPrefill.Samples.HostedWorker;

/// <summary>The worker's settings (section "Worker" of appsettings.json). Relative folders: see <see cref="WorkerServices.AddJobWorker"/>.</summary>
public sealed class WorkerOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "Worker";

    /// <summary>Where producers drop job files (write them as a temp name starting with '.', then rename to *.json).</summary>
    [Required] public string InboxFolder { get; set; } = "jobs/inbox";

    /// <summary>Where a job lives while it runs; whatever is found here on start runs again.</summary>
    [Required] public string ProcessingFolder { get; set; } = "jobs/processing";

    /// <summary>Where results appear, each written to a temp file and renamed.</summary>
    [Required] public string OutboxFolder { get; set; } = "jobs/outbox";

    /// <summary>Where malformed or failed jobs go, each with an error file.</summary>
    [Required] public string RejectedFolder { get; set; } = "jobs/rejected";

    /// <summary>The only folders documents may be read from. A relative document path is relative to the first.</summary>
    [MinLength(1, ErrorMessage = "Worker:DocumentFolders needs at least one folder")]
    public List<string> DocumentFolders { get; set; } = [];

    /// <summary>Largest document (or inline text) accepted, in bytes.</summary>
    [Range(1, long.MaxValue)] public long MaxDocumentBytes { get; set; } = 4 << 20;

    /// <summary>Most tokens a job may ask to generate; also the default.</summary>
    [Range(1, 100_000)] public int MaxTokens { get; set; } = 64;

    /// <summary>How often an empty inbox is looked at again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")] public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>On shutdown, how long the running job may take to finish before it is cancelled and returned to the inbox.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")] public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Inbox depth above which the queue health check reports Degraded.</summary>
    [Range(1, int.MaxValue)] public int QueueDepthDegraded { get; set; } = 100;

    /// <summary>Where the latest health report is written (JSON); empty for none.</summary>
    public string? HealthFile { get; set; } = "jobs/health.json";

    internal IEnumerable<string> JobFolders => [InboxFolder, ProcessingFolder, OutboxFolder, RejectedFolder];
}

/// <summary>Makes relative folders absolute under the base folder (default: the content root), before validation.</summary>
sealed class ResolveWorkerFolders(IHostEnvironment environment, string? baseFolder) : IPostConfigureOptions<WorkerOptions>
{
    public void PostConfigure(string? name, WorkerOptions o)
    {
        string root = baseFolder ?? environment.ContentRootPath;
        string Full(string p) => string.IsNullOrWhiteSpace(p) ? p : Path.GetFullPath(p, root);
        o.InboxFolder = Full(o.InboxFolder);
        o.ProcessingFolder = Full(o.ProcessingFolder);
        o.OutboxFolder = Full(o.OutboxFolder);
        o.RejectedFolder = Full(o.RejectedFolder);
        o.DocumentFolders = [.. o.DocumentFolders.Select(Full)];
        if (!string.IsNullOrWhiteSpace(o.HealthFile)) o.HealthFile = Full(o.HealthFile);
    }
}

/// <summary>Checks what attributes cannot: distinct job folders, existing document folders.</summary>
sealed class WorkerOptionsValidator : IValidateOptions<WorkerOptions>
{
    public ValidateOptionsResult Validate(string? name, WorkerOptions o)
    {
        var errors = new List<string>();
        var folders = o.JobFolders.Where(f => !string.IsNullOrWhiteSpace(f)).ToArray();
        if (folders.Distinct(StringComparer.Ordinal).Count() != folders.Length)
            errors.Add("Worker:InboxFolder, ProcessingFolder, OutboxFolder and RejectedFolder must be four different folders");
        foreach (var folder in o.DocumentFolders)
            if (!Directory.Exists(folder)) errors.Add($"Worker:DocumentFolders: '{folder}' does not exist");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

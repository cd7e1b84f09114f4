using System.Text.Json;
using FlexPrefill.Samples.HostedWorker.Jobs;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FlexPrefill.Samples.HostedWorker.Health;

/// <summary>
/// A worker has no HTTP endpoint, so the periodic health report goes to a JSON file (for a container's exec probe or
/// a monitoring agent) and to the log whenever the overall status changes.
/// </summary>
sealed class HealthFilePublisher(IOptions<WorkerOptions> options, ILogger<HealthFilePublisher> logger) : IHealthCheckPublisher
{
    HealthStatus? _last;

    public Task PublishAsync(HealthReport report, CancellationToken cancellationToken)
    {
        if (report.Status != _last)
        {
            logger.LogInformation("Health {Status}: {Entries}", report.Status,
                string.Join("; ", report.Entries.Select(e => $"{e.Key} {e.Value.Status} ({e.Value.Description})")));
            _last = report.Status;
        }
        if (options.Value.HealthFile is { Length: > 0 } path)
        {
            var body = new
            {
                Status = report.Status.ToString(),
                CheckedAt = DateTimeOffset.UtcNow,
                Entries = report.Entries.ToDictionary(e => e.Key, e => new
                {
                    Status = e.Value.Status.ToString(),
                    e.Value.Description,
                    Data = e.Value.Data.Count == 0 ? null : e.Value.Data,
                }),
            };
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            JobFolders.WriteAtomically(path, JsonSerializer.Serialize(body, JobFolders.Json));
        }
        return Task.CompletedTask;
    }
}

using FlexPrefill.Samples.HostedWorker.Jobs;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace FlexPrefill.Samples.HostedWorker.Health;

/// <summary>Degraded when more than <see cref="WorkerOptions.QueueDepthDegraded"/> jobs wait; reports both folder counts.</summary>
sealed class QueueDepthHealthCheck(JobFolders folders, IOptions<WorkerOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        int inbox = folders.InboxCount, processing = folders.ProcessingCount, limit = options.Value.QueueDepthDegraded;
        var data = new Dictionary<string, object> { ["inbox"] = inbox, ["processing"] = processing };
        string text = $"{inbox} waiting, {processing} running";
        return Task.FromResult(inbox > limit
            ? HealthCheckResult.Degraded($"{text} (more than {limit} waiting)", data: data)
            : HealthCheckResult.Healthy(text, data));
    }
}

using FlexPrefill.Inference;
using FlexPrefill.Samples.HostedWorker.Jobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FlexPrefill.Samples.HostedWorker;

/// <summary>
/// Drains the inbox one job at a time once the model is ready. Jobs a previous run left in processing go first. On
/// shutdown the running job gets <see cref="WorkerOptions.ShutdownGrace"/> to finish; after that it is cancelled
/// and put back in the inbox, so nothing is lost either way.
/// </summary>
sealed class JobWorker(IServiceProvider services, JobFolders folders, DocumentPathPolicy paths, ModelState model,
    IOptions<WorkerOptions> options, ILogger<JobWorker> logger) : BackgroundService
{
    readonly WorkerOptions _o = options.Value;

    /// <summary>The job running now, if any (for logs and tests).</summary>
    public string? Current { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        folders.EnsureCreated();
        try
        {
            await model.WaitUntilReadyAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        catch (InvalidOperationException e)
        {
            logger.LogError("No jobs will run: {Reason}", e.Message);
            return;
        }
        // Resolved only now: constructing the chat service is what loads the model, and the warm-up did that.
        var processor = services.GetRequiredService<JobProcessor>();

        foreach (var path in folders.Interrupted())
        {
            if (stoppingToken.IsCancellationRequested) return;
            logger.LogWarning("Job {Id} was interrupted by a previous run; running it again", JobFolders.Id(path));
            await RunAsync(processor, path, stoppingToken);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            bool ranOne = false;
            foreach (var pending in folders.Pending())
            {
                if (stoppingToken.IsCancellationRequested) return;
                if (!folders.TryClaim(pending, out var processing)) continue;
                await RunAsync(processor, processing, stoppingToken);
                ranOne = true;
                break; // Look at the inbox again: newer files may sort earlier.
            }
            if (ranOne) continue;
            try
            {
                await Task.Delay(_o.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    async Task RunAsync(JobProcessor processor, string path, CancellationToken stoppingToken)
    {
        string id = JobFolders.Id(path);
        Current = id;
        // Shutdown does not cancel the job at once: it gets a grace period to finish.
        using var jobCancel = new CancellationTokenSource();
        using var onStop = stoppingToken.Register(() => jobCancel.CancelAfter(_o.ShutdownGrace));
        try
        {
            var (job, errors) = JobParser.Parse(id, await File.ReadAllTextAsync(path, CancellationToken.None), paths, _o);
            if (job is null)
            {
                logger.LogWarning("Job {Id} rejected: {Errors}", id, string.Join("; ", errors));
                folders.Reject(path, errors);
                return;
            }
            var result = await processor.RunAsync(job, jobCancel.Token);
            string written = folders.Complete(path, result);
            logger.LogInformation("Job {Id} done in {Ms:N0} ms: {Path}", id, result.ElapsedMs, written);
        }
        catch (OperationCanceledException) when (jobCancel.IsCancellationRequested)
        {
            string back = folders.ReturnToInbox(path);
            logger.LogWarning("Job {Id} did not finish before shutdown; returned to the inbox as {Path}", id, back);
        }
        catch (InferenceQueueFullException e)
        {
            folders.ReturnToInbox(path);
            logger.LogWarning("Job {Id} returned to the inbox: {Reason}", id, e.Message);
            await Task.Delay(_o.PollInterval, CancellationToken.None);
        }
        catch (Exception e)
        {
            // A job that fails (prompt too long for the model, unreadable file) would fail again: reject it with the reason.
            logger.LogError(e, "Job {Id} failed", id);
            folders.Reject(path, [$"the job failed: {e.Message}"]);
        }
        finally
        {
            Current = null;
        }
    }
}

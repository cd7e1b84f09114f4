using System.Diagnostics;
using FlexPrefill.Samples.HostedWorker.Jobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace FlexPrefill.Samples.HostedWorker;

/// <summary>
/// Loads the model (resolving the chat service loads it) and runs one tiny request, so that the first job does not pay
/// for loading, and a broken model folder stops the worker at start with a clear error instead of at the first job.
/// </summary>
sealed class ModelWarmupService(IServiceProvider services, ModelState state, JobPromptSettings settings,
    IHostApplicationLifetime lifetime, ILogger<ModelWarmupService> logger) : BackgroundService
{
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Here rather than in ExecuteAsync, which .NET 10 starts on a pool thread: health is "loading" from the start.
        state.MarkLoading();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            // Off the host's start path: loading can take seconds to minutes. Loading cannot be cancelled, but a
            // shutdown meanwhile need not wait for it (WaitAsync).
            var chat = await Task.Run(services.GetRequiredService<IChatCompletionService>, stoppingToken).WaitAsync(stoppingToken);
            var history = new ChatHistory();
            history.AddUserMessage("Hello.");
            await chat.GetChatMessageContentAsync(history, settings.Create(1), cancellationToken: stoppingToken).WaitAsync(stoppingToken);
            state.MarkReady(clock.Elapsed);
            logger.LogInformation("Model ready after {Seconds:N1} s", clock.Elapsed.TotalSeconds);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            state.MarkFailed(e);
            logger.LogCritical(e, "The model could not be loaded; stopping");
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }
}

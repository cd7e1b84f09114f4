using FlexPrefill.Samples.HostedWorker.Health;
using FlexPrefill.Samples.HostedWorker.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FlexPrefill.Samples.HostedWorker;

/// <summary>Registers the worker: options, job folders, job logic, warm-up, the background service, health checks.</summary>
public static class WorkerServices
{
    /// <summary>
    /// Adds everything but the chat service (the caller registers an <c>IChatCompletionService</c>: the FlexPrefill
    /// connector in Program, a fake in tests). Relative folders in the options are taken relative to
    /// <paramref name="baseFolder"/>, or to the host's content root when it is null.
    /// </summary>
    public static IServiceCollection AddJobWorker(this IServiceCollection services, IConfiguration configuration, string? baseFolder = null)
    {
        services.AddOptions<WorkerOptions>()
            .Bind(configuration.GetSection(WorkerOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IPostConfigureOptions<WorkerOptions>>(sp => new ResolveWorkerFolders(sp.GetRequiredService<IHostEnvironment>(), baseFolder));
        services.AddSingleton<IValidateOptions<WorkerOptions>, WorkerOptionsValidator>();
        // The running job may take ShutdownGrace to finish; the host must wait a little longer than that.
        // (Read from configuration, not IOptions: the host needs this while it is built, before options are validated.)
        var grace = configuration.GetSection(WorkerOptions.Section).GetValue<TimeSpan?>(nameof(WorkerOptions.ShutdownGrace)) ?? new WorkerOptions().ShutdownGrace;
        services.Configure<HostOptions>(host => host.ShutdownTimeout = grace + TimeSpan.FromSeconds(10));

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<ModelState>();
        services.AddSingleton<JobFolders>();
        services.AddSingleton(sp => new DocumentPathPolicy(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.DocumentFolders));
        services.AddSingleton<JobPromptSettings>(_ => new JobPromptSettings());
        services.AddSingleton<JobProcessor>();

        services.AddHostedService<ModelWarmupService>();
        services.AddSingleton<JobWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<JobWorker>());

        services.AddHealthChecks()
            .AddCheck<ModelHealthCheck>("model")
            .AddCheck<QueueDepthHealthCheck>("queue");
        services.AddSingleton<IHealthCheckPublisher, HealthFilePublisher>();
        services.Configure<HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.FromSeconds(1);
            o.Period = TimeSpan.FromSeconds(10);
        });
        return services;
    }
}

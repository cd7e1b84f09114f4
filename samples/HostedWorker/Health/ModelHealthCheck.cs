using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FlexPrefill.Samples.HostedWorker.Health;

/// <summary>Healthy once the model is loaded and warmed up; Unhealthy while loading or after a failed load.</summary>
sealed class ModelHealthCheck(ModelState model) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(model.Status switch
        {
            ModelStatus.Ready => HealthCheckResult.Healthy($"model loaded in {model.LoadTime?.TotalSeconds:N1} s"),
            ModelStatus.Failed => HealthCheckResult.Unhealthy($"model failed to load: {model.Error}"),
            ModelStatus.Loading => HealthCheckResult.Unhealthy("model loading"),
            _ => HealthCheckResult.Unhealthy("model not loaded"),
        });
}

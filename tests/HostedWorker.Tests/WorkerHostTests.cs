using System.Text.Json;
using FlexPrefill.Samples.HostedWorker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace HostedWorker.Tests;

public sealed class WorkerHostTests : IDisposable
{
    const string Question = """{"task": "answer", "document": "story.txt", "question": "What is the special magic number for harpoon?"}""";
    readonly WorkerFixture _f = new();
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static FakeChatService Answering42() => FakeChatService.Replying(_ => "4817263");

    [Fact]
    public async Task A_job_in_the_inbox_is_answered_with_a_citation_and_statistics()
    {
        var chat = Answering42();
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "q1.json", Question);
        string result = Path.Combine(_f.Outbox, "q1.result.json");
        await WorkerFixture.EventuallyAsync(() => File.Exists(result), "the result of q1");
        await host.StopAsync(Ct);

        using var json = JsonDocument.Parse(File.ReadAllText(result));
        var r = json.RootElement;
        Assert.Equal("4817263", r.GetProperty("answer").GetString());
        Assert.Equal("The special magic number for harpoon is 4817263.", r.GetProperty("citation").GetProperty("text").GetString());
        Assert.Equal(5, r.GetProperty("citation").GetProperty("line").GetInt32());
        Assert.Equal(1000, r.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(0.25, r.GetProperty("attention_density").GetDouble());
        Assert.Empty(Directory.GetFiles(_f.Processing));
        Assert.Empty(Directory.GetFiles(_f.Inbox));
        var prompt = chat.JobCalls.Single()[^1].Content!;
        Assert.StartsWith("Call me Ishmael.", prompt);
        Assert.EndsWith("What is the special magic number for harpoon?", prompt);
    }

    [Fact]
    public async Task A_summarise_job_writes_the_summary()
    {
        using var host = _f.BuildHost(FakeChatService.Replying(p => p.Contains("Summarize") ? "A sailor goes to sea." : "?"));
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "s.json", """{"task": "summarize", "document": "story.txt"}""");
        string result = Path.Combine(_f.Outbox, "s.result.json");
        await WorkerFixture.EventuallyAsync(() => File.Exists(result), "the summary");
        await host.StopAsync(Ct);
        Assert.Contains("\"summary\": \"A sailor goes to sea.\"", File.ReadAllText(result));
    }

    [Fact]
    public async Task A_job_left_in_processing_by_a_crash_runs_again_on_start()
    {
        // What a killed process leaves behind: the job moved to processing, no result.
        _f.WriteJob(_f.Processing, "interrupted.json", Question);
        var chat = Answering42();
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        string result = Path.Combine(_f.Outbox, "interrupted.result.json");
        await WorkerFixture.EventuallyAsync(() => File.Exists(result), "the interrupted job's result");
        await host.StopAsync(Ct);
        Assert.Empty(Directory.GetFiles(_f.Processing));
        Assert.Single(chat.JobCalls);
    }

    [Fact]
    public async Task Interrupted_jobs_run_before_new_ones()
    {
        _f.WriteJob(_f.Inbox, "new.json", Question.Replace("harpoon?", "harpoon? (new)"));
        _f.WriteJob(_f.Processing, "old.json", Question.Replace("harpoon?", "harpoon? (old)"));
        var chat = Answering42();
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        await WorkerFixture.EventuallyAsync(() => Directory.GetFiles(_f.Outbox).Length == 2, "both results");
        await host.StopAsync(Ct);
        var order = chat.JobCalls.Select(h => h[^1].Content!).ToArray();
        Assert.EndsWith("(old)", order[0]);
        Assert.EndsWith("(new)", order[1]);
    }

    [Fact]
    public async Task A_malformed_job_goes_to_rejected_with_an_error_file_and_the_next_job_still_runs()
    {
        using var host = _f.BuildHost(Answering42());
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "broken.json", """{"task": "answer", "document": "story.txt"}""");
        _f.WriteJob(_f.Inbox, "fine.json", Question);
        await WorkerFixture.EventuallyAsync(() => File.Exists(Path.Combine(_f.Outbox, "fine.result.json")), "the good job's result");
        await host.StopAsync(Ct);

        Assert.True(File.Exists(Path.Combine(_f.Rejected, "broken.json")));
        string error = File.ReadAllText(Path.Combine(_f.Rejected, "broken.error.json"));
        Assert.Contains("'question' is required", error);
        Assert.False(File.Exists(Path.Combine(_f.Outbox, "broken.result.json")));
    }

    [Fact]
    public async Task A_job_naming_a_file_outside_the_document_folders_is_rejected_without_reading_it()
    {
        File.WriteAllText(Path.Combine(_f.Root, "secret.txt"), "The special magic number for harpoon is 1111111.");
        var chat = Answering42();
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "escape.json", """{"task": "summarize", "document": "../secret.txt"}""");
        string error = Path.Combine(_f.Rejected, "escape.error.json");
        await WorkerFixture.EventuallyAsync(() => File.Exists(error), "the error file");
        await host.StopAsync(Ct);
        Assert.Contains("outside the allowed folders", File.ReadAllText(error));
        Assert.Empty(chat.JobCalls);
    }

    [Fact]
    public async Task A_job_the_model_fails_on_is_rejected_with_the_reason()
    {
        var chat = new FakeChatService((h, _) => h[^1].Content == FakeChatService.WarmupPrompt
            ? Task.FromResult(FakeChatService.Message("hi"))
            : throw new ArgumentException("prompt has 140,213 tokens; the model's context is 131,072"));
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "long.json", Question);
        string error = Path.Combine(_f.Rejected, "long.error.json");
        await WorkerFixture.EventuallyAsync(() => File.Exists(error), "the error file");
        await host.StopAsync(Ct);
        Assert.Contains("the model's context is 131,072", File.ReadAllText(error));
    }

    [Fact]
    public async Task On_shutdown_the_running_job_finishes_within_the_grace_period()
    {
        var release = new TaskCompletionSource();
        var chat = new FakeChatService(async (h, _) =>
        {
            if (h[^1].Content != FakeChatService.WarmupPrompt) await release.Task; // ignores cancellation: a job that finishes
            return FakeChatService.Message("4817263");
        });
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "slow.json", Question);
        await WorkerFixture.EventuallyAsync(() => chat.JobCalls.Any(), "the job to start");

        var stopping = host.StopAsync(Ct);
        await Task.Delay(200, Ct);
        Assert.False(stopping.IsCompleted, "the host stopped before the running job finished");
        release.SetResult();
        await stopping;

        Assert.True(File.Exists(Path.Combine(_f.Outbox, "slow.result.json")));
        Assert.Empty(Directory.GetFiles(_f.Processing));
        Assert.Empty(Directory.GetFiles(_f.Inbox));
    }

    [Fact]
    public async Task On_shutdown_a_job_that_outlasts_the_grace_period_is_returned_to_the_inbox()
    {
        _f.Settings["Worker:ShutdownGrace"] = "00:00:00.100";
        var chat = new FakeChatService(async (h, ct) =>
        {
            if (h[^1].Content != FakeChatService.WarmupPrompt) await Task.Delay(Timeout.Infinite, ct);
            return FakeChatService.Message("4817263");
        });
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        _f.WriteJob(_f.Inbox, "endless.json", Question);
        await WorkerFixture.EventuallyAsync(() => chat.JobCalls.Any(), "the job to start");
        await host.StopAsync(Ct);

        Assert.True(File.Exists(Path.Combine(_f.Inbox, "endless.json")));
        Assert.Equal(Question, File.ReadAllText(Path.Combine(_f.Inbox, "endless.json")));
        Assert.Empty(Directory.GetFiles(_f.Processing));
        Assert.Empty(Directory.GetFiles(_f.Outbox));
    }

    [Fact]
    public async Task Health_is_unhealthy_while_the_model_loads_and_healthy_once_it_is_warm()
    {
        var warm = new TaskCompletionSource();
        var chat = new FakeChatService(async (_, _) =>
        {
            await warm.Task;
            return FakeChatService.Message("hi");
        });
        using var host = _f.BuildHost(chat);
        await host.StartAsync(Ct);
        var health = host.Services.GetRequiredService<HealthCheckService>();

        var loading = await health.CheckHealthAsync(Ct);
        Assert.Equal(HealthStatus.Unhealthy, loading.Entries["model"].Status);
        Assert.Equal("model loading", loading.Entries["model"].Description);
        Assert.Equal(HealthStatus.Healthy, loading.Entries["queue"].Status);

        warm.SetResult();
        await WorkerFixture.EventuallyAsync(() => host.Services.GetRequiredService<ModelState>().Status == ModelStatus.Ready, "the model to be ready");
        var ready = await health.CheckHealthAsync(Ct);
        Assert.Equal(HealthStatus.Healthy, ready.Status);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task Health_is_degraded_when_more_jobs_wait_than_the_limit()
    {
        _f.Settings["Worker:QueueDepthDegraded"] = "2";
        var never = new TaskCompletionSource<Microsoft.SemanticKernel.ChatMessageContent>();
        using var host = _f.BuildHost(new FakeChatService((_, _) => never.Task)); // the model never becomes ready: jobs wait
        for (int i = 0; i < 3; i++) _f.WriteJob(_f.Inbox, $"j{i}.json", Question);
        await host.StartAsync(Ct);
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct);
        var queue = report.Entries["queue"];
        Assert.Equal(HealthStatus.Degraded, queue.Status);
        Assert.Equal(3, queue.Data["inbox"]);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task The_health_report_is_written_to_the_health_file()
    {
        _f.Settings["Worker:HealthFile"] = "jobs/health.json";
        using var host = _f.BuildHost(Answering42());
        await host.StartAsync(Ct);
        string file = Path.Combine(_f.Root, "jobs", "health.json");
        await WorkerFixture.EventuallyAsync(() => File.Exists(file), "the health file");
        await host.StopAsync(Ct);
        using var json = JsonDocument.Parse(File.ReadAllText(file));
        var entries = json.RootElement.GetProperty("entries");
        Assert.Equal("Healthy", entries.GetProperty("queue").GetProperty("status").GetString());
        Assert.Equal(0, entries.GetProperty("queue").GetProperty("data").GetProperty("inbox").GetInt32());
        Assert.True(entries.TryGetProperty("model", out _));
    }

    [Fact]
    public async Task A_model_that_fails_to_load_is_unhealthy_and_stops_the_worker_with_exit_code_1()
    {
        var chat = new FakeChatService((_, _) => throw new InvalidDataException("config.json: hidden_size is missing"));
        using var host = _f.BuildHost(chat);
        _f.WriteJob(_f.Inbox, "waiting.json", Question);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        await host.StartAsync(Ct);
        await WorkerFixture.EventuallyAsync(() => lifetime.ApplicationStopping.IsCancellationRequested, "the worker to stop");
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct);
        Assert.Equal(HealthStatus.Unhealthy, report.Entries["model"].Status);
        Assert.Contains("hidden_size is missing", report.Entries["model"].Description);
        Assert.Equal(1, Environment.ExitCode);
        Environment.ExitCode = 0;
        await host.StopAsync(Ct);
        Assert.True(File.Exists(Path.Combine(_f.Inbox, "waiting.json")), "a job was taken although no model could run it");
    }

    [Fact]
    public async Task Options_are_validated_when_the_host_starts()
    {
        _f.Settings.Remove("Worker:DocumentFolders:0");
        _f.Settings["Worker:OutboxFolder"] = "jobs/inbox";
        using var host = _f.BuildHost(Answering42());
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Contains("DocumentFolders needs at least one folder", e.Message);
        Assert.Contains("four different folders", e.Message);
    }

    [Fact]
    public async Task A_document_folder_that_does_not_exist_fails_validation()
    {
        _f.Settings["Worker:DocumentFolders:0"] = "no-such-folder";
        using var host = _f.BuildHost(Answering42());
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Contains("no-such-folder' does not exist", e.Message);
    }

    public void Dispose() => _f.Dispose();
}

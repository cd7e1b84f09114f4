using FlexPrefill.Samples.HostedWorker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.SemanticKernel.ChatCompletion;

namespace HostedWorker.Tests;

/// <summary>A temp folder with the worker's folder layout, a document folder and a host built on a fake chat service.</summary>
sealed class WorkerFixture : IDisposable
{
    public WorkerFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "hostedworker-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Documents);
        foreach (var f in new[] { Inbox, Processing, Outbox, Rejected }) Directory.CreateDirectory(f);
        File.WriteAllText(Path.Combine(Documents, "story.txt"),
            "Call me Ishmael.\n\nSome years ago I went to sea.\n\nThe special magic number for harpoon is 4817263.\n\nThe end.\n");
    }

    public string Root { get; }
    public string Documents => Path.Combine(Root, "docs");
    public string Inbox => Path.Combine(Root, "jobs", "inbox");
    public string Processing => Path.Combine(Root, "jobs", "processing");
    public string Outbox => Path.Combine(Root, "jobs", "outbox");
    public string Rejected => Path.Combine(Root, "jobs", "rejected");

    public Dictionary<string, string?> Settings { get; } = new()
    {
        ["Worker:DocumentFolders:0"] = "docs",
        ["Worker:PollInterval"] = "00:00:00.020",
        ["Worker:ShutdownGrace"] = "00:00:05",
        ["Worker:HealthFile"] = "",
    };

    public IHost BuildHost(IChatCompletionService chat)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = Root,
            DisableDefaults = true,
            EnvironmentName = "Test",
        });
        builder.Configuration.AddInMemoryCollection(Settings);
        builder.Services.AddJobWorker(builder.Configuration);
        builder.Services.AddSingleton(chat);
        return builder.Build();
    }

    /// <summary>Drops a job the way producers must: a hidden temp file renamed into place, never half a file.</summary>
    public string WriteJob(string folder, string name, string json)
    {
        string path = Path.Combine(folder, name), temp = Path.Combine(folder, "." + name + ".tmp");
        File.WriteAllText(temp, json);
        File.Move(temp, path);
        return path;
    }

    public static async Task EventuallyAsync(Func<bool> condition, string what, double seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out after {seconds} s waiting for: {what}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

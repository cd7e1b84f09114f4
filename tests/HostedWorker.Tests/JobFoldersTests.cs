using FlexPrefill.Samples.HostedWorker;
using FlexPrefill.Samples.HostedWorker.Jobs;
using Microsoft.Extensions.Options;

namespace HostedWorker.Tests;

public sealed class JobFoldersTests : IDisposable
{
    readonly WorkerFixture _f = new();
    readonly JobFolders _folders;

    public JobFoldersTests()
    {
        _folders = new JobFolders(Options.Create(new WorkerOptions
        {
            InboxFolder = _f.Inbox, ProcessingFolder = _f.Processing, OutboxFolder = _f.Outbox, RejectedFolder = _f.Rejected,
        }));
    }

    [Fact]
    public void Hidden_temp_files_and_other_extensions_in_the_inbox_are_not_jobs()
    {
        _f.WriteJob(_f.Inbox, ".half-written.json", "{");
        _f.WriteJob(_f.Inbox, "notes.txt", "x");
        _f.WriteJob(_f.Inbox, "real.json", "{}");
        Assert.Equal(["real"], _folders.Pending().Select(JobFolders.Id));
    }

    [Fact]
    public void Claiming_moves_the_job_to_processing_and_a_vanished_job_cannot_be_claimed()
    {
        string job = _f.WriteJob(_f.Inbox, "a.json", "{}");
        Assert.True(_folders.TryClaim(job, out var processing));
        Assert.False(File.Exists(job));
        Assert.True(File.Exists(processing));
        Assert.False(_folders.TryClaim(job, out _));
    }

    [Fact]
    public void Completing_writes_the_result_to_the_outbox_and_removes_the_job()
    {
        string processing = _f.WriteJob(_f.Processing, "a.json", "{}");
        string written = _folders.Complete(processing, new JobResult { Id = "a", Task = "answer", Document = "d", Answer = "42", ElapsedMs = 1, CompletedAt = DateTimeOffset.UnixEpoch });
        Assert.Equal(Path.Combine(_f.Outbox, "a.result.json"), written);
        Assert.Contains("\"answer\": \"42\"", File.ReadAllText(written));
        Assert.False(File.Exists(processing));
        Assert.Single(Directory.GetFiles(_f.Outbox)); // no temp file left behind
    }

    [Fact]
    public void A_rejected_job_lands_beside_an_error_file_listing_every_problem()
    {
        string processing = _f.WriteJob(_f.Processing, "bad.json", "{");
        string errorFile = _folders.Reject(processing, ["first problem", "second problem"]);
        Assert.True(File.Exists(Path.Combine(_f.Rejected, "bad.json")));
        string error = File.ReadAllText(errorFile);
        Assert.Contains("first problem", error);
        Assert.Contains("second problem", error);
        Assert.False(File.Exists(processing));
    }

    [Fact]
    public void A_job_returned_to_the_inbox_does_not_overwrite_a_new_job_of_the_same_name()
    {
        _f.WriteJob(_f.Inbox, "a.json", "new");
        string processing = _f.WriteJob(_f.Processing, "a.json", "old");
        string back = _folders.ReturnToInbox(processing);
        Assert.Equal("new", File.ReadAllText(Path.Combine(_f.Inbox, "a.json")));
        Assert.Equal("old", File.ReadAllText(back));
        Assert.False(File.Exists(processing));
    }

    [Fact]
    public async Task A_reader_never_sees_a_partly_written_result()
    {
        string path = Path.Combine(_f.Outbox, "r.result.json");
        string a = new('a', 200_000), b = new('b', 300_000);
        JobFolders.WriteAtomically(path, a);
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() =>
        {
            int reads = 0;
            while (!stop.IsCancellationRequested)
            {
                string seen = File.ReadAllText(path);
                Assert.True(seen == a || seen == b, $"read {seen.Length} characters: a partial or mixed file");
                reads++;
            }
            return reads;
        });
        for (int i = 0; i < 100; i++) JobFolders.WriteAtomically(path, i % 2 == 0 ? b : a);
        stop.Cancel();
        Assert.True(await reader > 0);
        Assert.Equal(a, File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_f.Outbox));
    }

    public void Dispose() => _f.Dispose();
}

using FlexPrefill.Samples;
using FlexPrefill.Samples.HostedWorker;
using FlexPrefill.Samples.HostedWorker.Jobs;

namespace HostedWorker.Tests;

public sealed class JobParserTests : IDisposable
{
    readonly WorkerFixture _f = new();
    readonly WorkerOptions _options = new() { MaxTokens = 64, MaxDocumentBytes = 10_000 };
    DocumentPathPolicy Paths => new([_f.Documents]);

    (JobRequest? Job, IReadOnlyList<string> Errors) Parse(string json) => JobParser.Parse("job-1", json, Paths, _options);

    [Fact]
    public void A_question_about_a_document_in_an_allowed_folder_parses()
    {
        var (job, errors) = Parse("""{"task": "answer", "document": "story.txt", "question": "What is the number?", "max_tokens": 16}""");
        Assert.Empty(errors);
        Assert.NotNull(job);
        Assert.Equal(JobTask.Answer, job.Task);
        Assert.Equal("story.txt", job.DocumentName);
        Assert.Contains("4817263", job.DocumentText);
        Assert.Equal(16, job.MaxTokens);
    }

    [Fact]
    public void A_summarise_request_with_inline_text_takes_the_default_token_limit()
    {
        var (job, errors) = Parse("""{"task": "summarize", "text": "A short story."}""");
        Assert.Empty(errors);
        Assert.Equal(JobTask.Summarize, job!.Task);
        Assert.Equal(64, job.MaxTokens);
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    [InlineData("[1, 2]", "must be a JSON object")]
    [InlineData("""{"document": "story.txt", "question": "q"}""", "'task' is missing")]
    [InlineData("""{"task": "translate", "text": "x"}""", "'task' is 'translate'")]
    [InlineData("""{"task": 3, "text": "x"}""", "'task' must be a string")]
    [InlineData("""{"task": "answer", "text": "x"}""", "'question' is required")]
    [InlineData("""{"task": "summarize", "text": "x", "question": "q"}""", "'question' is only used")]
    [InlineData("""{"task": "summarize"}""", "exactly one of 'document'")]
    [InlineData("""{"task": "summarize", "text": "x", "document": "story.txt"}""", "exactly one of 'document'")]
    [InlineData("""{"task": "summarize", "text": "x", "max_tokens": 0}""", "'max_tokens' must be a whole number from 1 to 64")]
    [InlineData("""{"task": "summarize", "text": "x", "max_tokens": 65}""", "'max_tokens' must be a whole number")]
    [InlineData("""{"task": "summarize", "text": "x", "colour": "red"}""", "unknown property 'colour'")]
    [InlineData("""{"task": "summarize", "document": "missing.txt"}""", "does not exist")]
    [InlineData("""{"task": "summarize", "text": "   "}""", "the document is empty")]
    public void A_malformed_job_is_refused_with_a_message_naming_the_problem(string json, string expected)
    {
        var (job, errors) = Parse(json);
        Assert.Null(job);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_problem_of_a_job_is_reported_not_only_the_first()
    {
        var (_, errors) = Parse("""{"task": "answer", "colour": "red", "max_tokens": -1}""");
        Assert.Equal(4, errors.Count); // unknown property, question missing, max_tokens, neither document nor text
    }

    [Fact]
    public void A_document_larger_than_the_limit_is_refused()
    {
        File.WriteAllText(Path.Combine(_f.Documents, "big.txt"), new string('x', 10_001));
        var (_, errors) = Parse("""{"task": "summarize", "document": "big.txt"}""");
        Assert.Contains(errors, e => e.Contains("larger than 10,000 bytes"));
    }

    [Theory]
    [InlineData("../secret.txt")]
    [InlineData("sub/../../secret.txt")]
    [InlineData("/etc/passwd")]
    public void A_document_path_outside_the_allowed_folders_is_refused(string path)
    {
        File.WriteAllText(Path.Combine(_f.Root, "secret.txt"), "the secret");
        var (job, errors) = Parse($$"""{"task": "summarize", "document": "{{path}}"}""");
        Assert.Null(job);
        Assert.Contains(errors, e => e.Contains("outside the allowed folders"));
    }

    [Fact]
    public void A_folder_whose_name_extends_an_allowed_folder_is_not_inside_it()
    {
        Directory.CreateDirectory(_f.Documents + "-private");
        File.WriteAllText(Path.Combine(_f.Documents + "-private", "x.txt"), "private");
        var (_, errors) = Parse($$"""{"task": "summarize", "document": "{{_f.Documents}}-private/x.txt"}""");
        Assert.Contains(errors, e => e.Contains("outside the allowed folders"));
    }

    [Fact]
    public void A_link_inside_an_allowed_folder_that_leads_outside_is_refused()
    {
        string secret = Path.Combine(_f.Root, "secret.txt");
        File.WriteAllText(secret, "the secret");
        File.CreateSymbolicLink(Path.Combine(_f.Documents, "innocent.txt"), secret);
        var (_, errors) = Parse("""{"task": "summarize", "document": "innocent.txt"}""");
        Assert.Contains(errors, e => e.Contains("links to") && e.Contains("outside the allowed folders"));
    }

    [Fact]
    public void An_absolute_path_inside_an_allowed_folder_is_accepted()
    {
        string path = Path.Combine(_f.Documents, "story.txt");
        var (job, errors) = Parse($$"""{"task": "summarize", "document": "{{path}}"}""");
        Assert.Empty(errors);
        Assert.Equal("story.txt", job!.DocumentName);
    }

    public void Dispose() => _f.Dispose();
}

using System.Text;
using System.Text.Json;

namespace FlexPrefill.Samples.HostedWorker.Jobs;

/// <summary>What a job asks for.</summary>
public enum JobTask
{
    /// <summary>Answer <see cref="JobRequest.Question"/> about the document.</summary>
    Answer,
    /// <summary>Summarise the document.</summary>
    Summarize,
}

/// <summary>A validated job: the document is readable and inside the allowed folders.</summary>
/// <param name="Id">The job file's name without ".json"; names the result file.</param>
/// <param name="Task">What to do.</param>
/// <param name="DocumentName">The document's file name, or "inline text".</param>
/// <param name="DocumentText">The document.</param>
/// <param name="Question">The question (for <see cref="JobTask.Answer"/>).</param>
/// <param name="MaxTokens">Tokens the answer may have.</param>
public sealed record JobRequest(string Id, JobTask Task, string DocumentName, string DocumentText, string? Question, int MaxTokens);

/// <summary>
/// Reads a job file: <c>{"task": "answer" | "summarize", "document": "path" | "text": "...", "question": "...",
/// "max_tokens": 64}</c>. Every problem found is reported, each naming the property it concerns.
/// </summary>
public static class JobParser
{
    static readonly HashSet<string> Known = ["task", "document", "text", "question", "max_tokens"];

    /// <summary>The job, or the list of what is wrong with it.</summary>
    public static (JobRequest? Job, IReadOnlyList<string> Errors) Parse(string id, string json, DocumentPathPolicy paths, WorkerOptions options)
    {
        var errors = new List<string>();
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            return (null, [$"the job is not valid JSON: {e.Message}"]);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return (null, [$"the job must be a JSON object, not {root.ValueKind.ToString().ToLowerInvariant()}"]);

            foreach (var p in root.EnumerateObject())
                if (!Known.Contains(p.Name)) errors.Add($"unknown property '{p.Name}' (expected {string.Join(", ", Known.Select(k => $"'{k}'"))})");

            string? taskName = String(root, "task", errors);
            JobTask? task = taskName switch
            {
                null => null,
                "answer" => JobTask.Answer,
                "summarize" or "summarise" => JobTask.Summarize,
                _ => null,
            };
            if (taskName is null && !root.TryGetProperty("task", out _)) errors.Add("'task' is missing (\"answer\" or \"summarize\")");
            else if (taskName is not null && task is null) errors.Add($"'task' is '{taskName}'; expected \"answer\" or \"summarize\"");

            string? question = String(root, "question", errors);
            if (task == JobTask.Answer && string.IsNullOrWhiteSpace(question)) errors.Add("'question' is required when 'task' is \"answer\"");
            if (task == JobTask.Summarize && question is not null) errors.Add("'question' is only used when 'task' is \"answer\"");

            int maxTokens = options.MaxTokens;
            if (root.TryGetProperty("max_tokens", out var mt))
            {
                if (mt.ValueKind != JsonValueKind.Number || !mt.TryGetInt32(out maxTokens) || maxTokens < 1 || maxTokens > options.MaxTokens)
                    errors.Add($"'max_tokens' must be a whole number from 1 to {options.MaxTokens}");
            }

            string? path = String(root, "document", errors);
            string? text = String(root, "text", errors);
            string documentName = "inline text", documentText = "";
            if ((path is null) == (text is null))
                errors.Add("give exactly one of 'document' (a file path) and 'text'");
            else if (text is not null)
            {
                if (Encoding.UTF8.GetByteCount(text) > options.MaxDocumentBytes) errors.Add($"'text' is larger than {options.MaxDocumentBytes:N0} bytes");
                documentText = text;
            }
            else if (!paths.TryResolve(path!, out var full, out var pathError))
                errors.Add($"'document': {pathError}");
            else if (new FileInfo(full).Length > options.MaxDocumentBytes)
                errors.Add($"'document': '{path}' is larger than {options.MaxDocumentBytes:N0} bytes");
            else
            {
                documentName = Path.GetFileName(full);
                documentText = File.ReadAllText(full);
            }
            if (errors.Count == 0 && string.IsNullOrWhiteSpace(documentText)) errors.Add("the document is empty");

            return errors.Count > 0 ? (null, errors) : (new JobRequest(id, task!.Value, documentName, documentText, question, maxTokens), []);
        }
    }

    static string? String(JsonElement root, string name, List<string> errors)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        errors.Add($"'{name}' must be a string, not {v.ValueKind.ToString().ToLowerInvariant()}");
        return null;
    }
}

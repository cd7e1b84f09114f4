using System.Text;
using System.Text.Json;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// Mistral-Instruct v0.3's format: <c>&lt;s&gt;[INST] user[/INST] reply&lt;/s&gt;</c>, the system prompt folded into the
/// last user turn, tools as <c>[AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS]</c> before the last user turn, calls as
/// <c>[TOOL_CALLS] [{"name": …, "arguments": {…}, "id": "…"}]</c> and results as <c>[TOOL_RESULTS] {…}[/TOOL_RESULTS]</c>.
/// Renders the same text as the Hugging Face template of Mistral-7B-Instruct-v0.3.
/// </summary>
public sealed class MistralChatTemplate : IChatTemplate
{
    private const string CallsTag = "[TOOL_CALLS]";

    /// <inheritdoc />
    public string Name => "mistral";

    /// <inheritdoc />
    public IReadOnlyList<string> StopSequences { get; } = ["</s>"];

    /// <inheritdoc />
    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(turns);
        ArgumentNullException.ThrowIfNull(tools);
        // [/INST] already asks for the reply; there is no separate generation prompt.
        _ = addGenerationPrompt;
        string? system = turns.Count > 0 && turns[0].Role == ChatRole.System ? turns[0].Content : null;
        var messages = turns.Skip(system is null ? 0 : 1).ToList();
        int lastUser = messages.FindLastIndex(t => t.Role == ChatRole.User);
        var prompt = new StringBuilder("<s>");
        for (int i = 0; i < messages.Count; i++)
        {
            var turn = messages[i];
            switch (turn.Role)
            {
                case ChatRole.User:
                    if (tools.Count > 0 && i == lastUser)
                    {
                        prompt.Append("[AVAILABLE_TOOLS] [").AppendJoin(", ", tools.Select(ToolText)).Append("][/AVAILABLE_TOOLS]");
                    }
                    prompt.Append("[INST] ");
                    if (i == lastUser && system is not null)
                    {
                        prompt.Append(system).Append("\n\n");
                    }
                    prompt.Append(turn.Content).Append("[/INST]");
                    break;
                case ChatRole.Assistant when turn.ToolCalls.Count > 0:
                    prompt.Append(CallsTag).Append(" [").AppendJoin(", ", turn.ToolCalls.Select(call =>
                        "{\"name\": " + PythonJson.Quote(call.Name) + ", \"arguments\": " + PythonJson.Arguments(call.ArgumentsJson) +
                        ", \"id\": \"" + call.Id + "\"}")).Append("]</s>");
                    break;
                case ChatRole.Assistant:
                    prompt.Append(' ').Append(turn.Content.Trim()).Append("</s>");
                    break;
                case ChatRole.Tool:
                    prompt.Append("[TOOL_RESULTS] {\"content\": ").Append(turn.Content).Append(", \"call_id\": \"")
                        .Append(turn.ToolCallId).Append("\"}[/TOOL_RESULTS]");
                    break;
                default:
                    throw new ArgumentException("Mistral's format has only user, assistant and tool turns after an optional first system turn", nameof(turns));
            }
        }
        return prompt.ToString();
    }

    /// <inheritdoc />
    public ParsedAssistantReply ParseReply(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        string text = reply.EndsWith("</s>", StringComparison.Ordinal) ? reply[..^4] : reply;
        int tag = text.IndexOf(CallsTag, StringComparison.Ordinal);
        if (tag < 0)
        {
            return new ParsedAssistantReply(text.Trim(), []);
        }
        try
        {
            using var document = JsonDocument.Parse(text[(tag + CallsTag.Length)..]);
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return new ParsedAssistantReply(text, [], "[TOOL_CALLS] must be followed by a JSON array");
            }
            var calls = new List<ToolCall>();
            foreach (var element in document.RootElement.EnumerateArray())
            {
                if (!ToolCallJson.TryReadSingle(element.GetRawText(), out var call, out string? error))
                {
                    return new ParsedAssistantReply(text, [], $"tool call {calls.Count + 1}: {error}");
                }
                string id = element.TryGetProperty("id", out var given) && given.ValueKind == JsonValueKind.String ? given.GetString()! : NewMistralId();
                calls.Add(call with { Id = id });
            }
            return new ParsedAssistantReply(text[..tag].Trim(), calls);
        }
        catch (JsonException e)
        {
            return new ParsedAssistantReply(text, [], $"[TOOL_CALLS] is not followed by valid JSON: {e.Message}");
        }
    }

    // Mistral's template requires nine alphanumeric characters.
    private static string NewMistralId() => Guid.NewGuid().ToString("N")[..9];

    private static string ToolText(ToolDefinition tool)
    {
        // The template writes string fields between quotes without escaping and the rest through tojson.
        var function = PythonJson.ToolEntry(tool).GetProperty("function");
        var fields = function.EnumerateObject().Select(p => p.Value.ValueKind == JsonValueKind.String
            ? $"\"{p.Name}\": \"{p.Value.GetString()}\""
            : $"\"{p.Name}\": {PythonJson.Serialize(p.Value)}");
        return "{\"type\": \"function\", \"function\": {" + string.Join(", ", fields) + "}}";
    }
}

using System.Text;
using System.Text.Json;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.SemanticKernel.Tests.TestDoubles;

/// <summary>
/// Llama-3.1's tool format, reduced to what the connector depends on: tools listed in the system turn, a tool call
/// as one JSON object <c>{"name": ..., "parameters": ...}</c>, results in <c>ipython</c> turns.
/// </summary>
public sealed class Llama31FormatTemplate : IChatTemplate
{
    public string Name => "llama3";
    public IReadOnlyList<string> StopSequences => ["<|eot_id|>", "<|eom_id|>"];
    public IReadOnlyList<ToolDefinition> LastTools { get; private set; } = [];

    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true)
    {
        LastTools = tools;
        var sb = new StringBuilder("<|begin_of_text|>");
        if (tools.Count > 0)
        {
            sb.Append("<|start_header_id|>system<|end_header_id|>\n\nYou may call these functions:\n");
            foreach (var t in tools) sb.Append($"{{\"name\": \"{t.Name}\", \"description\": \"{t.Description}\", \"parameters\": {t.ParametersJsonSchema}}}\n");
            sb.Append("<|eot_id|>");
        }
        foreach (var turn in turns)
        {
            string role = turn.Role switch { ChatRole.System => "system", ChatRole.User => "user", ChatRole.Assistant => "assistant", _ => "ipython" };
            sb.Append($"<|start_header_id|>{role}<|end_header_id|>\n\n");
            foreach (var call in turn.ToolCalls) sb.Append($"{{\"name\": \"{call.Name}\", \"parameters\": {call.ArgumentsJson}}}");
            sb.Append(turn.Content).Append("<|eot_id|>");
        }
        if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        return sb.ToString();
    }

    public ParsedAssistantReply ParseReply(string reply)
    {
        string s = reply.Trim();
        if (!s.StartsWith('{')) return new ParsedAssistantReply(reply, []);
        try
        {
            using var doc = JsonDocument.Parse(s);
            var root = doc.RootElement;
            if (!root.TryGetProperty("name", out var name)) return new ParsedAssistantReply(reply, []);
            string args = root.TryGetProperty("parameters", out var p) ? p.GetRawText() : "{}";
            return new ParsedAssistantReply("", [new ToolCall("call_" + name.GetString(), name.GetString()!, args)]);
        }
        catch (JsonException e)
        {
            return new ParsedAssistantReply(reply, [], $"tool call is not JSON: {e.Message}");
        }
    }
}

/// <summary>Qwen's ChatML tool format: <c>&lt;tool_call&gt;{"name": ..., "arguments": ...}&lt;/tool_call&gt;</c>, results in <c>&lt;tool_response&gt;</c>.</summary>
public sealed class ChatMlFormatTemplate : IChatTemplate
{
    public string Name => "chatml";
    public IReadOnlyList<string> StopSequences => ["<|im_end|>"];
    public IReadOnlyList<ToolDefinition> LastTools { get; private set; } = [];

    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true)
    {
        LastTools = tools;
        var sb = new StringBuilder();
        if (tools.Count > 0)
        {
            sb.Append("<|im_start|>system\n# Tools\n<tools>\n");
            foreach (var t in tools) sb.Append($"{{\"type\": \"function\", \"function\": {{\"name\": \"{t.Name}\", \"description\": \"{t.Description}\", \"parameters\": {t.ParametersJsonSchema}}}}}\n");
            sb.Append("</tools><|im_end|>\n");
        }
        foreach (var turn in turns)
        {
            if (turn.Role == ChatRole.Tool)
            {
                sb.Append($"<|im_start|>user\n<tool_response>\n{turn.Content}\n</tool_response><|im_end|>\n");
                continue;
            }
            string role = turn.Role.ToString().ToLowerInvariant();
            sb.Append($"<|im_start|>{role}\n{turn.Content}");
            foreach (var call in turn.ToolCalls) sb.Append($"<tool_call>\n{{\"name\": \"{call.Name}\", \"arguments\": {call.ArgumentsJson}}}\n</tool_call>");
            sb.Append("<|im_end|>\n");
        }
        if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
        return sb.ToString();
    }

    public ParsedAssistantReply ParseReply(string reply)
    {
        int open = reply.IndexOf("<tool_call>", StringComparison.Ordinal);
        if (open < 0) return new ParsedAssistantReply(reply, []);
        List<ToolCall> calls = [];
        string content = reply[..open].Trim();
        int at = open;
        while (at >= 0)
        {
            int close = reply.IndexOf("</tool_call>", at, StringComparison.Ordinal);
            if (close < 0) return new ParsedAssistantReply(reply, [], "<tool_call> without </tool_call>");
            string body = reply[(at + "<tool_call>".Length)..close];
            try
            {
                using var doc = JsonDocument.Parse(body);
                var root = doc.RootElement;
                string name = root.GetProperty("name").GetString()!;
                calls.Add(new ToolCall($"call_{calls.Count}_{name}", name, root.TryGetProperty("arguments", out var a) ? a.GetRawText() : "{}"));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return new ParsedAssistantReply(reply, [], $"tool call is not valid: {e.Message}");
            }
            at = reply.IndexOf("<tool_call>", close, StringComparison.Ordinal);
        }
        return new ParsedAssistantReply(content, calls);
    }
}

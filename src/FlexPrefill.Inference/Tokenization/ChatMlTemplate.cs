using System.Text;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>
/// ChatML as Qwen2.5 (and Qwen3) write it: <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c> turns. Tools are
/// listed one JSON object per line inside <c>&lt;tools&gt;&lt;/tools&gt;</c> in the system turn; the assistant calls
/// them with <c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c> blocks; results come back in a user
/// turn as <c>&lt;tool_response&gt;</c> blocks. Renders the same text as the Hugging Face template of Qwen2.5-Instruct.
/// </summary>
/// <param name="defaultSystemPrompt">System text used when the conversation has none (Qwen2.5: "You are Qwen, created by
/// Alibaba Cloud. You are a helpful assistant."); null writes no system turn then (Qwen3).</param>
public sealed class ChatMlTemplate(string? defaultSystemPrompt = null) : IChatTemplate
{
    /// <summary>Qwen2.5's default system prompt.</summary>
    public const string QwenDefaultSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

    private const string ToolsPreamble = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    private const string ToolsPostamble = "\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
        "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
    private const string CallOpen = "<tool_call>";
    private const string CallClose = "</tool_call>";

    /// <inheritdoc />
    public string Name => "chatml";

    /// <summary>System text used when the conversation has none; null for none.</summary>
    public string? DefaultSystemPrompt { get; } = defaultSystemPrompt;

    /// <inheritdoc />
    public IReadOnlyList<string> StopSequences { get; } = ["<|im_end|>", "<|endoftext|>"];

    /// <inheritdoc />
    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(turns);
        ArgumentNullException.ThrowIfNull(tools);
        var prompt = new StringBuilder();
        bool leadingSystem = turns.Count > 0 && turns[0].Role == ChatRole.System;
        string? system = leadingSystem ? turns[0].Content : DefaultSystemPrompt;
        if (tools.Count > 0)
        {
            prompt.Append("<|im_start|>system\n");
            if (system is not null)
            {
                prompt.Append(system).Append("\n\n");
            }
            prompt.Append(ToolsPreamble);
            foreach (var tool in tools)
            {
                prompt.Append('\n').Append(PythonJson.Serialize(PythonJson.ToolEntry(tool)));
            }
            prompt.Append(ToolsPostamble);
        }
        else if (system is not null)
        {
            prompt.Append("<|im_start|>system\n").Append(system).Append("<|im_end|>\n");
        }

        for (int i = leadingSystem ? 1 : 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case ChatRole.Assistant:
                    prompt.Append("<|im_start|>assistant");
                    if (turn.ToolCalls.Count == 0 || turn.Content.Length > 0)
                    {
                        prompt.Append('\n').Append(turn.Content);
                    }
                    foreach (var call in turn.ToolCalls)
                    {
                        prompt.Append("\n<tool_call>\n{\"name\": \"").Append(call.Name).Append("\", \"arguments\": ")
                            .Append(PythonJson.Arguments(call.ArgumentsJson)).Append("}\n</tool_call>");
                    }
                    prompt.Append("<|im_end|>\n");
                    break;
                case ChatRole.Tool:
                    // Consecutive results share one user turn.
                    if (i == 0 || turns[i - 1].Role != ChatRole.Tool)
                    {
                        prompt.Append("<|im_start|>user");
                    }
                    prompt.Append("\n<tool_response>\n").Append(turn.Content).Append("\n</tool_response>");
                    if (i == turns.Count - 1 || turns[i + 1].Role != ChatRole.Tool)
                    {
                        prompt.Append("<|im_end|>\n");
                    }
                    break;
                default:
                    prompt.Append("<|im_start|>").Append(turn.Role == ChatRole.System ? "system" : "user").Append('\n')
                        .Append(turn.Content).Append("<|im_end|>\n");
                    break;
            }
        }
        if (addGenerationPrompt)
        {
            prompt.Append("<|im_start|>assistant\n");
        }
        return prompt.ToString();
    }

    /// <inheritdoc />
    public ParsedAssistantReply ParseReply(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        string text = reply;
        foreach (string stop in StopSequences)
        {
            if (text.EndsWith(stop, StringComparison.Ordinal))
            {
                text = text[..^stop.Length];
                break;
            }
        }
        int open = text.IndexOf(CallOpen, StringComparison.Ordinal);
        if (open < 0)
        {
            return new ParsedAssistantReply(text, []);
        }
        var calls = new List<ToolCall>();
        var content = new StringBuilder();
        int position = 0;
        while (open >= 0)
        {
            content.Append(text, position, open - position);
            int bodyStart = open + CallOpen.Length;
            int close = text.IndexOf(CallClose, bodyStart, StringComparison.Ordinal);
            // A reply cut off before </tool_call> still counts when its JSON is complete.
            string body = close < 0 ? text[bodyStart..] : text[bodyStart..close];
            if (!ToolCallJson.TryReadSingle(body, out var call, out string? error))
            {
                return new ParsedAssistantReply(text, [], $"tool call {calls.Count + 1}: {error}");
            }
            calls.Add(call);
            position = close < 0 ? text.Length : close + CallClose.Length;
            open = text.IndexOf(CallOpen, position, StringComparison.Ordinal);
        }
        content.Append(text, position, text.Length - position);
        return new ParsedAssistantReply(content.ToString().Trim(), calls);
    }
}

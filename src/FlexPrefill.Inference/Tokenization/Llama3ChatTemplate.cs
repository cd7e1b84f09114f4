using System.Text;
using System.Text.Json;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>Choices that Llama-3.x chat templates leave to the caller.</summary>
public sealed record Llama3TemplateOptions
{
    /// <summary>
    /// Write Llama-3.1's system header lines "Cutting Knowledge Date: December 2023" and "Today Date: …" and always
    /// open with a system turn (true, Llama-3.1 and later); false renders Llama-3.0's plain template.
    /// </summary>
    public bool DateHeader { get; init; } = true;

    /// <summary>The "Today Date" line's date (Llama-3.1's template default: "26 Jul 2024").</summary>
    public string TodayDate { get; init; } = "26 Jul 2024";

    /// <summary>Put the tool definitions in the first user turn (true, Llama-3.1's default) or in the system turn.</summary>
    public bool ToolsInUserMessage { get; init; } = true;
}

/// <summary>
/// Llama-3.x's chat format: <c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c> turns
/// after <c>&lt;|begin_of_text|&gt;</c>. Tools follow Llama-3.1's JSON tool calling: definitions as indented JSON in
/// the first user turn (or the system turn), an "Environment: ipython" system line, calls written as
/// <c>{"name": …, "parameters": {…}}</c> and results as <c>ipython</c> turns. Renders the same text as the Hugging Face
/// template of Meta-Llama-3.1-Instruct.
/// </summary>
public sealed class Llama3ChatTemplate(Llama3TemplateOptions? options = null) : IChatTemplate
{
    private const string CallFormat = "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n";
    private const string PythonTag = "<|python_tag|>";

    private readonly Llama3TemplateOptions _options = options ?? new();

    /// <inheritdoc />
    public string Name => "llama3";

    /// <inheritdoc />
    public IReadOnlyList<string> StopSequences { get; } = ["<|eot_id|>", "<|eom_id|>"];

    /// <summary>The options this template renders with.</summary>
    public Llama3TemplateOptions Options => _options;

    /// <inheritdoc />
    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(turns);
        ArgumentNullException.ThrowIfNull(tools);
        var prompt = new StringBuilder("<|begin_of_text|>");
        var rest = turns.ToList();
        string? system = null;
        if (rest.Count > 0 && rest[0].Role == ChatRole.System)
        {
            system = rest[0].Content.Trim();
            rest.RemoveAt(0);
        }
        bool hasTools = tools.Count > 0;
        bool toolsInUser = hasTools && _options.ToolsInUserMessage && rest.Count > 0 && rest[0].Role == ChatRole.User;

        if (_options.DateHeader || hasTools || system is not null)
        {
            Header(prompt, "system");
            if (hasTools)
            {
                prompt.Append("Environment: ipython\n");
            }
            if (_options.DateHeader)
            {
                prompt.Append("Cutting Knowledge Date: December 2023\nToday Date: ").Append(_options.TodayDate).Append("\n\n");
            }
            if (hasTools && !toolsInUser)
            {
                prompt.Append("You have access to the following functions. To call a function, please respond with JSON for a function call.").Append(CallFormat);
                AppendTools(prompt, tools);
            }
            prompt.Append(system).Append("<|eot_id|>");
        }
        if (toolsInUser)
        {
            Header(prompt, "user");
            prompt.Append("Given the following functions, please respond with a JSON for a function call ")
                .Append("with its proper arguments that best answers the given prompt.\n\n").Append(CallFormat);
            AppendTools(prompt, tools);
            prompt.Append(rest[0].Content.Trim()).Append("<|eot_id|>");
            rest.RemoveAt(0);
        }

        foreach (var turn in rest)
        {
            switch (turn.Role)
            {
                case ChatRole.Assistant when turn.ToolCalls.Count > 0:
                    // Llama-3.1 writes one call per turn; several are joined by "; ", which ParseReply reads back.
                    Header(prompt, "assistant");
                    prompt.AppendJoin("; ", turn.ToolCalls.Select(call =>
                        "{\"name\": \"" + call.Name + "\", \"parameters\": " + PythonJson.Arguments(call.ArgumentsJson) + "}"));
                    prompt.Append("<|eot_id|>");
                    break;
                case ChatRole.Tool:
                    Header(prompt, "ipython");
                    prompt.Append(ToolResult(turn.Content)).Append("<|eot_id|>");
                    break;
                default:
                    Header(prompt, RoleName(turn.Role));
                    prompt.Append(turn.Content.Trim()).Append("<|eot_id|>");
                    break;
            }
        }
        if (addGenerationPrompt)
        {
            Header(prompt, "assistant");
        }
        return prompt.ToString();
    }

    /// <inheritdoc />
    public ParsedAssistantReply ParseReply(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        string text = StripStop(reply);
        string body = text.Trim();
        bool tagged = body.StartsWith(PythonTag, StringComparison.Ordinal);
        if (tagged)
        {
            body = body[PythonTag.Length..].TrimStart();
        }
        // A call is the whole reply: a JSON object naming a function (optionally after <|python_tag|>).
        if (!tagged && !(body.StartsWith('{') && body.Contains("\"name\"", StringComparison.Ordinal)))
        {
            return new ParsedAssistantReply(text, []);
        }
        if (!ToolCallJson.TryReadSequence(body, out var calls, out string rest, out string? error))
        {
            return new ParsedAssistantReply(text, [], error);
        }
        return new ParsedAssistantReply(rest.Trim(), calls);
    }

    private string StripStop(string reply)
    {
        foreach (string stop in StopSequences)
        {
            if (reply.EndsWith(stop, StringComparison.Ordinal))
            {
                return reply[..^stop.Length];
            }
        }
        return reply;
    }

    private static void Header(StringBuilder prompt, string role) =>
        prompt.Append("<|start_header_id|>").Append(role).Append("<|end_header_id|>\n\n");

    private static void AppendTools(StringBuilder prompt, IReadOnlyList<ToolDefinition> tools)
    {
        foreach (var tool in tools)
        {
            prompt.Append(PythonJson.Serialize(PythonJson.ToolEntry(tool), indent: 4)).Append("\n\n");
        }
    }

    // Hugging Face's template passes results through tojson: a JSON object or array as given (Python style), other
    // text as a JSON string.
    private static string ToolResult(string content)
    {
        string trimmed = content.Trim();
        if (trimmed.StartsWith('{') || trimmed.StartsWith('['))
        {
            try
            {
                using var document = JsonDocument.Parse(trimmed);
                return PythonJson.Serialize(document.RootElement);
            }
            catch (JsonException)
            {
                // Not JSON after all: quoted below like any text.
            }
        }
        return PythonJson.Quote(content);
    }

    private static string RoleName(ChatRole role) => role switch
    {
        ChatRole.System => "system",
        ChatRole.User => "user",
        ChatRole.Assistant => "assistant",
        _ => "ipython",
    };
}

namespace FlexPrefill.Inference.Tokenization;

/// <summary>Author of a chat turn.</summary>
public enum ChatRole
{
    /// <summary>Instructions for the assistant.</summary>
    System,
    /// <summary>The person asking.</summary>
    User,
    /// <summary>The model.</summary>
    Assistant,
    /// <summary>A tool's result, answering an assistant tool call.</summary>
    Tool,
}

/// <summary>A tool call made by the assistant.</summary>
/// <param name="Id">Call id, unique within the conversation.</param>
/// <param name="Name">Function name.</param>
/// <param name="ArgumentsJson">Arguments as a JSON object.</param>
public sealed record ToolCall(string Id, string Name, string ArgumentsJson);

/// <summary>A function the model may call.</summary>
/// <param name="Name">Function name.</param>
/// <param name="Description">What it does, for the model.</param>
/// <param name="ParametersJsonSchema">JSON schema of its arguments object.</param>
public sealed record ToolDefinition(string Name, string Description, string ParametersJsonSchema);

/// <summary>One turn of a conversation, in the form every chat template renders.</summary>
/// <param name="Role">Author.</param>
/// <param name="Content">Text (for <see cref="ChatRole.Tool"/>: the result).</param>
public sealed record ChatTurn(ChatRole Role, string Content)
{
    /// <summary>Calls made in an assistant turn.</summary>
    public IReadOnlyList<ToolCall> ToolCalls { get; init; } = [];

    /// <summary>For a tool turn: the id of the call it answers.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>For a tool turn: the function that produced it.</summary>
    public string? ToolName { get; init; }
}

/// <summary>An assistant reply split into text and tool calls.</summary>
/// <param name="Content">Text outside tool calls.</param>
/// <param name="ToolCalls">Tool calls found.</param>
/// <param name="Error">Why a tool call that looked intended could not be parsed (the text is then returned as content); null when fine.</param>
public sealed record ParsedAssistantReply(string Content, IReadOnlyList<ToolCall> ToolCalls, string? Error = null);

/// <summary>A model family's chat format, written in C# (no Jinja): render prompts, parse replies.</summary>
public interface IChatTemplate
{
    /// <summary>Template name ("llama3", "chatml").</summary>
    string Name { get; }

    /// <summary>Renders the conversation and the tools into prompt text, special tokens written as text.</summary>
    /// <param name="turns">Conversation so far.</param>
    /// <param name="tools">Functions offered to the model; empty for none.</param>
    /// <param name="addGenerationPrompt">Append the header that starts the assistant's reply.</param>
    string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true);

    /// <summary>Splits a generated assistant reply into text and tool calls in this family's format.</summary>
    ParsedAssistantReply ParseReply(string reply);

    /// <summary>Strings that end an assistant turn in this format (besides the eos tokens).</summary>
    IReadOnlyList<string> StopSequences { get; }
}

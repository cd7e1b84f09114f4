using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.SemanticKernel.Tests.TestDoubles;

/// <summary>A real chat template that remembers the tools of its last render (scripts name the function from it).</summary>
public sealed class RecordingTemplate(IChatTemplate inner) : IChatTemplate
{
    public static RecordingTemplate Llama31() => new(new Llama3ChatTemplate());
    public static RecordingTemplate Qwen() => new(new ChatMlTemplate(ChatMlTemplate.QwenDefaultSystemPrompt));
    public static RecordingTemplate ChatMl() => new(new ChatMlTemplate());

    public IReadOnlyList<ToolDefinition> LastTools { get; private set; } = [];
    public string Name => inner.Name;
    public IReadOnlyList<string> StopSequences => inner.StopSequences;

    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition> tools, bool addGenerationPrompt = true)
    {
        LastTools = tools;
        return inner.Render(turns, tools, addGenerationPrompt);
    }

    public ParsedAssistantReply ParseReply(string reply) => inner.ParseReply(reply);
}

using FlexPrefill.Inference;
using FlexPrefill.Inference.Tokenization;

namespace FlexPrefill.Cli;

/// <summary>Turns the prompt arguments into token ids.</summary>
static class PromptTokens
{
    /// <summary>Ids given with --tokens, checked against the vocabulary.</summary>
    public static IReadOnlyList<int> Check(IReadOnlyList<int> ids, int vocabSize)
    {
        foreach (var id in ids)
        {
            if (id < 0 || id >= vocabSize)
                throw new UsageException($"--tokens: id {id} is outside the vocabulary [0, {vocabSize})");
        }
        return ids;
    }

    /// <summary>Text through the chat template (or as is with <paramref name="raw"/>), then the tokenizer.</summary>
    public static IReadOnlyList<int> FromText(LanguageModel model, string directory, string text, string? system, bool raw)
    {
        if (model.Tokenizer is null)
            throw new UsageException($"{directory} has no tokenizer.json: give the prompt as --tokens");
        if (raw)
        {
            var ids = model.Encode(text);
            // Base models expect BOS first, as Hugging Face's tokenizer adds it by default.
            return model.Tokenizer.BosId is int bos && (ids.Count == 0 || ids[0] != bos) ? [bos, .. ids] : ids;
        }
        List<ChatTurn> turns = system is null ? [] : [new ChatTurn(ChatRole.System, system)];
        turns.Add(new ChatTurn(ChatRole.User, text));
        return model.Encode(model.ChatTemplate.Render(turns, [], addGenerationPrompt: true));
    }
}

using System.Text.RegularExpressions;

namespace FlexPrefill.Inference.Tokenization;

/// <summary>Picks the C# chat template for a model folder.</summary>
public static partial class ChatTemplates
{
    /// <summary>
    /// The template for the model in <paramref name="modelDirectory"/>: chosen by the Jinja chat template the folder
    /// ships (tokenizer_config.json's <c>chat_template</c>, or chat_template.jinja / chat_template.json), else by
    /// config.json's <c>model_type</c> (llama → llama3, qwen2/qwen3 → chatml, mistral → mistral).
    /// </summary>
    /// <param name="modelDirectory">A Hugging Face model or tokenizer folder.</param>
    /// <param name="modelType">The architecture, when the caller has read config.json already; null reads it here.</param>
    /// <exception cref="ModelLoadException">Neither a known template nor a known model type was found.</exception>
    public static IChatTemplate ForModel(string modelDirectory, string? modelType = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDirectory);
        string? template = TokenizerConfig.ReadChatTemplate(Path.Combine(modelDirectory, "tokenizer_config.json"));
        string jinjaFile = Path.Combine(modelDirectory, "chat_template.jinja");
        if (template is null && File.Exists(jinjaFile))
        {
            template = File.ReadAllText(jinjaFile);
        }
        template ??= TokenizerConfig.ReadString(Path.Combine(modelDirectory, "chat_template.json"), "chat_template");
        modelType ??= TokenizerConfig.ReadString(Path.Combine(modelDirectory, "config.json"), "model_type");
        return FromTemplateText(template, modelType)
            ?? throw new ModelLoadException($"{modelDirectory}: no known chat template (looked for Llama-3 headers, ChatML or [INST] in " +
                $"tokenizer_config.json's chat_template or chat_template.jinja) and model_type \"{modelType ?? "(none)"}\" in config.json " +
                "is not one of llama, qwen2, qwen3, mistral");
    }

    /// <summary>
    /// The template matching a Jinja chat template's text (<c>&lt;|start_header_id|&gt;</c> → llama3,
    /// <c>&lt;|im_start|&gt;</c> → chatml, <c>[INST]</c> → mistral), else <paramref name="modelType"/>; null when neither is known.
    /// </summary>
    public static IChatTemplate? FromTemplateText(string? chatTemplate, string? modelType)
    {
        if (chatTemplate is not null)
        {
            if (chatTemplate.Contains("<|start_header_id|>", StringComparison.Ordinal))
            {
                var date = DateStringPattern().Match(chatTemplate);
                return new Llama3ChatTemplate(new Llama3TemplateOptions
                {
                    DateHeader = chatTemplate.Contains("Cutting Knowledge Date", StringComparison.Ordinal),
                    TodayDate = date.Success ? date.Groups[1].Value : new Llama3TemplateOptions().TodayDate,
                });
            }
            if (chatTemplate.Contains("<|im_start|>", StringComparison.Ordinal))
            {
                return new ChatMlTemplate(chatTemplate.Contains(ChatMlTemplate.QwenDefaultSystemPrompt, StringComparison.Ordinal)
                    ? ChatMlTemplate.QwenDefaultSystemPrompt
                    : null);
            }
            if (chatTemplate.Contains("[INST]", StringComparison.Ordinal))
            {
                return new MistralChatTemplate();
            }
        }
        return modelType switch
        {
            "llama" => new Llama3ChatTemplate(),
            "qwen2" => new ChatMlTemplate(ChatMlTemplate.QwenDefaultSystemPrompt),
            "qwen3" or "qwen2_moe" or "qwen3_moe" => new ChatMlTemplate(),
            "mistral" => new MistralChatTemplate(),
            _ => null,
        };
    }

    [GeneratedRegex("date_string\\s*=\\s*\"([^\"]+)\"")]
    private static partial Regex DateStringPattern();
}

using FlexPrefill.Inference.Tokenization;
using static FlexPrefill.Inference.Tests.Tokenization.ChatTemplateScenarios;

namespace FlexPrefill.Inference.Tests.Tokenization;

public sealed class ChatTemplatesTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("flexprefill-tpl-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void The_Llama_3_folder_gets_the_plain_Llama_3_template_its_jinja_renders()
    {
        TokenizerTestData.Tokenizer("llama3");
        var template = Assert.IsType<Llama3ChatTemplate>(ChatTemplates.ForModel(TokenizerTestData.TokenizerDirectory("llama3")));
        Assert.False(template.Options.DateHeader);
        Assert.Equal(ExpectedPrompts.Llama30MultiTurn, template.Render(MultiTurn, []));
    }

    [Fact]
    public void The_Qwen3_folder_gets_chatml_without_a_default_system_prompt()
    {
        TokenizerTestData.Tokenizer("qwen3");
        var template = Assert.IsType<ChatMlTemplate>(ChatTemplates.ForModel(TokenizerTestData.TokenizerDirectory("qwen3")));
        Assert.Null(template.DefaultSystemPrompt);
        Assert.Equal(ExpectedPrompts.Qwen3ToolCallAndResult, template.Render(ToolCallAndResult, [Weather]));
    }

    [Fact]
    public void A_Llama_3_1_template_in_chat_template_jinja_selects_the_date_header_and_its_date()
    {
        File.WriteAllText(Path.Combine(_directory, "chat_template.jinja"),
            "{%- set date_string = \"01 Dec 2026\" %}{{ '<|start_header_id|>' }}Cutting Knowledge Date: December 2023");
        var template = Assert.IsType<Llama3ChatTemplate>(ChatTemplates.ForModel(_directory));
        Assert.True(template.Options.DateHeader);
        Assert.Equal("01 Dec 2026", template.Options.TodayDate);
    }

    [Fact]
    public void A_Qwen2_5_template_keeps_its_default_system_prompt()
    {
        File.WriteAllText(Path.Combine(_directory, "tokenizer_config.json"),
            "{\"chat_template\": \"{{'<|im_start|>system\\\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>'}}\"}");
        var template = Assert.IsType<ChatMlTemplate>(ChatTemplates.ForModel(_directory));
        Assert.Equal(ChatMlTemplate.QwenDefaultSystemPrompt, template.DefaultSystemPrompt);
    }

    [Theory]
    [InlineData("llama", "llama3")]
    [InlineData("qwen2", "chatml")]
    [InlineData("qwen3", "chatml")]
    [InlineData("mistral", "mistral")]
    public void Without_a_template_the_model_type_decides(string modelType, string expected)
    {
        File.WriteAllText(Path.Combine(_directory, "config.json"), $"{{\"model_type\": \"{modelType}\"}}");
        Assert.Equal(expected, ChatTemplates.ForModel(_directory).Name);
        Assert.Equal(expected, ChatTemplates.FromTemplateText(null, modelType)!.Name);
    }

    [Fact]
    public void An_unknown_model_without_a_template_is_a_load_error_naming_it()
    {
        File.WriteAllText(Path.Combine(_directory, "config.json"), "{\"model_type\": \"gpt2\"}");
        var error = Assert.Throws<ModelLoadException>(() => ChatTemplates.ForModel(_directory));
        Assert.Contains("\"gpt2\"", error.Message);
        Assert.Contains(_directory, error.Message);
    }
}

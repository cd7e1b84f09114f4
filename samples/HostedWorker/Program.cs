using FlexPrefill.Samples.HostedWorker;
using FlexPrefill.Samples.HostedWorker.Jobs;
using FlexPrefill.SemanticKernel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.SemanticKernel;

// appsettings.json ships beside the program (the content root), so `dotnet run --project` and a published folder both
// find it; relative folders and the model path in it are relative to the current directory.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddJobWorker(builder.Configuration, baseFolder: Directory.GetCurrentDirectory());
// The model: options from the "FlexPrefill" section, validated on start, loaded by the worker's warm-up service.
builder.Services.AddFlexPrefillChatCompletion(builder.Configuration.GetSection(FlexPrefillServiceOptions.SectionName));
builder.Services.AddSingleton(new JobPromptSettings(maxTokens => new FlexPrefillPromptExecutionSettings { MaxTokens = maxTokens, Temperature = 0 }));
builder.Build().Run();

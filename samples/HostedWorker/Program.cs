using FlexPrefill.Samples.HostedWorker;
using FlexPrefill.Samples.HostedWorker.Jobs;
using FlexPrefill.SemanticKernel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.SemanticKernel;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddJobWorker(builder.Configuration);
// The model: options from the "FlexPrefill" section, validated on start, loaded by the worker's warm-up service.
builder.Services.AddFlexPrefillChatCompletion(builder.Configuration.GetSection(FlexPrefillServiceOptions.SectionName));
builder.Services.AddSingleton(new JobPromptSettings(maxTokens => new FlexPrefillPromptExecutionSettings { MaxTokens = maxTokens, Temperature = 0 }));
builder.Build().Run();

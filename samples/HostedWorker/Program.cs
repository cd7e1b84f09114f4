using FlexPrefill.Samples.HostedWorker;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddJobWorker(builder.Configuration);
builder.Build().Run();

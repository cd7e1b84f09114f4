using FlexPrefill.Inference;
using FlexPrefill.Inference.Generation;
using Spectre.Console;

namespace FlexPrefill.Samples;

/// <summary>Console pieces the two console samples share: a spinner while loading, a bar while prefilling.</summary>
public static class SampleConsole
{
    /// <summary>Runs <paramref name="load"/> off the console thread under a spinner.</summary>
    public static Task<T> LoadingAsync<T>(string what, Func<T> load) =>
        AnsiConsole.Status().StartAsync($"Loading {Markup.Escape(what)}…", _ => Task.Run(load));

    /// <summary>
    /// Runs one model call with a progress bar fed by the engine's prefill progress (layers × tokens), which turns
    /// into "generating" once the prompt is in the KV cache.
    /// </summary>
    public static Task<T> WithPrefillBarAsync<T>(string label, Func<IProgress<PrefillProgress>, Task<T>> call) =>
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                var result = await call(new BarProgress(task, label));
                task.Value = task.MaxValue;
                task.StopTask();
                return result;
            });

    /// <summary>
    /// Runs a sample's body and turns the failures every sample shares into exit codes: a model that cannot be loaded
    /// 2, cancellation (Ctrl+C) 130. The body handles its own failures (an answer not produced, a context exceeded).
    /// </summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is ModelLoadException || e.InnerException is ModelLoadException)
        {
            return Fail($"the model could not be loaded: {(e as ModelLoadException ?? e.InnerException)!.Message}", 2);
        }
        catch (OperationCanceledException)
        {
            return Fail("cancelled", 130);
        }
    }

    /// <summary>Prints an error in red to stderr and returns <paramref name="exitCode"/>.</summary>
    public static int Fail(string message, int exitCode = 1)
    {
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        err.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
        return exitCode;
    }

    // Called on the inference thread: only sets two fields of the task (Spectre's ProgressTask locks internally).
    sealed class BarProgress(ProgressTask task, string label) : IProgress<PrefillProgress>
    {
        public void Report(PrefillProgress value)
        {
            task.Value = value.Fraction;
            task.Description = Markup.Escape(value.Fraction >= 1
                ? $"{label}: prefilled {value.Tokens:N0} tokens, generating"
                : $"{label}: prefill {value.Tokens:N0} tokens");
        }
    }
}

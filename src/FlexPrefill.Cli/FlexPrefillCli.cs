using System.CommandLine;
using System.Text.RegularExpressions;
using FlexPrefill.Cli.Commands;

namespace FlexPrefill.Cli;

/// <summary>
/// The <c>flexprefill</c> command line: generate, logits, inspect, bench. Exit codes: 0 done, 1 the work failed
/// (model load, CUDA, out of memory), 2 bad arguments. Every error is one line on the error writer.
/// </summary>
public static partial class FlexPrefillCli
{
    /// <summary>Exit code of a successful run.</summary>
    public const int Success = 0;
    /// <summary>Exit code when the work itself failed.</summary>
    public const int Failure = 1;
    /// <summary>Exit code for bad arguments.</summary>
    public const int UsageError = 2;

    /// <summary>Parses <paramref name="args"/> and runs the command, writing results to <paramref name="output"/>
    /// and diagnostics to <paramref name="error"/>.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) =>
        RunAsync(args, output, error).GetAwaiter().GetResult();

    /// <inheritdoc cref="Run"/>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = BuildRootCommand();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // System.CommandLine reports some errors over several lines ("Must be one of:\n\t'cpu'..."): fold them.
            var messages = parse.Errors.Select(e => Whitespace().Replace(e.Message, " ").Trim()).Distinct();
            error.WriteLine($"flexprefill: {string.Join("; ", messages)} (see --help)");
            return UsageError;
        }

        try
        {
            var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
            return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            error.WriteLine($"flexprefill: {OneLine(e.Message)}");
            return UsageError;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("flexprefill: cancelled");
            return Failure;
        }
        catch (Exception e)
        {
            error.WriteLine($"flexprefill: error: {OneLine(e.Message)}");
            return Failure;
        }
    }

    static RootCommand BuildRootCommand()
    {
        var root = new RootCommand("FlexPrefill: local transformer inference on TorchSharp with FlexPrefill sparse-attention prefill.");
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(LogitsCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        return root;
    }

    static string OneLine(string message) => Whitespace().Replace(message, " ").Trim();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}

/// <summary>Arguments that parse but make no sense together or name something that is not there (exit code 2).</summary>
sealed class UsageException(string message) : Exception(message);

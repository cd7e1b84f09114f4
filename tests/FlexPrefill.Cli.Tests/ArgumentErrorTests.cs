namespace FlexPrefill.Cli.Tests;

public sealed class ArgumentErrorTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("flexprefill-cli-args-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string, string> BadArguments => new()
    {
        // {0} stands for an existing (empty) folder: the errors must come before any model is loaded.
        { "", "command" },
        { "frobnicate", "frobnicate" },
        { "generate --model /no/such/folder --tokens 1", "/no/such/folder" },
        { "generate --model {0}", "exactly one of --prompt, --prompt-file, --tokens" },
        { "generate --model {0} --prompt hi --tokens 1,2", "exactly one of" },
        { "generate --model {0} --prompt-file /no/such/prompt.txt", "/no/such/prompt.txt" },
        { "generate --model {0} --tokens 1,x,3", "'x' is not an integer" },
        { "generate --model {0} --tokens 1 --raw", "--raw" },
        { "generate --model {0} --prompt hi --raw --system be-brief", "--system" },
        { "generate --model {0} --tokens 1 --max-tokens 0", "--max-tokens" },
        { "generate --model {0} --tokens 1 --max-tokens many", "many" },
        { "generate --model {0} --tokens 1 --temperature -1", "--temperature" },
        { "generate --model {0} --tokens 1 --top-p 0", "--top-p" },
        { "generate --model {0} --tokens 1 --top-k -2", "--top-k" },
        { "generate --model {0} --tokens 1 --device gpu", "gpu" },
        { "generate --model {0} --tokens 1 --dtype int8", "int8" },
        { "generate --model {0} --tokens 1 --attention sparse", "sparse" },
        { "generate --model {0} --tokens 1 --gamma 0.9", "--attention flexprefill" },
        { "generate --model {0} --tokens 1 --attention flexprefill --gamma 1.5", "gamma" },
        { "generate --model {0} --tokens 1 --attention flexprefill --min-budget -1", "min-budget" },
        { "generate --model {0} --tokens 1 --bogus", "--bogus" },
        { "logits --model {0}", "--tokens" },
        { "logits --model {0} --tokens 1,2 --positions 2", "--positions: 2" },
        { "logits --model {0} --tokens 1,2 --positions -3", "--positions: -3" },
        { "inspect --model /no/such/folder", "/no/such/folder" },
        { "bench --config gpt-5", "gpt-5" },
        { "bench --config tiny --model {0}", "--config or --model" },
        { "bench --config tiny --lengths 0", "--lengths" },
        { "bench --config tiny --attention dense,sparse", "--attention" },
        { "bench --config tiny --decode-steps -1", "--decode-steps" },
        { "bench --config tiny --weights uniform", "'uniform' not recognized. Must be one of: 'gaussian' 'structured'" },
        { "bench --model {0} --weights structured", "--weights" },
    };

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void Bad_arguments_give_one_error_line_and_exit_code_2(string commandLine, string mentioned)
    {
        var args = string.Format(System.Globalization.CultureInfo.InvariantCulture, commandLine, _folder)
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);

        var run = CliRun.Of(args);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(mentioned, run.OneErrorLine());
        Assert.StartsWith("flexprefill: ", run.Error);
        Assert.Equal("", run.Output);
    }

    [Fact]
    public void Help_lists_every_command_and_exits_0()
    {
        var run = CliRun.Of("--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var command in new[] { "generate", "logits", "inspect", "bench" })
            Assert.Contains(command, run.Output);
    }

    [Fact]
    public void Generate_help_documents_the_contract_options()
    {
        var run = CliRun.Of("generate", "--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var option in new[] { "--model", "--prompt", "--prompt-file", "--tokens", "--system", "--raw", "--max-tokens", "--temperature",
                     "--top-p", "--top-k", "--seed", "--attention", "--device", "--dtype", "--json", "--gamma", "--tau", "--min-budget" })
            Assert.Contains(option, run.Output);
    }
}

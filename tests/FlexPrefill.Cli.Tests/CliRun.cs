namespace FlexPrefill.Cli.Tests;

/// <summary>One in-process run of the command line: exit code and what it wrote.</summary>
sealed record CliRun(int ExitCode, string Output, string Error)
{
    public static CliRun Of(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = FlexPrefillCli.Run(args, output, error);
        return new CliRun(code, output.ToString(), error.ToString());
    }

    /// <summary>The error text, asserted to be exactly one line.</summary>
    public string OneErrorLine()
    {
        var lines = Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one error line, got {lines.Length}:\n{Error}");
        return lines[0];
    }
}

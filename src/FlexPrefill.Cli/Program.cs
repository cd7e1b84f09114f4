return await FlexPrefill.Cli.FlexPrefillCli.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);

// Placeholder entry point until the commands land (generate, logits, inspect, bench).
Console.Error.WriteLine("flexprefill: no commands yet");
return 2;

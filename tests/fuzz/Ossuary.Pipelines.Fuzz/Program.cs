using Ossuary.Pipelines.Fuzzing;
using SharpFuzz;

// Usage:
//   Ossuary.Pipelines.Fuzz TARGET                  run TARGET under afl-fuzz (persistent, SharpFuzz)
//   Ossuary.Pipelines.Fuzz --seeds TARGET DIR      write TARGET's seed corpus (from the vectors) into DIR
//   Ossuary.Pipelines.Fuzz --replay TARGET FILE... run TARGET once on each file; exit 1 if any crashes
// Targets: frame, handshake-server, handshake-client, records.
// OSSUARY_FUZZ_INPROCESS=1 uses Fuzzer.Run (one process) instead of Fuzzer.OutOfProcess.Run.

if (args.Length >= 3 && args[0] == "--seeds")
{
    Directory.CreateDirectory(args[2]);
    int count = 0;
    foreach ((string name, byte[] input) in FuzzSeeds.For(args[1]))
    {
        FuzzTargets.Run(args[1], input); // a seed must pass, or the corpus would start with a crash
        File.WriteAllBytes(Path.Combine(args[2], name), input);
        count++;
    }

    Console.WriteLine($"{count} seeds for {args[1]} in {args[2]}");
    return 0;
}

if (args.Length >= 2 && args[0] == "--replay")
{
    int failures = 0;
    foreach (string file in args.Skip(2))
    {
        try
        {
            FuzzOutcome outcome = FuzzTargets.Run(args[1], File.ReadAllBytes(file));
            Console.WriteLine($"ok      {file}: {outcome}");
        }
        catch (Exception e)
        {
            failures++;
            Console.WriteLine($"CRASH   {file}: {e.GetType().Name}: {e.Message}");
        }
    }

    return failures == 0 ? 0 : 1;
}

if (args.Length != 1 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Ossuary.Pipelines.Fuzz TARGET | --seeds TARGET DIR | --replay TARGET FILE...; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}

string target = args[0];
// Nothing may touch the instrumented library before Fuzzer.Run has mapped AFL's shared memory
// (the instrumentation writes there): the vectors load lazily in the first run, which SharpFuzz
// runs once as a warm-up before it reports coverage.
var buffer = new MemoryStream();
Action<Stream> run = stream =>
{
    buffer.SetLength(0);
    stream.CopyTo(buffer);
    FuzzTargets.Run(target, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
};

if (Environment.GetEnvironmentVariable("OSSUARY_FUZZ_INPROCESS") == "1")
{
    Fuzzer.Run(run);
}
else
{
    Fuzzer.OutOfProcess.Run(run);
}

return 0;

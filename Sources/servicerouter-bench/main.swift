// servicerouter-bench: arguments → the benchmark runner (Sources/ServiceRouterBench).
import Foundation
import ServiceRouterBench
import ServiceRouterIO

// As `servicerouter` does: the controller's memory is measured as it runs there.
MallocTuning.apply()
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "_sim" {
    // The simulator as a child process (the benchmarks start it; not for direct use).
    exit(await SimulatorChild.run(Array(arguments.dropFirst())))
}
if arguments.first == "_profile" {
    // The pure steps of a full pass on a captured payload, for perf and callgrind.
    exit(CoreProfile.run(Array(arguments.dropFirst())))
}

let options: BenchOptions
do {
    // Re-executing ourselves for the simulator child: the path of this very binary.
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var o = try BenchOptions.parse(arguments, executable: executable)
    o.progress = { line in FileHandle.standardError.write(Data(("bench: " + line + "\n").utf8)) }
    options = o
} catch {
    let message = "\(error)"
    if !message.isEmpty { FileHandle.standardError.write(Data("servicerouter-bench: \(message)\n".utf8)) }
    FileHandle.standardError.write(Data((BenchOptions.usage + "\n").utf8))
    exit(message.isEmpty ? 0 : 2)
}

do {
    let results = try await BenchRunner.run(options)
    FileHandle.standardOutput.write(Data((BenchReport.text(results) + "\n").utf8))
    if let path = options.jsonPath {
        try (try results.json() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        FileHandle.standardError.write(Data("bench: results written to \(path)\n".utf8))
    }
    // Speed targets are reported; only broken behaviour (failed requests, reloads, commands on an
    // idle resync) makes the run fail.
    exit(results.correctnessPassed ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("servicerouter-bench: \(error)\n".utf8))
    exit(1)
}

import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

/// `servicerouter-bench _profile --apps-json FILE [--servers-state FILE] [--iterations N]
/// [--phase P]`: the pure steps of a full pass on a captured payload, without I/O, so that
/// `perf` and `valgrind --tool=callgrind` see only them. Prints wall and thread-CPU medians per
/// phase. `--phase P` repeats only P (`--iterations` times) and runs it through `selected`, for
/// callgrind's instruction counts.
public enum CoreProfile {
    public static func run(_ args: [String]) -> Int32 {
        var appsFile: String?, stateFile: String?, iterations = 5, only: String?
        var i = 0
        while i < args.count {
            let next = i + 1 < args.count ? args[i + 1] : ""
            switch args[i] {
            case "--apps-json": appsFile = next
            case "--servers-state": stateFile = next
            case "--iterations": iterations = max(1, Int(next) ?? 5)
            case "--phase": only = next
            default:
                FileHandle.standardError.write(Data("_profile: unknown argument \(args[i])\n".utf8))
                return 2
            }
            i += 2
        }
        guard let appsFile, let data = FileManager.default.contents(atPath: appsFile) else {
            FileHandle.standardError.write(Data("_profile: --apps-json FILE is required\n".utf8))
            return 2
        }
        do {
            try profile(Array(data), stateText: stateFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) },
                        iterations: iterations, only: only)
            return 0
        } catch {
            FileHandle.standardError.write(Data("_profile: \(error)\n".utf8))
            return 1
        }
    }

    /// The phase chosen with `--phase` runs through here, so callgrind can count it alone:
    /// `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*CoreProfile*selected*' ...`
    @inline(never)
    static func selected<T>(_ body: () throws -> T) rethrows -> T { try body() }

    static func profile(_ payload: [UInt8], stateText: String?, iterations: Int, only: String?) throws {
        var rows: [[String]] = [["phase", "wall ms (median)", "CPU ms (median)", "runs", "peak RSS MB", "RSS after MB"]]
        func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            var walls: [Double] = [], cpus: [Double] = []
            var result: T?
            let runs = only == nil || only == name ? iterations : 1
            for _ in 0..<runs {
                let w = Monotonic.now(), c = CPUClock.thread()
                result = try only == name ? selected(body) : body()
                cpus.append(ms(CPUClock.thread() - c))
                walls.append(ms(Monotonic.now() - w))
            }
            if only == nil || only == name {
                rows.append([name, String(format: "%.2f", Summary(walls).median), String(format: "%.2f", Summary(cpus).median), String(runs),
                             String(format: "%.1f", Double(ProcessMemory.peakRSS) / 1_048_576), String(format: "%.1f", Double(ProcessMemory.currentRSS) / 1_048_576)])
            }
            ProcessMemory.resetPeak()
            return result!
        }
        let settings = RoutingOptions(groups: ["*"], healthCheck: false, reservedPorts: [])
        ProcessMemory.resetPeak()
        let decoded = try measure("decode") { try MarathonDecoding.apps(from: payload) }
        let apps = decoded.apps.sorted { $0.id < $1.id }
        let desired = measure("build") { DesiredStateBuilder.build(apps: apps, options: settings) }
        let fresh = SlotPlanner.plan(desired: desired, live: LiveState())
        // The live state HAProxy would report once the fresh plan is applied.
        var servers: [LiveServer] = []
        for b in fresh.backends {
            for (n, slot) in b.slots.enumerated() {
                let e = slot?.endpoint ?? SlotPlanner.placeholder
                servers.append(LiveServer(backend: b.backend, name: SlotPlanner.slotName(n + 1), serverID: n + 1, address: e.ip.text,
                                          port: e.port.value, adminFlags: slot == nil ? 0x05 : 0x04))
            }
        }
        let live = LiveState(servers: servers)
        let idle = measure("plan") { SlotPlanner.plan(desired: desired, live: live) }
        guard idle.commands.isEmpty else { throw BenchError("the idle plan has \(idle.commands.count) commands") }
        let templates = try TemplateSet()
        let render = RenderOptions(adminSocket: "/tmp/admin.sock", httpPort: 80, appIdPort: nil, stats: nil)
        let rendered = try measure("render") { try ConfigRenderer.render(desired: desired, plan: idle, templates: templates, options: render) }
        if let stateText {
            let bytes = Array(stateText.utf8) + [0x0A]
            let text = measure("split reply") { () -> String in
                var splitter = RuntimeReplySplitter()
                splitter.feed(bytes)
                return splitter.replies.first ?? ""
            }
            let parsed = try measure("parse servers state") { try RuntimeReplyParsers.serversState(text) }
            _ = parsed.serverCount
        }
        print("apps \(apps.count), tasks \(desired.serverCount), slots \(servers.count), config \(rendered.text.utf8.count) bytes")
        print(BenchReport.table(rows), terminator: "")
    }
}

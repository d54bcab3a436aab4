import Foundation

/// What to run and how big. `smoke` shrinks everything to a few seconds (the test suite runs it).
public struct BenchOptions: Sendable {
    public enum Scenario: String, Sendable, CaseIterable {
        case convergence, churn, scale, vhost, idle, bluegreen, all
    }

    public var scenario: Scenario = .all
    /// Background apps × tasks for the scale and convergence scenarios (10,000 tasks by default).
    public var apps = 1000
    public var tasksPerApp = 10
    /// Convergence: task replacements measured.
    public var replacements = 200
    /// Churn: seconds of load and churn per mode.
    public var duration = 60.0
    /// Churn: task replacements per second.
    public var changeRate = 10.0
    /// Churn: requests per second per load target (4 targets: 2 apps × keep-alive/new connection).
    public var loadRate = 250.0
    /// Scale: task changes measured at full size, and idle full resyncs.
    public var scaleChanges = 100
    public var resyncRuns = 7
    /// Vhost: label changes that move an app to a new virtual host.
    public var vhostMoves = 20
    /// Bluegreen: instances of each colour of the zdd deploy.
    public var blueGreenInstances = 10
    /// Idle: seconds an idle `servicerouter run` is measured.
    public var idleSeconds = 60.0
    /// Seconds a killed task keeps serving (TASK_KILLING) before TASK_KILLED.
    public var killGrace = 0.5
    public var smoke = false
    public var jsonPath: String?
    public var placement: SimulatorPlacement = .inProcess
    public var haproxyBinary = "haproxy"
    /// Progress lines (stderr in the binary, nothing in tests).
    public var progress: @Sendable (String) -> Void = { _ in }

    public init() {}

    /// Seconds-long versions of everything.
    public static func smoke(placement: SimulatorPlacement = .inProcess) -> BenchOptions {
        var o = BenchOptions()
        o.smoke = true
        o.apps = 20
        o.tasksPerApp = 3
        o.replacements = 12
        o.duration = 4
        o.changeRate = 4
        o.loadRate = 50
        o.scaleChanges = 6
        o.resyncRuns = 3
        o.vhostMoves = 3
        o.idleSeconds = 2
        o.blueGreenInstances = 3
        o.killGrace = 1
        o.placement = placement
        return o
    }

    public var runs: Set<Scenario> {
        scenario == .all ? [.convergence, .churn, .scale, .vhost, .idle, .bluegreen] : [scenario]
    }

    public static let usage = """
        usage: servicerouter-bench [options]
          --scenario S         convergence | churn | scale | vhost | idle | bluegreen | all (default all)
          --replacements N     convergence: task replacements measured (default 200)
          --duration S         churn: seconds of load and churn per mode (default 60)
          --change-rate N      churn: task replacements per second (default 10)
          --load-rate N        churn: requests/s per load target, 4 targets (default 250)
          --apps N             scale and convergence: apps (default 1000)
          --tasks-per-app N    scale and convergence: tasks per app (default 10)
          --scale-changes N    scale: task changes measured at full size (default 100)
          --resyncs N          scale: idle full resyncs measured (default 7)
          --vhost-moves N      vhost: HAPROXY_0_VHOST changes measured (default 20)
          --idle-seconds S     idle: seconds an idle servicerouter run is measured (default 60)
          --bluegreen-instances N  bluegreen: instances of each colour of the zdd deploy (default 10)
          --smoke              a seconds-long version of everything (small counts, short durations)
          --json FILE          also write the results as JSON
          --in-process-sim     run the simulator in this process (default: a child process, so the
                               controller's memory and CPU are measured alone)
          --haproxy-bin PATH   haproxy binary (default haproxy)
        Runs on 127.0.0.1 only: HAProxy 2.6 (master-worker), the Marathon simulator with real task
        listeners, and the controller, wired as `servicerouter run` wires them.
        """

    /// Parses the command line (`arguments` without the program name).
    public static func parse(_ arguments: [String], executable: String) throws -> BenchOptions {
        var o = BenchOptions()
        o.placement = .childProcess(executable: executable)
        var explicit: [String: String] = [:]
        var i = 0
        func value(_ name: String) throws -> String {
            guard i + 1 < arguments.count else { throw BenchError("\(name) needs a value") }
            i += 1
            return arguments[i]
        }
        while i < arguments.count {
            var arg = arguments[i]
            var inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                inline = String(arg[arg.index(after: eq)...])
                arg = String(arg[..<eq])
            }
            switch arg {
            case "--smoke": o.smoke = true
            case "--in-process-sim": o.placement = .inProcess
            case "-h", "--help": throw BenchError("")
            case "--scenario", "--replacements", "--duration", "--change-rate", "--load-rate", "--apps", "--tasks-per-app",
                 "--scale-changes", "--resyncs", "--vhost-moves", "--idle-seconds", "--json", "--haproxy-bin", "--bluegreen-instances":
                explicit[arg] = try inline ?? value(arg)
            default: throw BenchError("unknown option \(arg)")
            }
            i += 1
        }
        if o.smoke {
            let placement = o.placement
            o = .smoke(placement: placement)
        }
        func int(_ k: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = explicit[k] else { return nil }
            guard let n = Int(v), range.contains(n) else { throw BenchError("\(k): expected \(range.lowerBound)...\(range.upperBound), got \(v)") }
            return n
        }
        func double(_ k: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let v = explicit[k] else { return nil }
            guard let n = Double(v), range.contains(n) else { throw BenchError("\(k): expected \(range.lowerBound)...\(range.upperBound), got \(v)") }
            return n
        }
        if let s = explicit["--scenario"] {
            guard let sc = Scenario(rawValue: s) else { throw BenchError("--scenario: expected convergence, churn, scale, vhost, idle, bluegreen or all") }
            o.scenario = sc
        }
        o.replacements = try int("--replacements", 1...100_000) ?? o.replacements
        o.duration = try double("--duration", 1...3600) ?? o.duration
        o.changeRate = try double("--change-rate", 0.1...100) ?? o.changeRate
        o.loadRate = try double("--load-rate", 1...2000) ?? o.loadRate
        o.apps = try int("--apps", 1...5000) ?? o.apps
        o.tasksPerApp = try int("--tasks-per-app", 1...100) ?? o.tasksPerApp
        o.scaleChanges = try int("--scale-changes", 1...10_000) ?? o.scaleChanges
        o.resyncRuns = try int("--resyncs", 1...1000) ?? o.resyncRuns
        o.vhostMoves = try int("--vhost-moves", 1...1000) ?? o.vhostMoves
        o.blueGreenInstances = try int("--bluegreen-instances", 1...100) ?? o.blueGreenInstances
        if let v = explicit["--idle-seconds"] {
            guard let d = Double(v), d > 0, d <= 3600 else { throw BenchError("--idle-seconds: expected 0-3600") }
            o.idleSeconds = d
        }
        o.jsonPath = explicit["--json"]
        o.haproxyBinary = explicit["--haproxy-bin"] ?? o.haproxyBinary
        return o
    }
}

#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// `servicerouter sim ...`: runs a simulator with demo apps until SIGINT/SIGTERM (or
/// `--duration`), then stops everything. Everything runs in this process: no child processes.
public enum SimulatorCommand {
    public static let usage = """
        usage: servicerouter sim [options]
          --port P               REST port on 127.0.0.1 (default 8080; 0 = any free port)
          --apps N               demo apps /demo/app-001... (default 3)
          --tasks-per-app M      instances per demo app (default 2)
          --group NAME           HAPROXY_GROUP label of the demo apps (default external)
          --service-port-base P  service ports of the demo apps: P, P+1, ... (default: allocated
                                 from 10000, as Marathon's local_port_min)
          --no-health-checks     demo apps without an HTTP health check
          --scenario FILE        run a scenario file (see Sources/MarathonSimulator/README.md)
          --credentials U:P      require HTTP basic auth
          --heartbeat S          event stream heartbeat interval (default 10; 0 = none)
          --kill-grace S         TASK_KILLING duration (default 0.5)
          --start-delay S        TASK_STAGING -> TASK_RUNNING delay (default 0)
          --standby-of URL       run as a standby redirecting to the leader at URL
          --redirect-status N    307 (default) or 302
          --duration S           exit after S seconds (default: run until SIGINT/SIGTERM)
          --log-level L          debug, info (default), warning, error
        """

    struct Arguments {
        var options = MarathonSimulator.Options(port: 8080, logger: .stderr())
        var apps = 3
        var tasksPerApp = 2
        var group = "external"
        var servicePortBase: Int?
        var healthChecks = true
        var scenario: String?
        var duration: Double?
    }

    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ arguments: [String]) throws -> Arguments {
        var a = Arguments()
        var i = 0
        func value() throws -> String {
            guard i + 1 < arguments.count else { throw UsageError(description: "\(arguments[i]) needs a value") }
            i += 1
            return arguments[i]
        }
        func number(_ text: String, _ name: String) throws -> Double {
            guard let d = Double(text), d >= 0, d.isFinite else { throw UsageError(description: "\(name): not a number: \(text)") }
            return d
        }
        func count(_ text: String, _ name: String, max: Int) throws -> Int {
            guard let n = Int(text), n >= 0, n <= max else { throw UsageError(description: "\(name): expected 0...\(max), got \(text)") }
            return n
        }
        while i < arguments.count {
            let arg = arguments[i]
            switch arg {
            case "--port": a.options.port = try count(try value(), arg, max: 65535)
            case "--host":
                let host = try value()
                guard host.hasPrefix("127.") || host == "localhost" else {
                    throw UsageError(description: "--host must be a loopback address (127.x.x.x)")
                }
                a.options.host = host
            case "--apps": a.apps = try count(try value(), arg, max: 10_000)
            case "--tasks-per-app": a.tasksPerApp = try count(try value(), arg, max: 100)
            case "--group": a.group = try value()
            case "--service-port-base":
                let base = try count(try value(), arg, max: 65535)
                guard base >= 1 else { throw UsageError(description: "--service-port-base: expected 1...65535, got 0") }
                a.servicePortBase = base
            case "--no-health-checks": a.healthChecks = false
            case "--scenario": a.scenario = try value()
            case "--credentials":
                let text = try value()
                guard let colon = text.firstIndex(of: ":") else { throw UsageError(description: "--credentials needs user:password") }
                a.options.credentials = .init(user: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            case "--heartbeat":
                let s = try number(try value(), arg)
                a.options.heartbeatInterval = s > 0 ? s : nil
            case "--kill-grace": a.options.killGracePeriod = try number(try value(), arg)
            case "--start-delay": a.options.taskStartDelay = try number(try value(), arg)
            case "--standby-of": a.options.standbyLeaderURL = try value()
            case "--redirect-status":
                let n = try count(try value(), arg, max: 399)
                guard n == 302 || n == 307 else { throw UsageError(description: "--redirect-status must be 302 or 307") }
                a.options.redirectStatus = n
            case "--duration": a.duration = try number(try value(), arg)
            case "--log-level":
                guard let level = LogLevel(name: try value()) else { throw UsageError(description: "unknown log level") }
                a.options.logger = .stderr(level: level)
            case "-h", "--help": throw UsageError(description: "")
            default: throw UsageError(description: "unknown argument \(arg)")
            }
            i += 1
        }
        if let base = a.servicePortBase, base + a.apps - 1 > 65535 {
            throw UsageError(description: "--service-port-base \(base) with --apps \(a.apps) goes past port 65535")
        }
        return a
    }

    /// The demo apps: `/demo/app-NNN`, service ports from `servicePortBase` (else allocated from
    /// 10000), HAPROXY_GROUP labels, an HTTP health check on /health.
    public static func demoApps(count: Int, tasksPerApp: Int, group: String = "external", healthChecks: Bool = true,
                                servicePortBase: Int? = nil) -> [AppSpec] {
        (0..<count).map { i in
            let name = "app-" + (i + 1).zeroPadded(3)
            return AppSpec(id: "/demo/\(name)", instances: tasksPerApp,
                           labels: ["HAPROXY_GROUP": group, "HAPROXY_0_VHOST": "\(name).demo.local"],
                           cmd: "serve $PORT0",
                           portDefinitions: [AppSpec.PortDefinition(port: servicePortBase.map { $0 + i } ?? 0, name: "default")],
                           healthChecks: healthChecks ? [AppSpec.HealthCheck(protocol: "HTTP", path: "/health",
                                                                              gracePeriodSeconds: 15, intervalSeconds: 5,
                                                                              timeoutSeconds: 2, maxConsecutiveFailures: 3)] : [])
        }
    }

    /// Runs the command; returns the process exit status. `arguments` excludes the program and
    /// subcommand names. Prints the simulator URL on standard output once it is ready.
    public static func run(arguments: [String]) async -> Int32 {
        let args: Arguments
        do { args = try parse(arguments) } catch let e as UsageError {
            if !e.description.isEmpty { Console.standardError("servicerouter sim: \(e.description)\n") }
            Console.standardError(usage + "\n")
            return e.description.isEmpty ? 0 : 2
        } catch {
            return 2
        }
        let logger = args.options.logger
        let simulator: MarathonSimulator
        do {
            simulator = try await MarathonSimulator.start(args.options)
            try await simulator.createApps(demoApps(count: args.apps, tasksPerApp: args.tasksPerApp, group: args.group,
                                                    healthChecks: args.healthChecks, servicePortBase: args.servicePortBase))
        } catch {
            logger.error("simulator failed to start", [("error", "\(error)")])
            return 1
        }
        Console.standardOutput(simulator.url + "\n")
        logger.info("marathon simulator ready", [("url", simulator.url), ("apps", String(args.apps)),
                                                 ("tasks", String(args.apps * args.tasksPerApp))])
        let scenario = args.scenario.map { path in
            Task {
                do { try await simulator.runScenario(file: path, logger: logger) } catch is CancellationError {
                } catch {
                    logger.error("scenario failed", [("error", "\(error)")])
                }
            }
        }
        let signal = await waitForSignal(duration: args.duration)
        logger.info("stopping simulator", [("reason", signal)])
        scenario?.cancel()
        _ = await scenario?.result
        simulator.stop()
        return 0
    }

    /// Waits for SIGINT or SIGTERM (or `duration` seconds); returns what ended the wait.
    /// A plain handler that sets a flag: libdispatch's signal sources miss signals on Linux when
    /// other threads have them unblocked, which a process full of socket threads always has.
    /// `onReady` runs once the handlers are installed (tests send a signal only after it).
    static func waitForSignal(duration: Double?, onReady: @Sendable () -> Void = {}) async -> String {
        let seen = signalCount.load(ordering: .acquiring)
        let previous = [SIGINT, SIGTERM].map { sig in
            (sig, Glibc.signal(sig) { number in
                lastSignal.store(number, ordering: .relaxed)
                signalCount.add(1, ordering: .releasing)
            })
        }
        // Put back whatever was there before (the default action, or a caller's handler).
        defer { for (sig, handler) in previous { Glibc.signal(sig, handler) } }
        onReady()
        let deadline = duration.map { Monotonic.now() + $0 }
        while true {
            if signalCount.load(ordering: .acquiring) != seen {
                return lastSignal.load(ordering: .relaxed) == SIGINT ? "SIGINT" : "SIGTERM"
            }
            if let deadline, Monotonic.now() >= deadline { return "duration" }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}

/// Written by the signal handler (async-signal-safe: lock-free atomics only).
private let signalCount = Atomic<Int>(0)
private let lastSignal = Atomic<Int32>(0)

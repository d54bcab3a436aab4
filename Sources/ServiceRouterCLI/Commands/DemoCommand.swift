import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import MarathonSimulator
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// `servicerouter demo`: HAProxy (master-worker), the Marathon simulator with real task listeners,
/// and the controller, all started here; tasks are replaced continuously while requests flow
/// through HAProxy, and a live view shows that nothing fails and nothing reloads. Ctrl-C (or
/// `--duration`) stops everything this command started.
enum DemoCommand {
    static let specs: [FlagSpec] = [
        FlagSpec(["--duration"], .value, value: "SECONDS", help: "stop by itself after this long (default: until Ctrl-C)"),
        FlagSpec(["--interval"], .value, value: "SECONDS", help: "time between task replacements", default: "1"),
        FlagSpec(["--rate"], .value, value: "N", help: "requests per second per load target", default: "40"),
        FlagSpec(["--http-port"], .value, value: "PORT", help: "port of the shared HTTP (vhost) frontend (another free one when taken)", default: "18080"),
        FlagSpec(["--service-port-base"], .value, value: "PORT", help: "service ports of the two demo apps: PORT (web) and PORT+1 (api); another free one for each that is taken", default: "10101"),
        FlagSpec(["--bind-address"], .value, value: "ADDR", help: "address HAProxy's frontends bind (* or a numeric IP)", default: "127.0.0.1"),
        FlagSpec(["--plain"], .switchFlag, help: "print one status line per second instead of redrawing the screen"),
        FlagSpec(["--haproxy-bin"], .value, value: "PATH", help: "haproxy binary", default: "haproxy"),
        FlagSpec(["--log-level"], .value, value: "LEVEL", help: "controller log level (the log goes to a file named at start and at the end)", default: "info"),
    ] + Flags.help

    struct DemoApp {
        var id: String
        var servicePort: Int
        var vhost: String?
        var instances: Int
    }

    static var help: CommandHelp {
        CommandHelp(name: "demo", summary: """
            Start HAProxy (master-worker), a simulated Marathon whose tasks are real HTTP listeners on \
            127.0.0.1, and the controller; replace tasks continuously while requests flow through HAProxy, \
            and show tasks, slots, requests OK/failed and reloads (which stay at 0 while tasks churn). \
            Ctrl-C stops everything the demo started. Exit status 0 when no request failed and HAProxy \
            did not reload during the churn.
            """,
                    usage: "servicerouter demo [options]", specs: specs)
    }

    static func run(_ args: [String]) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs)
        if a.has("--help") {
            printOut(help.text)
            return 0
        }
        let duration = try a.string("--duration").map { _ in try a.double("--duration", default: 0, range: 1...86_400) }
        let interval = try a.double("--interval", default: 1, range: 0.05...3600)
        let rate = try a.double("--rate", default: 40, range: 1...2000)
        let binary = a.string("--haproxy-bin") ?? "haproxy"
        guard let level = LogLevel(name: a.string("--log-level") ?? "info") else { throw UsageError("--log-level: expected debug, info, warning or error") }
        guard HAProxyProcess.isInstalled(binary: binary) else {
            throw RuntimeError("HAProxy is not installed (\(binary) -v failed). Run scripts/setup, or apt-get install -y haproxy")
        }
        let plain = a.has("--plain") || isatty(STDOUT_FILENO) == 0

        // 1. HAProxy with a minimal config, as an operator starts it.
        let haproxy = try HAProxyProcess(binary: binary)
        let logPath = FileManager.default.temporaryDirectory.path() + "servicerouter-demo-\(getpid()).log"
        let logger = Logger(minimum: level, sink: FileLogSink(path: logPath))
        let bindAddress: String
        do { bindAddress = try RenderOptions.validateBindAddress(a.string("--bind-address") ?? "127.0.0.1") } catch { throw UsageError("\(error)") }
        let portBase = try a.int("--service-port-base", default: 10_101, range: 1...65_534)
        var taken = Set<Int>()
        let httpPort = try pickPort(preferred: try a.int("--http-port", default: 18080, range: 1...65535), address: bindAddress, taken: &taken)
        let (workers, _) = try WorkerIdentityChoice.resolve(user: nil, group: nil)
        try await haproxy.start()

        // 2. The simulator: an HTTP app behind a vhost, a TCP app on its service port.
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: 2, killGracePeriod: 1, logger: logger))
        let apps = [
            DemoApp(id: "/demo/web", servicePort: try pickPort(preferred: portBase, address: bindAddress, taken: &taken), vhost: "web.demo.local", instances: 3),
            DemoApp(id: "/demo/api", servicePort: try pickPort(preferred: portBase + 1, address: bindAddress, taken: &taken), vhost: nil, instances: 3),
        ]
        for app in apps {
            var labels = ["HAPROXY_GROUP": "external"]
            if let v = app.vhost { labels["HAPROXY_0_VHOST"] = v } else { labels["HAPROXY_0_MODE"] = "tcp" }
            _ = try await sim.createApp(AppSpec(id: app.id, instances: app.instances, labels: labels,
                                                portDefinitions: [.init(port: app.servicePort)],
                                                healthChecks: [.init(protocol: "HTTP", path: "/health", intervalSeconds: 2,
                                                                     timeoutSeconds: 1, maxConsecutiveFailures: 2)]))
        }
        try await sim.waitForDeployments(timeout: 10)

        // 3. The controller, on the simulator's event stream.
        let render = RenderOptions(adminSocket: haproxy.socketPath, httpPort: httpPort, appIdPort: nil, stats: nil,
                                   bindAddress: bindAddress, workerIdentity: workers)
        var settings = ReconcilerSettings(pass: PassSettings(routing: RoutingOptions(groups: ["external"], healthCheck: true,
                                                                                     reservedPorts: render.reservedPorts),
                                                             render: render, templates: try TemplateSet()),
                                          configPath: haproxy.configPath)
        let reconciler = Reconciler(settings: settings, runtime: haproxy.runtime, control: haproxy.control(logger: logger),
                                    resolver: CachingHostResolver(), logger: logger)
        let client = MarathonClient(endpoints: try MarathonEndpoints(urls: [URL(string: sim.url)!]), streamTimeout: 10,
                                    maxBackoff: 2, logger: logger)
        let controller = Controller(reconciler: reconciler, source: MarathonAppsSource(client: client), logger: logger)
        let controllerTask = Task { await controller.run(inputs: EventMapping.inputs(client.events(), logger: logger)) }
        let stop = StopFlag()
        let signals = Task {
            for await sig in Signals.stream() where sig != SIGHUP { stop.set() }
        }
        defer { signals.cancel() }

        func cleanUp() async {
            controller.stop()
            _ = await controllerTask.value
            sim.stop()
            await haproxy.shutdown()
        }

        // Wait for the first pass (one reload from the minimal config), then measure from there.
        let ready = Monotonic.now() + 15
        while true {
            let reloaded = reconciler.metrics.reloadCount > 0
            let servers = (try? await haproxy.runtime.liveState().backends.values.flatMap { $0 }.filter { $0.admin == .ready }.count) ?? 0
            if reloaded && servers >= 6 { break }
            if Monotonic.now() > ready || stop.isSet {
                await cleanUp()
                throw RuntimeError("the controller did not configure HAProxy within 15 s; see \(logPath)")
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let reloadsAtStart = try await haproxy.reloadCount()
        let shown = bindAddress == "*" ? "127.0.0.1" : (bindAddress.contains(":") ? "[\(bindAddress)]" : bindAddress)
        printOut("routes: /demo/web http://\(shown):\(httpPort) Host: web.demo.local; /demo/api tcp \(shown):\(apps[1].servicePort) "
                 + "(HAProxy binds \(bindAddress); web's own service port is \(apps[0].servicePort))")

        // 4. Load through HAProxy: keep-alive and new connections, vhost and TCP service port.
        let load = LoadGenerator(targets: [
            .init(name: "web keep-alive", port: httpPort, host: "web.demo.local", keepAlive: true, address: bindAddress),
            .init(name: "web new-conn", port: httpPort, host: "web.demo.local", keepAlive: false, address: bindAddress),
            .init(name: "api keep-alive", port: apps[1].servicePort, keepAlive: true, address: bindAddress),
            .init(name: "api new-conn", port: apps[1].servicePort, keepAlive: false, address: bindAddress),
        ], ratePerTarget: rate, maxDuration: duration.map { $0 + 5 } ?? 86_400)
        load.start()

        // 5. Churn: replace one task every `interval`, alternating apps.
        let started = Monotonic.now()
        var replacements = 0
        var nextChurn = started + interval
        var nextView = started
        var lastReplaced = "-"
        while !stop.isSet {
            let now = Monotonic.now()
            if let duration, now - started >= duration { break }
            if now >= nextChurn {
                let app = apps[replacements % apps.count]
                if let killed = try? await sim.replaceTask(app.id) { lastReplaced = killed }
                replacements += 1
                nextChurn += interval
            }
            if now >= nextView {
                let view = await liveView(sim: sim, haproxy: haproxy, apps: apps, load: load, controller: controller,
                                          reloads: (try? await haproxy.reloadCount()).map { $0 - reloadsAtStart },
                                          elapsed: now - started, replacements: replacements, lastReplaced: lastReplaced,
                                          httpPort: httpPort, address: bindAddress == "*" ? "127.0.0.1" : bindAddress, logPath: logPath)
                if plain {
                    printOut(view.split(separator: "\n").first(where: { $0.hasPrefix("t=") }).map(String.init) ?? view)
                } else {
                    Console.standardOutput("\u{1B}[H\u{1B}[2J" + view)
                }
                nextView += 1
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }

        // 6. Stop everything, then report.
        let counts = await load.finish()
        let reloads = ((try? await haproxy.reloadCount()) ?? reloadsAtStart) - reloadsAtStart
        let total = counts.values.reduce(into: LoadGenerator.Counts()) { $0.ok += $1.ok; $0.failed += $1.failed }
        await cleanUp()
        let failures = counts.values.compactMap(\.lastFailure)
        printOut("""

        demo finished after \((Monotonic.now() - started).fixed(0)) s: \(replacements) task replacements, \
        \(total.ok) requests OK, \(total.failed) failed, \(reloads) HAProxy reloads during the churn.
        \(failures.isEmpty ? "" : "last failure: \(failures[0])\n")everything the demo started has been stopped (logs: \(logPath)).
        """)
        return total.failed == 0 && reloads == 0 ? 0 : 1
    }

    static func liveView(sim: MarathonSimulator, haproxy: HAProxyProcess, apps: [DemoApp], load: LoadGenerator,
                         controller: Controller, reloads: Int?, elapsed: Double, replacements: Int, lastReplaced: String,
                         httpPort: Int, address: String, logPath: String) async -> String {
        let live = (try? await haproxy.runtime.liveState()) ?? LiveState()
        let latencies = controller.latencies.latencies.suffix(200).sorted()
        func pct(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            return (latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000).fixed(1) + " ms"
        }
        let totals = load.totals
        var s = "servicerouter demo — HAProxy + simulated Marathon + real task processes (Ctrl-C stops everything)\n\n"
        s += "t=\(elapsed.fixed(0))s  replacements=\(replacements)  requests ok=\(totals.ok) failed=\(totals.failed)  "
            + "reloads=\(reloads.map(String.init) ?? "?")  event→applied p50=\(pct(0.5)) p99=\(pct(0.99))\n\n"
        var rows: [[String]] = [["APP", "ROUTE", "MARATHON TASKS", "SLOTS USED/TOTAL", "REQUESTS OK", "FAILED"]]
        let counts = load.snapshot()
        for app in apps {
            let tasks = await sim.tasks(app.id)
            let states = Dictionary(grouping: tasks, by: { $0.state }).map { "\($0.value.count) \($0.key.rawValue.replacingAll("TASK_", with: "").lowercased())" }.sorted()
            let backend = live.backends.first { $0.key.text.hasPrefix(String(app.id.dropFirst()).replacingAll("/", with: "_") + "_") }?.value ?? []
            let used = backend.filter { $0.admin != .maint }.count
            let prefix = app.vhost == nil ? "api" : "web"
            let ok = counts.filter { $0.key.hasPrefix(prefix) }.reduce(0) { $0 + $1.value.ok }
            let failed = counts.filter { $0.key.hasPrefix(prefix) }.reduce(0) { $0 + $1.value.failed }
            let host = address.contains(":") ? "[\(address)]" : address
            let route = app.vhost.map { "http://\(host):\(httpPort) Host: \($0)" } ?? "tcp \(host):\(app.servicePort)"
            rows.append([app.id, route, states.joined(separator: ", "), "\(used)/\(backend.count)", String(ok), String(failed)])
        }
        s += PlanPrinter.table(rows)
        s += "\nlast replaced: \(lastReplaced)\ncontroller log: \(logPath)\n"
        if let f = totals.lastFailure { s += "last failure: \(f)\n" }
        return s
    }

    /// The preferred port when it is free on `address` (`*`: every address) and not already
    /// `taken` by the demo, else one the kernel picks; either way added to `taken`.
    static func pickPort(preferred: Int, address: String, taken: inout Set<Int>) throws -> Int {
        let host = address == "*" ? "0.0.0.0" : address
        var port = preferred
        if taken.contains(port) || (try? Listener.tcp(host: host, port: port)) == nil {
            repeat { port = try Listener.tcp(host: host, port: 0).port } while taken.contains(port)
        }
        taken.insert(port)
        return port
    }
}

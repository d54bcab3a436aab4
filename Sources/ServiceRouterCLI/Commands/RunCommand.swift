import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// `servicerouter run`: stays connected to Marathon's event stream and keeps HAProxy in step.
enum RunCommand {
    static let runFlags: [FlagSpec] = [
        FlagSpec(["--sse", "-s"], .switchFlag, help: "accepted for marathon-lb compatibility (run always uses the event stream)"),
        FlagSpec(["--stream-timeout"], .value, value: "SECONDS", help: "reconnect when the event stream is silent this long (Marathon sends a heartbeat every ~10 s)", default: "30"),
        FlagSpec(["--max-backoff"], .value, value: "SECONDS", help: "upper bound of the reconnect and retry delay", default: "30"),
        FlagSpec(["--resync-interval"], .value, value: "SECONDS", help: "full resync from /v2/apps at least this often", default: "300"),
        FlagSpec(["--haproxy-check-interval"], .value, value: "SECONDS", help: "how often to check that HAProxy was not restarted behind our back", default: "2"),
        FlagSpec(["--structural-debounce"], .value, value: "SECONDS", help: "how long app-definition and deployment events wait for the rest of their burst before a resync (vhost moves are applied this much later at the least)", default: "0.05"),
        FlagSpec(["--listen"], .value, value: "[ADDR:]PORT", help: "serve /metrics (Prometheus), /healthz and /status here; ADDR defaults to 127.0.0.1 (off by default)"),
        FlagSpec(["--reload-always"], .switchFlag, help: "benchmark baseline: rewrite and reload HAProxy on every change, as reload-based controllers do"),
    ]

    static var specs: [FlagSpec] {
        Flags.marathon + Flags.haproxy + Flags.routing + Flags.render + runFlags + Flags.logging
            + [FlagSpec(["-d", "--dry"], .switchFlag, help: "marathon-lb's dry run: refused here (use `servicerouter plan` or `once --dry`)")]
            + Flags.marathonLBIgnored + Flags.marathonLBRefused + Flags.help
    }

    static var help: CommandHelp {
        CommandHelp(name: "run", summary: """
            Run continuously: subscribe to Marathon's event stream, push task changes into HAProxy through \
            its runtime API within milliseconds, resync from /v2/apps after every (re)connect and every \
            --resync-interval, and reload (validated) only when frontends change.
            Signals: SIGTERM/SIGINT finish the batch in flight and exit 0; SIGHUP forces a full resync.
            """, usage: "servicerouter run --marathon URL --group GROUP [options]", specs: specs)
    }

    static func run(_ args: [String]) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs)
        if a.has("--help") || a.has("--longhelp") {
            printOut(help.text)
            if a.has("--longhelp") { Console.standardError(longhelpNote) }
            return 0
        }
        if a.has("--dry") {
            throw UsageError("--dry: `run` has no dry mode (marathon-lb's printed one config and stopped); `servicerouter plan` shows what would change, `servicerouter render` the config, `servicerouter once --dry` both")
        }
        let opts = try CommonOptions.parse(a)
        let logger = opts.logger
        var run = RunSettings()
        run.resyncInterval = try a.double("--resync-interval", default: 300, range: 1...86_400)
        run.maxBackoff = try a.double("--max-backoff", default: 30, range: 0.1...3600)
        run.haproxyCheckInterval = try a.double("--haproxy-check-interval", default: 2, range: 0.1...3600)
        run.structuralDebounce = try a.double("--structural-debounce", default: 0.05, range: 0...60)
        let streamTimeout = try a.double("--stream-timeout", default: 30, range: 0.1...3600)
        // Every flag is checked before anything starts (the event stream connects as soon as it exists).
        let listen = try a.string("--listen").map(parseListen)

        try await checkMasterSocket(opts, logger: logger)
        let lock = try takeConfigLock(opts, logger: logger)
        defer { withExtendedLifetime(lock) {} }
        var settings = opts.settings(reloadAlways: a.has("--reload-always"))
        // No service may take the controller's own listener's port.
        if let (_, port) = listen { settings.pass.routing.reservedPorts.insert(port) }
        let reconciler = Reconciler(settings: settings, runtime: UnixRuntimeSocket(path: opts.socketPath),
                                    control: HAProxyProcessControl(binary: opts.haproxyBinary, method: opts.reloadMethod, logger: logger),
                                    resolver: CachingHostResolver(), logger: logger)
        let source: any AppsSource
        let inputs: AsyncStream<ControllerInput>
        if let file = opts.appsJSON {
            // No event stream: resync the file on SIGHUP and every --resync-interval.
            source = FileAppsSource(path: file)
            inputs = AsyncStream { _ in }
        } else {
            let client = try AppsSourceFactory.marathonClient(opts, logger: logger, streamTimeout: streamTimeout, maxBackoff: run.maxBackoff)
            source = MarathonAppsSource(client: client)
            inputs = EventMapping.inputs(client.events(), logger: logger)
        }
        let controller = Controller(reconciler: reconciler, source: source, logger: logger, settings: run)
        var endpoint: StatusServer?
        if let (host, port) = listen {
            do {
                let socket = UnixRuntimeSocket(path: opts.socketPath, timeout: 2)
                endpoint = try StatusEndpoint.start(host: host, port: port, metrics: reconciler.metrics, logger: logger) {
                    do { return .success(try socket.liveStateBlocking()) } catch let e as RuntimeSocketError {
                        return .failure(e)
                    } catch {
                        return .failure(RuntimeSocketError(socket: socket.path, reason: "\(error)"))
                    }
                }
            } catch {
                throw RuntimeError("--listen \(host):\(port): \(error)")
            }
            logger.info("status endpoint listening", [("url", "http://\(host):\(port)"), ("paths", "/metrics /healthz /status")])
        }
        defer { endpoint?.stop() }
        let signalStream = Signals.stream()
        let signals = Task { await forward(signalStream, to: controller, logger: logger) }
        logger.info("servicerouter \(ServiceRouterMain.version) starting", [("commit", ServiceRouterMain.commit),
            ("marathon", opts.appsJSON ?? opts.marathonURLs.map(\.redacted).joined(separator: ",")),
            ("groups", opts.routing.groups.joined(separator: ",")), ("config", opts.configPath), ("socket", opts.socketPath),
            ("reload", opts.masterSocket.map { "master socket \($0)" } ?? opts.reloadCommand.map { _ in "command" } ?? "none"),
        ])
        opts.logStartup(logger)
        await controller.run(inputs: inputs)
        signals.cancel()
        return 0
    }

    /// `PORT` or `ADDR:PORT` (`[v6]:PORT`); the address defaults to 127.0.0.1.
    static func parseListen(_ text: String) throws -> (host: String, port: Int) {
        var host = "127.0.0.1", portText = text
        if let colon = text.lastIndex(of: ":") {
            host = text[..<colon].trimmingScalars(where: { $0 == "[" || $0 == "]" })
            portText = String(text[text.index(after: colon)...])
            if host == "*" { host = "0.0.0.0" }
        }
        guard let port = Int(portText), (1...65535).contains(port), host == "0.0.0.0" || IPAddress.isNumeric(host) else {
            throw UsageError("--listen: expected PORT or ADDR:PORT with a numeric address, got '\(text)'")
        }
        return (host, port)
    }
}

/// Refuses a `--master-socket` that is not HAProxy's master CLI (the admin socket given by
/// mistake would otherwise mean 30 s of silence and a misleading message at the first reload).
/// A master that does not answer yet is only logged: HAProxy may be starting.
func checkMasterSocket(_ opts: CommonOptions, logger: Logger) async throws {
    let control = HAProxyProcessControl(binary: opts.haproxyBinary, method: opts.reloadMethod, logger: logger)
    guard let problem = await control.masterSocketProblem() else { return }
    if problem.contains("does not answer (") {
        logger.warning("HAProxy's master CLI does not answer yet", [("reason", problem)])
        return
    }
    throw UsageError(problem)
}

/// The lock on the config for the life of a command that changes HAProxy (`run`, `once`); what a
/// controller killed mid-write left behind is removed once it is held.
func takeConfigLock(_ opts: CommonOptions, logger: Logger) throws -> ConfigLock {
    let lock: ConfigLock
    do { lock = try ConfigLock.acquire(for: opts.configPath) } catch let e as ConfigLock.Held {
        throw RuntimeError("\(e)")
    }
    for file in ConfigStore(path: opts.configPath).removeLeftovers() {
        logger.info("removed a file an earlier servicerouter left behind", [("file", file)])
    }
    return lock
}

/// SIGTERM/SIGINT: stop after the batch in flight. SIGHUP: full resync.
func forward(_ signals: AsyncStream<Int32>, to controller: Controller, logger: Logger) async {
    for await sig in signals {
        if sig == SIGHUP {
            logger.info("SIGHUP: full resync")
            controller.queue.push(.resync("SIGHUP"))
        } else {
            logger.info("\(Signals.name(sig)): finishing the batch in flight, then exiting")
            controller.stop()
        }
    }
}

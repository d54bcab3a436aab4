import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// Why a pass left HAProxy (or the files) short of its plan. A value: the report carries it,
/// `once` turns it into its exit status, logs and tests read it.
public enum PassError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSnapshot
    case socketUnusable(String)
    case render(String)
    case mapFilesNotWritten(String)
    case candidateNotWritten(String)
    case validationFailed(String)
    case candidateRejected(String)
    case installFailed(String)
    case reloadFailed(String)
    case runtimeUnreachable(String)
    case bindConflict(String)
    case socketMismatch(String)
    /// HAProxy reloaded, but its new worker does not run the config just written.
    case configNotLoaded(String)

    public var description: String {
        switch self {
        case .noSnapshot: "no snapshot from Marathon yet"
        case .socketUnusable(let why): "HAProxy's runtime socket is not usable (\(why))"
        case .render(let why): "cannot render the config: \(why)"
        case .mapFilesNotWritten(let why): "vhost map file not written: \(why)"
        case .candidateNotWritten(let why): "config not written: \(why)"
        case .validationFailed(let why): "config not validated: \(why)"
        case .candidateRejected(let why): "candidate config rejected: \(why)"
        case .installFailed(let why): "the validated config could not be installed: \(why)"
        case .reloadFailed(let why): "reload failed: \(why)"
        case .runtimeUnreachable(let why): "runtime commands not applied: \(why)"
        case .bindConflict(let why): "cannot bind: \(why)"
        case .socketMismatch(let why): why
        case .configNotLoaded(let why): why
        }
    }
}

/// What applying a plan did.
public enum ApplyOutcome: Sendable {
    /// Runtime commands and map edits only; the files now hold the plan.
    case runtime(configWritten: Bool)
    /// A validated reload; `readBack` is the new worker's state, when it answered in time.
    case reloaded(ReloadResult, reasons: [ReloadReason], readBack: LiveView?)
    /// `haproxy -c` refused the candidate; nothing was installed.
    case candidateRejected(ConfigRejected, reasons: [ReloadReason])
    /// The socket does not answer and reloading blind is off: the validated config is installed
    /// (a restart loads it), nothing else was done.
    case installedOnly(PassError)
    case failed(PassError, reasons: [ReloadReason])
}

/// The thin edge that performs a plan: runtime commands, vhost map replacements, map and config
/// files, validate → install → reload, and the read-back of the new worker. It decides nothing
/// beyond falling back to a reload when HAProxy refuses a runtime command.
public struct Applier: Sendable {
    let runtime: any RuntimeAPI
    let control: any HAProxyControl
    let files: any ConfigFiles
    let ports: any PortProbing
    let logger: Logger
    let metrics: ControllerMetrics
    let time: any TimeSource
    var reloadTimeout: Double
    /// Map files of the config (their runtime contents are read back with the servers).
    var mapFiles: [MapFile]

    public func apply(_ plan: PassPlan, timings: inout PassTimings) async -> ApplyOutcome {
        var lap = time.now()
        func phase(_ keyPath: WritableKeyPath<PassTimings, Double>) {
            let now = time.now()
            timings[keyPath: keyPath] += now - lap
            lap = now
        }
        var reasons = plan.reload
        if reasons.isEmpty {
            switch await send(plan.commands) {
            case .ok: break
            case .rejected(let command, let reply): reasons = [.runtimeCommandRejected(command: command.text, reply: reply)]
            case .unreachable(let why): return .failed(.runtimeUnreachable(why), reasons: [])
            }
        }
        if reasons.isEmpty, let problem = await applyMapEdits(plan.mapEdits) {
            reasons = [.mapUpdateFailed(problem)]
        }
        phase(\.apply)
        if reasons.isEmpty {
            defer { phase(\.writeFile) }
            // Maps first: HAProxy serves them now, and a restart must load the same.
            if let e = writeMapFiles(plan.mapFiles) { return .failed(e, reasons: []) }
            switch writeConfig(plan.config.text) {
            case .success(let written): return .runtime(configWritten: written)
            case .failure(let e): return .failed(e, reasons: [])
            }
        }
        if case .socketUnusable(let why) = reasons.first, let problem = await socketMismatch(why) {
            // HAProxy runs, but not with this socket: writing the config would move its admin
            // socket to a path nothing listens on at the next reload or restart.
            logger.error("HAProxy runs, but --haproxy-socket is not one of its stats sockets; nothing written, nothing reloaded",
                         [("reason", problem)])
            return .failed(.socketMismatch(problem), reasons: [])
        }
        if let e = writeMapFiles(plan.mapFiles) { return .failed(e, reasons: reasons) }
        let check = await validate(plan.config)
        phase(\.validate)
        switch check {
        case .failure(let e): return .failed(e, reasons: reasons)
        case .success(let rejection?): return .candidateRejected(rejection, reasons: reasons)
        case .success(nil): break
        }
        if case .socketUnusable(let why) = reasons.first {
            // HAProxy is down or starting: a start loads the validated config; never reload blind.
            if let e = install() { return .failed(e, reasons: reasons) }
            logger.warning("HAProxy not reachable; config written, will apply when it answers", [("reason", why)])
            return .installedOnly(.socketUnusable(why))
        }
        if let e = install() { return .failed(e, reasons: reasons) }
        defer { phase(\.reload) }
        return await reload(reasons)
    }

    /// When the runtime socket does not answer but HAProxy's master does: the sockets the
    /// running worker has, and why ours is not usable (nil: HAProxy is down, or unknown).
    func socketMismatch(_ why: String) async -> String? {
        guard let sockets = await control.adminSockets() else { return nil }
        let path = runtime.path
        if sockets.contains(path) {
            return "HAProxy listens on \(path) but it does not answer here (\(why)): does this user have access to it (its mode and owner)?"
        }
        let listed = sockets.isEmpty ? "none" : sockets.joined(separator: ", ")
        return "--haproxy-socket \(path) does not answer (\(why)), and the running HAProxy's stats sockets are: \(listed); give one of them as --haproxy-socket"
    }

    // MARK: - Binds

    /// The binds of `config` that the running HAProxy does not hold and that cannot be bound now
    /// (another process has the port): `haproxy -c` cannot see them, and the reload would fail as
    /// a whole. Binds the current config file has are HAProxy's own and are not probed.
    func bindProblems(_ config: RenderedConfig) -> [(bind: ConfigBind, problem: String)] {
        let current = ConfigBind.parse(files.read() ?? "")
        func heldByHAProxy(_ b: ConfigBind) -> Bool {
            current.contains { $0.port == b.port && ($0.address == "*" || b.address == "*" || $0.address == b.address) }
        }
        var seen = Set<String>()
        var out: [(bind: ConfigBind, problem: String)] = []
        for b in ConfigBind.parse(config.text) where !heldByHAProxy(b) && seen.insert(b.endpoint).inserted {
            if let problem = ports.problem(binding: b) { out.append((b, problem)) }
        }
        return out
    }

    // MARK: - Runtime API

    enum SendResult { case ok, rejected(RuntimeCommand, String), unreachable(String) }

    /// Sends commands (batched); the first rejection, if any.
    func send(_ commands: [RuntimeCommand]) async -> SendResult {
        guard !commands.isEmpty else { return .ok }
        do {
            let replies = try await runtime.execute(commands)
            let failed = replies.filter { $0.failure != nil }
            metrics.commands(sent: commands.count, failed: failed.count)
            if logger.isDebug { for c in commands { logger.debug("runtime command", [("cmd", c.text)]) } }
            logger.info("runtime commands applied", [("count", String(commands.count)), ("failed", String(failed.count)),
                                                     ("backends", Self.backendList(commands))])
            for f in failed.prefix(5) { logger.error("runtime command rejected", [("cmd", f.command.text), ("reply", f.failure ?? "")]) }
            if let f = failed.first { return .rejected(f.command, f.failure ?? "") }
            return .ok
        } catch {
            metrics.commands(sent: 0, failed: commands.count)
            logger.error("runtime commands not applied", [("count", String(commands.count)), ("reason", "\(error)")])
            return .unreachable("\(error)")
        }
    }

    /// The backends commands touch, for the log line (at most five named).
    static func backendList(_ commands: [RuntimeCommand]) -> String {
        var seen: [String] = []
        for c in commands {
            var name = c.backend?.text
            if case .addMap(_, let f, _) = c { name = "map " + f.path.lastPathComponent }
            if case .commitMap(_, let f) = c { name = "map " + f.path.lastPathComponent }
            if let name, !seen.contains(name) { seen.append(name) }
        }
        let named = seen.prefix(5).joined(separator: ",")
        return seen.count > 5 ? named + ",+\(seen.count - 5) more" : named
    }

    /// Replaces each changed map atomically: a new version filled with every desired entry, then
    /// committed (HAProxy 2.4+ `prepare map` / `add map @N` / `commit map @N`). A problem, if any.
    func applyMapEdits(_ edits: [MapEdit]) async -> String? {
        for edit in edits {
            do {
                let prepared = try await runtime.execute([.prepareMap(file: edit.file)])
                guard prepared[0].failure == nil, let version = RuntimeCommand.preparedVersion(prepared[0].text) else {
                    return "prepare map \(edit.file): \(prepared[0].failure ?? prepared[0].text)"
                }
                let commands = edit.entries.map { RuntimeCommand.addMap(version: version, file: edit.file, entry: $0) }
                    + [.commitMap(version: version, file: edit.file)]
                if case .rejected(let c, let reply) = await send(commands) { return "\(c): \(reply)" }
                logger.info("vhost map updated without reload", [("map", edit.file.path), ("added", String(edit.added.count)),
                                                                 ("removed", String(edit.removed.count))])
            } catch {
                return "\(edit.file): \(error)"
            }
        }
        return nil
    }

    // MARK: - Files

    /// Writes the map files whose content changed (atomically).
    func writeMapFiles(_ maps: [String: String]) -> PassError? {
        for (path, text) in maps.sorted(by: { $0.key < $1.key }) where files.readFile(path) != text {
            do { try files.replaceFile(path, with: text) } catch {
                logger.error("vhost map file not written; HAProxy untouched", [("map", path), ("reason", "\(error)")])
                return .mapFilesNotWritten("\(error)")
            }
        }
        return nil
    }

    /// Replaces the live config when it differs from `text` (same structure: no reload needed).
    func writeConfig(_ text: String) -> Result<Bool, PassError> {
        if files.holds(text) { return .success(false) }
        do {
            try files.replace(with: text)
            return .success(true)
        } catch {
            logger.error("config file not updated (HAProxy is up to date; a restart would lose the latest task changes)",
                         [("reason", "\(error)")])
            return .failure(.candidateNotWritten("\(error)"))
        }
    }

    /// Writes the candidate and checks it with `haproxy -c`: nil when valid, the rejection when
    /// HAProxy refuses it (kept as `<config>.rejected`).
    func validate(_ config: RenderedConfig) async -> Result<ConfigRejected?, PassError> {
        let candidate: String
        do {
            candidate = try files.writeCandidate(config.text)
        } catch {
            logger.error("config not written; HAProxy untouched", [("reason", "\(error)")])
            return .failure(.candidateNotWritten("\(error)"))
        }
        do {
            try await control.validate(configPath: candidate)
            return .success(nil)
        } catch let e as ConfigRejected {
            files.rejectCandidate()
            metrics.invalidConfig()
            return .success(e)
        } catch {
            files.rejectCandidate()
            logger.error("config not validated; HAProxy untouched", [("reason", "\(error)")])
            return .failure(.validationFailed("\(error)"))
        }
    }

    func install() -> PassError? {
        do {
            try files.installCandidate()
            return nil
        } catch {
            logger.error("config not installed; HAProxy untouched", [("reason", "\(error)")])
            return .installFailed("\(error)")
        }
    }

    // MARK: - Reload

    func reload(_ reasons: [ReloadReason]) async -> ApplyOutcome {
        let reasonText = reasons.map(\.message).joined(separator: "; ")
        do {
            let result = try await control.reload(runtime: runtime, timeout: reloadTimeout)
            metrics.reload(reason: reasons.first?.metricLabel ?? "frontends")
            logger.info("HAProxy reloaded", [("reason", reasonText), ("old_pid", result.oldPid.map(String.init) ?? "-"),
                                             ("new_pid", String(result.newPid)), ("ms", (result.seconds * 1000).fixed(0))])
            return .reloaded(result, reasons: reasons, readBack: await readBack(replacing: result.oldPid))
        } catch {
            metrics.reloadFailed()
            logger.error("reload failed", [("reason", reasonText), ("error", "\(error)")])
            do { try files.restoreLastGood() } catch {
                logger.error("could not restore the last good config file", [("reason", "\(error)")])
            }
            return .failed(.reloadFailed("\(error)"), reasons: reasons)
        }
    }

    /// The new worker's live state. For a moment after a reload the replaced worker may still
    /// answer on the shared runtime socket; a read it answered (its pid is in the answer) is
    /// retried, briefly and bounded, instead of being planned against.
    func readBack(replacing oldPid: Int?) async -> LiveView? {
        for _ in 0..<50 {
            guard let read = try? await runtime.liveView(maps: mapFiles) else { return nil }
            if read.identity.pid != oldPid { return read }
            try? await time.sleep(for: 0.02)
        }
        logger.warning("the replaced HAProxy worker still answers on the runtime socket after 1 s", [("pid", String(oldPid ?? 0))])
        return nil
    }
}

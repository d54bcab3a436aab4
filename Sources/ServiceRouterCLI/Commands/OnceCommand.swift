import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// `once`, `plan`, `render` and `status`: one pass over Marathon's apps, applied or only shown.
enum OnceCommand {
    enum Mode { case once, plan, render, status }

    static func specs(_ mode: Mode) -> [FlagSpec] {
        var s = Flags.marathon + Flags.haproxy + Flags.routing + Flags.render + Flags.logging
        if mode == .once { s.append(FlagSpec(["-d", "--dry"], .switchFlag, help: "print the config and the runtime commands; change nothing")) }
        s.append(FlagSpec(["-s", "--sse"], .switchFlag, help: "marathon-lb's event-stream mode: refused here, it is `servicerouter run`"))
        if mode == .render {
            s.append(FlagSpec(["--output-dir"], .value, value: "DIR",
                              help: "write the config and the vhost map files it names into DIR (the config naming the maps there), so `haproxy -c -f DIR/haproxy.cfg` checks exactly what was rendered; print their paths"))
        }
        return s + Flags.marathonLBIgnored + Flags.marathonLBRefused + Flags.help
    }

    static func help(_ mode: Mode) -> CommandHelp {
        let (name, summary): (String, String) = switch mode {
        case .once: ("once", "One full pass: fetch Marathon's apps, then push task changes through HAProxy's runtime API, or write, validate and reload when the structure changed. Usable from cron, as servicerouter.py was.")
        case .plan: ("plan", "Show what `once` would do, changing nothing: the runtime commands, the vhost map changes, whether and why HAProxy would reload, and the config diff.")
        case .render: ("render", "Print the haproxy.cfg servicerouter would write (the slot assignment is adopted from the running HAProxy when its socket answers). The printed config names the vhost map files beside --haproxy-config; with --output-dir, the config and its maps are written into one directory instead, ready for `haproxy -c`.")
        case .status: ("status", "Per backend: slot → task id, address, HAProxy state, Marathon state.")
        }
        return CommandHelp(name: name, summary: summary, usage: "servicerouter \(name) [options]", specs: specs(mode))
    }

    static func run(_ args: [String], mode: Mode) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs(mode))
        if a.has("--help") || a.has("--longhelp") {
            printOut(help(mode).text)
            if a.has("--longhelp") { Console.standardError(longhelpNote) }
            return 0
        }
        if a.has("--sse") {
            throw UsageError("--sse: `\(help(mode).name)` makes one pass; marathon-lb's event-stream mode (--sse) is `servicerouter run` (or `servicerouter sse`)")
        }
        var opts = try CommonOptions.parse(a)
        var outputDir: String?
        if mode == .render, let dir = a.string("--output-dir") {
            let absolute = dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir
            var trimmed = absolute
            while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
            opts.render.mapDirectory = trimmed
            do { _ = try RenderOptions.validateSocketPath(opts.render.vhostPathMapPath) } catch {
                throw UsageError("--output-dir: \(dir): a path of letters, digits and _ . : - / @ only (the config names the map files in it)")
            }
            outputDir = trimmed
        }
        // render and status print to stdout; keep the log quiet unless asked.
        let logger = mode == .once ? opts.logger : Logger.stderr(level: a.has("--log-level") ? opts.logLevel : .warning, format: opts.logFormat)
        opts.logStartup(logger)
        // `once` changes HAProxy: one controller per config at a time.
        if mode == .once && !a.has("--dry") { try await checkMasterSocket(opts, logger: logger) }
        let lock = mode == .once && !a.has("--dry") ? try takeConfigLock(opts, logger: logger) : nil
        defer { withExtendedLifetime(lock) {} }
        let source = try AppsSourceFactory.make(opts, logger: logger)
        let snapshot = try await source.fetchApps()
        let reconciler = Reconciler(settings: opts.settings(), runtime: UnixRuntimeSocket(path: opts.socketPath),
                                    control: HAProxyProcessControl(binary: opts.haproxyBinary, method: opts.reloadMethod, logger: logger),
                                    resolver: CachingHostResolver(), logger: logger)
        await reconciler.replace(with: snapshot)
        if mode == .once && !a.has("--dry") {
            let report = await reconciler.fullPass(reason: "once")
            if let error = report.error {
                logger.error("once: HAProxy not fully updated", [("reason", error.description)])
                return 1
            }
            return 0
        }
        // plan, render, status and `once --dry` only look: the planner runs, nothing is applied.
        let (plan, input) = try await reconciler.preview()
        switch mode {
        case .render:
            if let dir = outputDir {
                try writeRendered(plan, into: dir, configName: opts.configPath.split(separator: "/").last.map(String.init) ?? "haproxy.cfg")
            } else {
                printOut(plan.config.text)
            }
        case .plan:
            printOut(PlanPrinter.plan(plan, previousConfig: ConfigStore(path: opts.configPath).read()))
        case .status:
            printOut(PlanPrinter.status(plan, live: input.live, apps: snapshot.apps))
        case .once:
            printOut(plan.config.text)
            printOut(PlanPrinter.plan(plan, previousConfig: nil))
        }
        return 0
    }
}

/// What `--longhelp` (marathon-lb's) adds to the help, on standard error.
let longhelpNote = "servicerouter: --longhelp is marathon-lb's: the long references are docs/cli.md (every command and flag), docs/labels.md (every HAPROXY_* label) and docs/templates.md (`servicerouter templates` lists the templates)\n"

extension OnceCommand {
    /// `render --output-dir`: the config and every map file it names, written into `dir`.
    static func writeRendered(_ plan: PassPlan, into dir: String, configName: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw RuntimeError("--output-dir: cannot create \(dir): \(error.foundationDescription)")
        }
        var written: [String] = []
        let files = [(dir + "/" + configName, plan.config.text)] + plan.mapFiles.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (path, text) in files {
            let store = ConfigStore(path: path)
            do { try store.replace(with: text) } catch {
                throw RuntimeError("--output-dir: cannot write \(path): \(error)")
            }
            written.append(path)
        }
        for path in written { printOut(path) }
    }
}

struct RuntimeError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Human-readable output of `plan` and `status`.
enum PlanPrinter {
    /// `previousConfig` nil: no diff.
    static func plan(_ p: PassPlan, previousConfig: String?) -> String {
        var s = "# runtime commands (\(p.needsReload ? 0 : p.commands.count))\n"
        if !p.needsReload { for c in p.commands { s += c.text + "\n" } }
        for m in p.mapEdits {
            s += "# vhost map \(m.file) (runtime update, no reload)\n"
            for e in m.added { s += "#   + \(e.key) \(e.value)\n" }
            for e in m.removed { s += "#   - \(e.key) \(e.value)\n" }
        }
        if p.reload.isEmpty {
            s += "# reload: no\n"
        } else {
            s += "# reload: yes\n"
            for reason in p.reload { s += "#   because \(reason.message)\n" }
        }
        s += diagnostics(p.desired.diagnostics + p.config.diagnostics)
        if let previousConfig {
            let diff = LineDiff.unified(old: previousConfig, new: p.config.text, oldName: "current config", newName: "planned config")
            s += diff.isEmpty ? "# config: unchanged\n" : "# config diff\n" + diff
        }
        return s
    }

    /// Every diagnostic, per app (sorted by app id; those about no app first), in the order found:
    ///
    ///     # app /web: 2 warnings
    ///     #   warning: label HAPROXY_0_VHOTS ignored: … (did you mean HAPROXY_0_VHOST?)
    static func diagnostics(_ all: [Diagnostic]) -> String {
        guard !all.isEmpty else { return "" }
        var order: [String?] = []
        var byApp: [String?: [Diagnostic]] = [:]
        for d in all {
            if byApp[d.appId] == nil { order.append(d.appId) }
            byApp[d.appId, default: []].append(d)
        }
        order.sort { ($0 ?? "") < ($1 ?? "") }
        var s = ""
        for app in order {
            let list = byApp[app] ?? []
            let errors = list.filter { $0.level == .error }.count, warnings = list.count - errors
            var counts: [String] = []
            if errors > 0 { counts.append("\(errors) error\(errors == 1 ? "" : "s")") }
            if warnings > 0 { counts.append("\(warnings) warning\(warnings == 1 ? "" : "s")") }
            s += "# \(app.map { "app \($0)" } ?? "no app"): \(counts.joined(separator: ", "))\n"
            for d in list { s += "#   \(d.level == .error ? "error" : d.level == .warning ? "warning" : "info"): \(d.message)\n" }
        }
        return s
    }

    static func status(_ p: PassPlan, live: LiveView?, apps: [MarathonApp]) -> String {
        var taskState: [String: MarathonTask] = [:]
        for app in apps { for t in app.tasks { taskState[t.id] = t } }
        var rows: [[String]] = [["BACKEND", "SLOT", "ADDRESS", "HAPROXY", "TASK", "MARATHON"]]
        for b in p.slots.backends {
            let servers = live?.servers.backends[b.backend] ?? []
            for n in 1...max(1, b.slotCount) {
                let l = servers.first { SlotPlanner.slotNumber($0.name) == n }
                let d = n - 1 < b.slots.count ? b.slots[n - 1] : nil
                let liveText = l.map { "\($0.admin.rawValue)/\($0.operationalName)" } ?? "absent"
                let addr = l.map { "\($0.address):\($0.port)" } ?? "-"
                var marathon = "-"
                if let d, let t = taskState[d.taskId] {
                    marathon = t.state?.rawValue ?? "running"
                    if let h = t.healthAlive { marathon += h.allSatisfy { $0 } ? " healthy" : " unhealthy" }
                }
                rows.append([b.backend.text, "s\(n)", addr, liveText, d?.taskId ?? "-", marathon])
            }
        }
        let table = Self.table(rows)
        return live == nil ? table + "warning: HAProxy's runtime socket did not answer: the HAPROXY column shows nothing live\n" : table
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = first.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padded(toLength: widths[i]) }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

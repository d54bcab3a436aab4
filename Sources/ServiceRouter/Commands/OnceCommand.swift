import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// `once`, `plan`, `render` and `status`: one pass over Marathon's apps, applied or only shown.
enum OnceCommand {
    enum Mode { case once, plan, render, status }

    static func specs(_ mode: Mode) -> [FlagSpec] {
        var s = Flags.marathon + Flags.haproxy + Flags.routing + Flags.render + Flags.logging
        if mode == .once { s.append(FlagSpec(["-d", "--dry"], .switchFlag, help: "print the config and the runtime commands; change nothing")) }
        return s + Flags.help
    }

    static func help(_ mode: Mode) -> CommandHelp {
        let (name, summary): (String, String) = switch mode {
        case .once: ("once", "One full pass: fetch Marathon's apps, then push task changes through HAProxy's runtime API, or write, validate and reload when the structure changed. Usable from cron, as servicerouter.py was.")
        case .plan: ("plan", "Show what `once` would do, changing nothing: the runtime commands, the vhost map changes, whether and why HAProxy would reload, and the config diff.")
        case .render: ("render", "Print the haproxy.cfg servicerouter would write (the slot assignment is adopted from the running HAProxy when its socket answers).")
        case .status: ("status", "Per backend: slot → task id, address, HAProxy state, Marathon state.")
        }
        return CommandHelp(name: name, summary: summary, usage: "servicerouter \(name) [options]", specs: specs(mode))
    }

    static func run(_ args: [String], mode: Mode) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs(mode))
        if a.has("--help") {
            printOut(help(mode).text)
            return 0
        }
        let opts = try CommonOptions.parse(a)
        // render and status print to stdout; keep the log quiet unless asked.
        let logger = mode == .once ? opts.logger : Logger.stderr(level: a.has("--log-level") ? opts.logLevel : .warning, format: opts.logFormat)
        let source = try AppsSourceFactory.make(opts, logger: logger)
        let (apps, skipped) = try await source.fetchApps()

        var settings = opts.settings()
        settings.dryRun = mode != .once || a.has("--dry")
        let reconciler = Reconciler(settings: settings, runtime: UnixRuntimeSocket(path: opts.socketPath),
                                    control: HAProxyProcessControl(binary: opts.haproxyBinary, method: opts.reloadMethod, logger: logger),
                                    resolver: CachingHostResolver(), logger: logger)
        await reconciler.replaceApps(apps, skipped: skipped)
        let report = await reconciler.fullSync(reason: mode == .once ? "once" : "\(mode)")

        switch mode {
        case .render:
            guard let text = report.rendered?.text else { throw RuntimeError(report.error ?? "nothing rendered") }
            printOut(text)
            return 0
        case .plan:
            printOut(PlanPrinter.plan(report))
            return report.error == nil ? 0 : 1
        case .status:
            printOut(PlanPrinter.status(report, apps: apps))
            return 0
        case .once:
            if settings.dryRun {
                printOut(report.rendered?.text ?? "")
                printOut(PlanPrinter.plan(report, includeDiff: false))
                return report.error == nil ? 0 : 1
            }
            if let error = report.error {
                logger.error("once: HAProxy not fully updated", [("reason", error)])
                return 1
            }
            return 0
        }
    }
}

struct RuntimeError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Human-readable output of `plan` and `status`.
enum PlanPrinter {
    static func plan(_ r: SyncReport, includeDiff: Bool = true) -> String {
        var s = ""
        if let e = r.error { s += "error: \(e)\n" }
        s += "# runtime commands (\(r.commands.count))\n"
        for c in r.commands { s += c.text + "\n" }
        for m in r.mapChanges {
            s += "# vhost map \(m.file) (runtime update, no reload)\n"
            for e in m.added { s += "#   + \(e.key) \(e.value)\n" }
            for e in m.removed { s += "#   - \(e.key) \(e.value)\n" }
        }
        if r.reloadReasons.isEmpty {
            s += "# reload: no\n"
        } else {
            s += "# reload: yes\n"
            for reason in r.reloadReasons { s += "#   because \(reason)\n" }
        }
        for d in r.desired.diagnostics { s += "# warning: \(d)\n" }
        if includeDiff, let new = r.rendered?.text {
            let diff = LineDiff.unified(old: r.previousConfig ?? "", new: new, oldName: "current config", newName: "planned config")
            s += diff.isEmpty ? "# config: unchanged\n" : "# config diff\n" + diff
        }
        return s
    }

    static func status(_ r: SyncReport, apps: [MarathonApp]) -> String {
        var taskState: [String: MarathonTask] = [:]
        for app in apps { for t in app.tasks { taskState[t.id] = t } }
        var rows: [[String]] = [["BACKEND", "SLOT", "ADDRESS", "HAPROXY", "TASK", "MARATHON"]]
        for b in r.plan.backends {
            let live = r.live.backends[b.backend] ?? []
            for n in 1...max(1, b.slotCount) {
                let l = live.first { SlotPlanner.slotNumber($0.name) == n }
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
        if let e = r.error { return table(rows) + "error: \(e)\n" }
        return table(rows)
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

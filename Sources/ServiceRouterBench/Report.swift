import Foundation

/// The human-readable report: one table per scenario, then the verdict.
public enum BenchReport {
    public static func text(_ r: BenchResults) -> String {
        var s = ""
        let m = r.machine
        s += "servicerouter benchmarks\(r.smoke ? " (SMOKE: small counts, figures not meaningful)" : "") — \(r.startedAt)\n"
        s += "machine: \(m.cpus) CPUs (\(m.cpuModel)), \(String(format: "%.1f", Double(m.memoryBytes) / 1_073_741_824)) GiB, Linux \(m.kernel)\n"
        s += "         \(m.haproxy)\n         \(m.swift)\n\n"

        func f(_ v: Double, _ digits: Int = 2) -> String { v.isFinite ? String(format: "%.\(digits)f", v) : "-" }
        func dist(_ x: Summary) -> [String] { [f(x.median), f(x.p99), String(x.count)] }
        func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }

        if let i = r.idle {
            s += "IDLE — servicerouter run (its own process) on the simulator with 2 apps, nothing changing\n"
            s += table([["", "measured"],
                        ["  seconds measured", f(i.seconds, 1)],
                        ["  CPU (utime + stime, /proc/PID/stat)", f(i.cpuMilliseconds, 0) + " ms"],
                        ["  CPU per second", f(i.cpuMillisecondsPerSecond, 3) + " ms/s"],
                        ["  reloads / full passes meanwhile", "\(i.reloads) / \(i.fullPasses)"]]) + "\n"
        }
        if let c = r.scale {
            s += "SCALE — \(c.apps) apps × \(c.tasks / max(1, c.apps)) tasks: \(c.tasks) tasks, \(c.backends) backends, \(c.servers) server slots\n"
            var rows: [[String]] = [["initial sync (one run)", "ms"]]
            for key in ["fetch", "decode", "model", "readLive", "build", "plan", "render", "validate", "reload", "apply", "writeFile", "total"] {
                rows.append(["  " + phaseName(key), f(c.initialSync[key] ?? .nan, 1)])
            }
            s += table(rows)
            s += "  payload \(mb(c.payloadBytes)), config \(mb(c.configBytes)), reloaded: \(c.initialSyncReloaded ? "yes (from the minimal config)" : "no")\n\n"
            rows = [["idle full resync (nothing changed)", "median ms", "p99 ms", "runs"]]
            rows.append(["  total: fetch + decode + full pass"] + dist(c.idleResync))
            for key in ["fetch", "decode", "model", "readLive", "build", "plan", "render", "apply", "writeFile"] {
                rows.append(["  " + phaseName(key), f(c.idleResyncPhases[key] ?? .nan), "", ""])
            }
            rows.append(["  runtime commands sent / reloads", "\(c.idleResyncCommands) / \(c.idleResyncReloads)", "", ""])
            s += table(rows) + "\n"
            rows = [["one task change at this size", "median", "p99", "batches"]]
            rows.append(["  event → HAProxy acknowledged (ms)"] + dist(c.eventToApplied))
            rows.append(["  controller CPU per batch (ms)", f(c.cpuPerBatch.median, 3), f(c.cpuPerBatch.p99, 3), String(c.cpuPerBatch.count)])
            rows.append(["  reloads during \(c.changes) changes", String(c.reloadsDuringChanges), "", ""])
            rows.append(["  then the config file rewrite (ms wall / CPU)", f(c.configRewriteWall, 1), f(c.configRewriteCPU, 1), ""])
            s += table(rows)
            if let p = c.controllerProcess {
                s += "  servicerouter run, its own process: peak RSS \(mb(p.peakRSS)), \(mb(p.rssAtEnd)) at the end — after an initial sync"
                s += "\(p.initialSyncReloaded ? " with its reload" : ""), \(p.taskChanges) task changes and \(p.fullPasses) full passes in all\n"
            }
            s += "  this benchmark process (in-process controller + harness): RSS peak \(mb(c.peakRSS)) (at start \(mb(c.rssAtStart)), at end \(mb(c.rssAtEnd)))"
            s += c.simulatorInProcess ? " — simulator in this process too\n\n" : " — simulator in a separate process\n\n"
        }
        if let c = r.convergence {
            s += "CONVERGENCE — \(c.replacements) task replacements, \(c.tasksInHAProxy) servers in service in HAProxy\n"
            var rows: [[String]] = [["", "median ms", "p99 ms", "n"]]
            rows.append(["event received → HAProxy acknowledged the commands"] + dist(c.eventToApplied))
            rows.append(["simulator change → first request served by the new task"] + dist(c.changeToFirstRequestOnNewTask))
            rows.append(["simulator change → last request served by the killed task"] + dist(c.changeToLastRequestOnKilledTask))
            rows.append(["controller CPU per fast-path batch", f(c.cpuPerBatch.median, 3), f(c.cpuPerBatch.p99, 3), String(c.cpuPerBatch.count)])
            s += table(rows)
            s += "  \(c.batches) fast-path batches for \(c.events) events; probe: \(c.probeRequests) requests, \(c.probeFailed) failed; reloads: \(c.reloads); never routed: \(c.unseen)\n\n"
        }
        if let c = r.churn {
            let a = c.servicerouter, b = c.reloadAlways
            s += "CHURN — \(f(a.seconds, 0)) s per mode, replacements at \(f(Double(a.replacements) / max(a.seconds, 1), 1))/s, HTTP load keep-alive + new connections\n"
            func ratio(_ key: String, _ x: Int, _ y: Int) -> String {
                if let r = c.ratios[key] ?? nil { return String(format: "%.2f×", r) }
                return x == y ? "=" : "\(x) vs \(y)"
            }
            var rows: [[String]] = [["", "servicerouter", "--reload-always", "ratio"]]
            rows.append(["task replacements", String(a.replacements), String(b.replacements), ""])
            rows.append(["requests", String(a.requests), String(b.requests), ratio("requests", a.requests, b.requests)])
            rows.append(["failed requests", String(a.failed), String(b.failed), ratio("failed", a.failed, b.failed)])
            rows.append(["HAProxy reloads", String(a.reloads), String(b.reloads), ratio("reloads", a.reloads, b.reloads)])
            rows.append(["HAProxy processes alive at the end", String(a.haproxyProcessesAtEnd), String(b.haproxyProcessesAtEnd),
                         ratio("haproxyProcessesAtEnd", a.haproxyProcessesAtEnd, b.haproxyProcessesAtEnd)])
            rows.append(["fast-path batches / full passes", "\(a.fastPathBatches) / \(a.fullPasses)", "\(b.fastPathBatches) / \(b.fullPasses)", ""])
            rows.append(["event → applied median / p99 (ms)", "\(f(a.eventToApplied.median)) / \(f(a.eventToApplied.p99))",
                         "\(f(b.eventToApplied.median)) / \(f(b.eventToApplied.p99))", ""])
            s += table(rows)
            for m in [a, b] where m.failed > 0 {
                s += "  \(m.mode) failures: " + m.failedByTarget.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                    .map { "\($0.key) \($0.value)" }.joined(separator: ", ") + (m.lastFailure.map { " (last: \($0))" } ?? "") + "\n"
            }
            s += "\n"
        }
        if let v = r.vhost {
            s += "VHOST — \(v.moves) moves of an app's HAPROXY_0_VHOST (PUT /v2/apps, which also rolls its tasks)\n"
            var rows: [[String]] = [["", "median ms", "p99 ms", "n"]]
            rows.append(["label change → new host routed"] + dist(v.changeToNewHostRouted))
            rows.append(["label change → old host no longer routed"] + dist(v.changeToOldHostGone))
            s += table(rows)
            s += "  reloads: \(v.reloads); full passes: \(v.fullPasses); not routed within 15 s: \(v.unrouted); "
            s += "service-port load: \(v.requests) requests, \(v.failed) failed\(v.lastFailure.map { " (last: \($0))" } ?? "")\n\n"
        }
        if let b = r.bluegreen {
            s += "BLUEGREEN — servicerouter zdd replaces \(b.instances) instances with \(b.instances) (the stats page watched), under load\n"
            s += table([["", "measured"],
                        ["  deploy (new colour created → old colour deleted)", f(b.seconds, 1) + " s"],
                        ["  outcome", b.succeeded ? "succeeded" : "FAILED: \(b.outcome)"],
                        ["  HAProxy reloads during the deploy", String(b.reloads)],
                        ["  requests / failed", "\(b.requests) / \(b.failed)" + (b.lastFailure.map { " (last: \($0))" } ?? "")],
                        ["  answered by the old / new colour", "\(b.servedByOld) / \(b.servedByNew)"],
                        ["  full passes (task events of a colour take one)", String(b.fullPasses)]]) + "\n"
        }
        var rows: [[String]] = [["check", "target", "measured", ""]]
        for c in r.checks {
            rows.append([c.name, c.target, c.measured, c.passed ? "ok" : (c.kind == .correctness ? "FAILED" : "MISSED")])
        }
        s += "VERDICT\n" + table(rows)
        s += String(format: "(%.0f s)\n", r.seconds)
        return s
    }

    static func phaseName(_ key: String) -> String {
        [
            "fetch": "fetch /v2/apps (HTTP)", "decode": "decode JSON", "model": "replace the model",
            "readLive": "read HAProxy back (show servers state)", "build": "desired state", "plan": "slot plan",
            "render": "render haproxy.cfg", "validate": "haproxy -c", "reload": "write + reload + new worker",
            "apply": "runtime commands", "writeFile": "read/write config file", "total": "total",
        ][key] ?? key
    }

    static func table(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map { $0.count }
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for (n, r) in rows.enumerated() {
            var line = ""
            for (i, c) in r.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                line += i == 0 ? c + pad : "  " + pad + c
            }
            out += line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
            if n == 0 { out += String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n" }
        }
        return out
    }
}

import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The README's Quick start, run as written: every `sh` block, in order, with the built binary
/// for `$SR` (instead of `scripts/setup`, which builds it), a temporary directory for /tmp/sr and
/// free ports for its port numbers (other stacks may hold 18080 on a shared machine). It must do
/// what its comments say, and its last line must stop everything it started.
/// python3 (the Quick start's tasks) and curl.
let quickStartToolsPresent = ["/usr/bin/python3", "/usr/bin/curl"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

@Suite(.enabled(if: Binary.isBuilt && HAProxyProcess.isAvailable && quickStartToolsPresent,
                "servicerouter is not built, or haproxy, python3 or curl is missing"))
struct QuickStartTests {
    static func quickStart() throws -> String {
        let readme = try String(contentsOf: DocsTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "## Quick start"))
        let end = try #require(readme.range(of: "## Documentation"))
        var script = ""
        var inBlock = false
        for line in readme[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "```sh" { inBlock = true; continue }
            if line == "```" { inBlock = false; continue }
            if inBlock { script += line + "\n" }
        }
        return script
    }

    @Test func theQuickStartDoesWhatItSays() async throws {
        var script = try Self.quickStart()
        let dir = NSTemporaryDirectory() + "sr-quickstart-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // The one substitution beyond paths and ports: $SR is this build's binary.
        let setup = "scripts/setup                                   # HAProxy from Debian's packages + swift build\nSR=$PWD/.build/debug/servicerouter\n"
        #expect(script.contains(setup))
        script = script.replacingOccurrences(of: setup, with: "SR=\(try #require(Binary.path))\n")
        script = script.replacingOccurrences(of: "/tmp/sr", with: dir)
        var ports: [String: Int] = [:]
        for literal in ["18080", "18081", "18082", "18083", "18888", "18099", "19090", "19091", "10080"] {
            #expect(script.contains(literal), "the Quick start no longer uses port \(literal): update this test")
            ports[literal] = try freePort()
        }
        // The simulator's two service ports: the base and the next one (freePort() counts up).
        let base = try freePort()
        #expect(try freePort() == base + 1, "two consecutive free ports")
        ports["18100"] = base
        for (literal, port) in ports { script = script.replacingOccurrences(of: literal, with: String(port)) }
        try ("set -e\n" + script).write(toFile: dir + "/quickstart.sh", atomically: true, encoding: .utf8)

        let outputPath = dir + "/output"
        // With default signal dispositions and an empty mask, as from a login shell: the test
        // process may ignore SIGTERM, which its children would inherit (and survive `kill`).
        let shell = try PackagingTests.Entrypoint.spawn("/bin/bash", [dir + "/quickstart.sh"],
                                                        environment: ProcessInfo.processInfo.environment, output: outputPath)
        var shellStatus: Int32?
        func shellExited() -> Bool {
            if shellStatus != nil { return true }
            var raw: Int32 = 0
            guard waitpid(shell, &raw, WNOHANG) == shell else { return false }
            shellStatus = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return true
        }
        func started() -> [Int32] {
            let pids = ((try? String(contentsOfFile: dir + "/pids", encoding: .utf8)) ?? "") + " "
                + ((try? String(contentsOfFile: dir + "/haproxy.pid", encoding: .utf8)) ?? "")
            return pids.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        }
        defer {
            if !shellExited() {
                kill(shell, SIGKILL)
                var raw: Int32 = 0
                _ = waitpid(shell, &raw, 0)
            }
            // Only what the Quick start started, should it have stopped half-way.
            for pid in started() where isAlive(pid) { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: dir)
        }
        try await eventually("the Quick start ends", timeout: 180) { shellExited() }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        #expect(shellStatus == 0, "\(output)")

        let web = "web_\(ports["10080"]!)"
        #expect(output.contains("backend \(web)\n"), "render")
        #expect(output.contains("  bind 127.0.0.1:\(ports["18080"]!)\n") && output.contains("  bind 127.0.0.1:\(ports["19091"]!)\n")
                && output.contains("  bind 127.0.0.1:\(ports["10080"]!)\n") && output.contains("  bind 127.0.0.1:\(ports["19090"]!)\n"),
                "everything stays on 127.0.0.1")
        #expect(!output.contains("  bind *:"))
        #expect(output.contains("# reload: yes\n#   because HAProxy runs a config not generated by servicerouter"), "the first plan")
        #expect(output.components(separatedBy: "<!DOCTYPE HTML>").count - 1 == 3, "routed by vhost, service port and app id: \(output)")
        #expect(output.contains("# runtime commands (0)\n# reload: no\n# config: unchanged"), "the second plan")
        #expect(output.contains("runtime commands applied count=3 failed=0 backends=\(web)"), "a task moved: three runtime commands")
        #expect(output.contains("master          1 [failed: 0]"), "reloads: still 1")
        #expect(output.contains("demo_app-001"), "a demo task through run")
        #expect(output.contains("\"backends\""), "/status")
        // The last line stopped everything it started.
        let pids = started()
        #expect(pids.count == 6, "three tasks, sim, run, and HAProxy's master: \(pids)")
        do {
            try await eventually("everything the Quick start started is gone") { pids.allSatisfy { !isAlive($0) } }
        } catch {
            Issue.record("still running after the Quick start's kill: \(pids.filter(isAlive))")
        }
    }

    func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first.map { $0 != "Z" && $0 != "X" } ?? false
    }
}

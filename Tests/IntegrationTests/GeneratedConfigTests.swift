import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterCLI
import ServiceRouterTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The config `servicerouter render` writes, run by a real HAProxy: its default HEAD logs to
/// standard output (`log global` goes somewhere), and started as root its workers drop to the
/// haproxy user, as Debian's packaged config has them.
@Suite(.enabled(if: Binary.isBuilt && HAProxyProcess.isAvailable, "servicerouter is not built or haproxy is not on PATH"))
struct GeneratedConfigTests {
    static var runsAsRootWithHaproxyUser: Bool { geteuid() == 0 && getpwnam("haproxy") != nil }

    @Test func theDefaultHeadLogsToStandardOutputAndWorkersDropRoot() async throws {
        let dir = NSTemporaryDirectory() + "sr-generated-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let task = try TaskServer(id: "gen.1")
        let servicePort = try freePort(), httpPort = try freePort()
        let apps = dir + "/apps.json"
        try #"{"apps": [{"id": "/gen", "instances": 1, "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": \#(servicePort)}], "tasks": [{"id": "gen.1", "appId": "/gen", "host": "127.0.0.1", "ports": [\#(task.port)], "state": "TASK_RUNNING"}]}]}"#
            .write(toFile: apps, atomically: true, encoding: .utf8)
        let rendered = try await Binary.run(["render", "--apps-json", apps, "--group", "external", "--bind-address", "127.0.0.1",
                                             "--http-port", String(httpPort), "--appid-port", "0", "--haproxy-stats", "off",
                                             "--haproxy-socket", dir + "/admin.sock", "--haproxy-config", dir + "/haproxy.cfg"])
        #expect(rendered.status == 0, "\(rendered.stderr)")
        let config = rendered.stdout
        #expect(config.contains("\nglobal\n  log stdout format raw local0\n"))
        #expect(config.contains("\ndefaults\n  log global\n"))
        #expect(config.contains("  bind 127.0.0.1:\(servicePort)\n"))
        #expect(config.contains("\nglobal\n  user haproxy\n  group haproxy\n") == Self.runsAsRootWithHaproxyUser, "\(config.prefix(1200))")
        try config.write(toFile: dir + "/haproxy.cfg", atomically: true, encoding: .utf8)
        // The vhost maps `render` does not write (`once` and `run` do).
        for map in ["servicerouter-vhost.map", "servicerouter-vhost-path.map"] {
            try "".write(toFile: dir + "/" + map, atomically: true, encoding: .utf8)
        }

        // HAProxy's standard output to a file (fine for a test; HAProxy documents it as slow).
        let output = dir + "/haproxy.out"
        let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        let haproxy = try Subprocess(executable: "/usr/bin/env", arguments: ["haproxy", "-W", "-S", dir + "/master.sock", "-f", dir + "/haproxy.cfg"],
                                     standardOutput: fd, standardError: fd)
        close(fd)
        defer {
            kill(haproxy.processIdentifier, SIGTERM)
            for _ in 0..<250 where haproxy.isRunning { usleep(20_000) }
            if haproxy.isRunning { kill(haproxy.processIdentifier, SIGKILL) }
            haproxy.waitUntilExit()
            task.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let socket = UnixRuntimeSocket(path: dir + "/admin.sock")
        try await eventually("HAProxy answers on its admin socket") {
            if !haproxy.isRunning { throw RuntimeError("haproxy exited: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")") }
            return (try? await socket.identity()) != nil
        }
        #expect(try await httpRequest(port: servicePort).body == "gen.1")
        try await eventually("HAProxy logged the request on its standard output") {
            // A tcp frontend without `option tcplog`: HAProxy's short connection line.
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("to 127.0.0.1:\(servicePort) (gen_\(servicePort)/TCP)")
        }
        if Self.runsAsRootWithHaproxyUser {
            let worker = try await socket.identity().pid
            let status = try String(contentsOfFile: "/proc/\(worker)/status", encoding: .utf8)
            let uid = try #require(status.split(separator: "\n").first { $0.hasPrefix("Uid:") })
            let haproxyUid = try #require(getpwnam("haproxy")).pointee.pw_uid
            #expect(uid.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().allSatisfy { $0 == "\(haproxyUid)" }, "\(uid)")
        }
    }

    @Test func haproxyUserRootKeepsRootAndAnUnknownUserIsRefused() async throws {
        let apps = NSTemporaryDirectory() + "sr-generated-\(UUID().uuidString.prefix(8)).json"
        try #"{"apps": []}"#.write(toFile: apps, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: apps) }
        let base = ["render", "--apps-json", apps, "--group", "external", "--haproxy-stats", "off",
                    "--haproxy-socket", "/tmp/sr-generated-none.sock", "--haproxy-config", "/tmp/sr-generated-none/haproxy.cfg"]
        let root = try await Binary.run(base + ["--haproxy-user", "root"])
        #expect(root.status == 0, "\(root.stderr)")
        #expect(!root.stdout.contains("  user "), "\(root.stderr)")
        let unknown = try await Binary.run(base + ["--haproxy-user", "no-such-user-here"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("--haproxy-user: no user no-such-user-here here"))
        let bad = try await Binary.run(base + ["--haproxy-user", "bad\nuser"])
        #expect(bad.status == 2)
    }
}

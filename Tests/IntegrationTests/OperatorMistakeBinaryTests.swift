import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport

/// A wrong value never looks like success: `servicerouter` run as an operator runs it, against a
/// real HAProxy started in master-worker mode on its minimal config.
@Suite(.serialized, .enabled(if: Binary.isBuilt && HAProxyProcess.isAvailable, "needs the built binary and haproxy"))
struct OperatorMistakeBinaryTests {
    func apps(_ dir: String, servicePort: Int, group: String = "external") throws -> String {
        let path = dir + "/apps.json"
        try """
        {"apps": [{"id": "/web", "instances": 1, "labels": {"HAPROXY_GROUP": "\(group)"}, "portDefinitions": [{"port": \(servicePort)}],
          "tasks": [{"id": "web.1", "appId": "/web", "host": "127.0.0.1", "ports": [31999], "state": "TASK_RUNNING"}]}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func flags(_ h: HAProxyProcess, apps: String, config: String? = nil, socket: String? = nil, master: String? = nil) throws -> [String] {
        ["--apps-json", apps, "--group", "external", "--haproxy-config", config ?? h.configPath,
         "--haproxy-socket", socket ?? h.socketPath, "--master-socket", master ?? h.masterSocketPath,
         "--http-port", String(try freePort()), "--appid-port", "0", "--haproxy-stats", "off"]
    }

    @Test func onceWithAConfigPathHAProxyDoesNotRunFailsAndSaysWhy() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        defer { h.stop() }
        let other = h.directory + "/not-the-one.cfg"
        let r = try await Binary.run(["once"] + flags(h, apps: try apps(h.directory, servicePort: try freePort()), config: other))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("is --haproxy-config the file HAProxy was started with"), "\(r.stderr)")
        #expect(try await h.reloadCount() == 1, "one reload, found not to take, and no other")
    }

    @Test func onceWithASocketTypoChangesNothingAndNamesHAProxysSocket() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        defer { h.stop() }
        let before = try String(contentsOfFile: h.configPath, encoding: .utf8)
        let typo = h.directory + "/admin-wrong.sock"
        let r = try await Binary.run(["once"] + flags(h, apps: try apps(h.directory, servicePort: try freePort()), socket: typo))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("the running HAProxy's stats sockets are: \(h.socketPath)"), "\(r.stderr)")
        #expect(try String(contentsOfFile: h.configPath, encoding: .utf8) == before, "the admin socket is never moved")
        #expect(try await h.reloadCount() == 0)
    }

    @Test func theAdminSocketGivenAsMasterSocketIsRefusedAtOnce() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        defer { h.stop() }
        for command in ["once", "run"] {
            let r = try await Binary.run([command] + flags(h, apps: try apps(h.directory, servicePort: try freePort()), master: h.socketPath))
            #expect(r.status == 2, "\(command): \(r.stderr)")
            #expect(r.stderr.contains("answers like HAProxy's admin (stats) socket, not its master CLI"), "\(command): \(r.stderr)")
        }
        #expect(try await h.reloadCount() == 0)
    }

    @Test func aGroupNoAppHasIsWarnedAboutAndAnEmptyGroupIsRefused() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        defer { h.stop() }
        let file = try apps(h.directory, servicePort: try freePort())
        var args = try flags(h, apps: file)
        args[args.firstIndex(of: "external")!] = "externl"
        let plan = try await Binary.run(["plan"] + args)
        #expect(plan.stdout.contains("warning: none of Marathon's 1 app(s) is in --group \"externl\""), "\(plan.stdout)")
        let once = try await Binary.run(["once"] + args)
        #expect(once.stderr.contains("none of Marathon's 1 app(s) is in --group"), "\(once.stderr)")
        args[args.firstIndex(of: "externl")!] = ""
        let empty = try await Binary.run(["once"] + args)
        #expect(empty.status == 2 && empty.stderr.contains("--group: an empty group matches no app"), "\(empty.stderr)")
    }

    @Test func credentialsOthersCanSeeAreWarnedAbout() async throws {
        let dir = NSTemporaryDirectory() + "sr-cred-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marathon = "http://127.0.0.1:\(try freePort())"  // nobody listens: the fetch fails, the warning comes first
        let common = ["plan", "--marathon", marathon, "--marathon-timeout", "1", "--group", "external", "--haproxy-stats", "off",
                      "--haproxy-config", dir + "/haproxy.cfg", "--haproxy-socket", dir + "/admin.sock", "--log-level", "warning"]
        let onCommandLine = try await Binary.run(common + ["--auth-credentials", "user:secret"])
        #expect(onCommandLine.stderr.contains("visible to every user of this machine"), "\(onCommandLine.stderr)")
        #expect(!onCommandLine.stderr.contains("secret"))
        let file = dir + "/credentials"
        try "user:secret\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        let readable = try await Binary.run(common + ["--marathon-auth-credential-file", file])
        #expect(readable.stderr.contains("the Marathon credentials file can be read by other users") && readable.stderr.contains("chmod 600"),
                "\(readable.stderr)")
        chmod(file, 0o600)
        let private_ = try await Binary.run(common + ["--marathon-auth-credential-file", file])
        #expect(!private_.stderr.contains("can be read by other users") && !private_.stderr.contains("visible to every user"), "\(private_.stderr)")
    }
}

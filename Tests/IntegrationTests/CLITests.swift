import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// The executable as an operator uses it.
@Suite(.enabled(if: Binary.isBuilt, "servicerouter is not built (scripts/test runs swift build --build-tests)"))
struct CLITests {
    static let commands = ["once", "run", "plan", "render", "status", "zdd", "socket", "templates", "docs", "demo"]

    @Test(arguments: commands)
    func everyCommandHasHelp(_ command: String) async throws {
        let r = try await Binary.run([command, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Usage: servicerouter \(command)"))
    }

    @Test func simHasHelp() async throws {
        let r = try await Binary.run(["sim", "--help"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("usage: servicerouter sim"))
    }

    @Test(arguments: [
        (["once", "--bogus"], "unknown option '--bogus'"),
        (["once", "--group", "x", "--min-slots", "zero"], "--min-slots: expected an integer"),
        (["run", "--group", "x", "--marathon", "ftp://m"], "is not an http(s) URL"),
        (["render", "--apps-json", "/dev/null"], "--group is required"),
        (["plan", "--group", "x", "--vhost-routing", "both"], "--vhost-routing: expected map or acl"),
        (["once", "--group", "x", "--haproxy-socket", "/tmp/a b.sock"], "socket path"),
        (["run", "--group", "x", "--listen", "nowhere:port"], "--listen"),
        (["nope"], "unknown command 'nope'"),
        (["socket", "servers", "bad name;"], "HAProxy names"),
        (["once", "--group", "x", "--group-https-by-vhost"], "--group-https-by-vhost needs --ssl-certs"),
        (["once", "--group", "x", "--min-serv-port-ip-per-task", "20000"], "go together"),
        (["once", "--group", "x", "--min-serv-port-ip-per-task", "20001", "--max-serv-port-ip-per-task", "20000"], "must not be above"),
        (["zdd", "--marathon", "http://m:8080"], "--json is required"),
        (["zdd", "--json", "/nonexistent.json"], "--json: cannot read"),
    ] as [([String], String)])
    func badUsageIsOneLineAndExitStatus2(_ args: [String], _ message: String) async throws {
        let r = try await Binary.run(args)
        #expect(r.status == 2, "\(args): \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(args): \(r.stderr)")
        #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    /// `render --output-dir`: the config and the map files it names, in one directory, so that
    /// `haproxy -c` checks exactly what was rendered (plain `render` names maps beside
    /// --haproxy-config, which it does not write).
    @Test func renderOutputDirWritesWhatHAProxyChecks() async throws {
        let fixture = try Fixture.url("marathon15_apps.json")
        let dir = NSTemporaryDirectory() + "render-out-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await Binary.run(["render", "--apps-json", fixture.path, "--group", "external", "--haproxy-stats", "off",
                                      "--haproxy-socket", "/tmp/servicerouter-render-test.sock", "--output-dir", dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").map(String.init) == [
            dir + "/haproxy.cfg", dir + "/servicerouter-vhost-path.map", dir + "/servicerouter-vhost.map",
        ])
        let config = try String(contentsOfFile: dir + "/haproxy.cfg", encoding: .utf8)
        #expect(config.contains("map_str(\(dir)/servicerouter-vhost.map)"))
        #expect(try String(contentsOfFile: dir + "/servicerouter-vhost.map", encoding: .utf8).contains("myvhost.com "))
        if HAProxyProcess.isAvailable {
            let check = try await haproxyCheck(dir + "/haproxy.cfg")
            #expect(check.ok, "\(check.output)")
        }
        // Without --output-dir the same config is printed, naming maps beside --haproxy-config.
        let printed = try await Binary.run(["render", "--apps-json", fixture.path, "--group", "external", "--haproxy-stats", "off",
                                            "--haproxy-socket", "/tmp/servicerouter-render-test.sock", "--haproxy-config", "/etc/haproxy/haproxy.cfg"])
        #expect(printed.stdout.contains("map_str(/etc/haproxy/servicerouter-vhost.map)"))
    }

    @Test func renderPrintsAValidConfigForACapturedPayload() async throws {
        let fixture = try Fixture.url("marathon15_apps.json")
        let r = try await Binary.run(["render", "--apps-json", fixture.path, "--group", "external", "--haproxy-stats", "off",
                                      "--haproxy-socket", "/tmp/servicerouter-render-test.sock"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("backend pywebserver_10101\n"))
        #expect(r.stdout.contains("server s1 10.0.2.148:1565 id 1"))
    }
}

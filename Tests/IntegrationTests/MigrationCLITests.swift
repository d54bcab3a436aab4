import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// A marathon-lb user's command line, run through the built binary: what servicerouter accepts,
/// what it refuses and how it says so. Nothing here starts HAProxy: `plan` and `render` only look
/// (the admin socket named does not exist).
@Suite(.enabled(if: Binary.isBuilt, "servicerouter is not built (scripts/test runs swift build --build-tests)"))
struct MigrationCLITests {
    static let noSocket = ["--haproxy-socket", "/tmp/servicerouter-migration-test-none.sock",
                           "--haproxy-config", "/tmp/servicerouter-migration-test-none/haproxy.cfg"]

    /// A captured payload with one routed app (`/web`, group external) in a temporary file.
    static func appsFile(_ labels: [String: String] = ["HAPROXY_GROUP": "external"]) throws -> String {
        let labelsJSON = String(decoding: try JSONSerialization.data(withJSONObject: labels, options: [.sortedKeys]), as: UTF8.self)
        let text = #"{"apps": [{"id": "/web", "instances": 1, "labels": \#(labelsJSON), "portDefinitions": [{"port": 10080}], "#
            + #""tasks": [{"id": "web.1", "appId": "/web", "host": "127.0.0.1", "ports": [18081], "state": "TASK_RUNNING"}]}]}"#
        let path = NSTemporaryDirectory() + "sr-migration-\(UUID().uuidString.prefix(8)).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func warningLines(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.contains(" WARNING ") }
    }

    // MARK: - marathon-lb flags

    /// marathon-lb's image passes `--syslog-socket` on every start: with it and the other flags
    /// that mean nothing here, servicerouter starts, with exactly one warning per flag.
    @Test func ignoredMarathonLBFlagsWarnOnceEach() async throws {
        let apps = try Self.appsFile()
        defer { try? FileManager.default.removeItem(atPath: apps) }
        let flags = ["--syslog-socket", "/dev/null", "--max-reload-retries", "10", "--reload-interval", "10",
                     "--archive-versions", "5", "--lru-cache-capacity", "1000", "--skip-config-cleanup"]
        let r = try await Binary.run(["render", "--apps-json", apps, "--group", "external"] + Self.noSocket + flags)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("backend web_10080\n"))
        let warnings = Self.warningLines(r.stderr)
        for flag in flags where flag.hasPrefix("--") {
            #expect(warnings.filter { $0.contains(" \(flag) is marathon-lb's and changes nothing here; ignored: ") }.count == 1,
                    "\(flag): \(warnings)")
        }
        #expect(warnings.count == 6, "\(warnings)")
    }

    @Test(arguments: ["once", "run", "plan"])
    func longhelpPrintsTheHelpAndWhereTheReferencesAre(_ command: String) async throws {
        let r = try await Binary.run([command, "--longhelp"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Usage: servicerouter \(command)"))
        #expect(r.stderr.contains("docs/cli.md") && r.stderr.contains("docs/labels.md") && r.stderr.contains("docs/templates.md"))
    }

    @Test(arguments: [
        (["once", "--group", "x", "--skip-validation"], "--skip-validation is not supported: every candidate config is checked with `haproxy -c`"),
        (["run", "--group", "x", "--dcos-auth-credentials", "{}"], "use --auth-credentials USER:PASS or --marathon-auth-credential-file FILE"),
        (["plan", "--group", "x", "--group-https-by-vhost"], "--group-https-by-vhost needs --ssl-certs"),
        (["once", "--group", "x", "--max-reload-retries", "many"], "--max-reload-retries: expected an integer"),
        // marathon-lb's two modes, crossed: each says what to use.
        (["once", "--group", "x", "--sse"], "marathon-lb's event-stream mode (--sse) is `servicerouter run`"),
        (["poll", "--group", "x", "-s"], "marathon-lb's event-stream mode (--sse) is `servicerouter run`"),
        (["run", "--group", "x", "--dry"], "`run` has no dry mode"),
        (["sse", "--group", "x", "-d"], "`servicerouter plan` shows what would change"),
    ] as [([String], String)])
    func refusedMarathonLBUsageSaysWhatToUse(_ args: [String], _ message: String) async throws {
        let r = try await Binary.run(args)
        #expect(r.status == 2, "\(args): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
    }

    /// `sse` and `poll`, marathon-lb's image modes, are `run` and `once`.
    @Test func sseIsRunAndPollIsOnce() async throws {
        let sse = try await Binary.run(["sse", "--help"])
        #expect(sse.status == 0)
        #expect(sse.stdout == (try await Binary.run(["run", "--help"])).stdout)
        let poll = try await Binary.run(["poll", "--help"])
        #expect(poll.status == 0)
        #expect(poll.stdout == (try await Binary.run(["once", "--help"])).stdout)
        // poll does a pass: the same config as once --dry.
        let apps = try Self.appsFile()
        defer { try? FileManager.default.removeItem(atPath: apps) }
        let dry = try await Binary.run(["poll", "--dry", "--apps-json", apps, "--group", "external", "--haproxy-stats", "off"] + Self.noSocket)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("backend web_10080\n"))
    }

    // MARK: - version, defaults

    @Test func versionNamesTheCommit() async throws {
        let r = try await Binary.run(["--version"])
        #expect(r.status == 0)
        let line = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("servicerouter \(ServiceRouterMain.version) (commit "), "\(line)")
        let commit = try #require(line.split(separator: " ").last.map { String($0.dropLast()) })
        #expect(commit == "unknown" || commit.prefix(12).allSatisfy(\.isHexDigit), "\(line)")
        for command in ["run", "once", "plan", "socket", "templates", "demo"] {
            let again = try await Binary.run([command, "--version"])
            #expect(again.status == 0 && again.stdout == r.stdout, "\(command) --version: \(again.stderr)")
        }
    }

    /// `run` without `--marathon` uses marathon-lb's default: `--help` says so.
    @Test func theMarathonDefaultIsInTheHelp() async throws {
        let r = try await Binary.run(["run", "--help"])
        #expect(r.stdout.contains("(default: http://master.mesos:8080, marathon-lb's default, unless --apps-json is given)"))
    }

    /// Without --marathon (and --apps-json) the default is used, and said at start-up.
    @Test func theMarathonDefaultIsLoggedWhenUsed() async throws {
        let r = try await Binary.run(["once", "--group", "external", "--marathon-timeout", "2"] + Self.noSocket, timeout: 120)
        #expect(r.status == 1, "nothing answers at master.mesos here: \(r.stderr)")
        #expect(r.stderr.contains("INFO no --marathon given: using marathon-lb's default marathon=http://master.mesos:8080"), "\(r.stderr)")
    }

    // MARK: - templates: the environment and --templates-dir alike

    static let marathonLBOnly = DefaultTemplates.marathonLBOnly.map(\.name)

    @Test(arguments: marathonLBOnly)
    func aMarathonLBOnlyTemplateIsRefusedFromEitherSource(_ name: String) async throws {
        let apps = try Self.appsFile()
        let dir = NSTemporaryDirectory() + "sr-templates-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: apps)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try "  use_backend x\n".write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        let base = ["render", "--apps-json", apps, "--group", "external"] + Self.noSocket
        let fromDir = try await Binary.run(base + ["--templates-dir", dir])
        let fromEnv = try await Binary.run(base, environment: [name: "  use_backend x\\n"])
        for (r, source) in [(fromDir, "file in --templates-dir \(dir)"), (fromEnv, "environment variable")] {
            #expect(r.status == 2, "\(source): \(r.stderr)")
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.contains("templates marathon-lb has and servicerouter does not; remove them: \(name) (\(source)): "), "\(r.stderr)")
        }
    }

    @Test func aMisspeltTemplateIsRefusedInTheDirectoryAndAWarningInTheEnvironment() async throws {
        let apps = try Self.appsFile()
        let dir = NSTemporaryDirectory() + "sr-templates-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: apps)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try "global\n".write(toFile: dir + "/HAPROXY_HAED", atomically: true, encoding: .utf8)
        let base = ["render", "--apps-json", apps, "--group", "external"] + Self.noSocket
        let fromDir = try await Binary.run(base + ["--templates-dir", dir])
        #expect(fromDir.status == 2)
        #expect(fromDir.stderr.contains("\(dir)/HAPROXY_HAED is not a template servicerouter knows (did you mean HAPROXY_HEAD?)"), "\(fromDir.stderr)")
        let fromEnv = try await Binary.run(base, environment: ["HAPROXY_HAED": "global"])
        #expect(fromEnv.status == 0, "\(fromEnv.stderr)")
        #expect(Self.warningLines(fromEnv.stderr).contains { $0.contains("environment variable HAPROXY_HAED is neither a template nor a setting servicerouter reads; ignored (did you mean HAPROXY_HEAD?)") },
                "\(fromEnv.stderr)")
        // The same template from both: the environment wins, as in marathon-lb.
        try "\nfrontend marathon_http_in\n  bind *:{httpPort}\n  mode http\n  # from the directory\n".write(toFile: dir + "/HAPROXY_HTTP_FRONTEND_HEAD", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: dir + "/HAPROXY_HAED")
        let both = try await Binary.run(base + ["--templates-dir", dir], environment: ["HAPROXY_HTTP_FRONTEND_HEAD": "\\nfrontend marathon_http_in\\n  bind *:{httpPort}\\n  mode http\\n  # from the environment\\n"])
        #expect(both.status == 0, "\(both.stderr)")
        #expect(both.stdout.contains("# from the environment\n") && !both.stdout.contains("# from the directory"))
    }

    /// marathon-lb's HAPROXY_GLOBAL_DEFAULT_OPTIONS: the default HEAD's `option` lines.
    @Test func globalDefaultOptionsFromTheEnvironment() async throws {
        let apps = try Self.appsFile()
        defer { try? FileManager.default.removeItem(atPath: apps) }
        let base = ["render", "--apps-json", apps, "--group", "external"] + Self.noSocket
        let r = try await Binary.run(base, environment: ["HAPROXY_GLOBAL_DEFAULT_OPTIONS": "redispatch, httplog,dontlognull"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  timeout tarpit 60s\n  option dontlognull\n  option httplog\n  option redispatch\n\n"), "\(r.stdout.prefix(900))")
        #expect(!r.stdout.contains("option http-server-close"))
        let bad = try await Binary.run(base, environment: ["HAPROXY_GLOBAL_DEFAULT_OPTIONS": "httplog\nbackend evil"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("HAPROXY_GLOBAL_DEFAULT_OPTIONS"))
        // With HAPROXY_HEAD overridden it would change nothing: said, not silent.
        let head = try await Binary.run(base, environment: ["HAPROXY_GLOBAL_DEFAULT_OPTIONS": "httplog", "HAPROXY_HEAD": "global\\ndefaults\\n  timeout connect 3s\\n  timeout client 30s\\n  timeout server 30s\\n"])
        #expect(head.status == 0, "\(head.stderr)")
        #expect(Self.warningLines(head.stderr).contains { $0.contains("HAPROXY_GLOBAL_DEFAULT_OPTIONS ignored: HAPROXY_HEAD is overridden") })
    }

    // MARK: - labels

    /// `plan` lists every ignored label, per app, with the closest known label for a typo.
    @Test func planListsIgnoredLabelsPerApp() async throws {
        let apps = try Self.appsFile(["HAPROXY_GROUP": "external", "HAPROXY_0_VHOTS": "web.local", "HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n"])
        defer { try? FileManager.default.removeItem(atPath: apps) }
        let r = try await Binary.run(["plan", "--apps-json", apps, "--group", "external", "--haproxy-stats", "off"] + Self.noSocket)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("""
            # app /web: 2 warnings
            #   warning: label HAPROXY_0_BACKEND_HEAD ignored: per-app template labels are honoured only with --enable-label-templates
            #   warning: label HAPROXY_0_VHOTS ignored: it is not a label servicerouter knows (did you mean HAPROXY_0_VHOST?); docs/labels.md lists them

            """), "\(r.stdout)")
    }

    // MARK: - files

    /// A config directory that does not exist: the error names it and the flag.
    @Test func aMissingConfigDirectoryNamesTheDirectoryAndTheFlag() async throws {
        let apps = try Self.appsFile()
        defer { try? FileManager.default.removeItem(atPath: apps) }
        let dir = "/tmp/servicerouter-missing-\(UUID().uuidString.prefix(8))"
        let r = try await Binary.run(["once", "--apps-json", apps, "--group", "external", "--haproxy-stats", "off",
                                      "--haproxy-config", dir + "/haproxy.cfg", "--haproxy-socket", dir + "/admin.sock"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("the directory \(dir) (where --haproxy-config and the vhost maps are written) does not exist"), "\(r.stderr)")
    }
}

/// `servicerouter demo` with its ports chosen: HAProxy routes there, bound to the address given.
@Suite(.enabled(if: Binary.isBuilt && HAProxyProcess.isAvailable, "servicerouter is not built or haproxy is not on PATH"))
struct DemoCommandTests {
    @Test func demoTakesItsServicePortsAndBindAddressFromFlags() async throws {
        // freePort() hands out increasing ports: skip base + 1, which the api app takes.
        let base = try freePort()
        _ = try freePort()
        let http = try freePort()
        let r = try await Binary.run(["demo", "--duration", "2", "--plain", "--rate", "5", "--service-port-base", String(base),
                                      "--http-port", String(http), "--bind-address", "127.0.0.1"], timeout: 120)
        #expect(r.status == 0 || r.status == 1, "\(r.stderr)")
        // freePort() ports are free on every address, so the demo keeps them.
        #expect(r.stdout.contains("routes: /demo/web http://127.0.0.1:\(http) Host: web.demo.local; /demo/api tcp 127.0.0.1:\(base + 1) "
                                  + "(HAProxy binds 127.0.0.1; web's own service port is \(base))"), "\(r.stdout)")
        #expect(r.stdout.contains("everything the demo started has been stopped"), "\(r.stderr)")
    }
}

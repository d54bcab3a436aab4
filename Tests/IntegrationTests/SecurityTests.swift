import Foundation
import MarathonSimulator
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Security: restrictive permissions on what servicerouter creates, no credentials in logs, config
/// or the status endpoint, and the status endpoint on loopback by default. Per-app template labels
/// being off unless enabled is LabelRoutingTests.labelTemplatesAreIgnoredUnlessEnabled.
/// One test at a time: each starts HAProxy, often a simulator, load or child processes; run all at
/// once beside the rest of the suite on 2 cores, they stretch every other test's timing.
@Suite(.serialized, .enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct SecurityTests {
    static let password = "S3cretPass"
    static let basic = Data("user:\(password)".utf8).base64EncodedString()

    /// File type and permission bits.
    func mode(_ path: String) throws -> (type: mode_t, permissions: mode_t) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw RuntimeError("stat \(path): errno \(errno)") }
        return (st.st_mode & S_IFMT, st.st_mode & 0o7777)
    }

    @Test func runtimeSocketAndConfigFilesHaveRestrictivePermissions() async throws {
        let h = try HAProxyProcess()
        // An operator's first config with a world-writable socket: servicerouter's config fixes it.
        try HAProxyProcess.minimalConfig(socket: h.socketPath).replacingOccurrences(of: "mode 600", with: "mode 666")
            .write(toFile: h.configPath, atomically: true, encoding: .utf8)
        try await h.start()
        try await withCleanup {
            #expect(try mode(h.socketPath).permissions == 0o666)
            let logs = MemoryLogSink()
            let render = RenderOptions(adminSocket: h.socketPath, httpPort: try freePort(), appIdPort: nil, stats: nil, mapDirectory: h.directory, bindAddress: "127.0.0.1")
            let settings = ReconcilerSettings(pass: PassSettings(routing: RoutingOptions(groups: ["external"], minSlots: 4, reservedPorts: render.reservedPorts),
                                              render: render, templates: try TemplateSet()), configPath: h.configPath)
            let r = Reconciler(settings: settings, runtime: h.runtime, control: h.control(), resolver: CachingHostResolver(),
                               logger: Logger(minimum: .info, sink: logs))
            let t = try TaskServer(id: "perm.1")
            let good = simpleApp("/perm/web", ports: [try freePort()], [t], labels: ["HAPROXY_0_VHOST": "perm.example.com", "HAPROXY_0_PATH": "/p"])
            let bad = simpleApp("/perm/bad", ports: [try freePort()], [t], labels: ["HAPROXY_0_SSL_CERT": h.directory + "/missing.pem"])
            await r.replace(with: AppsSnapshot(apps: [good, bad]))
            let report = await r.fullPass(reason: "test")
            #expect(report.error == nil && report.reloaded)

            // A second structural change: `.last-good` is now servicerouter's own previous config
            // (after the first reload it is the operator's original file, kept as it was).
            await r.replace(with: AppsSnapshot(apps: [good, bad, simpleApp("/perm/more", ports: [try freePort()], [t], labels: [:])]))
            #expect(await r.fullPass(reason: "test").reloaded)
            let config = try String(contentsOfFile: h.configPath, encoding: .utf8)
            #expect(config.contains("  stats socket \(h.socketPath) mode 600 level admin expose-fd listeners\n"))
            // Created by servicerouter: the config, the one it replaced, the refused candidate, the vhost maps.
            let files = [h.configPath, h.configPath + ".last-good", h.configPath + ".rejected",
                         render.vhostMapPath, render.vhostPathMapPath]
            for f in files {
                let m = try mode(f)
                #expect(m.type == S_IFREG && m.permissions == 0o640, "\(f): \(String(m.permissions, radix: 8))")
            }
            #expect(!FileManager.default.fileExists(atPath: h.configPath + ".candidate"), "no candidate is left behind")

            // A reload hands the listening socket to the new worker: the file keeps the mode of the
            // config HAProxy was started with (docs/operations.md says so).
            #expect(try mode(h.socketPath).permissions == 0o666)
            // HAProxy (re)started on servicerouter's config creates its socket `mode 600`.
            try await h.restart()
            let socket = try mode(h.socketPath)
            #expect(socket.type == S_IFSOCK && socket.permissions == 0o600, "\(String(socket.permissions, radix: 8))")
            #expect(await responses(port: good.servicePorts[0], count: 4) == ["perm.1"])
        } cleanup: {
            await h.shutdown()
        }
    }

    /// `servicerouter once` (the real binary) with `--auth-credentials`, a credentials file, and
    /// credentials in the URL, against a Marathon that requires them — and with a wrong password:
    /// the password is in no output (debug level), no config and no map.
    @Test(.enabled(if: BuiltBinary.path != nil, Comment(rawValue: BuiltBinary.missing)))
    func credentialsNeverReachTheLogsOrTheConfigOfOnce() async throws {
        let binary = try #require(BuiltBinary.path)
        let h = try HAProxyProcess()
        try await h.start()
        let sim = try await MarathonSimulator.start(.init(credentials: .init(user: "user", password: Self.password), heartbeatInterval: nil))
        try await withCleanup {
            let spec = webApp("/sec/once", instances: 2)
            _ = try await sim.createApp(spec)
            try await sim.waitForDeployments()
            let credentialFile = h.directory + "/marathon-credentials"
            try "user:\(Self.password)\n".write(toFile: credentialFile, atomically: true, encoding: .utf8)
            let common = ["--group", "external", "--haproxy-config", h.configPath, "--haproxy-socket", h.socketPath,
                          "--master-socket", h.masterSocketPath, "--http-port", String(try freePort()), "--appid-port", "0",
                          "--haproxy-stats", "off", "--log-level", "debug"]
            let withUserInfo = sim.url.replacingOccurrences(of: "http://", with: "http://user:\(Self.password)@")
            let runs: [(name: String, args: [String], succeeds: Bool)] = [
                ("flag", ["once", "--marathon", sim.url, "--auth-credentials", "user:\(Self.password)"], true),
                ("file", ["once", "--marathon", sim.url, "--marathon-auth-credential-file", credentialFile], true),
                ("url", ["once", "--marathon", withUserInfo], true),
                ("wrong", ["once", "--marathon", sim.url, "--auth-credentials", "user:\(Self.password)X"], false),
                ("plan", ["plan", "--marathon", withUserInfo], true),
            ]
            var outputs = ""
            for (i, run) in runs.enumerated() {
                let child = try ChildProcess.start(binary, run.args + common, log: h.directory + "/once-\(i).log")
                let status = await child.wait(timeout: 60)
                #expect((status == 0) == run.succeeds, "\(run.name): exit \(String(describing: status))\n\(child.output)")
                outputs += child.output
            }
            #expect(outputs.contains("HAProxy reloaded"), "the first run configured HAProxy:\n\(outputs)")
            #expect(outputs.contains("401"), "the wrong password is reported:\n\(outputs)")
            #expect(await responses(port: spec.portDefinitions[0].port, count: 8) == Set(await sim.tasks("/sec/once").map(\.id)))
            let everything = outputs + configAndMaps(h)
            #expect(!everything.contains(Self.password), "the password leaked")
            #expect(!everything.contains(Self.basic) && !everything.contains(Data("user:\(Self.password)X".utf8).base64EncodedString()))
        } cleanup: {
            sim.stop()
            await h.shutdown()
        }
    }

    /// `run` in process, logging at debug level: through the start-up, the event stream, a 401 from
    /// Marathon and a standby's redirect, the password appears in no log record.
    @Test func credentialsNeverReachTheLogsOfRun() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let leader = try await MarathonSimulator.start(.init(credentials: .init(user: "user", password: Self.password), heartbeatInterval: 0.5))
        let standby = try await MarathonSimulator.start(.init(credentials: .init(user: "user", password: Self.password), heartbeatInterval: nil,
                                                              standbyLeaderURL: leader.url))
        let wrong = try ControllerRig(haproxy: h, .init(urls: [leader.url], credentials: BasicCredentials(user: "user", password: "Wr0ngPass")))
        let right = try ControllerRig(haproxy: h, .init(urls: [standby.url], credentials: BasicCredentials(user: "user", password: Self.password)))
        try await withCleanup {
            let spec = webApp("/sec/run", instances: 2)
            _ = try await leader.createApp(spec)
            try await leader.waitForDeployments()
            wrong.start()
            try await eventually("the 401 logged") { wrong.logText.contains("401") }
            await wrong.stop()
            right.start()
            let want = Set(await leader.tasks("/sec/run").map(\.id))
            try await eventually("routed through the standby's redirect") { await responses(port: spec.portDefinitions[0].port, count: 8) == want }
            _ = try await leader.replaceTask("/sec/run")
            try await eventually("an event applied") { right.logText.contains("runtime commands applied") }
            for text in [wrong.logText, right.logText, configAndMaps(h)] {
                #expect(!text.contains(Self.password) && !text.contains("Wr0ngPass"))
                #expect(!text.contains(Self.basic) && !text.contains(Data("user:Wr0ngPass".utf8).base64EncodedString()))
            }
            #expect(!"\(BasicCredentials(user: "user", password: Self.password))".contains(Self.password))
        } cleanup: {
            await wrong.stop()
            await right.stop()
            standby.stop()
            leader.stop()
            await h.shutdown()
        }
    }

    /// The `--listen` endpoint: 127.0.0.1 unless an address is given, and nothing secret in
    /// `/metrics`, `/status` or `/healthz` — not Marathon's credentials, not an app's basic-auth
    /// hash. (ObservabilityTests checks the formats.)
    @Test func statusEndpointIsLoopbackByDefaultAndExposesNoSecret() async throws {
        #expect(try RunCommand.parseListen("9100") == ("127.0.0.1", 9100))
        #expect(try RunCommand.parseListen("0.0.0.0:9100") == ("0.0.0.0", 9100), "another address only when given")
        #expect(throws: (any Error).self) { _ = try RunCommand.parseListen("metrics.example.com:9100") }

        let hash = try await Blocking.run { try ProcessRunner.run("openssl", ["passwd", "-6", "-salt", "statusx", "hunter2"]) }.output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(hash.hasPrefix("$6$statusx$"))
        let h = try HAProxyProcess()
        try await h.start()
        let sim = try await MarathonSimulator.start(.init(credentials: .init(user: "user", password: Self.password), heartbeatInterval: 0.5))
        let rig = try ControllerRig(haproxy: h, .init(urls: [sim.url], credentials: BasicCredentials(user: "user", password: Self.password)))
        let child = Holder<ChildProcess>()
        try await withCleanup {
            let spec = webApp("/sec/status", instances: 2, labels: ["HAPROXY_0_VHOST": "status.example.com", "HAPROXY_0_AUTH": "Area:alice:\(hash)"])
            _ = try await sim.createApp(spec)
            try await sim.waitForDeployments()
            rig.start()
            try await eventually("the first pass done") { rig.logs.contains(.info, "sync done") }
            let (host, port) = try RunCommand.parseListen(String(try freePort()))
            let server = try StatusEndpoint.start(host: host, port: port, metrics: rig.reconciler.metrics, logger: .silent)
            defer { server.stop() }
            var bodies = ""
            for path in ["/metrics", "/status", "/healthz"] {
                let res = try await httpRequest(port: port, path: path)
                #expect(res.status == 200, "\(path): \(res.status)")
                bodies += res.body
            }
            #expect(bodies.contains("sec_status_"), "the endpoint reports the backend")
            for secret in [Self.password, Self.basic, hash, "statusx", "alice"] {
                #expect(!bodies.contains(secret), "\(secret) exposed")
            }
            await #expect(throws: (any Error).self, "bound to 127.0.0.1 only") { _ = try await httpRequest(port: port, path: "/healthz", address: "127.0.0.2") }

            // The binary's --listen PORT, likewise (it takes over from the in-process controller).
            if let binary = BuiltBinary.path {
                await rig.stop()
                let listen = try freePort()
                child.value = try ChildProcess.start(binary, [
                    "run", "--marathon", sim.url, "--auth-credentials", "user:\(Self.password)", "--group", "external",
                    "--haproxy-config", h.configPath, "--haproxy-socket", h.socketPath, "--master-socket", h.masterSocketPath,
                    "--http-port", String(rig.httpPort), "--appid-port", "0", "--haproxy-stats", "off", "--listen", String(listen),
                    "--log-level", "debug",
                ], log: h.directory + "/run-listen.log")
                try await eventually("the binary's endpoint answers") { try await httpRequest(port: listen, path: "/status").status == 200 }
                try await eventually("its first pass done") { child.value?.output.contains("sync done") == true }
                var binaryBodies = ""
                for path in ["/metrics", "/status", "/healthz"] { binaryBodies += try await httpRequest(port: listen, path: path).body }
                for secret in [Self.password, Self.basic, hash] {
                    #expect(!binaryBodies.contains(secret) && !(child.value?.output ?? "").contains(secret), "\(secret) exposed by the binary")
                }
                await #expect(throws: (any Error).self) { _ = try await httpRequest(port: listen, path: "/healthz", address: "127.0.0.2") }
                #expect(child.value?.output.contains("url=http://127.0.0.1:\(listen)") == true)
            }
        } cleanup: {
            await child.value?.kill(SIGTERM)
            await rig.stop()
            sim.stop()
            await h.shutdown()
        }
    }
}

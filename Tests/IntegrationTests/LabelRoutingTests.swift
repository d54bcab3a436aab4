import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// Every marathon-lb label, checked the way a marathon-lb user would: real requests through a real
/// HAProxy (Host header, path, redirect status, cookie, auth challenge, HSTS header, allowed
/// network), not only config text.
@Suite(.enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct LabelRoutingTests {
    /// HAProxy + a reconciler with the given options; apps in, routing out.
    final class Router: @unchecked Sendable {
        let haproxy: HAProxyProcess
        let reconciler: Reconciler
        let httpPort: Int
        let appIdPort: Int
        let httpsPort: Int?
        let logs = MemoryLogSink()

        init(strict: Bool = false, acl: Bool = false, labelTemplates: Bool = false, certificate: String? = nil,
             groupHTTPS: Bool = false) async throws {
            haproxy = try HAProxyProcess()
            try await haproxy.start()
            httpPort = try freePort()
            appIdPort = try freePort()
            let https = try certificate.map { _ in try freePort() }
            httpsPort = https
            var render = RenderOptions(adminSocket: haproxy.socketPath, httpPort: httpPort, appIdPort: appIdPort, stats: nil,
                                       https: certificate.map { .init(port: https!, certificates: [$0]) },
                                       vhostRouting: acl ? .acl : .map, mapDirectory: haproxy.directory, labelTemplates: labelTemplates, bindAddress: "127.0.0.1")
            render.groupHTTPSByVhost = groupHTTPS
            let settings = ReconcilerSettings(pass: PassSettings(
                routing: RoutingOptions(groups: ["external"], strictMode: strict, minSlots: 4, reservedPorts: render.reservedPorts),
                render: render, templates: try TemplateSet()), configPath: haproxy.configPath)
            reconciler = Reconciler(settings: settings, runtime: haproxy.runtime, control: haproxy.control(),
                                    resolver: CachingHostResolver(), logger: Logger(minimum: .info, sink: logs))
        }

        @discardableResult
        func apply(_ apps: [MarathonApp]) async throws -> PassReport {
            await reconciler.replace(with: AppsSnapshot(apps: apps))
            let r = await reconciler.fullPass(reason: "test")
            if let e = r.error { throw RuntimeError("sync failed: \(e)") }
            return r
        }

        func stop() async { await haproxy.shutdown() }
    }

    /// An app whose tasks are real listeners.
    func app(_ id: String, port: Int, _ tasks: [TaskServer], labels: [String: String], ports extra: [Int] = []) -> MarathonApp {
        var l = ["HAPROXY_GROUP": "external"]
        l.merge(labels) { _, new in new }
        return MarathonApp(id: id, labels: l, instances: tasks.count, configChangedAt: "2026-01-01T00:00:00.000Z",
                           servicePorts: [port] + extra,
                           tasks: tasks.map { t in MarathonTask(id: t.id, appId: id, host: "127.0.0.1", ports: [t.port] + extra.map { _ in t.port }) })
    }

    func withRouter(_ make: () async throws -> Router = { try await Router() }, _ body: (Router) async throws -> Void) async throws {
        let r = try await make()
        do { try await body(r) } catch {
            await r.stop()
            throw error
        }
        await r.stop()
    }

    /// In both routing modes, a Host header with a port (`Host: name:80`, as clients send for
    /// non-default ports) routes like the bare name (marathon-lb's `hdr(host)` ACLs missed it).
    @Test(arguments: [false, true])
    func vhostAndCommaListRouteByHostHeader(acl: Bool) async throws {
        try await withRouter({ try await Router(acl: acl) }) { r in
            let a = try TaskServer(id: "a.1"), b = try TaskServer(id: "b.1")
            try await r.apply([
                app("/a", port: try freePort(), [a], labels: ["HAPROXY_0_VHOST": "a.example.com, alias.example.com"]),
                app("/b", port: try freePort(), [b], labels: ["HAPROXY_0_VHOST": "b.example.com"]),
            ])
            #expect(try await httpRequest(port: r.httpPort, host: "a.example.com").body == "a.1")
            #expect(try await httpRequest(port: r.httpPort, host: "ALIAS.example.com:8080").body == "a.1", "case and port ignored")
            #expect(try await httpRequest(port: r.httpPort, host: "b.example.com:80").body == "b.1")
            #expect(try await httpRequest(port: r.httpPort, host: "b.example.com.evil:80").status == 503)
            #expect(try await httpRequest(port: r.httpPort, host: "b.example.com").body == "b.1")
            #expect(try await httpRequest(port: r.httpPort, host: "nobody.example.com").status == 503)
        }
    }

    @Test(arguments: [false, true])
    func pathRoutesAPrefixOfAVhost(acl: Bool) async throws {
        try await withRouter({ try await Router(acl: acl) }) { r in
            let site = try TaskServer(id: "site.1"), api = try TaskServer(id: "api.1")
            try await r.apply([
                app("/site", port: try freePort(), [site], labels: ["HAPROXY_0_VHOST": "shop.example.com"]),
                app("/api", port: try freePort(), [api], labels: ["HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api"]),
            ])
            #expect(try await httpRequest(port: r.httpPort, path: "/api/orders", host: "shop.example.com").body == "api.1")
            #expect(try await httpRequest(port: r.httpPort, path: "/", host: "shop.example.com").body == "site.1")
            #expect(try await httpRequest(port: r.httpPort, path: "/basket", host: "shop.example.com").body == "site.1")
        }
    }

    /// `--bind-address 127.0.0.1` (this router's): the shared frontend and a service port answer on
    /// 127.0.0.1 only; `HAPROXY_{n}_BIND_ADDR=*` still wins for its port.
    @Test func bindAddressFlagAndTheLabelThatWinsOverIt() async throws {
        try await withRouter { r in
            let t = try TaskServer(id: "b.1")
            let flagPort = try freePort(), labelPort = try freePort()
            try await r.apply([app("/b/flag", port: flagPort, [t], labels: ["HAPROXY_0_VHOST": "b.example.com"]),
                               app("/b/label", port: labelPort, [t], labels: ["HAPROXY_0_BIND_ADDR": "*"])])
            #expect(try await httpRequest(port: flagPort).body == "b.1")
            #expect(try await httpRequest(port: r.httpPort, host: "b.example.com").body == "b.1")
            await #expect(throws: (any Error).self, "the service port is bound to 127.0.0.1 only") {
                _ = try await httpRequest(port: flagPort, address: "127.0.0.2")
            }
            await #expect(throws: (any Error).self, "the shared frontend is bound to 127.0.0.1 only") {
                _ = try await httpRequest(port: r.httpPort, host: "b.example.com", address: "127.0.0.2")
            }
            #expect(try await httpRequest(port: labelPort, address: "127.0.0.2").body == "b.1", "HAPROXY_0_BIND_ADDR=* wins")
        }
    }

    @Test func portModeBalanceAndBindAddress() async throws {
        try await withRouter { r in
            let t1 = try TaskServer(id: "t.1"), t2 = try TaskServer(id: "t.2")
            let labelPort = try freePort()
            try await r.apply([app("/t", port: try freePort(), [t1, t2], labels: [
                "HAPROXY_0_PORT": String(labelPort), "HAPROXY_0_MODE": "tcp", "HAPROXY_0_BALANCE": "source",
                "HAPROXY_0_BIND_ADDR": "127.0.0.1", "HAPROXY_0_BIND_OPTIONS": "maxconn 50",
            ])])
            // source balancing: one client address always lands on the same task.
            var seen = Set<String>()
            for _ in 0..<8 { seen.insert(try await httpRequest(port: labelPort).body) }
            #expect(seen.count == 1)
            // Bound on 127.0.0.1 only.
            await #expect(throws: (any Error).self) { _ = try await httpRequest(port: labelPort, address: "127.0.0.2") }
            let cfg = try String(contentsOfFile: r.haproxy.configPath, encoding: .utf8)
            #expect(cfg.contains("  bind 127.0.0.1:\(labelPort) maxconn 50\n  mode tcp\n"))
        }
    }

    @Test func stickyCookieKeepsAClientOnItsTask() async throws {
        try await withRouter { r in
            let tasks = try (1...3).map { try TaskServer(id: "s.\($0)") }
            let port = try freePort()
            try await r.apply([app("/s", port: port, tasks, labels: ["HAPROXY_0_STICKY": "true", "HAPROXY_0_MODE": "http"])])
            let first = try await httpRequest(port: port)
            let cookie = try #require(first.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
            #expect(cookie.hasPrefix("mesosphere_server_id=s"))
            for _ in 0..<6 {
                #expect(try await httpRequest(port: port, headers: ["Cookie": cookie]).body == first.body)
            }
        }
    }

    @Test func redirectToHTTPSAndHSTS() async throws {
        try await withRouter { r in
            let t = try TaskServer(id: "secure.1")
            let port = try freePort()
            try await r.apply([app("/secure", port: port, [t], labels: [
                "HAPROXY_0_VHOST": "secure.example.com", "HAPROXY_0_REDIRECT_TO_HTTPS": "true", "HAPROXY_0_USE_HSTS": "true",
            ])])
            let res = try await httpRequest(port: r.httpPort, path: "/account?x=1", host: "secure.example.com")
            #expect(res.status == 301)
            #expect(res.headers["location"] == "https://secure.example.com/account?x=1")
            let direct = try await httpRequest(port: port)
            #expect(direct.status == 200)
            #expect(direct.headers["strict-transport-security"] == "max-age=15768000")
        }
    }

    @Test func basicAuthChallengesAndAccepts() async throws {
        let hash = try ProcessRunner.run("openssl", ["passwd", "-6", "-salt", "srtest", "s3cret"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(hash.hasPrefix("$6$srtest$"))
        try await withRouter { r in
            let t = try TaskServer(id: "admin.1")
            try await r.apply([app("/admin", port: try freePort(), [t], labels: [
                "HAPROXY_0_VHOST": "admin.example.com", "HAPROXY_0_AUTH": "Admin Area:alice:\(hash)",
            ])])
            let denied = try await httpRequest(port: r.httpPort, host: "admin.example.com")
            #expect(denied.status == 401)
            #expect(denied.headers["www-authenticate"] == "Basic realm=\"Admin Area\"")
            let wrong = Data("alice:nope".utf8).base64EncodedString()
            #expect(try await httpRequest(port: r.httpPort, host: "admin.example.com", headers: ["Authorization": "Basic \(wrong)"]).status == 401)
            let right = Data("alice:s3cret".utf8).base64EncodedString()
            #expect(try await httpRequest(port: r.httpPort, host: "admin.example.com", headers: ["Authorization": "Basic \(right)"]).body == "admin.1")
        }
    }

    @Test func backendWeightOrdersOverlappingRules() async throws {
        // marathon-lb's ACL layout: the higher weight's rule is tried first.
        try await withRouter({ try await Router(acl: true) }) { r in
            let wide = try TaskServer(id: "wide.1"), narrow = try TaskServer(id: "narrow.1")
            try await r.apply([
                app("/wide", port: try freePort(), [wide], labels: ["HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/", "HAPROXY_0_BACKEND_WEIGHT": "1"]),
                app("/narrow", port: try freePort(), [narrow], labels: ["HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/n", "HAPROXY_0_BACKEND_WEIGHT": "5"]),
            ])
            #expect(try await httpRequest(port: r.httpPort, path: "/n/x", host: "w.example.com").body == "narrow.1")
            #expect(try await httpRequest(port: r.httpPort, path: "/x", host: "w.example.com").body == "wide.1")
        }
    }

    @Test func networkAllowedACL() async throws {
        try await withRouter { r in
            let t = try TaskServer(id: "n.1")
            let open = try freePort(), closed = try freePort(), tcpClosed = try freePort()
            try await r.apply([
                app("/open", port: open, [t], labels: ["HAPROXY_0_MODE": "http", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "127.0.0.0/8 10.0.0.0/8"]),
                app("/closed", port: closed, [t], labels: ["HAPROXY_0_MODE": "http", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8"]),
                app("/tcpclosed", port: tcpClosed, [t], labels: ["HAPROXY_0_MODE": "tcp", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "192.168.0.0/16"]),
            ])
            #expect(try await httpRequest(port: open).body == "n.1")
            #expect(try await httpRequest(port: closed).status == 403)
            await #expect(throws: (any Error).self) { _ = try await httpRequest(port: tcpClosed) }
        }
    }

    @Test func proxyPassRevProxyAndRootRedirect() async throws {
        try await withRouter { r in
            let t = try TaskServer(id: "p.1")
            try await r.apply([app("/p", port: try freePort(), [t], labels: [
                "HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/app",
                "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/app", "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/app",
            ])])
            let stripped = try await httpRequest(port: r.httpPort, path: "/app/orders/7", host: "p.example.com")
            #expect(stripped.headers["x-seen-path"] == "/orders/7")
            #expect(stripped.headers["x-seen-host"] == "p.example.com")
            let redirected = try await httpRequest(port: r.httpPort, path: "/app/redirect", host: "p.example.com")
            #expect(redirected.status == 302)
            #expect(redirected.headers["location"] == "/app/login")

            let home = try TaskServer(id: "home.1")
            try await r.apply([app("/home", port: try freePort(), [home], labels: [
                "HAPROXY_0_VHOST": "home.example.com", "HAPROXY_0_HTTP_BACKEND_REDIR": "/welcome",
            ])])
            let root = try await httpRequest(port: r.httpPort, path: "/", host: "home.example.com")
            #expect(root.status == 301)
            #expect(root.headers["location"] == "/welcome")
            #expect(try await httpRequest(port: r.httpPort, path: "/", host: "home.example.com:80").status == 301, "a port in Host too")
            #expect(try await httpRequest(port: r.httpPort, path: "/other", host: "home.example.com").body == "home.1")
        }
    }

    @Test func healthCheckPortIndexChecksTheOtherPort() async throws {
        try await withRouter { r in
            let serving = try TaskServer(id: "hc.1"), healthEndpoint = try TaskServer(id: "hc.health")
            let port = try freePort(), second = try freePort()
            let check = MarathonHealthCheck(proto: .tcp, portIndex: 1, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 0)
            // Port index 0 serves; port index 1 is where the task answers health checks.
            let a = MarathonApp(id: "/hc", labels: ["HAPROXY_GROUP": "external", "HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "1"],
                                instances: 1, servicePorts: [port, second], healthChecks: [check],
                                tasks: [MarathonTask(id: "hc.1", appId: "/hc", host: "127.0.0.1", ports: [serving.port, healthEndpoint.port])])
            try await r.apply([a])
            let live = try await r.haproxy.runtime.liveState(backends: [try ProxyName("hc_\(port)")])
            #expect(live.backends.values.first?.first?.checkPort == healthEndpoint.port)
            #expect(try await httpRequest(port: port).body == "hc.1")
            // The health endpoint dies: HAProxy marks the server down although its serving port is fine.
            healthEndpoint.stop()
            let deadline = Monotonic.now() + 10
            var down = false
            while !down, Monotonic.now() < deadline {
                try await Task.sleep(nanoseconds: 200_000_000)
                down = try await r.haproxy.runtime.liveState(backends: [try ProxyName("hc_\(port)")]).backends.values.first?.first?.operationalState == 0
            }
            #expect(down)
        }
    }

    @Test func strictModeRoutesOnlyEnabledPorts() async throws {
        try await withRouter({ try await Router(strict: true) }) { r in
            let t = try TaskServer(id: "e.1")
            let on = try freePort(), off = try freePort()
            let report = try await r.apply([
                app("/on", port: on, [t], labels: ["HAPROXY_0_ENABLED": "true"]),
                app("/off", port: off, [t], labels: [:]),
            ])
            #expect(report.desired.services.map(\.appId) == ["/on"])
            #expect(try await httpRequest(port: on).body == "e.1")
            await #expect(throws: (any Error).self) { _ = try await httpRequest(port: off) }
        }
    }

    @Test func groupsSelectPortsAndAppIdHeaderRoutes() async throws {
        try await withRouter { r in
            let t = try TaskServer(id: "g.1")
            let p0 = try freePort(), p1 = try freePort()
            var a = app("/g", port: p0, [t], labels: ["HAPROXY_GROUP": "internal", "HAPROXY_1_GROUP": "external",
                                                      "HAPROXY_1_MODE": "http"], ports: [p1])
            a.tasks[0].ports = [t.port, t.port]
            let report = try await r.apply([a])
            #expect(report.desired.services.map(\.servicePort.value) == [p1])
            #expect(try await httpRequest(port: r.appIdPort, headers: ["X-Marathon-App-Id": "/g"]).body == "g.1")
            #expect(try await httpRequest(port: r.appIdPort, headers: ["X-Marathon-App-Id": "/other"]).status == 503)
        }
    }

    @Test func sslCertAndTheHTTPSFrontendRouteBySNI() async throws {
        let pki = try TestPKI(names: ["a.example.com", "b.example.com"])
        defer { pki.remove() }
        try await withRouter({ try await Router(certificate: pki.pemPath) }) { r in
            let a = try TaskServer(id: "tls.a"), b = try TaskServer(id: "tls.b")
            let tlsPort = try freePort()
            try await r.apply([
                app("/tls-a", port: tlsPort, [a], labels: ["HAPROXY_0_VHOST": "a.example.com", "HAPROXY_0_SSL_CERT": pki.pemPath]),
                app("/tls-b", port: try freePort(), [b], labels: ["HAPROXY_0_VHOST": "b.example.com"]),
            ])
            let https = try #require(r.httpsPort)
            #expect(try await pki.get(port: https, serverName: "a.example.com").body == "tls.a")
            #expect(try await pki.get(port: https, serverName: "b.example.com").body == "tls.b")
            // HAPROXY_0_SSL_CERT: the service port itself terminates TLS.
            #expect(try await pki.get(port: tlsPort, serverName: "a.example.com").body == "tls.a")
        }
    }

    /// `--group-https-by-vhost`: each virtual host gets its own TLS frontend with its apps'
    /// certificate (`HAPROXY_{n}_SSL_CERT`), else `--ssl-certs`; routing inside is the usual one.
    /// A new vhost is a new frontend: one reload, after which the others still serve.
    @Test(arguments: [false, true])
    func groupHTTPSByVhostTerminatesTLSPerVhost(acl: Bool) async throws {
        let shared = try TestPKI(names: ["b.example.com", "c.example.com"]), own = try TestPKI(names: ["a.example.com"])
        defer { shared.remove(); own.remove() }
        try await withRouter({ try await Router(acl: acl, certificate: shared.pemPath, groupHTTPS: true) }) { r in
            let a = try TaskServer(id: "grp.a"), b = try TaskServer(id: "grp.b"), api = try TaskServer(id: "grp.api"), c = try TaskServer(id: "grp.c")
            let apps = [
                app("/grp-a", port: try freePort(), [a], labels: ["HAPROXY_0_VHOST": "a.example.com", "HAPROXY_0_SSL_CERT": own.pemPath]),
                app("/grp-b", port: try freePort(), [b], labels: ["HAPROXY_0_VHOST": "b.example.com"]),
                app("/grp-api", port: try freePort(), [api], labels: ["HAPROXY_0_VHOST": "b.example.com", "HAPROXY_0_PATH": "/api"]),
            ]
            try await r.apply(apps)
            let https = try #require(r.httpsPort)
            // Verified against each PKI's own CA: a.example.com is served with its app's certificate.
            #expect(try await own.get(port: https, serverName: "a.example.com").body == "grp.a")
            #expect(try await shared.get(port: https, serverName: "b.example.com").body == "grp.b")
            #expect(try await shared.get(port: https, serverName: "b.example.com", path: "/api/x").body == "grp.api")
            await #expect(throws: (any Error).self, "a.example.com's frontend does not have the shared certificate") {
                _ = try await shared.get(port: https, serverName: "a.example.com")
            }
            let config = try String(contentsOfFile: r.haproxy.configPath, encoding: .utf8)
            #expect(config.contains("frontend a_example_com\n  mode http\n  bind abns@servicerouter_\(https)_a_example_com accept-proxy ssl crt \(own.pemPath)\n"))
            // A vhost more: a new frontend (reload); everything still served.
            let report = try await r.apply(apps + [app("/grp-c", port: try freePort(), [c], labels: ["HAPROXY_0_VHOST": "c.example.com"])])
            #expect(report.reloaded)
            #expect(try await shared.get(port: https, serverName: "c.example.com").body == "grp.c")
            #expect(try await own.get(port: https, serverName: "a.example.com").body == "grp.a")
            #expect(try await httpRequest(port: r.httpPort, host: "c.example.com").body == "grp.c", "plain HTTP is unchanged")
        }
    }

    @Test func labelTemplatesAreIgnoredUnlessEnabled() async throws {
        let override = ["HAPROXY_0_BACKEND_HTTP_OPTIONS": "  http-response set-header X-From-Label yes\n", "HAPROXY_0_MODE": "http"]
        for enabled in [false, true] {
            try await withRouter({ try await Router(labelTemplates: enabled) }) { r in
                let t = try TaskServer(id: "tpl.1")
                let port = try freePort()
                try await r.apply([app("/tpl", port: port, [t], labels: override)])
                let res = try await httpRequest(port: port)
                #expect(res.body == "tpl.1")
                #expect((res.headers["x-from-label"] == "yes") == enabled)
            }
        }
    }
}

/// A throwaway CA and one certificate for the given names (and 127.0.0.1), as HAProxy's PEM.
struct TestPKI {
    let dir: String
    var pemPath: String { dir + "/server.pem" }
    var caPath: String { dir + "/ca.pem" }

    init(names: [String]) throws {
        dir = NSTemporaryDirectory() + "sr-pki-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func openssl(_ args: [String]) throws {
            let r = try ProcessRunner.run("/bin/sh", ["-c", "cd \(dir) && openssl " + args.joined(separator: " ")])
            guard r.status == 0 else { throw RuntimeError("openssl \(args.first ?? ""): \(r.output)") }
        }
        let san = (names.map { "DNS:\($0)" } + ["IP:127.0.0.1"]).joined(separator: ",")
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
                     "-out", "ca.pem", "-days", "1", "-subj", "/CN=sr-test-ca", "-addext", "basicConstraints=critical,CA:TRUE"])
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
                     "-out", "server.csr", "-subj", "/CN=\(names[0])"])
        try "subjectAltName=\(san)\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "server.crt", "-days", "1", "-extfile", "san.ext"])
        let pem = try String(contentsOfFile: dir + "/server.crt", encoding: .utf8) + String(contentsOfFile: dir + "/server.key", encoding: .utf8)
        try pem.write(toFile: pemPath, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    /// GET / over TLS to 127.0.0.1:port with the given SNI name (verified against the test CA).
    func get(port: Int, serverName: String, path: String = "/") async throws -> HTTPResult {
        let ca = caPath
        return try await Blocking.run {
            let tcp = try Connection.tcp(host: "127.0.0.1", port: port, timeout: 3)
            let tls = try TLSConnection(tcp, context: try TLSContext(caFile: ca), serverName: serverName, timeout: 5)
            defer { tls.close() }
            try tls.write(Array("GET \(path) HTTP/1.1\r\nHost: \(serverName)\r\nConnection: close\r\n\r\n".utf8))
            var raw: [UInt8] = []
            while let chunk = try? tls.read(timeout: 5) { raw += chunk }
            return try parseResponse(String(decoding: raw, as: UTF8.self))
        }
    }
}

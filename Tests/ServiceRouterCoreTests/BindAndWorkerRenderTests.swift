import Testing
@testable import ServiceRouterCore

/// `--bind-address` and the workers' user and group in the rendered config.
@Suite struct BindAndWorkerRenderTests {
    static let socket = "/run/servicerouter/admin.sock"

    func render(_ apps: [MarathonApp], _ options: RenderOptions) throws -> RenderedConfig {
        let d = DesiredStateBuilder.build(apps: apps, options: RoutingOptions(groups: ["*"], minSlots: 2, reservedPorts: options.reservedPorts))
        return try ConfigRenderer.render(desired: d, plan: SlotPlanner.plan(desired: d, live: LiveState()), templates: TemplateSet(), options: options)
    }

    func bindLines(_ r: RenderedConfig) -> [String] {
        r.text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("  bind ") }
    }

    static let apps = [
        makeApp("/web", ports: [10000], labels: ["HAPROXY_0_VHOST": "web.local"], tasks: [makeTask("web.1", app: "/web")]),
        makeApp("/pinned", ports: [10001], labels: ["HAPROXY_0_BIND_ADDR": "10.0.0.5"], tasks: [makeTask("pinned.1", app: "/pinned")]),
        makeApp("/star", ports: [10002], labels: ["HAPROXY_0_BIND_ADDR": "*"], tasks: [makeTask("star.1", app: "/star")]),
    ]

    @Test func everyFrontendBindsTheBindAddressUnlessTheLabelSaysOtherwise() throws {
        var options = RenderOptions(adminSocket: Self.socket, httpPort: 18080, appIdPort: 19091, stats: nil,
                                    https: .init(port: 18443, certificates: ["/etc/ssl/cert.pem"]), bindAddress: "127.0.0.1")
        options.stats = .init(address: "127.0.0.1", port: 19090)
        let r = try render(Self.apps, options)
        #expect(bindLines(r) == [
            "  bind 127.0.0.1:19090",                                  // stats (the CLI defaults it to --bind-address)
            "  bind 127.0.0.1:18080",                                  // shared HTTP
            "  bind 127.0.0.1:19091",                                  // app id
            "  bind 127.0.0.1:18443 ssl crt /etc/ssl/cert.pem",        // shared HTTPS
            "  bind 10.0.0.5:10001",                                   // HAPROXY_0_BIND_ADDR wins
            "  bind *:10002",                                          // even when it is *
            "  bind 127.0.0.1:10000",
        ])
        // The default is marathon-lb's: every address.
        let all = try render(Self.apps, RenderOptions(adminSocket: Self.socket, stats: nil))
        #expect(bindLines(all).filter { $0.hasPrefix("  bind *:") }.count == 4)
        // A different bind address is a different structure: it needs a reload.
        #expect(r.structureHash != (try render(Self.apps, { var o = options; o.bindAddress = "127.0.0.2"; return o }())).structureHash)
    }

    @Test func bindAddressValidation() throws {
        #expect(try RenderOptions.validateBindAddress("*") == "*")
        #expect(try RenderOptions.validateBindAddress(" 127.0.0.1 ") == "127.0.0.1")
        #expect(try RenderOptions.validateBindAddress("::1") == "::1")
        for bad in ["localhost", "127.0.0.1:80", "1.2.3.4\nbind *:1", "", "0.0.0.0/0"] {
            #expect(throws: ValidationError.self) { try RenderOptions.validateBindAddress(bad) }
        }
    }

    @Test func workersGetTheirOwnUserAndGroup() throws {
        var options = RenderOptions(adminSocket: Self.socket, stats: nil)
        options.workerIdentity = try WorkerIdentity(user: "haproxy", group: "haproxy")
        let r = try render(Self.apps, options)
        #expect(r.text.contains("\nglobal\n  user haproxy\n  group haproxy\n"))
        #expect(r.structureHash != (try render(Self.apps, RenderOptions(adminSocket: Self.socket, stats: nil))).structureHash,
                "changing the workers' user needs a reload")
        // A HEAD that sets a user itself keeps its choice.
        let head = "global\n  user nobody\ndefaults\n  timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n"
        let d = DesiredStateBuilder.build(apps: Self.apps, options: RoutingOptions(groups: ["*"], minSlots: 2))
        let custom = try ConfigRenderer.render(desired: d, plan: SlotPlanner.plan(desired: d, live: LiveState()),
                                               templates: TemplateSet(overrides: ["HAPROXY_HEAD": head]), options: options)
        #expect(!custom.text.contains("user haproxy"))
        for bad in ["ha proxy", "root\nbackend x", "", "-x", String(repeating: "a", count: 33)] {
            #expect(throws: ValidationError.self) { try WorkerIdentity(user: bad, group: "haproxy") }
        }
    }
}

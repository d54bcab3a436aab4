import Testing
@testable import ServiceRouterCore

/// `--group-https-by-vhost`: marathon-lb's grouped HTTPS layout (its test_group_https_by_vhost,
/// with servicerouter's slots, socket names and map routing).
@Suite struct GroupedHTTPSTests {
    static let socket = "/run/servicerouter/admin.sock"

    func options(_ routing: RenderOptions.VhostRouting) -> RenderOptions {
        var o = RenderOptions(adminSocket: Self.socket, https: .init(port: 443, certificates: ["/etc/ssl/cert.pem"]), vhostRouting: routing)
        o.groupHTTPSByVhost = true
        return o
    }

    func render(_ routing: RenderOptions.VhostRouting) throws -> RenderedConfig {
        let apps = [
            makeApp("/nginx1", ports: [10000], labels: ["HAPROXY_0_VHOST": "server.nginx.net,server3.nginx.net"],
                    tasks: [makeTask("nginx1.1", app: "/nginx1", host: "1.1.1.1", ports: [1024])]),
            makeApp("/nginx2", ports: [10001], labels: ["HAPROXY_0_VHOST": "server2.nginx.net", "HAPROXY_0_SSL_CERT": "/etc/cert",
                                                        "HAPROXY_0_BIND_OPTIONS": "verify required", "HAPROXY_0_PATH": "/test"],
                    tasks: [makeTask("nginx2.1", app: "/nginx2", host: "2.2.2.2", ports: [1025])]),
            makeApp("/nginx3", ports: [10002], labels: ["HAPROXY_0_VHOST": "server2.nginx.net", "HAPROXY_0_PATH": "/test2",
                                                        "HAPROXY_0_BACKEND_WEIGHT": "99"],
                    tasks: [makeTask("nginx3.1", app: "/nginx3", host: "3.3.3.3", ports: [1026])]),
        ]
        let o = options(routing)
        let d = DesiredStateBuilder.build(apps: apps, options: RoutingOptions(groups: ["*"], minSlots: 1, reservedPorts: o.reservedPorts))
        return try ConfigRenderer.render(desired: d, plan: SlotPlanner.plan(desired: d, live: LiveState()), templates: TemplateSet(), options: o)
    }

    func section(_ r: RenderedConfig, _ header: String) -> [String]? {
        let all = r.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = all.firstIndex(of: header) else { return nil }
        return Array(all[start...].prefix { !$0.isEmpty })
    }

    @Test func aclRoutingIsMarathonLBsLayout() throws {
        let r = try render(.acl)
        #expect(section(r, "frontend marathon_https_in") == [
            "frontend marathon_https_in", "  bind *:443", "  mode tcp", "  tcp-request inspect-delay 5s",
            "  tcp-request content accept if { req_ssl_hello_type 1 }",
            "  use_backend server_nginx_net if { req_ssl_sni -i server.nginx.net }",
            "  use_backend server2_nginx_net if { req_ssl_sni -i server2.nginx.net }",
            "  use_backend server3_nginx_net if { req_ssl_sni -i server3.nginx.net }",
        ])
        #expect(section(r, "backend server2_nginx_net") == [
            "backend server2_nginx_net", "  server loopback-for-tls abns@servicerouter_443_server2_nginx_net send-proxy-v2",
        ])
        // The host's own certificate and bind options; its rules by weight (nginx3's 99 first).
        #expect(section(r, "frontend server2_nginx_net") == [
            "frontend server2_nginx_net", "  mode http",
            "  bind abns@servicerouter_443_server2_nginx_net accept-proxy ssl crt /etc/cert verify required",
            "  acl path_nginx3_10002 path_beg /test2",
            "  use_backend nginx3_10002 if { ssl_fc_sni server2.nginx.net } path_nginx3_10002",
            "  acl path_nginx2_10001 path_beg /test",
            "  use_backend nginx2_10001 if { ssl_fc_sni server2.nginx.net } path_nginx2_10001",
        ])
        // Without a certificate of its apps: --ssl-certs. A service with two vhosts has a rule in each.
        #expect(section(r, "frontend server3_nginx_net") == [
            "frontend server3_nginx_net", "  mode http", "  bind abns@servicerouter_443_server3_nginx_net accept-proxy ssl crt /etc/ssl/cert.pem",
            "  use_backend nginx1_10000 if { ssl_fc_sni server3.nginx.net }",
        ])
        #expect(section(r, "frontend server_nginx_net")?.last == "  use_backend nginx1_10000 if { ssl_fc_sni server.nginx.net }")
        // The app's own port still terminates TLS with its certificate.
        #expect(section(r, "frontend nginx2_10001")?[1] == "  bind *:10001 ssl crt /etc/cert verify required")
    }

    @Test func mapRoutingLooksUpTheMapsInEachVhostFrontend() throws {
        let r = try render(.map)
        let vhost = try #require(section(r, "frontend server2_nginx_net"))
        #expect(vhost.prefix(3) == ["frontend server2_nginx_net", "  mode http",
                                   "  bind abns@servicerouter_443_server2_nginx_net accept-proxy ssl crt /etc/cert verify required"])
        #expect(vhost.contains("  http-request set-var(txn.sr_host) ssl_fc_sni,lower if { ssl_fc_sni -m found }"))
        #expect(vhost.last?.hasPrefix("  use_backend %[var(txn.sr_host),map_str(") == true)
        #expect(!vhost.contains { $0.contains("acl path_") }, "vhost + path entries are in the map")
        #expect(r.maps.values.flatMap { $0 }.contains(MapEntry(key: "server2.nginx.net/test2", value: "nginx3_10002")))
    }

    @Test func aVhostWhoseSectionNameIsTakenIsLeftOut() throws {
        let apps = [makeApp("/a", ports: [10000], labels: ["HAPROXY_0_VHOST": "stats,ok.example.com"],
                            tasks: [makeTask("a.1", app: "/a", host: "1.1.1.1", ports: [1024])])]
        let o = options(.map)
        let d = DesiredStateBuilder.build(apps: apps, options: RoutingOptions(groups: ["*"], minSlots: 1, reservedPorts: o.reservedPorts))
        let r = try ConfigRenderer.render(desired: d, plan: SlotPlanner.plan(desired: d, live: LiveState()), templates: TemplateSet(), options: o)
        #expect(section(r, "frontend ok_example_com") != nil)
        #expect(section(r, "frontend stats") == nil)
        #expect(r.diagnostics.contains { $0.message.contains("vhost stats left out of the grouped HTTPS frontend") })
    }
}

/// `--group-https-by-vhost`: marathon-lb's grouped HTTPS layout. The shared HTTPS port runs in
/// TCP mode, reads the SNI name of each connection and hands it (PROXY protocol over an abstract
/// socket) to a TLS frontend of that virtual host's own, which terminates TLS with the
/// certificates of the apps serving the host (`HAPROXY_{n}_SSL_CERT`, else `--ssl-certs`) and their
/// bind options (client certificates, ciphers), then routes as the shared HTTPS frontend would:
/// the host's explicit rules by weight, then the vhost maps.
///
/// Every virtual host is a frontend and a backend here, so adding or removing one changes the
/// structure (one reload), unlike map routing's runtime updates.
extension ConfigRenderer {
    static func groupedHTTPS(_ httpPieces: [ServicePieces], https: RenderOptions.HTTPS, templates: TemplateSet, options: RenderOptions,
                             mapValues: [String: String], taken: Set<String>, diagnostics: inout [Diagnostic]) throws -> String {
        struct Vhost {
            var certificates = Set<String>()
            var bindOptions = Set<String>()
            var rules: [(weight: Int, text: String)] = []
            var firstApp = ""
        }
        var vhosts: [HostName: Vhost] = [:]
        for p in httpPieces {
            let s = p.service
            for host in s.vhosts {
                var v = vhosts[host] ?? Vhost(firstApp: s.appId)
                if let cert = s.labels.sslCert { v.certificates.insert(cert) }
                if let opts = s.labels.bindOptions { v.bindOptions.insert(opts) }
                for r in p.groupedHTTPSRules where r.host == host { v.rules.append((s.labels.backendWeight, r.text)) }
                vhosts[host] = v
            }
        }
        let globalCerts = try https.certificates.map { try LabelParser.filePath($0, field: "--ssl-certs") }
        let reserved: Set<String> = ["marathon_http_in", "marathon_http_appid_in", "marathon_https_in", "stats"]
        var head = try templates["HAPROXY_HTTPS_GROUPED_FRONTEND_HEAD"].render(["httpsPort": String(https.port), "bindAddr": options.bindAddress])
        var sections = ""
        for host in vhosts.keys.sorted() {
            let v = vhosts[host]!
            let name = cleaned(host.text)
            guard !taken.contains(name), !reserved.contains(name) else {
                diagnostics.append(Diagnostic(.error, .conflict, appId: v.firstApp,
                                              "vhost \(host) left out of the grouped HTTPS frontend: its section name \(name) is also a service's or servicerouter's"))
                continue
            }
            let socket = "servicerouter_\(https.port)_\(name)"
            let certs = (v.certificates.isEmpty ? globalCerts : v.certificates.sorted()).map { "crt " + $0 }.joined(separator: " ")
            let values = ["name": name, "socket": socket, "backend": name, "host": host.text, "sslCerts": certs,
                          "bindOpts": v.bindOptions.sorted().map { " " + $0 }.joined(), "httpsPort": String(https.port)]
            head += try templates["HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_ACL"].render(values)
            sections += try templates["HAPROXY_HTTPS_GROUPED_VHOST_BACKEND_HEAD"].render(values)
            sections += try templates["HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_HEAD"].render(values)
            if options.vhostRouting == .map { sections += try templates["HAPROXY_HTTPS_FRONTEND_ROUTING_VARS"].render([:]) }
            for r in stableSortedByWeight(v.rules.map { ($0.weight, $0.text) }) { sections += r.text }
            if options.vhostRouting == .map { sections += try templates["HAPROXY_FRONTEND_ROUTING_MAPS"].render(mapValues) }
        }
        return head + sections
    }

    /// A service's HTTPS rules one vhost at a time (each vhost frontend holds only its own), with
    /// the single-vhost templates, as marathon-lb's grouped table has them.
    static func perVhostHTTPSRules(_ s: Service, _ t: ScopedTemplates, _ common: [String: String]) throws -> [(host: HostName, text: String)] {
        try s.vhosts.map { host in
            var one = s
            one.labels.vhosts = [host]
            var values = common
            values["hostname"] = host.text
            values["cleanedUpHostname"] = cleaned(host.text) + "_" + cleanedAppPath(s.appId)
            return (host, try VhostRules.render(one, t, values).https)
        }
    }
}

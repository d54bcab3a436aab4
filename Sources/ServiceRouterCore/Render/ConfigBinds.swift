/// The addresses a config's frontends (and listen sections) bind, read from the config text:
/// templates may be overridden, so only the rendered `bind` lines say what HAProxy will bind.
public struct ConfigBind: Sendable, Hashable, CustomStringConvertible {
    /// The `frontend`/`listen` section the line is in.
    public var section: String
    /// `*`, an IPv4 address, or an IPv6 address (without brackets).
    public var address: String
    public var port: Int

    public init(section: String, address: String, port: Int) {
        self.section = section
        self.address = address
        self.port = port
    }

    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// The same address and port, whichever section binds it.
    public var endpoint: String { description }

    /// Every `bind ADDR:PORT[,ADDR:PORT…] …` line in a `frontend` or `listen` section. Unix sockets,
    /// port ranges and names that are not addresses are ignored (servicerouter renders none).
    public static func parse(_ config: String) -> [ConfigBind] {
        var out: [ConfigBind] = []
        var section: String?
        for raw in config.split(separator: "\n") {
            guard let first = raw.first else { continue }
            let words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if first != " " && first != "\t" {
                section = words.count >= 2 && (words[0] == "frontend" || words[0] == "listen") ? String(words[1]) : nil
                continue
            }
            guard let section, words.count >= 2, words[0] == "bind" else { continue }
            for spec in words[1].split(separator: ",") {
                guard let colon = spec.lastIndex(of: ":"), let port = Int(spec[spec.index(after: colon)...]),
                      (1...65535).contains(port) else { continue }
                var host = String(spec[..<colon])
                if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                if host.isEmpty || host == "0.0.0.0" { host = "*" }
                guard host == "*" || IPAddress.isNumeric(host) else { continue }
                out.append(ConfigBind(section: section, address: host, port: port))
            }
        }
        return out
    }
}

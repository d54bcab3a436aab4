import Foundation
import Testing
@testable import ServiceRouterCore

/// The byte-level fast paths added for 10,000 tasks must give exactly what the Character-level
/// code they short-cut gives. Each is compared with that code (kept, or restated here) on
/// random inputs built from the characters that matter.
struct FastPathEquivalenceTests {
    static func randomText(_ rng: inout SplitMix64, alphabet: [String], length: ClosedRange<Int>) -> String {
        (0..<Int.random(in: length, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
    }

    // MARK: - show servers state

    static let row = "3 web_10000 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001 - 0 0 - - 0"
    /// The same slot with a check port (field 21).
    static let rowWithCheckPort = "3 web_10000 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001 - 0 9000 - - 0"

    @Test func serversStateBytesMatchCharacters() throws {
        var rng = SplitMix64(seed: 11)
        let pieces = ["1", "\n", "\r\n", "\r", " ", "# h", Self.row, Self.rowWithCheckPort, "x", "-", "+5", "s2", "web_10001", "0", "\t", "99999999999999999999"]
        var compared = 0
        for _ in 0..<3000 {
            let text = Self.randomText(&rng, alphabet: pieces, length: 0...12)
            let fast = Result { try RuntimeReplyParsers.serversState(text) }
            let slow = Result { try RuntimeReplyParsers.serversStateCharacters(text) }
            switch (fast, slow) {
            case let (.success(a), .success(b)): #expect(a == b, "\(text.debugDescription)")
            case let (.failure(a as ParseError), .failure(b as ParseError)): #expect(a == b, "\(text.debugDescription)")
            default: Issue.record("fast and Character parsers disagree on \(text.debugDescription): \(fast) vs \(slow)")
            }
            compared += 1
        }
        #expect(compared == 3000)
        // Both read the check port.
        let text = "1\n\(Self.rowWithCheckPort)\n"
        #expect(try RuntimeReplyParsers.serversState(text).backends.values.flatMap { $0 }.map(\.checkPort) == [9000])
        #expect(try RuntimeReplyParsers.serversStateCharacters(text).backends.values.flatMap { $0 }.map(\.checkPort) == [9000])
    }

    @Test func serversStateNonASCIITakesTheCharacterPath() throws {
        // "#" followed by a combining accent is not a comment line for the Character parser.
        let text = "1\n#\u{301} \(Self.row)\n"
        #expect(throws: ParseError.self) { try RuntimeReplyParsers.serversState(text) }
        let ok = "1\n\(Self.row) caf\u{E9}\n"
        #expect(try RuntimeReplyParsers.serversState(ok).serverCount == 1)
    }

    @Test func liveStateGroupsInterleavedBackends() {
        let a = ProxyName(unchecked: "a_1"), b = ProxyName(unchecked: "b_2")
        func srv(_ be: ProxyName, _ n: Int) -> LiveServer { LiveServer(backend: be, name: SlotPlanner.slotName(n), address: "10.0.0.1", port: n) }
        let live = LiveState(servers: [srv(a, 1), srv(a, 2), srv(b, 1), srv(a, 3), srv(b, 2)])
        #expect(live.backendOrder == [a, b])
        #expect(live.backends[a]?.map(\.port) == [1, 2, 3])
        #expect(live.backends[b]?.map(\.port) == [1, 2])
    }

    // MARK: - IPv4

    @Test func canonicalIPv4ShortcutMatchesTheSplit() {
        var rng = SplitMix64(seed: 12)
        let pieces = ["0", "1", "2", "5", "9", "25", "255", "256", "00", "01", ".", ".", ".", "-", "+", " ", "a", "1000", "\u{661}"]
        for _ in 0..<20_000 {
            let s = Self.randomText(&rng, alphabet: pieces, length: 0...9)
            // What parseV4 computed before the shortcut.
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            var slow: String? = nil
            if parts.count == 4 {
                var out: [String] = []
                for p in parts {
                    guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = Int(p), v <= 255 else { out = []; break }
                    out.append(String(v))
                }
                if out.count == 4 { slow = out.joined(separator: ".") }
            }
            #expect(IPAddress.parseV4(s) == slow, "\(s.debugDescription)")
            if IPAddress.isCanonicalV4(s.utf8) { #expect(slow == s) }
        }
    }

    // MARK: - Slot names

    @Test func slotNumberMatchesItsDefinition() {
        var rng = SplitMix64(seed: 13)
        let pieces = ["s", "S", "0", "1", "7", "9", "12", "+", "-", "x", "99999999999999999999"]
        for _ in 0..<20_000 {
            let t = Self.randomText(&rng, alphabet: pieces, length: 0...5)
            guard let name = try? ProxyName(t) else { continue }
            var expected: Int?
            if t.hasPrefix("s"), let n = Int(t.dropFirst()), n > 0, "s\(n)" == t { expected = n }
            #expect(SlotPlanner.slotNumber(name) == expected, "\(t)")
        }
    }

    // MARK: - Templates

    @Test func asciiRenderMatchesTheCharacterRender() throws {
        var rng = SplitMix64(seed: 14)
        let pieces = ["{", "}", "{{", "}}", "{host}", "{port}", "{x1}", "{1x}", "{_a}", "{ }", "a", " ", "\n", "\r\n", "-", "{unknown}"]
        let values = ["host": "10.0.0.1", "port": "31000", "x1": "é{}", "_a": ""]
        for _ in 0..<5000 {
            let text = Self.randomText(&rng, alphabet: pieces, length: 0...10)
            for formatted in [true, false] {
                let t = Template(name: "T", text: text, formatted: formatted)
                let fast = Result { try t.renderASCII(values) }
                let slow = Result { try t.renderCharacters(values) }
                switch (fast, slow) {
                case let (.success(a), .success(b)): #expect(a == b, "\(text.debugDescription) formatted=\(formatted)")
                case let (.failure(a as Template.RenderError), .failure(b as Template.RenderError)): #expect(a == b)
                default: Issue.record("renders disagree on \(text.debugDescription) formatted=\(formatted): \(fast) vs \(slow)")
                }
            }
        }
        #expect(try Template(name: "T", text: "caf\u{E9} {host}", formatted: true).renderASCII(values) == nil, "non-ASCII takes the Character path")
    }

    /// A slot line from the compiled server template is the line the general renderer writes,
    /// for any slot number (one digit, several), sticky or not, enabled or disabled.
    @Test func compiledSlotLineMatchesTheTemplateRender() throws {
        var rng = SplitMix64(seed: 16)
        let pieces = ["server {serverName} {host_ipv4}:{port}", "{cookieOptions}", "{healthCheckOptions}", "{otherOptions}",
                      " id {serverId}", " {host}", " weight 1", "{{", "}}", "{unknown}", " ", "\n"]
        for n in 0..<3000 {
            let text = Self.randomText(&rng, alphabet: pieces, length: 0...7)
            for formatted in [true, false] {
                let t = Template(name: "HAPROXY_BACKEND_SERVER_OPTIONS", text: text, formatted: formatted)
                let slot = [1, 9, 10, 99, 100, 12345, Int(UInt32.max)][n % 7]
                let sticky = n % 2 == 0, disabled = n % 3 == 0
                let name = "s\(slot)"
                let slow = Result {
                    try t.render(["serverName": name, "host": "10.0.0.1", "host_ipv4": "10.0.0.1", "port": "31000",
                                  "serverId": String(slot), "cookieOptions": sticky ? " cookie \(name)" : "",
                                  "healthCheckOptions": " check inter 2s", "otherOptions": disabled ? " disabled" : ""])
                }
                let fast = Result { () throws -> String in
                    let r = try ConfigRenderer.SlotLineRenderer(t, sticky: sticky)
                    var out: [UInt8] = []
                    try r.append(slot: slot, ip: "10.0.0.1", port: 31000, check: " check inter 2s", disabled: disabled, into: &out)
                    return String(decoding: out, as: UTF8.self)
                }
                switch (fast, slow) {
                case let (.success(a), .success(b)): #expect(a == b, "\(text.debugDescription) formatted=\(formatted)")
                case let (.failure(a as Template.RenderError), .failure(b as Template.RenderError)): #expect(a == b)
                default: Issue.record("renders disagree on \(text.debugDescription) formatted=\(formatted): \(fast) vs \(slow)")
                }
            }
        }
    }

    @Test func identifierOnBytesMatchesCharacters() {
        var rng = SplitMix64(seed: 15)
        let pieces = ["a", "Z", "_", "0", "9", " ", "-", "\u{E9}", "\u{301}", "\u{661}", "\r\n"]
        for _ in 0..<20_000 {
            let s = Self.randomText(&rng, alphabet: pieces, length: 0...5)
            let slow: Bool = {
                guard let f = s.first, f.isLetter || f == "_" else { return false }
                return s.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" }
            }()
            #expect(Template.isIdentifier(Substring(s)) == slow, "\(s.debugDescription)")
        }
    }

    // MARK: - Marathon apps payloads

    /// Both decoders on the same bytes: the same apps and skips, or the same error.
    static func sameDecoding(_ bytes: [UInt8], _ what: String) {
        let fast = Result { try MarathonDecoding.apps(from: bytes) }
        let general = Result { try MarathonDecoding.appsDecodable(from: bytes) }
        switch (fast, general) {
        case let (.success(a), .success(b)):
            #expect(a.apps == b.apps, "\(what)")
            #expect(a.skipped == b.skipped, "\(what)")
        case let (.failure(a), .failure(b)):
            #expect("\(a)" == "\(b)", "\(what)")
        default:
            Issue.record("decoders disagree on \(what): \(fast) vs \(general)")
        }
    }

    @Test(arguments: MarathonDecodingTests.appsFixtures + MarathonDecodingTests.tasksFixtures + MarathonDecodingTests.otherFixtures)
    func fixturesDecodeTheSameBothWays(_ name: String) throws {
        Self.sameDecoding(Array(try Fixture.data(name)), name)
    }

    @Test func realisticPayloadTakesTheFastPath() throws {
        let json = #"{"apps":[{"id":"/g/web","instances":2,"labels":{"HAPROXY_GROUP":"external","HAPROXY_0_VHOST":"web.example.com"},"#
            + #""portDefinitions":[{"port":10000,"protocol":"tcp","name":"http","labels":{}}],"container":{"type":"DOCKER","docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80,"hostPort":0,"servicePort":10000}]},"volumes":[]},"#
            + #""healthChecks":[{"protocol":"HTTP","path":"/health","portIndex":0,"intervalSeconds":5,"timeoutSeconds":2,"maxConsecutiveFailures":3,"gracePeriodSeconds":15,"ignoreHttp1xx":false}],"#
            + #""upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":0.2},"versionInfo":{"lastScalingAt":"x","lastConfigChangeAt":"2020-01-01T00:00:00.000Z"},"#
            + #""version":"2020-01-01T00:00:00.000Z","deployments":[],"tasksRunning":2,"ipAddress":null,"networks":[{"mode":"container/bridge"}],"#
            + #""tasks":[{"id":"g_web.instance-1._app.1","appId":"/g/web","host":"10.0.0.1","ports":[31000],"ipAddresses":[{"ipAddress":"172.17.0.2","protocol":"IPv4"}],"#
            + #""state":"TASK_RUNNING","startedAt":"2020-01-01T00:00:01.000Z","version":"2020-01-01T00:00:00.000Z","healthCheckResults":[{"alive":true,"consecutiveFailures":0}]},"#
            + #"{"id":"g_web.instance-2._app.1","host":"10.0.0.2","ports":[31001.0],"state":"TASK_KILLING","healthCheckResults":[]}]}]}"#
        let bytes = Array(json.utf8)
        #expect(FastAppsDecoding.apps(bytes) != nil, "a well-formed payload is read by the fast path")
        Self.sameDecoding(bytes, "realistic payload")
        let app = try #require(try MarathonDecoding.apps(from: bytes).apps.first)
        #expect(app.servicePorts == [10000])
        #expect(app.maximumOverCapacity == 0.2)
        #expect(app.tasks.map(\.ports) == [[31000], [31001]])
        #expect(app.tasks.map(\.healthAlive) == [[true], nil])
    }

    @Test func mutatedPayloadsDecodeTheSameBothWays() throws {
        let base = #"{"apps":[{"id":"/a","instances":2,"labels":{"HAPROXY_GROUP":"g","K":"v\"q\u00e9"},"ports":[10000],"#
            + #""portDefinitions":[{"port":10000}],"healthChecks":[{"protocol":"tcp","portIndex":0}],"ipAddress":null,"#
            + #""upgradeStrategy":{"maximumOverCapacity":1},"tasks":[{"id":"a.1","host":"h1","ports":[31000],"state":"TASK_RUNNING","#
            + #""healthCheckResults":[{"alive":true}]}]},{"id":"b","container":{"portMappings":[{"containerPort":80,"servicePort":10001}]},"#
            + #""networks":[{"mode":"container"}],"tasks":[{"id":"b.1","ipAddresses":[{"ipAddress":"10.0.0.9"}],"state":"TASK_STAGING"}]}]}"#
        let pieces = ["null", "1.0", "1e2", "-1", "\"x\"", "true", "[]", "{}", "\"\\ud800\"", "01", ",", ":", "\"id\":\"/d\",", " ", "é", "1.5", "99999999999999999999"]
        var rng = SplitMix64(seed: 16)
        let chars = Array(base.utf8)
        #expect(FastAppsDecoding.apps(chars) != nil)
        Self.sameDecoding(chars, "base")
        var fast = 0
        for n in 0..<4000 {
            var bytes = chars
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(contentsOf: Array(pieces.randomElement(using: &rng)!.utf8), at: at)
                case 2:
                    // Replace a value: from just after a colon to the next comma or brace.
                    guard let colon = bytes[at...].firstIndex(of: UInt8(ascii: ":")),
                          let end = bytes[(colon + 1)...].firstIndex(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "}") }) else { continue }
                    bytes.replaceSubrange((colon + 1)..<end, with: Array(pieces.randomElement(using: &rng)!.utf8))
                default:
                    // Duplicate a key-value pair.
                    guard let quote = bytes[at...].firstIndex(of: UInt8(ascii: "\"")),
                          let end = bytes[quote...].firstIndex(where: { $0 == UInt8(ascii: ",") }) else { continue }
                    bytes.insert(contentsOf: bytes[quote...end], at: quote)
                }
            }
            Self.sameDecoding(bytes, "mutation \(n): \(String(decoding: bytes, as: UTF8.self))")
            if FastAppsDecoding.apps(bytes) != nil { fast += 1 }
        }
        #expect(fast > 200, "some mutations stay well-formed and take the fast path (\(fast))")
    }

    // MARK: - Server line check

    /// The Character-level check the renderer used before, plus the stricter "no carriage return".
    static func slowIsServerLine(_ text: String, _ expected: String) -> Bool {
        func trim(_ s: String, _ set: String) -> String {
            var v = Substring(s)
            while let f = v.first, set.contains(f) { v = v.dropFirst() }
            while let l = v.last, set.contains(l) { v = v.dropLast() }
            return String(v)
        }
        return (trim(text, " \t").hasPrefix(expected + " ") || trim(text, " \t\n") == expected)
            && text.hasSuffix("\n") && text.dropLast().allSatisfy({ $0 != "\n" }) && !text.unicodeScalars.contains("\r")
    }

    @Test func serverLineCheckMatchesTheCharacterCheck() {
        var rng = SplitMix64(seed: 21)
        let expected = "server s1 10.0.0.1:31000"
        let pieces = [expected, " ", "\t", "\n", "\r", "\r\n", "check", "x", "server s1", " 10.0.0.1:31000", "é"]
        var accepted = 0
        for n in 0..<5000 {
            // Every other text starts like a server line, so both verdicts are common.
            let head = n % 2 == 0 ? Self.randomText(&rng, alphabet: [" ", "\t", ""], length: 0...2) + expected : ""
            let text = head + Self.randomText(&rng, alphabet: pieces, length: 0...4)
            let fast = ConfigRenderer.isServerLine(text, startingWith: expected)
            #expect(fast == Self.slowIsServerLine(text, expected), "\(text.debugDescription)")
            if fast { accepted += 1 }
        }
        #expect(accepted > 50, "some random lines are server lines (\(accepted))")
        #expect(ConfigRenderer.isServerLine("  server s1 10.0.0.1:31000 check\n", startingWith: expected))
        #expect(ConfigRenderer.isServerLine("server s1 10.0.0.1:31000\t \n", startingWith: expected))
        #expect(!ConfigRenderer.isServerLine("server s1 10.0.0.1:310001\n", startingWith: expected))
        #expect(!ConfigRenderer.isServerLine("server s1 10.0.0.1:31000 check\r\n", startingWith: expected))
        #expect(!ConfigRenderer.isServerLine("server s1 10.0.0.1:31000\nacl x\n", startingWith: expected))
    }
}

import Foundation
import Testing
@testable import ServiceRouterCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The validated value types: the only text that reaches a config line or a runtime command.
@Suite struct ValidatedTests {
    // MARK: - ProxyName

    @Test(arguments: ["a", "web_10000", "group_app.v2_80", "s1", "A-b:c.d_e", String(repeating: "x", count: 100)])
    func validProxyNames(_ s: String) throws {
        #expect(try ProxyName(s).text == s)
    }

    @Test(arguments: ["", " ", "a b", "a;b", "a#b", "a/b", "a\nb", "a\\b", "a\"b", "é", "a*", "a,b",
                      String(repeating: "x", count: 101)])
    func invalidProxyNames(_ s: String) {
        let e = #expect(throws: ValidationError.self) { try ProxyName(s) }
        #expect(e?.field == "name")
    }

    // MARK: - IPv4

    @Test(arguments: [("10.0.0.1", "10.0.0.1"), ("010.000.000.001", "10.0.0.1"), ("255.255.255.255", "255.255.255.255"),
                      ("0.0.0.0", "0.0.0.0"), ("127.0.0.1", "127.0.0.1")])
    func validIPv4(_ raw: String, _ text: String) throws {
        let a = try IPAddress(raw)
        #expect(a.text == text)
        #expect(!a.isV6)
        #expect(IPAddress.isNumeric(raw))
    }

    @Test(arguments: ["", "256.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.-4", "1..2.3", " 1.2.3.4", "1.2.3.4 ", "0x1.2.3.4",
                      "1234.1.1.1", "1.2.3.4/24", "1.2.3.4:80", "١.٢.٣.٤", "localhost", "a.b.c.d", "1.2.3.4\n"])
    func invalidIPv4(_ raw: String) {
        #expect(throws: ValidationError.self) { try IPAddress(raw) }
        #expect(!IPAddress.isNumeric(raw))
    }

    @Test func loopback() throws {
        #expect(try IPAddress("127.0.0.1").isLoopback)
        #expect(try IPAddress("127.1.2.3").isLoopback)
        #expect(try IPAddress("::1").isLoopback)
        #expect(try !IPAddress("10.0.0.1").isLoopback)
        #expect(try !IPAddress("::2").isLoopback)
    }

    // MARK: - IPv6

    @Test(arguments: ["::", "::1", "fe80::1", "2001:db8::5", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
                      "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "FE80::1"])
    func validIPv6(_ raw: String) throws {
        let a = try IPAddress(raw)
        #expect(a.isV6)
        #expect(a.text == a.text.lowercased())
    }

    @Test(arguments: [":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::1", "fe80::1%eth0", "g::1", "1:2:3:4:5:6:7",
                      ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "[::1]", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "::1 ", "1:2:3:4:5:6:7:8::",
                      "::256.1.1.1", ":", "1:2"])
    func invalidIPv6(_ raw: String) {
        #expect(throws: ValidationError.self) { try IPAddress(raw) }
    }

    /// HAProxy prints server addresses with `inet_ntop`: a task address must compare equal to what
    /// `show servers state` reports, or a live slot is never adopted and is re-addressed on every pass.
    @Test(arguments: [
        ("FE80:0:0:0:0:0:0:1", "fe80::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0005", "2001:db8::5"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ("::FFFF:0102:0304", "::ffff:1.2.3.4"),
        ("0:0:0:0:0:ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("2001:db8::0:1", "2001:db8::1"),
        ("2001:DB8:0:0:1::1", "2001:db8::1:0:0:1"),
    ])
    func ipv6IsNormalisedLikeInetNtop(_ raw: String, _ canonical: String) throws {
        #expect(try IPAddress(raw).text == canonical)
        #expect(Self.inetNtop6(raw) == canonical, "the expectation itself matches the C library")
    }

    @Test func ipv6NormalisationMatchesInetNtopOnRandomAddresses() throws {
        var rng = SplitMix64(seed: 0x16)
        for _ in 0..<3000 {
            // Words with long zero runs, small values and the v4-mapped prefix are the interesting cases.
            var words: [UInt16] = (0..<8).map { _ in rng.chance(0.45) ? 0 : (rng.chance(0.5) ? UInt16.random(in: 1...15, using: &rng) : UInt16.random(in: 0...0xFFFF, using: &rng)) }
            if rng.chance(0.1) { words = [0, 0, 0, 0, 0, 0xFFFF] + words[6...] }
            // Written the long way: every word, random case and leading zeros.
            let text = words.map { w -> String in
                var h = String(w, radix: 16, uppercase: rng.chance(0.5))
                if rng.chance(0.3) { h = String(repeating: "0", count: 4 - h.count) + h }
                return h
            }.joined(separator: ":")
            let expected = try #require(Self.inetNtop6(text), "\(text)")
            let parsed = try IPAddress(text)
            #expect(parsed.text == expected, "\(text)")
            #expect(try IPAddress(expected).text == expected, "canonical text is a fixed point: \(expected)")
        }
    }

    static func inetNtop6(_ text: String) -> String? {
        var addr = in6_addr()
        guard inet_pton(AF_INET6, text, &addr) == 1 else { return nil }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count)) != nil else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func ipv6TextIsWhatTheLiveStateReports() throws {
        // A slot whose address HAProxy reports canonically matches the task's differently written address.
        let live = LiveServer(backend: pname("b"), name: pname("s1"), address: "fe80::1", port: 8080)
        #expect(live.endpoint == Endpoint(ip: try IPAddress("FE80:0000::0001"), port: try Port(8080)))
    }

    // MARK: - Port, Endpoint, HostName, URLPath

    @Test func portRange() throws {
        #expect(try Port(1).value == 1)
        #expect(try Port(65535).value == 65535)
        for bad in [0, -1, 65536, Int.max, Int.min] {
            let e = #expect(throws: ValidationError.self) { try Port(bad, field: "f") }
            #expect(e?.field == "f")
            #expect(e?.value == String(bad))
        }
        #expect(try Port(text: " 80\t", field: "p").value == 80)
        #expect(throws: ValidationError.self) { try Port(text: "080", field: "p") }
    }

    @Test func endpointText() throws {
        #expect(ep("10.0.0.1", 80).description == "10.0.0.1:80")
        #expect(ep("fe80::1", 8080).description == "[fe80::1]:8080")
        #expect(ep("10.0.0.1", 80) < ep("10.0.0.1", 81))
        #expect(ep("10.0.0.1", 99) < ep("10.0.0.2", 1))
    }

    @Test func hostNameWildcardOnlyWhenAllowed() throws {
        #expect(try HostName("*.example.com", allowWildcard: true).text == "*.example.com")
        #expect(try HostName("*.example.com", allowWildcard: true).isWildcard)
        #expect(throws: ValidationError.self) { try HostName("*.com", allowWildcard: true) }
        #expect(throws: ValidationError.self) { try HostName("*.example.com") }
        #expect(throws: ValidationError.self) { try HostName("a.*.com", allowWildcard: true) }
    }

    @Test func urlPathField() {
        let e = #expect(throws: ValidationError.self) { try URLPath("x", field: "healthChecks.path") }
        #expect(e?.field == "healthChecks.path")
    }

    // MARK: - Quoting

    @Test(arguments: [
        ("plain", #""plain""#),
        ("a\nb", #""a\nb""#),
        ("a\r\tb", #""a\r\tb""#),
        ("say \"hi\"", #""say \"hi\"""#),
        ("back\\slash", #""back\\slash""#),
        ("\u{1}\u{1F}\u{7F}", #""\x1\x1f\x7f""#),
        ("é日本", #""é日本""#),
        ("", #""""#),
    ])
    func quoted(_ raw: String, _ shown: String) {
        #expect(ValidationError.quoted(raw) == shown)
    }

    @Test func quotedTruncatesLongValues() {
        let q = ValidationError.quoted(String(repeating: "a", count: 81))
        #expect(q == "\"" + String(repeating: "a", count: 80) + "…\"")
        #expect(ValidationError.quoted(String(repeating: "a", count: 80)) == "\"" + String(repeating: "a", count: 80) + "\"")
        let nl = ValidationError.quoted(String(repeating: "\n", count: 200))
        #expect(!nl.contains("\n"))
    }
}

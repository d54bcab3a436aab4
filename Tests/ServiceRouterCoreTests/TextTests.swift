import Foundation
import Testing
@testable import ServiceRouterCore

/// The FoundationEssentials-only replacements for full Foundation's string calls, each compared
/// with the Foundation call it replaces (this test target still links Foundation).
@Suite struct TextTests {
    static let doubles: [Double] = [
        0, -0.0, 1, -1, 0.05, 0.15, 0.25, 0.35, 0.45, 2.5, 3.5, -2.5, 0.125, 0.375, -0.04, -0.05,
        -0.06, 0.95, 0.949999, 9.95, 99.95, 999.5, 1e-7, 123.456, 1234567.891, 1e15, 1e20, 1e300,
        -1e300, .pi, -.pi, 0.1 + 0.2, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
        .nan, .infinity, -.infinity, 0.000123456, 12.3456e-5,
    ]

    @Test func fixedMatchesStringFormat() {
        for x in Self.doubles + (0..<2000).map({ Double($0) / 400 - 2.5 }) {
            for d in 0...3 {
                #expect(x.fixed(d) == String(format: "%.\(d)f", x), "\(x) with \(d) decimals")
            }
        }
    }

    @Test func fixedKnownValues() {
        #expect(0.05.fixed(1) == "0.1")
        #expect(0.25.fixed(1) == "0.2")
        #expect(2.5.fixed(0) == "2")
        #expect(3.5.fixed(0) == "4")
        #expect((-0.04).fixed(1) == "-0.0")
        #expect((-1.25).fixed(1) == "-1.2")
        #expect(1234.5678.fixed(2) == "1234.57")
        #expect(1e20.fixed(1) == "100000000000000000000.0")
        #expect(Double.greatestFiniteMagnitude.fixed(1).count == 311)
        #expect(Double.nan.fixed(1) == "nan")
        #expect((-Double.infinity).fixed(2) == "-inf")
    }

    @Test func significantMatchesStringFormat() {
        for x in Self.doubles {
            #expect(x.significant(3) == String(format: "%.3g", x), "\(x)")
        }
        #expect(0.000123456.significant(3) == "0.000123")
        #expect(1234567.0.significant(3) == "1.23e+06")
        #expect(2.5.significant(3) == "2.5")
    }

    @Test func zeroPaddedMatchesStringFormat() {
        for n in [0, 1, 7, 9, 10, 59, 99, 100, 999, 1000, 2026, 12345, -1, -5, -99, -1000, Int(Int32.max), Int(Int32.min)] {
            #expect(n.zeroPadded(2) == String(format: "%02d", n), "\(n)")
            #expect(n.zeroPadded(3) == String(format: "%03d", n), "\(n)")
            #expect(n.zeroPadded(4) == String(format: "%04d", n), "\(n)")
        }
        for v: UInt32 in [0, 1, 0x1F, 0x7F, 0xABC, 0xFFFF, 0x1F600] {
            #expect("\\u" + v.hexZeroPadded(4) == String(format: "\\u%04x", v))
        }
    }

    /// Every scalar, compared in a plain loop (2.2 million `#expect`s kept a core busy for seconds
    /// while the integration suites, which wait on real processes, ran beside it).
    @Test func whitespaceSetsMatchCharacterSet() {
        var checked = 0
        var mismatches: [String] = []
        let whitespaces = CharacterSet.whitespaces, whitespacesAndNewlines = CharacterSet.whitespacesAndNewlines
        for v in UInt32(0)...0x10FFFF {
            guard let s = Unicode.Scalar(v) else { continue }
            if s.isFoundationWhitespace != whitespaces.contains(s) || s.isFoundationWhitespaceOrNewline != whitespacesAndNewlines.contains(s) {
                mismatches.append("U+" + String(v, radix: 16))
            }
            checked += 1
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        #expect(checked > 1_000_000)
    }

    static let texts = ["", " ", "  a b  ", "\t x\t", "\n\r\n x \n", "\u{A0}x\u{2003}", "\u{200B}y\u{3000}",
                        " \u{301}é ", "é\u{301} ", "\u{85}z\u{2028}", "no-space", "[::1]", "[]", "[a]b]"]

    @Test func trimmingMatchesFoundation() {
        for t in Self.texts {
            #expect(t.trimmingWhitespace() == t.trimmingCharacters(in: .whitespaces), "\(t.debugDescription)")
            #expect(t.trimmingWhitespaceAndNewlines() == t.trimmingCharacters(in: .whitespacesAndNewlines),
                    "\(t.debugDescription)")
            #expect(t.trimmingScalars(where: { $0 == "[" || $0 == "]" }) == t.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
            #expect(t[...].trimmingWhitespace() == t[...].trimmingCharacters(in: .whitespaces))
        }
        #expect("  a b \t".trimmingWhitespace() == "a b")
        #expect(" x \n".trimmingWhitespace() == "x \n")
        #expect(" x \n".trimmingWhitespaceAndNewlines() == "x")
    }

    @Test func rangeOfLiteral() {
        let cases: [(String, String)] = [
            ("web._app.instance-1", "._app."), ("abc", "abc"), ("abc", "c"), ("abc", "abcd"), ("abc", ""),
            ("", "a"), ("aaab", "aab"), ("New version created: 3\n", "New version created:"),
            ("[ALERT] parsing [/x.cfg:12] : y", "parsing ["), ("é._app.x", "._app."), ("x\r\ny", "\r\n"),
            ("proxy 'a' backend 'b'", "ackend '"), ("a==b!=c", "!="),
        ]
        for (hay, needle) in cases {
            let mine = hay.range(ofLiteral: needle)
            let theirs = hay.range(of: needle)
            #expect(mine == theirs, "\(hay.debugDescription) / \(needle.debugDescription)")
            let sub = hay.dropFirst(0)
            #expect(sub.range(ofLiteral: needle) == sub.range(of: needle))
        }
        let s = "xx._app.yy"
        let r = s.range(ofLiteral: "._app.")
        #expect(r.map { String(s[..<$0.lowerBound]) } == "xx")
        #expect(r.map { String(s[$0.upperBound...]) } == "yy")
        #expect("abc".range(ofLiteral: "") == nil)
    }

    @Test func replacingAllMatchesFoundation() {
        let cases: [(String, String, String)] = [
            ("a\r\nb\r\n", "\r\n", "\n"), ("\r\r\n\n", "\r\n", "\n"), ("TASK_RUNNING", "TASK_", ""),
            ("/a/b/c", "/", "_"), ("a\\nb\\\\n", "\\n", "\n"), ("q\"u\\o\nte", "\\", "\\\\"),
            ("aaaa", "aa", "b"), ("a\r\nb", "\n", "\\n"), ("x\u{301}\ny", "\n", "\\n"), ("abc", "x", "y"), ("", "a", "b"), ("aaa", "a", "aa"),
        ]
        for (s, target, replacement) in cases {
            #expect(s.replacingAll(target, with: replacement) == s.replacingOccurrences(of: target, with: replacement),
                    "\(s.debugDescription)")
        }
    }

    @Test func paddedMatchesFoundation() {
        for s in ["", "run", "templates", "0123456789", "0123456789ab", "é", "a\u{301}bc", "😀x", "日本"] {
            for n in [0, 1, 2, 4, 10, 12] {
                #expect(s.padded(toLength: n) == s.padding(toLength: n, withPad: " ", startingAt: 0),
                        "\(s.debugDescription) to \(n)")
            }
        }
        #expect("run".padded(toLength: 6) == "run   ")
    }

    @Test func foundationDescriptionMatchesNSError() throws {
        struct Plain: Error {}
        enum Cases: Error { case a, b }
        struct Localized: LocalizedError { var errorDescription: String? { "described" } }
        let errors: [any Error] = [Plain(), Cases.a, Cases.b, Localized()]
        for e in errors {
            #expect(e.foundationDescription == (e as NSError).localizedDescription)
        }
        for code in [4, 255, 256, 257, 258, 259, 260, 261, 262, 263, 264, 512, 513, 514, 516, 517, 518, 640, 642, 1, 999] {
            let e = CocoaError(CocoaError.Code(rawValue: code))
            #expect(e.foundationDescription == (e as NSError).localizedDescription, "code \(code)")
        }
        for path in ["/nonexistent/servicerouter-x", "/"] {
            do {
                _ = try Data(contentsOf: URL(fileURLWithPath: path))
                Issue.record("read \(path)")
            } catch {
                #expect(error.foundationDescription == (error as NSError).localizedDescription, "\(path)")
            }
            do {
                _ = try FileManager.default.contentsOfDirectory(atPath: path + "/nope")
                Issue.record("listed \(path)")
            } catch {
                #expect(error.foundationDescription == error.localizedDescription, "\(path)")
            }
        }
    }
}

extension TextTests {
    @Test func droppingLastPathComponentMatchesNSString() {
        for p in ["", "/", "//", "ab", "ab/", "/a", "/a/", "/a/b", "/a/b/", "a/b", "a//b", "//a//b//", "/etc/haproxy/haproxy.cfg",
                  "haproxy.cfg", "./haproxy.cfg", "../x/y.cfg", "/tmp/sr dir/é.cfg", "///", "x/a", "/ab//"] {
            #expect(p.droppingLastPathComponent == (p as NSString).deletingLastPathComponent, "\(p.debugDescription)")
        }
        // swift-corelibs-foundation traps on one-character names; a bare name has no directory.
        #expect("a".droppingLastPathComponent == "")
        #expect("a/".droppingLastPathComponent == "")
        #expect("/etc/haproxy/haproxy.cfg".droppingLastPathComponent == "/etc/haproxy")
    }
}

import Testing
@testable import ServiceRouterCore

/// `HAPROXY_GROUP` and `HAPROXY_{n}_*`: every label with valid and hostile values.
@Suite struct LabelTests {
    func parse(_ labels: [String: String], index: Int = 0) throws -> ServiceLabels {
        try LabelParser.parse(labels: labels, index: index)
    }

    /// The error for one invalid label on port 0; fails the test if the value is accepted.
    func rejection(_ name: String, _ value: String, sourceLocation: SourceLocation = #_sourceLocation) -> ValidationError? {
        let key = "HAPROXY_0_\(name)"
        do {
            let parsed = try parse([key: value])
            Issue.record("\(key)=\(ValidationError.quoted(value)) was accepted: \(parsed)", sourceLocation: sourceLocation)
            return nil
        } catch let e as ValidationError {
            #expect(e.field == key, sourceLocation: sourceLocation)
            #expect(e.value == value, sourceLocation: sourceLocation)
            #expect(!e.description.contains("\n") && !e.description.contains("\r"), "a rejected value is shown escaped", sourceLocation: sourceLocation)
            return e
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Values no label may carry into a config line.
    static let hostile = [
        "a\nb", "a\r\nb", "a;b", "a#b", "a\\b", "a\"b", "a'b", "a b", "a\tb", "\u{0}", "é", "ä.com", "\u{212A}.com",
        "日本", "a\u{7F}", "${x}", "{backend}", "a`b", "a|b",
    ]

    @Test func defaultsWithoutLabels() throws {
        let s = try parse([:])
        #expect(s == ServiceLabels())
        #expect(s.groups == [])
        #expect(s.enabled == nil)
        #expect(s.vhosts == [])
        #expect(s.path == nil)
        #expect(s.port == nil)
        #expect(s.mode == nil)
        #expect(s.balance == .roundrobin)
        #expect(s.bindAddress == "*")
        #expect(s.backendWeight == 0)
    }

    @Test func labelKeys() {
        #expect(LabelParser.key("VHOST", 0) == "HAPROXY_0_VHOST")
        #expect(LabelParser.key("BACKEND_WEIGHT", 12) == "HAPROXY_12_BACKEND_WEIGHT")
    }

    @Test func unknownLabelsAndOtherPortsAreIgnored() throws {
        let s = try parse(["HAPROXY_0_NOT_A_LABEL": "true", "HAPROXY_0_FOO": "x;y", "HAPROXY_1_VHOST": "bad host;",
                           "HAPROXY_1_PORT": "nope", "OTHER": "\n", "haproxy_0_vhost": "lower.case"])
        #expect(s == ServiceLabels())
        #expect(try parse(["HAPROXY_1_VHOST": "one.example.com"], index: 1).vhosts.map(\.text) == ["one.example.com"])
        #expect(try parse(["HAPROXY_1_VHOST": "one.example.com"], index: 0).vhosts == [])
    }

    // MARK: - VHOST

    @Test(arguments: [
        ("example.com", ["example.com"]),
        ("Example.COM", ["example.com"]),
        ("a.com,b.com", ["a.com", "b.com"]),
        ("a.com, b.com", ["a.com", "b.com"]),
        ("  a.com ,\tb.com\t", ["a.com", "b.com"]),
        ("a.com,A.com,b.com,a.com", ["a.com", "b.com"]),
        ("b.com,a.com", ["b.com", "a.com"]),
        ("test", ["test"]),
        ("xn--bcher-kva.example", ["xn--bcher-kva.example"]),
        ("a-b.c-d.e1", ["a-b.c-d.e1"]),
        (String(repeating: "a", count: 63) + ".com", [String(repeating: "a", count: 63) + ".com"]),
    ])
    func validVhosts(_ value: String, _ expected: [String]) throws {
        #expect(try parse(["HAPROXY_0_VHOST": value]).vhosts.map(\.text) == expected)
    }

    @Test(arguments: hostile + [
        "", " ", "a.com,", ",a.com", "a.com,,b.com", "a.com, ,b.com", "a_b.com", "-a.com", "a-.com", "a..com", ".a.com",
        "a.com.", "*.example.com", "*", "a.com:80", "http://a.com", "a.com/path",
        String(repeating: "a", count: 64) + ".com",
        Array(repeating: String(repeating: "a", count: 60), count: 5).joined(separator: "."),
    ])
    func invalidVhosts(_ value: String) throws {
        let e = rejection("VHOST", value)
        #expect(e != nil)
    }

    @Test func vhostErrorNamesTheEmptyEntry() throws {
        let e = try #require(rejection("VHOST", "a.com,,b.com"))
        #expect(e.reason.contains("empty host name"))
    }

    @Test func nonASCIIThatLowercasesToASCIIIsRejected() {
        // U+212A KELVIN SIGN lower-cases to an ASCII "k": the value is not a host name all the same.
        #expect(rejection("VHOST", "\u{212A}ube.example.com") != nil)
        #expect(throws: ValidationError.self) { try HostName("\u{212A}.com") }
    }

    // MARK: - PATH and BACKEND_WEIGHT

    @Test(arguments: ["/", "/api", "/api/v1/", "/a-b_c.d~e", "/a%20b", "/a?b=c&d=e", "/@user", "/a:b", "/(x)", "/*",
                      "/a+b,c=d!$"])
    func validPaths(_ value: String) throws {
        let s = try parse(["HAPROXY_0_PATH": value])
        #expect(s.path?.text == value)
        #expect(s.backendWeight == 1, "a path defaults to weight 1 so it is matched before plain host rules")
    }

    @Test(arguments: hostile.map { "/" + $0 } + [
        "", "api", " /api", "/api ", "-i /a /b", "/a{b}", "/a<b>", "/a[b]", "/a^b", "/" + String(repeating: "a", count: 1024),
    ])
    func invalidPaths(_ value: String) throws {
        #expect(rejection("PATH", value) != nil)
    }

    @Test func pathOf1024BytesIsTheLimit() throws {
        let p = "/" + String(repeating: "a", count: 1023)
        #expect(try parse(["HAPROXY_0_PATH": p]).path?.text == p)
    }

    @Test(arguments: [("0", 0), ("5", 5), ("-3", -3), (" 7 ", 7), ("1000000", 1_000_000), ("-1000000", -1_000_000)])
    func validWeights(_ value: String, _ expected: Int) throws {
        #expect(try parse(["HAPROXY_0_BACKEND_WEIGHT": value]).backendWeight == expected)
        #expect(try parse(["HAPROXY_0_BACKEND_WEIGHT": value, "HAPROXY_0_PATH": "/p"]).backendWeight == expected,
                "an explicit weight is kept with a path")
    }

    @Test(arguments: hostile + ["", "1000001", "-1000001", "1.5", "abc", "5;", "0x10", "9999999999999999999999"])
    func invalidWeights(_ value: String) throws {
        #expect(rejection("BACKEND_WEIGHT", value) != nil)
    }

    // MARK: - PORT

    @Test(arguments: [("1", 1), ("80", 80), ("65535", 65535), (" 8080 ", 8080), ("\t443", 443)])
    func validPorts(_ value: String, _ expected: Int) throws {
        #expect(try parse(["HAPROXY_0_PORT": value]).port?.value == expected)
    }

    @Test(arguments: hostile + ["0", "65536", "-1", "", " ", "abc", "80 80", "8080;", "+80", "08080", "1e3", "80.0",
                                "99999999999999999999", "80\n"])
    func invalidPorts(_ value: String) throws {
        #expect(rejection("PORT", value) != nil)
    }

    // MARK: - MODE and BALANCE

    @Test(arguments: [("http", ServiceLabels.Mode.http), ("HTTP", .http), (" tcp ", .tcp), ("Tcp", .tcp)])
    func validModes(_ value: String, _ expected: ServiceLabels.Mode) throws {
        #expect(try parse(["HAPROXY_0_MODE": value]).mode == expected)
    }

    @Test(arguments: hostile + ["", "https", "health", "udp", "http;", "tcp\n", "h t t p"])
    func invalidModes(_ value: String) throws {
        let e = try #require(rejection("MODE", value))
        #expect(e.reason == "mode must be http or tcp")
    }

    @Test(arguments: ServiceLabels.Balance.allCases)
    func everyBalanceIsAccepted(_ b: ServiceLabels.Balance) throws {
        #expect(try parse(["HAPROXY_0_BALANCE": b.rawValue]).balance == b)
        #expect(try parse(["HAPROXY_0_BALANCE": " " + b.rawValue.uppercased() + " "]).balance == b)
    }

    @Test(arguments: hostile + ["", "hdr(host)", "round robin", "roundrobin;", "uri whole", "rdp-cookie", "static_rr",
                                "url_param userid"])
    func invalidBalance(_ value: String) throws {
        let e = try #require(rejection("BALANCE", value))
        #expect(e.reason.contains("roundrobin, static-rr, leastconn, first, source, uri, random"))
    }

    // MARK: - BIND_ADDR

    @Test(arguments: [("*", "*"), (" * ", "*"), ("0.0.0.0", "0.0.0.0"), ("127.0.0.1", "127.0.0.1"), ("::", "::"),
                      ("::1", "::1"), ("010.000.000.001", "10.0.0.1"), ("\t10.1.2.3 ", "10.1.2.3")])
    func validBindAddresses(_ value: String, _ expected: String) throws {
        #expect(try parse(["HAPROXY_0_BIND_ADDR": value]).bindAddress == expected)
    }

    @Test(arguments: hostile + ["", "localhost", "1.2.3.4:80", "1.2.3.4;", "1.2.3", "256.1.1.1", "*:80", "1.2.3.4\n",
                                "[::1]", "fe80::1%eth0", "**"])
    func invalidBindAddresses(_ value: String) throws {
        let e = try #require(rejection("BIND_ADDR", value))
        #expect(e.reason == "bind address must be * or a numeric IP address")
    }

    // MARK: - ENABLED

    @Test(arguments: ["true", "TRUE", "t", "yes", "Y", "1", "on", " true "])
    func enabledTrue(_ value: String) throws {
        #expect(try parse(["HAPROXY_0_ENABLED": value]).enabled == true)
    }

    @Test(arguments: ["false", "False", "f", "no", "N", "0", "off", "", "  "])
    func enabledFalse(_ value: String) throws {
        #expect(try parse(["HAPROXY_0_ENABLED": value]).enabled == false)
    }

    @Test(arguments: hostile + ["maybe", "2", "enabled", "true;", "yes\n", "truee"])
    func enabledInvalid(_ value: String) throws {
        let e = try #require(rejection("ENABLED", value))
        #expect(e.reason == "expected true or false")
    }

    // MARK: - Groups

    @Test(arguments: [
        ([String: String](), [String]()),
        (["HAPROXY_GROUP": "external"], ["external"]),
        (["HAPROXY_GROUP": "internal, external"], ["internal", "external"]),
        (["HAPROXY_GROUP": " a ,\tb\t,,"], ["a", "b"]),
        (["HAPROXY_GROUP": ""], []),
        (["HAPROXY_GROUP": "*"], ["*"]),
        (["HAPROXY_GROUP": "a", "HAPROXY_0_GROUP": "b"], ["b"]),
        (["HAPROXY_GROUP": "a,b", "HAPROXY_0_GROUP": "c, d"], ["c", "d"]),
        (["HAPROXY_0_GROUP": "only-port"], ["only-port"]),
        (["HAPROXY_GROUP": "a", "HAPROXY_0_GROUP": ""], ["a"]),
        (["HAPROXY_GROUP": "a", "HAPROXY_0_GROUP": " , "], ["a"]),
        (["HAPROXY_GROUP": "a", "HAPROXY_1_GROUP": "b"], ["a"]),
    ])
    func groupSemantics(_ labels: [String: String], _ expected: [String]) throws {
        #expect(try parse(labels).groups == expected)
    }

    @Test func perPortGroupAppliesOnlyToItsPort() throws {
        let labels = ["HAPROXY_GROUP": "external", "HAPROXY_1_GROUP": "internal"]
        #expect(try parse(labels, index: 0).groups == ["external"])
        #expect(try parse(labels, index: 1).groups == ["internal"])
    }

    @Test(arguments: hostile.filter { !$0.contains(",") })
    func invalidGroupNames(_ value: String) throws {
        for key in ["HAPROXY_GROUP", "HAPROXY_0_GROUP"] {
            let error = #expect(throws: ValidationError.self) { try parse([key: "ok," + value]) }
            #expect(error?.field == key)
            #expect(error?.value == "ok," + value)
        }
    }

    @Test func invalidAppGroupFailsEvenWithAValidPortGroup() {
        // The app-level label belongs to every port: a bad one disables the app.
        #expect(throws: ValidationError.self) { try parse(["HAPROXY_GROUP": "a;b", "HAPROXY_0_GROUP": "ok"]) }
    }

    // MARK: - Errors

    @Test func errorDescriptionQuotesTheValue() throws {
        let e = try #require(rejection("VHOST", "a.com\nbackend evil"))
        #expect(e.description == #"HAPROXY_0_VHOST="a.com\nbackend evil": not a valid host name (letters, digits and '-' in dot-separated labels of 1-63 characters)"#)
    }

    @Test func firstInvalidLabelIsReported() throws {
        let error = #expect(throws: ValidationError.self) {
            try parse(["HAPROXY_0_VHOST": "ok.com", "HAPROXY_0_PORT": "0", "HAPROXY_0_MODE": "bogus"])
        }
        #expect(error?.field == "HAPROXY_0_PORT", "labels are checked in a fixed order: VHOST, PATH, PORT, MODE...")
    }

    @Test func everyLabelTogether() throws {
        let s = try parse([
            "HAPROXY_GROUP": "external", "HAPROXY_0_ENABLED": "yes", "HAPROXY_0_VHOST": "Shop.Example.com, www.example.com",
            "HAPROXY_0_PATH": "/cart", "HAPROXY_0_PORT": "8080", "HAPROXY_0_MODE": "http", "HAPROXY_0_BALANCE": "leastconn",
            "HAPROXY_0_BIND_ADDR": "10.0.0.1", "HAPROXY_0_BACKEND_WEIGHT": "20",
        ])
        var expected = ServiceLabels()
        expected.groups = ["external"]
        expected.enabled = true
        expected.vhosts = [try HostName("shop.example.com"), try HostName("www.example.com")]
        expected.path = try URLPath("/cart")
        expected.port = try Port(8080)
        expected.mode = .http
        expected.balance = .leastconn
        expected.bindAddress = "10.0.0.1"
        expected.backendWeight = 20
        #expect(s == expected)
    }
}

import Testing
@testable import ServiceRouterCore

@Suite struct HTTPRequestParserTests {
    /// Feeds `input` whole, then again one byte at a time; both must give the same actions.
    private func parseBothWays(_ input: String, limits: HTTPRequestParser.Limits = .init()) -> [HTTPRequestParser.Action] {
        func drain(_ p: inout HTTPRequestParser, into out: inout [HTTPRequestParser.Action]) {
            for _ in 0..<100 {
                let a = p.next()
                if a == .needMoreData { return }
                out.append(a)
                if case .error = a { return }
            }
        }
        var whole = HTTPRequestParser(limits: limits)
        whole.append(Array(input.utf8))
        var wholeActions: [HTTPRequestParser.Action] = []
        drain(&whole, into: &wholeActions)

        var bytewise = HTTPRequestParser(limits: limits)
        var byteActions: [HTTPRequestParser.Action] = []
        for b in input.utf8 {
            bytewise.append([b])
            drain(&bytewise, into: &byteActions)
            if case .error = byteActions.last { break }
        }
        // 100-continue may be announced byte-wise (the body is not there yet) but not whole.
        #expect(wholeActions == byteActions.filter { $0 != .sendContinue })
        return byteActions
    }

    private func requests(_ actions: [HTTPRequestParser.Action]) -> [ParsedHTTPRequest] {
        actions.compactMap { if case .request(let r) = $0 { r } else { nil } }
    }

    @Test func simpleGet() {
        let rs = requests(parseBothWays("GET /v2/apps?embed=apps.tasks HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"))
        #expect(rs.count == 1)
        let r = rs[0]
        #expect(r.method == "GET")
        #expect(r.path == "/v2/apps")
        #expect(r.queryValue("embed") == "apps.tasks")
        #expect(r.headers["host"] == "x")
        #expect(r.headers["ACCEPT"] == "application/json")
        #expect(r.keepAlive)
        #expect(r.body.isEmpty)
    }

    @Test func bodyAndPipelining() {
        let input = "POST /v2/apps HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"id\":\"/a\"}"
            + "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n"
        let rs = requests(parseBothWays(input))
        #expect(rs.count == 2)
        #expect(String(decoding: rs[0].body, as: UTF8.self) == "{\"id\":\"/a\"}")
        #expect(rs[1].path == "/ping")
        #expect(!rs[1].keepAlive)
    }

    @Test func keepAliveRules() {
        #expect(requests(parseBothWays("GET / HTTP/1.0\r\n\r\n"))[0].keepAlive == false)
        #expect(requests(parseBothWays("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))[0].keepAlive == true)
        #expect(requests(parseBothWays("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n"))[0].keepAlive == false)
    }

    @Test func bareLineFeedsAndLeadingEmptyLines() {
        let rs = requests(parseBothWays("\r\n\nGET /a HTTP/1.1\nX-A:  spaced  \n\n"))
        #expect(rs.count == 1)
        #expect(rs[0].headers["x-a"] == "spaced")
    }

    @Test func repeatedQueryParametersAndPercentDecoding() {
        let r = requests(parseBothWays("GET /v2/events?event_type=a&event_type=b&label=HAPROXY_GROUP%3D%3Dexternal&x=a+b HTTP/1.1\r\n\r\n"))[0]
        #expect(r.queryValues("event_type") == ["a", "b"])
        #expect(r.queryValue("label") == "HAPROXY_GROUP==external")
        #expect(r.queryValue("x") == "a b")
        let p = requests(parseBothWays("GET /v2/apps/%2Fgroup%2Fapp HTTP/1.1\r\n\r\n"))[0]
        #expect(p.path == "/v2/apps//group/app")
    }

    @Test func expectContinue() {
        let actions = parseBothWays("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok")
        #expect(actions.contains(.sendContinue))
        #expect(requests(actions).first?.body == Array("ok".utf8))
        var p = HTTPRequestParser()
        p.append(Array("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(p.next() == .sendContinue)
        #expect(p.next() == .needMoreData)
        p.append(Array("ok".utf8))
        #expect(requests([p.next()]).count == 1)
    }

    @Test func errors() {
        func status(_ input: String, limits: HTTPRequestParser.Limits = .init()) -> Int? {
            for a in parseBothWays(input, limits: limits) { if case .error(let e) = a { return e.status } }
            return nil
        }
        #expect(status("GARBAGE\r\n\r\n") == 400)
        #expect(status("GET / HTTP/2.0\r\n\r\n") == 505)
        #expect(status("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 501)
        let small = HTTPRequestParser.Limits(maxHeadBytes: 64, maxHeaderCount: 3, maxBodyBytes: 4)
        #expect(status("GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\n\r\n", limits: small) == 431)
        #expect(status("GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", limits: small) == 431)
        #expect(status("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345", limits: small) == 413)
    }

    @Test func requestLineWithoutNewlineHitsTheLimit() {
        var p = HTTPRequestParser(limits: .init(maxHeadBytes: 32))
        p.append(Array(String(repeating: "G", count: 40).utf8))
        if case .error(let e) = p.next() { #expect(e.status == 431) } else { Issue.record("expected an error") }
    }

    @Test func errorIsSticky() {
        var p = HTTPRequestParser()
        p.append(Array("BROKEN\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8))
        guard case .error = p.next() else { Issue.record("expected an error"); return }
        guard case .error = p.next() else { Issue.record("expected the error again"); return }
    }

    @Test func longKeepAliveConnectionCompactsItsBuffer() {
        var p = HTTPRequestParser()
        for i in 0..<500 {
            p.append(Array("GET /\(i) HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
            guard case .request(let r) = p.next() else { Issue.record("request \(i) missing"); return }
            #expect(r.path == "/\(i)")
            #expect(p.isIdle)
        }
        #expect(p.bufferedByteCount == 0)
    }
}

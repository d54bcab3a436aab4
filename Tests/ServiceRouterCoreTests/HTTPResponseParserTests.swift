import Testing
@testable import ServiceRouterCore

/// What a whole response parses to, with body parts merged (chunking must not matter).
private struct Parsed: Equatable {
    var heads: [HTTPResponseHead] = []
    var body: [UInt8] = []
    var trailers: HTTPHeaders?
    var bodyParts = 0
}

private func parse(_ text: String, method: String = "GET", chunk: Int = .max, close: Bool = true,
                   limits: HTTPResponseParser.Limits = .init()) throws -> Parsed {
    try parse(Array(text.utf8), method: method, chunk: chunk, close: close, limits: limits)
}

private func parse(_ bytes: [UInt8], method: String = "GET", chunk: Int = .max, close: Bool = true,
                   limits: HTTPResponseParser.Limits = .init()) throws -> Parsed {
    var parser = HTTPResponseParser(requestMethod: method, limits: limits)
    var out = Parsed()
    func take(_ parts: [HTTPResponsePart]) {
        for part in parts {
            switch part {
            case .head(let h): out.heads.append(h)
            case .body(let b): out.body += b; out.bodyParts += 1
            case .end(let t): out.trailers = t
            }
        }
    }
    var i = 0
    while i < bytes.count {
        let n = min(chunk, bytes.count - i)
        take(try parser.feed(bytes[i..<(i + n)]))
        i += n
    }
    if close { take(try parser.finish()) }
    return out
}

/// Parses whole and byte by byte; both must agree.
private func parseBothWays(_ text: String, method: String = "GET") throws -> Parsed {
    var whole = try parse(text, method: method)
    var bytewise = try parse(text, method: method, chunk: 1)
    #expect(whole.heads == bytewise.heads)
    #expect(whole.body == bytewise.body)
    #expect(whole.trailers == bytewise.trailers)
    whole.bodyParts = 0
    bytewise.bodyParts = 0
    return whole
}

@Suite("HTTPResponseParser")
struct HTTPResponseParserTests {
    @Test func contentLength() throws {
        let r = try parseBothWays("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"apps\":[]}")
        #expect(r.heads == [HTTPResponseHead(status: 200, reason: "OK",
                                             headers: ["Content-Type": "application/json", "Content-Length": "11"])])
        #expect(String(decoding: r.body, as: UTF8.self) == "{\"apps\":[]}")
        #expect(r.trailers == [:])
    }

    @Test func completesWithoutWaitingForClose() throws {
        var parser = HTTPResponseParser()
        let parts = try parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA".utf8))
        #expect(parser.isComplete)
        #expect(parts.count == 3)
        #expect(parts[1] == .body(Array("hi".utf8)))
        #expect(parts[2] == .end(trailers: [:]))
        #expect(try parser.finish().isEmpty)
    }

    @Test func headerLookupIsCaseInsensitiveAndKeepsOrder() throws {
        let r = try parseBothWays("HTTP/1.1 302 Found\r\nlocation:  http://leader:8080/v2/apps \r\nX-Marathon-Leader: http://leader:8080\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n")
        let h = try #require(r.heads.first?.headers)
        #expect(h["Location"] == "http://leader:8080/v2/apps")
        #expect(h["x-marathon-leader"] == "http://leader:8080")
        #expect(h.values("SET-COOKIE") == ["a=1", "b=2"])
        #expect(h["Missing"] == nil)
        #expect(!h.description.contains("a=1"))
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value;other=\"x\"\r\nhello\r\n"
            + "1A\r\n, this is twenty-six bytes\r\n"
            + "0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
        let r = try parseBothWays(text)
        #expect(String(decoding: r.body, as: UTF8.self) == "hello, this is twenty-six bytes")
        #expect(r.trailers == ["X-Checksum": "abc", "X-Other": "1"])
    }

    @Test func chunkedWinsOverContentLength() throws {
        let r = try parseBothWays("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        #expect(r.body == Array("abc".utf8))
    }

    @Test func readUntilCloseDeliversBytesAsTheyArrive() throws {
        // Marathon's event stream: no Content-Length, no chunking, Connection: close.
        var parser = HTTPResponseParser()
        let head = try parser.feed(Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".utf8))
        #expect(head.count == 1)
        #expect(parser.readsUntilClose)
        #expect(try parser.feed(Array("event: x\r\n".utf8)) == [.body(Array("event: x\r\n".utf8))])
        #expect(try parser.feed(Array("\r\n".utf8)) == [.body([13, 10])])
        #expect(!parser.isComplete)
        #expect(try parser.finish() == [.end(trailers: [:])])
        #expect(parser.isComplete)
    }

    @Test func bodyInTheSameReadAsTheHead() throws {
        let r = try parse("HTTP/1.1 200 OK\r\n\r\ndata: {}\r\n\r\n")
        #expect(r.body == Array("data: {}\r\n\r\n".utf8))
        #expect(r.bodyParts == 1)
    }

    @Test func noBodyStatusesAndHEAD() throws {
        for status in ["204 No Content", "304 Not Modified"] {
            var parser = HTTPResponseParser()
            let parts = try parser.feed(Array("HTTP/1.1 \(status)\r\nContent-Length: 10\r\n\r\n".utf8))
            #expect(parser.isComplete)
            #expect(parts.last == .end(trailers: [:]))
        }
        var head = HTTPResponseParser(requestMethod: "head")
        _ = try head.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n".utf8))
        #expect(head.isComplete)
    }

    @Test func interimResponsesAreSkipped() throws {
        let r = try parseBothWays("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
        #expect(r.heads.map(\.status) == [200])
        #expect(r.body == [0x78])
    }

    @Test func toleratesBareLFAndEmptyReasonAndFolding() throws {
        let r = try parseBothWays("HTTP/1.0 503\nRetry-After: 1\nX-Long: a\n  b\nContent-Length: 0\n\n")
        let head = try #require(r.heads.first)
        #expect(head.status == 503 && head.reason == "" && head.version == "HTTP/1.0")
        #expect(head.headers["X-Long"] == "a b")
    }

    @Test func reasonPhraseWithSpaces() throws {
        let r = try parse("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        #expect(r.heads.first?.reason == "Method Not Allowed")
    }

    // MARK: errors

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "garbage\r\n\r\n",
    ])
    func badStatusLines(text: String) {
        #expect { try parse(text) } throws: { ($0 as? HTTPParseError)?.kind == .badStatusLine }
    }

    @Test func badHeaders() {
        #expect { try parse("HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n") } throws: { ($0 as? HTTPParseError)?.kind == .badHeader }
        #expect { try parse("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n") } throws: { ($0 as? HTTPParseError)?.kind == .badHeader }
    }

    @Test func badContentLength() {
        for value in ["abc", "-1", "1, 2", "", "99999999999999999999"] {
            #expect { try parse("HTTP/1.1 200 OK\r\nContent-Length: \(value)\r\n\r\n") } throws: {
                ($0 as? HTTPParseError)?.kind == .badContentLength
            }
        }
        // The same value repeated is allowed (RFC 9110 §8.6).
        #expect(throws: Never.self) { try parse("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx") }
    }

    @Test func badChunks() {
        for body in ["zz\r\n", "-1\r\n", "+1\r\nx\r\n0\r\n\r\n", "3\r\nabcX\r\n"] {
            #expect { try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body) } throws: {
                ($0 as? HTTPParseError)?.kind == .badChunk
            }
        }
    }

    @Test func truncatedBodiesAreErrors() {
        #expect { try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") } throws: { ($0 as? HTTPParseError)?.kind == .truncated }
        #expect { try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab") } throws: { ($0 as? HTTPParseError)?.kind == .truncated }
        #expect { try parse("HTTP/1.1 200 OK\r\nContent-") } throws: { ($0 as? HTTPParseError)?.kind == .truncated }
        #expect { try parse("") } throws: { ($0 as? HTTPParseError)?.description.contains("before any response") == true }
    }

    @Test func headSizeAndCountLimits() {
        let limits = HTTPResponseParser.Limits(maxHeadBytes: 100, maxHeaderCount: 3, maxChunkLineBytes: 8)
        let big = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 200) + "\r\n\r\n"
        #expect { try parse(big, chunk: 1, close: false, limits: limits) } throws: { ($0 as? HTTPParseError)?.kind == .headTooLarge }
        let many = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        #expect { try parse(many, close: false, limits: limits) } throws: { ($0 as? HTTPParseError)?.kind == .tooManyHeaders }
        let longChunkLine = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 50)
        #expect { try parse(longChunkLine, close: false, limits: limits) } throws: { ($0 as? HTTPParseError)?.kind == .badChunk }
    }

    @Test func failedParserStaysFailed() throws {
        var parser = HTTPResponseParser()
        #expect(throws: HTTPParseError.self) { try parser.feed(Array("nope\r\n\r\n".utf8)) }
        #expect(throws: HTTPParseError.self) { try parser.feed(Array("HTTP/1.1 200 OK\r\n\r\n".utf8)) }
    }
}

import Foundation
import Testing
@testable import ServiceRouterCore

func marathonFixture(_ name: String) throws -> [UInt8] {
    Array(try Fixture.data(name, in: "marathon"))
}

/// Feeds `bytes` in the given chunk sizes (cycling), collecting every event.
func parseSSE(_ bytes: [UInt8], chunks sizes: [Int] = [Int.max]) throws -> [SSEEvent] {
    var parser = SSEParser()
    var events: [SSEEvent] = []
    var i = 0, k = 0
    while i < bytes.count {
        let n = min(sizes[k % sizes.count], bytes.count - i)
        events += try parser.feed(bytes[i..<(i + n)])
        i += n
        k += 1
    }
    return events
}

private func jsonEventType(_ e: SSEEvent) -> String? {
    let object = try? JSONSerialization.jsonObject(with: Data(e.data.utf8)) as? [String: Any]
    return object?["eventType"] as? String
}

@Suite("SSEParser")
struct SSEParserTests {
    // MARK: fixtures

    @Test func marathonExampleWithLF() throws {
        let events = try parseSSE(try marathonFixture("events.txt"))
        #expect(events.map(\.type) == ["event_stream_attached", "status_update_event", "status_update_event"])
        #expect(events.map(jsonEventType) == events.map(\.type))
        #expect(events[1].data.hasPrefix("{\"slaveId\":\"20150707-153709-218108076-5050-25588-S6\""))
        #expect(events[2].data.hasSuffix("\"timestamp\":\"2015-09-30T12:47:11.286Z\"}"))
        #expect(events.allSatisfy { $0.id == nil && !$0.data.contains("\n") })
    }

    @Test func jettyCaptureWithCRLF() throws {
        let bytes = try marathonFixture("single-event.txt")
        #expect(bytes.contains(0x0D))
        let events = try parseSSE(bytes)
        #expect(events == [SSEEvent(
            type: "event_stream_attached",
            data: #"{"remoteAddress":"172.18.0.1","eventType":"event_stream_attached","timestamp":"2018-09-03T18:03:45.685Z"}"#)])
    }

    @Test func blankLinesBetweenEventNameAndData() throws {
        // `event:` then a blank line dispatches nothing and forgets the name; the `data:` that
        // follows later is a "message". The JSON still says what it is.
        let events = try parseSSE(try marathonFixture("multi-event-blanklines-in-between.txt"))
        #expect(events.map(\.type) == ["message", "message", "message", "message"])
        #expect(events.map(jsonEventType) == ["group_change_success", "api_post_event", "status_update_event",
                                              "instance_changed_event"])
    }

    @Test(arguments: ["events.txt", "single-event.txt", "multi-event-blanklines-in-between.txt"])
    func byteByByteAndOddChunksMatchWhole(fixture: String) throws {
        let bytes = try marathonFixture(fixture)
        let whole = try parseSSE(bytes)
        #expect(!whole.isEmpty)
        #expect(try parseSSE(bytes, chunks: [1]) == whole)
        #expect(try parseSSE(bytes, chunks: [2, 3, 5, 7, 11, 13]) == whole)
    }

    @Test(arguments: ["events.txt", "single-event.txt", "multi-event-blanklines-in-between.txt"])
    func everySplitPointMatchesWhole(fixture: String) throws {
        let bytes = try marathonFixture(fixture)
        let whole = try parseSSE(bytes)
        for split in 0...bytes.count {
            var parser = SSEParser()
            let events = try parser.feed(bytes[..<split]) + parser.feed(bytes[split...])
            #expect(events == whole, "split at \(split)")
            if events != whole { break }
        }
    }

    @Test func fixturesWithCRLFAndLoneCRParseTheSame() throws {
        let lf = try marathonFixture("events.txt")
        let text = String(decoding: lf, as: UTF8.self)
        let crlf = Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let cr = Array(text.replacingOccurrences(of: "\n", with: "\r").utf8)
        let expected = try parseSSE(lf)
        #expect(try parseSSE(crlf) == expected)
        #expect(try parseSSE(crlf, chunks: [1]) == expected)
        #expect(try parseSSE(cr) == expected)
        #expect(try parseSSE(cr, chunks: [1]) == expected)
    }

    // MARK: line endings

    @Test func crlfSplitAcrossChunksIsOneLineEnding() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("data: a\r".utf8)).isEmpty)
        // If the LF were a second line ending, this would be a blank line and dispatch "a".
        #expect(try parser.feed(Array("\n".utf8)).isEmpty)
        #expect(try parser.feed(Array("data: b\r".utf8)).isEmpty)
        #expect(try parser.feed(Array("\n\r".utf8)) == [SSEEvent(data: "a\nb")])
        #expect(try parser.feed(Array("\n".utf8)).isEmpty)
    }

    @Test func loneCRAndMixedEndings() throws {
        let events = try parseSSE(Array("data: one\rdata: two\n\r\ndata: three\r\r".utf8))
        #expect(events == [SSEEvent(data: "one\ntwo"), SSEEvent(data: "three")])
    }

    // MARK: fields

    @Test func multiLineDataIsJoinedWithNewline() throws {
        let events = try parseSSE(Array("data: first\ndata:second\ndata:  third\ndata\n\n".utf8))
        #expect(events == [SSEEvent(data: "first\nsecond\n third\n")])
    }

    @Test func onlyOneSpaceAfterTheColonIsStripped() throws {
        #expect(try parseSSE(Array("data:   x \n\n".utf8)) == [SSEEvent(data: "  x ")])
        #expect(try parseSSE(Array("event:  spaced\ndata:x\n\n".utf8)) == [SSEEvent(type: " spaced", data: "x")])
    }

    @Test func commentsAndUnknownFieldsAreIgnored() throws {
        let events = try parseSSE(Array(": hello\n:\nfoo: bar\ndata: x\n: between\nevent: e\n\n".utf8))
        #expect(events == [SSEEvent(type: "e", data: "x")])
    }

    @Test func fieldWithoutColonHasEmptyValue() throws {
        // `data` alone appends an empty line; `event` alone resets the type to the default.
        #expect(try parseSSE(Array("event: x\nevent\ndata\n\n".utf8)) == [SSEEvent(type: "message", data: "")])
    }

    @Test func blankLineWithoutDataDispatchesNothingAndResetsType() throws {
        let events = try parseSSE(Array("event: lonely\n\n\n\ndata: later\n\n".utf8))
        #expect(events == [SSEEvent(type: "message", data: "later")])
    }

    @Test func eventAtEndOfStreamWithoutBlankLineIsNotDispatched() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("event: a\ndata: x\n".utf8)).isEmpty)
        #expect(parser.hasPartialEvent)
        #expect(try parser.feed(Array("\n".utf8)) == [SSEEvent(type: "a", data: "x")])
        #expect(!parser.hasPartialEvent)
    }

    @Test func idPersistsAndRetryIsRead() throws {
        var parser = SSEParser()
        let events = try parser.feed(Array("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\u{0}y\ndata: d\n\nretry: 1500\nretry: 2s\n".utf8))
        #expect(events.map(\.id) == ["7", "7", nil, nil])
        #expect(parser.retryMilliseconds == 1500)
    }

    @Test func byteOrderMarkOnlyAtStreamStart() throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let body = Array("data: x\n\n".utf8)
        #expect(try parseSSE(bom + body) == [SSEEvent(data: "x")])
        #expect(try parseSSE(bom + body, chunks: [1]) == [SSEEvent(data: "x")])
        // A second BOM is content: the field name becomes "\u{FEFF}data", which is unknown.
        #expect(try parseSSE(bom + bom + body) == [])
        #expect(try parseSSE(bom + body + bom + body) == [SSEEvent(data: "x")])
        // A partial BOM is content too: the bytes become part of the (unknown) field name.
        #expect(try parseSSE([0xEF, 0xBB] + Array("\ndata: y\n\n".utf8)) == [SSEEvent(data: "y")])
    }

    @Test func multiByteUTF8SplitAcrossChunks() throws {
        let bytes = Array("data: grüße ✓\n\n".utf8)
        #expect(try parseSSE(bytes, chunks: [1]) == [SSEEvent(data: "grüße ✓")])
    }

    // MARK: heartbeats

    @Test func marathonHeartbeatsAreBlankLines() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("\r\n".utf8)).isEmpty)
        #expect(try parser.feed(Array("\r\n\r\n".utf8)).isEmpty)
        let attached = try parser.feed(Array("event: event_stream_attached\r\ndata: {}\r\n\r\n".utf8))
        #expect(attached == [SSEEvent(type: "event_stream_attached", data: "{}")])
        #expect(try parser.feed(Array("\r\n\r\n\r\n".utf8)).isEmpty)
        #expect(!parser.hasPartialEvent)
    }

    // MARK: limits

    @Test func oversizedLineIsRejectedAndParserStaysFailed() throws {
        var parser = SSEParser(maxLineBytes: 16)
        #expect(try parser.feed(Array("data: 0123456789\n\n".utf8)) == [SSEEvent(data: "0123456789")])
        // No newline ever comes: memory must not grow past the limit.
        #expect(throws: SSEParseError(kind: .lineTooLong, limit: 16)) {
            try parser.feed([UInt8](repeating: 0x61, count: 17))
        }
        #expect(throws: SSEParseError.self) { try parser.feed(Array("\n\n".utf8)) }
    }

    @Test func lineAtTheLimitIsAccepted() throws {
        var parser = SSEParser(maxLineBytes: 9)
        #expect(try parser.feed(Array("data: abc\n\n".utf8)) == [SSEEvent(data: "abc")])
    }

    @Test func oversizedEventIsRejected() throws {
        var parser = SSEParser(maxLineBytes: 100, maxEventBytes: 10)
        #expect(throws: SSEParseError(kind: .eventTooLarge, limit: 10)) {
            try parser.feed(Array("data: 123456\ndata: 7890\n\n".utf8))
        }
        var ok = SSEParser(maxLineBytes: 100, maxEventBytes: 10)
        #expect(try ok.feed(Array("data: 12345\ndata: 6789\n\n".utf8)) == [SSEEvent(data: "12345\n6789")])
    }
}

import Foundation
import Testing
@testable import ServiceRouterIO

/// What the two log formats write for one record.
@Suite struct LogFormatTests {
    func json(_ fields: [(String, String)]) throws -> [String: Any] {
        let line = StreamLogSink.format(LogRecord(level: .info, message: "m", fields: fields), as: .json, time: Date(timeIntervalSince1970: 0))
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }

    @Test func jsonWritesNumbersAsNumbers() throws {
        let o = try json([("count", "3"), ("failed", "0"), ("ms", "12.5"), ("retry_in_s", "1.25"), ("old_pid", "-"),
                          ("new_pid", "4242"), ("apps", "10"), ("reload", "no"), ("backends", "web_10000"), ("app", "123")])
        #expect(o["count"] as? Int == 3)
        #expect(o["failed"] as? Int == 0)
        #expect(o["ms"] as? Double == 12.5)
        #expect(o["retry_in_s"] as? Double == 1.25)
        #expect(o["old_pid"] is NSNull, "a number not known is null")
        #expect(o["new_pid"] as? Int == 4242)
        #expect(o["apps"] as? Int == 10)
        // Not numeric fields: strings, even when they look like numbers.
        #expect(o["reload"] as? String == "no")
        #expect(o["backends"] as? String == "web_10000")
        #expect(o["app"] as? String == "123")
    }

    @Test(arguments: ["1e5", "01", "1.", ".5", "--1", "12abc", "0x10", "1 2", "NaN", "99999999999999999999999"])
    func aNumericFieldWithOtherTextStaysAString(_ value: String) throws {
        #expect(try json([("count", value)])["count"] as? String == value)
    }

    @Test func textFormatIsUnchanged() {
        let line = StreamLogSink.format(LogRecord(level: .info, message: "runtime commands applied", fields: [("count", "3"), ("old_pid", "-")]),
                                        as: .text, time: Date(timeIntervalSince1970: 0))
        #expect(line == "1970-01-01T00:00:00.000Z INFO runtime commands applied count=3 old_pid=-")
    }
}

import Foundation
import Testing
@testable import ServiceRouterIO

/// `ConfigStore.holds` decides whether a full pass rewrites the config file: it must say true
/// only for exactly the same bytes, whatever their size relative to its 64 KiB reads.
@Suite struct ConfigStoreTests {
    @Test func holdsOnlyTheSameBytes() throws {
        let dir = FileManager.default.temporaryDirectory.path() + "/servicerouter-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ConfigStore(path: dir + "/haproxy.cfg")
        #expect(!store.holds(""), "a missing file holds nothing")
        #expect(!store.holds("global\n"))

        let big = String(repeating: "  server s1 127.0.0.1:31000 check\n", count: 6_000)  // ~200 KB: several reads
        for text in ["", "global\n", big] {
            try store.replace(with: text)
            #expect(store.holds(text))
            #expect(store.read() == text)
        }
        // Same size, one byte different: at the start, in a later read, at the very end.
        for offset in [0, 100_000, big.utf8.count - 1] {
            var bytes = Array(big.utf8)
            bytes[offset] = bytes[offset] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
            #expect(!store.holds(String(decoding: bytes, as: UTF8.self)), "differs at \(offset)")
        }
        #expect(!store.holds(big + "\n"), "longer")
        #expect(!store.holds(String(big.dropLast())), "shorter")
    }
}

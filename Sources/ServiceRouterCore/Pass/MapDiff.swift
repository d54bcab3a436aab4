/// One vhost map to replace at runtime: every desired entry (the replacement is atomic: a new
/// map version filled and committed), and what differs from the live map (for logs and `plan`).
public struct MapEdit: Sendable, Equatable {
    public var file: MapFile
    public var entries: [MapKeyValue]
    public var added: [MapKeyValue]
    public var removed: [MapKeyValue]
}

public enum MapDiff {
    /// The maps whose live contents differ from the desired ones. A map HAProxy has not loaded
    /// (absent from `live`: its config is older) needs no edit: the reload that loads it reads
    /// the file.
    public static func edits(desired: [String: [MapEntry]], live: [String: [MapKeyValue]]) throws -> [MapEdit] {
        var out: [MapEdit] = []
        for (path, entries) in desired.sorted(by: { $0.key < $1.key }) {
            guard let have = live[path] else { continue }
            let want = try entries.map { try MapKeyValue(key: $0.key, value: $0.value) }
            let wantSet = Set(want), haveSet = Set(have)
            guard wantSet != haveSet else { continue }
            out.append(MapEdit(file: try MapFile(path), entries: want, added: wantSet.subtracting(haveSet).sorted(),
                               removed: haveSet.subtracting(wantSet).sorted()))
        }
        return out
    }

    /// A map file's text: one `key value` line per entry.
    public static func fileText(_ entries: [MapEntry]) -> String {
        var text = ""
        for e in entries { text += e.key + " " + e.value + "\n" }
        return text
    }
}

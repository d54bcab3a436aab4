import ServiceRouterCore
import Synchronization

/// The serialized JSON of each app in `/v2/apps`, by app and embed set, so a listing of 10,000
/// tasks writes only the apps that changed since the last one (rendering every app's JSON tree
/// and serializing ~5 MB took well over 100 ms per request).
///
/// An entry is reused only when the inputs of `Rendering.app(_:tasks:healthResultsHidden:embed:)`
/// equal the ones it was rendered from: the app record (spec, version, deployments,
/// lastTaskFailure…), its tasks in order (states, health…) and whether health results are
/// hidden. No invalidation to forget: whatever changes an app's JSON changes those inputs.
/// Comparing is cheap because unchanged records share their storage with the snapshot.
final class AppListingCache: Sendable {
    private struct Key: Hashable {
        let appId: String
        let embed: Int
    }

    private struct Entry {
        let app: AppRecord
        let tasks: [TaskRecord]
        let healthResultsHidden: Bool
        let bytes: [UInt8]
    }

    private struct Table {
        var entries: [Key: Entry] = [:]
        var hits = 0
        var misses = 0
    }

    private let table = Mutex(Table())

    /// `{"apps":[…]}` for `apps` (already filtered and sorted), byte for byte what
    /// `JSONValue.object(["apps": .array(apps.map { Rendering.app($0, state:, embed:) })])` encodes to.
    func listing(_ apps: [AppRecord], state: EngineState, embed: Rendering.AppEmbed) -> [UInt8] {
        table.withLock { t in
            var parts: [[UInt8]] = []
            parts.reserveCapacity(apps.count)
            var size = 12
            for app in apps {
                let key = Key(appId: app.id, embed: embed.rawValue)
                let tasks = state.tasks(of: app.id)
                if let e = t.entries[key], e.healthResultsHidden == state.healthResultsHidden, e.app == app, e.tasks == tasks {
                    t.hits += 1
                    parts.append(e.bytes)
                } else {
                    t.misses += 1
                    let bytes = Rendering.app(app, tasks: tasks, healthResultsHidden: state.healthResultsHidden, embed: embed).encoded()
                    t.entries[key] = Entry(app: app, tasks: tasks, healthResultsHidden: state.healthResultsHidden, bytes: bytes)
                    parts.append(bytes)
                }
                size += parts[parts.count - 1].count + 1
            }
            // Apps that are gone (or being deleted) leave the cache.
            if t.entries.count > apps.count {
                t.entries = t.entries.filter { key, _ in state.apps[key.appId].map { !$0.deleting } ?? false }
            }
            var out: [UInt8] = []
            out.reserveCapacity(size)
            out.append(contentsOf: #"{"apps":["#.utf8)
            for (i, part) in parts.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: part)
            }
            out.append(contentsOf: "]}".utf8)
            return out
        }
    }

    /// Entries reused and rendered since the start (tests).
    var counts: (hits: Int, misses: Int) { table.withLock { ($0.hits, $0.misses) } }
}

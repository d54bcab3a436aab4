import ServiceRouterCore
import Synchronization

/// The serialized JSON of each app in `/v2/apps`, by app and embed set, so a listing of 10,000
/// tasks writes only the apps that changed since the last one (rendering every app's JSON tree
/// and serializing ~5 MB took well over 100 ms per request).
///
/// An entry is reused only when the inputs of `Rendering.app(_:tasks:healthResultsHidden:embed:)`
/// are the ones it was rendered from: the same app record (spec, version, deployments,
/// lastTaskFailure…, compared by value), the same task ids in the same order, no write to any of
/// its tasks since (`TaskTable` advances the app's revision on every write: states, health…)
/// and the same health-results-hidden flag. No invalidation call to forget: whatever changes an
/// app's JSON changes one of those. Checking costs a few lookups per app, not per task.
final class AppListingCache: Sendable {
    private struct Key: Hashable {
        let appId: String
        let embed: Int
    }

    private struct Entry {
        let app: AppRecord
        /// `EngineState.tasksByApp` and `TaskTable.revision(of:)` of the app when rendered.
        let taskIDs: [String]
        let taskRevision: UInt64
        let healthResultsHidden: Bool
        let bytes: [UInt8]

        /// Unchanged arrays share storage with the state, so `taskIDs` compares in O(1).
        func matches(_ app: AppRecord, _ s: EngineState) -> Bool {
            healthResultsHidden == s.healthResultsHidden && taskRevision == s.tasks.revision(of: app.id)
                && taskIDs == (s.tasksByApp[app.id] ?? []) && self.app == app
        }
    }

    private struct Table {
        var entries: [Key: Entry] = [:]
        var hits = 0
        var misses = 0
        /// Bytes of the last listing: the next one reserves about as much up front.
        var lastSize = 0
    }

    private let table = Mutex(Table())

    /// `{"apps":[…]}` for `apps` (already filtered and sorted), byte for byte what
    /// `JSONValue.object(["apps": .array(apps.map { Rendering.app($0, state:, embed:) })])` encodes to.
    func listing(_ apps: [AppRecord], state: EngineState, embed: Rendering.AppEmbed) -> [UInt8] {
        table.withLock { t in
            var out: [UInt8] = []
            out.reserveCapacity(t.lastSize + t.lastSize / 8)
            out.append(contentsOf: #"{"apps":["#.utf8)
            for (i, app) in apps.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                let key = Key(appId: app.id, embed: embed.rawValue)
                if let e = t.entries[key], e.matches(app, state) {
                    t.hits += 1
                    out.append(contentsOf: e.bytes)
                } else {
                    t.misses += 1
                    let bytes = Rendering.app(app, tasks: state.tasks(of: app.id), healthResultsHidden: state.healthResultsHidden,
                                              embed: embed).encoded()
                    t.entries[key] = Entry(app: app, taskIDs: state.tasksByApp[app.id] ?? [],
                                           taskRevision: state.tasks.revision(of: app.id),
                                           healthResultsHidden: state.healthResultsHidden, bytes: bytes)
                    out.append(contentsOf: bytes)
                }
            }
            out.append(contentsOf: "]}".utf8)
            t.lastSize = out.count
            // Apps that are gone (or being deleted) leave the cache.
            if t.entries.count > apps.count {
                t.entries = t.entries.filter { key, _ in state.apps[key.appId].map { !$0.deleting } ?? false }
            }
            return out
        }
    }

    /// Entries reused and rendered since the start (tests).
    var counts: (hits: Int, misses: Int) { table.withLock { ($0.hits, $0.misses) } }
}

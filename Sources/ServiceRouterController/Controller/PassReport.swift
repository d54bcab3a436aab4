import ServiceRouterCore
import ServiceRouterIO

/// Everything the reconciler needs that does not come from Marathon.
public struct ReconcilerSettings: Sendable {
    public var pass: PassSettings
    public var configPath: String
    public var reloadTimeout: Double = 30

    public init(pass: PassSettings, configPath: String) {
        self.pass = pass
        self.configPath = configPath
    }

    /// The vhost map files the config names (map routing).
    var mapFiles: [MapFile] {
        guard pass.render.vhostRouting == .map else { return [] }
        return [pass.render.vhostMapPath, pass.render.vhostPathMapPath].compactMap { try? MapFile($0) }
    }
}

/// The outcome of one full pass, for logs, `once`, the benchmarks and tests.
public struct PassReport: Sendable {
    public var plan: PassPlan?
    public var live: LiveView?
    /// Runtime commands sent, the fix-up after a reload included.
    public var commands: [RuntimeCommand] = []
    /// Why HAProxy reloaded (or would have); empty: runtime API only.
    public var reloadReasons: [ReloadReason] = []
    public var reloaded = false
    public var configWritten = false
    public var error: PassError?
    public var timings = PassTimings()
    public var seconds: Double { timings.total }
    /// The desired state planned (empty without a plan).
    public var desired: DesiredState { plan?.desired ?? DesiredState() }
    /// The vhost maps replaced at runtime.
    public var mapEdits: [MapEdit] { reloaded ? [] : plan?.mapEdits ?? [] }
    public var rendered: RenderedConfig? { plan?.config }
}

/// What the event fast path did with a batch.
public enum FastPathOutcome: Sendable, Equatable {
    case done(commands: Int)
    case needsFullPass(FullPassReason)
}

extension Logger {
    /// Why apps, ports or tasks were left out: one line each, at the diagnostic's level.
    func log(_ diagnostics: [Diagnostic]) {
        for d in diagnostics {
            let fields = [("app", d.appId ?? "-"), ("kind", d.kind.rawValue)]
            switch d.level {
            case .error: error(d.message, fields)
            case .warning: warning(d.message, fields)
            case .info: info(d.message, fields)
            }
        }
    }
}

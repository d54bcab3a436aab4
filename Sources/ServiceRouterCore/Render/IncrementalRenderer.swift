/// The one renderer the controller keeps between passes. It renders exactly what
/// `ConfigRenderer.render` renders, reusing each service's part of the previous render when the
/// service and its slots did not change, and the previous config itself when nothing did (an
/// idle resync at 10,000 tasks would otherwise re-assemble and re-hash 1.2 MB for nothing).
public struct IncrementalRenderer: Sendable {
    public let templates: TemplateSet
    public let options: RenderOptions
    private var entries: [ProxyName: Entry] = [:]
    private var order: [ProxyName]?
    private var last: RenderedConfig?

    public init(templates: TemplateSet, options: RenderOptions) {
        self.templates = templates
        self.options = options
    }

    /// What one service contributed to the last render. A reference: the table holds a pointer
    /// per service rather than the (large) pieces inline, and the next table shares the
    /// unchanged ones.
    final class Entry: Sendable {
        let slotCount: Int
        let slots: [DesiredServer?]
        /// Includes the service the pieces were rendered from.
        let pieces: ConfigRenderer.ServicePieces

        init(slotCount: Int, slots: [DesiredServer?], pieces: ConfigRenderer.ServicePieces) {
            self.slotCount = slotCount
            self.slots = slots
            self.pieces = pieces
        }
    }

    /// Services whose pieces are kept.
    public var cachedServices: Int { entries.count }

    /// The config for `desired` with the slot assignment of `plan`. On a render error the
    /// renderer keeps its previous state.
    public mutating func render(desired: DesiredState, plan: ReconcilePlan) throws -> RenderedConfig {
        var store: [ProxyName: Entry] = [:]
        var names: [ProxyName] = []
        let fresh = try ConfigRenderer.render(desired: desired, plan: plan, templates: templates, options: options,
                                              cached: entries, previousOrder: last == nil ? nil : order,
                                              store: &store, order: &names)
        entries = store
        order = names
        if let fresh { last = fresh }
        return last!
    }
}

// Commands whose implementation lands with the event stream and the simulator.
enum RunCommand {
    static func run(_ args: [String]) async throws -> Int32 { throw UsageError("run: not available in this build yet") }
}
enum SimCommand {
    static func run(_ args: [String]) async throws -> Int32 { throw UsageError("sim: not available in this build yet") }
}
enum DemoCommand {
    static func run(_ args: [String]) async throws -> Int32 { throw UsageError("demo: not available in this build yet") }
}

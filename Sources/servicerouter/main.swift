import ServiceRouter
import ServiceRouterIO

MallocTuning.limitArenas()
await ServiceRouterMain.run(CommandLine.arguments)

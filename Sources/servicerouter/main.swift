import ServiceRouterCLI
import ServiceRouterIO

MallocTuning.apply()
await ServiceRouterMain.run(CommandLine.arguments)

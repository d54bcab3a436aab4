import ServiceRouter
print("benchmarks: not yet")

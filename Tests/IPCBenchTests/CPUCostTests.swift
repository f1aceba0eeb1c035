import IPCBench
import Testing

@Suite("CPU cost and the shared-memory floor")
struct CPUCostTests {
    @Test("A spinning waiter burns a whole CPU; a blocking one sleeps; shared-memory cells record the cache-line floor")
    func spinningShowsInCPUCost() throws {
        let cpus = Affinity.allowedCPUs()
        try #require(cpus.count >= 2, "needs two CPUs")
        let placement = Placement(producerCPU: cpus[0], consumerCPU: cpus[1])
        let configuration = RunConfiguration(
            mechanisms: [MechanismRegistry.mechanism(id: "shm-posix")!, MechanismRegistry.mechanism(id: "pipe")!],
            modes: [.latency], variants: ["in-place/spin", "write/read"], sizes: [64], touch: .read, placement: placement,
            repetitions: 1, durationSeconds: 0.3, limits: TestSupport.limits)
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        let spin = try #require(outcomes.first { $0.cell.variant == "in-place/spin" })
        let pipe = try #require(outcomes.first { $0.cell.mechanism.id == "pipe" })
        #expect(spin.status == .ok && pipe.status == .ok)
        // Spinning: each worker is on its CPU the whole time (≈1 CPU-s per s on an idle machine; the
        // spinner yields after 256 empty polls, so other load on the CPUs can take some of it).
        // Blocking ping-pong across CPUs: both sleep most of each round trip.
        let pipeUtilization = try #require(pipe.consumerUsage.utilization)
        for usage in [spin.producerUsage, spin.consumerUsage] {
            let utilization = try #require(usage.utilization)
            #expect(utilization > 0.4 && utilization < 1.1, "spin utilization \(utilization)")
            #expect(utilization > 1.5 * pipeUtilization, "spin \(utilization) vs pipe \(pipeUtilization)")
        }
        #expect(spin.floorBefore.map { $0 > 0 } == true && spin.floorAfter.map { $0 > 0 } == true)
        #expect(pipe.floorBefore == nil)
    }
}

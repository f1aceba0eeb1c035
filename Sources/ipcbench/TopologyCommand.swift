import ArgumentParser
import IPCBench

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show the CPU topology read from /sys (CPUs, cores, SMT siblings, L3 groups, NUMA nodes) and what each named placement becomes here.")

    func run() throws {
        let topology = try Topology.read()
        print(topology.description)
        print("NUMA memory placement (--memory-node): \(SystemFacts.numaMemoryPlacement)")
        print("\nNamed placements on this machine (allowed CPUs \(Topology.formatCPUList(Affinity.allowedCPUs()))):")
        let everyName = ([RunInput.crossCPU] + NamedPlacement.allCases.map(\.rawValue)).joined(separator: ",")
        let placements: [Placement]
        do {
            placements = try RunInput.parsePlacements(everyName, allowedCPUs: Affinity.allowedCPUs())
        } catch let error as RunInputError {
            throw ValidationError(error.description)
        }
        for placement in placements {
            if let reason = placement.unavailableReason {
                print("  \(reason)")
            } else if let producer = placement.producerCPU, let consumer = placement.consumerCPU {
                print("  \(placement.name): producer CPU \(producer), consumer CPU \(consumer)")
            } else {
                print("  \(placement.name): not pinned; the rows record where the workers ran")
            }
        }
    }
}

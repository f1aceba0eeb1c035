import Glibc
import IPCBench
import Testing

@Suite("NUMA memory placement")
struct NUMATests {
    @Test("A shared region bound to a node has its pages there, as move_pages reports; a missing node is refused")
    func bindsAndVerifies() throws {
        try #require(NUMA.isAvailable, "this kernel has no NUMA support")
        let nodes = NUMA.memoryNodes
        #expect(!nodes.isEmpty)
        #expect(NUMA.node(ofCPU: Affinity.allowedCPUs()[0]) != nil)
        let length = 1 << 20
        let mapping = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, length) }
        let region = UnsafeMutableRawBufferPointer(start: mapping, count: length)
        let node = nodes.last!
        try NUMA.bind(region, toNode: node)
        region.initializeMemory(as: UInt8.self, repeating: 1)
        #expect(NUMA.pageNodes(of: UnsafeRawBufferPointer(region)) == [node: length / Int(sysconf(Int32(_SC_PAGESIZE)))])
        #expect(throws: IPCError.self) { try NUMA.bind(region, toNode: 4095) }
    }
}

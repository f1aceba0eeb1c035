import CIPCShim
import Glibc
import SystemPackage

/// How the two sides of one shared-memory ring wait for each other and wake each other.
///
/// The producer calls `waitForSpace` before writing the slot at `head` and `publish` after it; the
/// consumer calls `waitForData` before reading the slot at `tail` and `release` after it. `publish`
/// and `release` also store the new index (each index has a single writer), with the ordering the
/// strategy needs. The endpoint is generic over the notifier, so these calls are direct.
protocol RingNotifier {
    func waitForSpace(_ ring: Ring, head: UInt32) throws
    func publish(_ ring: Ring, head: UInt32) throws
    func waitForData(_ ring: Ring, tail: UInt32) throws
    func release(_ ring: Ring, tail: UInt32) throws
}

/// POSIX unnamed semaphores (sem_init with pshared = 1) in the ring's control block, counting full
/// and empty slots. sem_post and an uncontended sem_wait stay in user space; only a side that has to
/// wait enters the kernel (futex). The semaphores order the slot's bytes; the indices are stored only
/// to find the next slot. Other wait strategies: sem_trywait (poll, spin-then-block), sem_clockwait (timed).
struct SemaphoreNotifier: RingNotifier {
    let waiter: TryWaiter

    @inline(__always)
    func waitForSpace(_ ring: Ring, head: UInt32) throws { try wait(ring.empty, for: "room in the ring") }

    @inline(__always)
    func publish(_ ring: Ring, head: UInt32) throws {
        ipcb_store_relaxed_u32(ring.head, head)
        guard sem_post(ring.full) == 0 else { throw IPCError.lastSystemError("sem_post") }
    }

    @inline(__always)
    func waitForData(_ ring: Ring, tail: UInt32) throws { try wait(ring.full, for: "message") }

    @inline(__always)
    func release(_ ring: Ring, tail: UInt32) throws {
        ipcb_store_relaxed_u32(ring.tail, tail)
        guard sem_post(ring.empty) == 0 else { throw IPCError.lastSystemError("sem_post") }
    }

    @inline(__always)
    private func wait(_ semaphore: UnsafeMutablePointer<sem_t>, for what: String) throws {
        try waiter.wait(for: what) { block, timeout in
            do throws(Errno) {
                _ = try SystemCall.once {
                    if let timeout { ipcb_sem_wait_for(semaphore, timeout) } else if block { sem_wait(semaphore) } else { sem_trywait(semaphore) }
                }
                return true
            } catch .interrupted, .wouldBlock, .timedOut {
                return false
            } catch {
                throw IPCError.system(block ? "sem_wait" : "sem_trywait", error)
            }
        }
    }
}

/// A System V semaphore set (semget/semop) created by the parent: per ring, one semaphore counts
/// full slots and one empty slots. Every semop is a system call, even when it need not wait. Other
/// wait strategies: IPC_NOWAIT (poll, spin-then-block), semtimedop (timed).
struct SystemVSemaphoreNotifier: RingNotifier {
    let set: Int32
    let full: UInt16
    let empty: UInt16
    let waiter: TryWaiter

    @inline(__always)
    func waitForSpace(_ ring: Ring, head: UInt32) throws { try take(empty, for: "room in the ring") }

    @inline(__always)
    func publish(_ ring: Ring, head: UInt32) throws {
        ipcb_store_relaxed_u32(ring.head, head)
        try operate(full, 1)
    }

    @inline(__always)
    func waitForData(_ ring: Ring, tail: UInt32) throws { try take(full, for: "message") }

    @inline(__always)
    func release(_ ring: Ring, tail: UInt32) throws {
        ipcb_store_relaxed_u32(ring.tail, tail)
        try operate(empty, 1)
    }

    /// Decrements `semaphore`, waiting in the strategy's way while it is 0.
    @inline(__always)
    private func take(_ semaphore: UInt16, for what: String) throws {
        try waiter.wait(for: what) { block, timeout in
            do throws(Errno) {
                _ = try SystemCall.once { ipcb_semop_one(set, semaphore, -1, block ? 0 : Int16(IPC_NOWAIT), timeout ?? .max) }
                return true
            } catch .interrupted, .wouldBlock {
                return false
            } catch {
                throw IPCError.system("semop", error)
            }
        }
    }

    @inline(__always)
    private func operate(_ semaphore: UInt16, _ delta: Int16) throws {
        var operation = sembuf(sem_num: semaphore, sem_op: delta, sem_flg: 0)
        do throws(Errno) {
            _ = try SystemCall.retrying { semop(set, &operation, 1) }
        } catch {
            throw IPCError.system("semop", error)
        }
    }
}

#ifndef CIPCSHIM_URING_H
#define CIPCSHIM_URING_H

// io_uring through its three system calls (io_uring_setup, io_uring_enter, mmap of the rings), not
// liburing: the binary then starts wherever io_uring is disabled or absent, and needs no library.
// Only what one worker needs: one operation in flight at a time, submitted and reaped by one thread.

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

struct io_uring_sqe;
struct io_uring_cqe;

struct ipcb_uring {
    int fd;
    unsigned setup_flags;
    unsigned features;  // IORING_FEAT_* the kernel reported
    // Submission queue (shared with the kernel).
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_flags, *sq_array;
    struct io_uring_sqe *sqes;
    // Completion queue (shared with the kernel).
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
    // The mappings, for ipcb_uring_close (both queues share one: IORING_FEAT_SINGLE_MMAP).
    void *sq_ring;
    size_t sq_ring_bytes;
    size_t sqe_bytes;
};

/// Creates a ring of `entries` submission slots. With `sqpoll` a kernel thread polls the submission
/// queue (IORING_SETUP_SQPOLL, idle after `sq_idle_ms`; pinned to `sq_cpu` when >= 0). Returns 0, or
/// -errno (ENOSYS: no io_uring; EPERM: io_uring_disabled or a seccomp filter).
int ipcb_uring_open(struct ipcb_uring *ring, unsigned entries, int sqpoll, int sq_cpu, unsigned sq_idle_ms);
void ipcb_uring_close(struct ipcb_uring *ring);
/// What this kernel's io_uring lacks that ipcbench uses, as a sentence, or NULL: the operations
/// (IORING_REGISTER_PROBE), skipped successful completions (5.17), and, as IORING_OP_SOCKET marks
/// 5.19, IORING_RECVSEND_POLL_FIRST, which has no feature bit.
const char *ipcb_uring_missing_feature(struct ipcb_uring *ring);

/// Queues one read (IORING_OP_READ) or write (IORING_OP_WRITE) of `fd` at the file's position, with
/// `user_data`; the kernel sees it once submitted (ipcb_uring_submit_and_wait or, with SQPOLL, at once).
void ipcb_uring_queue_read(struct ipcb_uring *ring, int fd, void *buffer, unsigned length, uint64_t user_data);
void ipcb_uring_queue_write(struct ipcb_uring *ring, int fd, const void *buffer, unsigned length, uint64_t user_data);
/// Queues IORING_OP_RECV or IORING_OP_SEND with `msg_flags` (datagram sockets: MSG_TRUNC).
void ipcb_uring_queue_receive(struct ipcb_uring *ring, int fd, void *buffer, unsigned length, int msg_flags, uint64_t user_data);
void ipcb_uring_queue_send(struct ipcb_uring *ring, int fd, const void *buffer, unsigned length, int msg_flags, uint64_t user_data);
/// Queues IORING_OP_MSG_RING: a completion with `user_data` and res = `value` appears in the ring
/// `target_ring_fd` (possibly another process's). This ring gets a completion only if that fails
/// (IOSQE_CQE_SKIP_SUCCESS), carrying `failure_user_data` and -errno.
void ipcb_uring_queue_message(struct ipcb_uring *ring, int target_ring_fd, int32_t value, uint64_t user_data,
                              uint64_t failure_user_data);

/// Submits what is queued and, when `wait` is nonzero, waits for at least one completion: one
/// io_uring_enter. Retries EINTR. Returns 0 or -errno.
int ipcb_uring_submit_and_wait(struct ipcb_uring *ring, int wait);
/// SQPOLL rings: wakes the submission thread if it went idle (one system call, only then).
int ipcb_uring_wake_submitter(struct ipcb_uring *ring);

/// The number of completions waiting to be reaped (shared memory only).
static inline unsigned ipcb_uring_completions_ready(const struct ipcb_uring *ring) {
    return __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE) - *ring->cq_head;
}

/// Takes the oldest completion, if any: returns 1 and fills `user_data` and `result`, else 0.
/// Reads only shared memory: no system call.
int ipcb_uring_reap(struct ipcb_uring *ring, uint64_t *user_data, int32_t *result);

/// A duplicate of process `pid`'s descriptor `fd` (pidfd_open + pidfd_getfd, close-on-exec): how
/// a worker gets its peer's io_uring, which the kernel refuses to pass with SCM_RIGHTS. Needs ptrace
/// access to `pid` (same user; under Yama, `pid` must have allowed this process: ipcb_allow_tracer).
/// Returns the descriptor or -errno.
int ipcb_descriptor_of_process(pid_t pid, int fd);
/// prctl(PR_SET_PTRACER, pid): lets `pid` (and only it) use ptrace access on this process under Yama
/// ptrace_scope 1. Returns 0, or -errno (EINVAL without Yama: nothing to allow).
int ipcb_allow_tracer(pid_t pid);

#endif

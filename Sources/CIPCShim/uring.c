#include "CIPCShimUring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int setup(unsigned entries, struct io_uring_params *params) {
    return (int)syscall(__NR_io_uring_setup, entries, params);
}

static int enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

int ipcb_uring_open(struct ipcb_uring *ring, unsigned entries, int sqpoll, int sq_cpu, unsigned sq_idle_ms) {
    memset(ring, 0, sizeof *ring);
    ring->fd = -1;
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    if (sqpoll) {
        params.flags |= IORING_SETUP_SQPOLL;
        params.sq_thread_idle = sq_idle_ms;
        if (sq_cpu >= 0) {
            params.flags |= IORING_SETUP_SQ_AFF;
            params.sq_thread_cpu = (unsigned)sq_cpu;
        }
    }
    int fd = setup(entries, &params);
    if (fd < 0) return -errno;
    // One mapping for both rings (IORING_FEAT_SINGLE_MMAP, 5.4+) keeps this short; older kernels are
    // refused rather than handled twice.
    if (!(params.features & IORING_FEAT_SINGLE_MMAP) || !(params.features & IORING_FEAT_NODROP)) {
        close(fd);
        return -ENOSYS;
    }
    size_t sq_bytes = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_bytes = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    size_t ring_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
    void *rings = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (rings == MAP_FAILED) {
        int error = errno;
        close(fd);
        return -error;
    }
    size_t sqe_bytes = params.sq_entries * sizeof(struct io_uring_sqe);
    void *sqes = mmap(NULL, sqe_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) {
        int error = errno;
        munmap(rings, ring_bytes);
        close(fd);
        return -error;
    }
    char *base = rings;
    ring->fd = fd;
    ring->setup_flags = params.flags;
    ring->features = params.features;
    ring->sq_head = (unsigned *)(base + params.sq_off.head);
    ring->sq_tail = (unsigned *)(base + params.sq_off.tail);
    ring->sq_mask = (unsigned *)(base + params.sq_off.ring_mask);
    ring->sq_flags = (unsigned *)(base + params.sq_off.flags);
    ring->sq_array = (unsigned *)(base + params.sq_off.array);
    ring->cq_head = (unsigned *)(base + params.cq_off.head);
    ring->cq_tail = (unsigned *)(base + params.cq_off.tail);
    ring->cq_mask = (unsigned *)(base + params.cq_off.ring_mask);
    ring->cqes = (struct io_uring_cqe *)(base + params.cq_off.cqes);
    ring->sqes = sqes;
    ring->sq_ring = rings;
    ring->sq_ring_bytes = ring_bytes;
    ring->sqe_bytes = sqe_bytes;
    return 0;
}

void ipcb_uring_close(struct ipcb_uring *ring) {
    if (ring->fd < 0) return;
    munmap(ring->sqes, ring->sqe_bytes);
    munmap(ring->sq_ring, ring->sq_ring_bytes);
    close(ring->fd);
    ring->fd = -1;
}

const char *ipcb_uring_missing_feature(struct ipcb_uring *ring) {
    if (!(ring->features & IORING_FEAT_CQE_SKIP)) return "no IOSQE_CQE_SKIP_SUCCESS (Linux 5.17 or later needed)";
    _Alignas(struct io_uring_probe) unsigned char buffer[sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op)];
    memset(buffer, 0, sizeof buffer);
    struct io_uring_probe *probe = (struct io_uring_probe *)buffer;
    if (syscall(__NR_io_uring_register, ring->fd, IORING_REGISTER_PROBE, probe, 256) < 0) return "IORING_REGISTER_PROBE failed";
    static const struct { int opcode; const char *missing; } needed[] = {
        {IORING_OP_READ, "no IORING_OP_READ (Linux 5.6 or later needed)"},
        {IORING_OP_WRITE, "no IORING_OP_WRITE (Linux 5.6 or later needed)"},
        {IORING_OP_SEND, "no IORING_OP_SEND (Linux 5.6 or later needed)"},
        {IORING_OP_RECV, "no IORING_OP_RECV (Linux 5.6 or later needed)"},
        {IORING_OP_MSG_RING, "no IORING_OP_MSG_RING (Linux 5.18 or later needed)"},
        {IORING_OP_SOCKET, "no IORING_RECVSEND_POLL_FIRST (Linux 5.19 or later needed)"},
    };
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        int opcode = needed[i].opcode;
        if (opcode > probe->last_op || !(probe->ops[opcode].flags & IO_URING_OP_SUPPORTED)) return needed[i].missing;
    }
    return NULL;
}

// The next submission slot, zeroed. The caller keeps at most `entries` operations queued (one here).
static struct io_uring_sqe *next_sqe(struct ipcb_uring *ring) {
    unsigned tail = *ring->sq_tail;  // only this thread writes the tail
    unsigned index = tail & *ring->sq_mask;
    struct io_uring_sqe *sqe = &ring->sqes[index];
    memset(sqe, 0, sizeof *sqe);
    ring->sq_array[index] = index;
    return sqe;
}

// Makes the slot filled by next_sqe visible to the kernel (release: the slot before the tail).
static void publish_sqe(struct ipcb_uring *ring) {
    __atomic_store_n(ring->sq_tail, *ring->sq_tail + 1, __ATOMIC_RELEASE);
}

static void queue_operation(struct ipcb_uring *ring, int opcode, int fd, const void *buffer, unsigned length, int msg_flags,
                           uint16_t ioprio, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    sqe->ioprio = ioprio;
    sqe->opcode = (uint8_t)opcode;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)buffer;
    sqe->len = length;
    // The file's position (-1: none, as for streams and sockets); recv/send ignore it.
    sqe->off = opcode == IORING_OP_READ || opcode == IORING_OP_WRITE ? (uint64_t)-1 : 0;
    sqe->msg_flags = (uint32_t)msg_flags;
    sqe->user_data = user_data;
    publish_sqe(ring);
}

void ipcb_uring_queue_receive(struct ipcb_uring *ring, int fd, void *buffer, unsigned length, int msg_flags, uint64_t user_data) {
    queue_operation(ring, IORING_OP_RECV, fd, buffer, length, msg_flags, 0, user_data);
}

void ipcb_uring_queue_send(struct ipcb_uring *ring, int fd, const void *buffer, unsigned length, int msg_flags, uint64_t user_data) {
    // Poll first: on 6.18 a send to a UNIX datagram socket whose peer's queue is full, retried by
    // io_uring once there is room, sends an empty datagram and completes with 0 (the first attempt
    // consumed the data; scripts/c/uring_dgram_send_retry.c shows it). Waiting for room before the
    // first attempt avoids the failing attempt.
    queue_operation(ring, IORING_OP_SEND, fd, buffer, length, msg_flags, IORING_RECVSEND_POLL_FIRST, user_data);
}

void ipcb_uring_queue_read(struct ipcb_uring *ring, int fd, void *buffer, unsigned length, uint64_t user_data) {
    queue_operation(ring, IORING_OP_READ, fd, buffer, length, 0, 0, user_data);
}

void ipcb_uring_queue_write(struct ipcb_uring *ring, int fd, const void *buffer, unsigned length, uint64_t user_data) {
    queue_operation(ring, IORING_OP_WRITE, fd, buffer, length, 0, 0, user_data);
}

void ipcb_uring_queue_message(struct ipcb_uring *ring, int target_ring_fd, int32_t value, uint64_t user_data,
                              uint64_t failure_user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    sqe->opcode = IORING_OP_MSG_RING;
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
    sqe->fd = target_ring_fd;
    sqe->addr = IORING_MSG_DATA;
    sqe->len = (uint32_t)value;   // the target completion's res
    sqe->off = user_data;         // the target completion's user_data
    sqe->user_data = failure_user_data;
    publish_sqe(ring);
}

int ipcb_uring_submit_and_wait(struct ipcb_uring *ring, int wait) {
    while (1) {
        // Queued but not yet consumed by the kernel (an EINTR may come after the submission).
        unsigned pending = *ring->sq_tail - __atomic_load_n(ring->sq_head, __ATOMIC_ACQUIRE);
        unsigned flags = 0;
        if (ring->setup_flags & IORING_SETUP_SQPOLL) {
            pending = 0;  // the kernel thread submits
            // The tail store must be visible before the flag is read, or a thread going idle and
            // this check could miss each other (liburing's io_uring_smp_mb).
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (__atomic_load_n(ring->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP) flags |= IORING_ENTER_SQ_WAKEUP;
        }
        if (wait) {
            if (*ring->cq_head != __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE) && pending == 0) return 0;
            flags |= IORING_ENTER_GETEVENTS;
        }
        if (pending == 0 && flags == 0) return 0;
        int result = enter(ring->fd, pending, wait ? 1 : 0, flags);
        if (result >= 0) {
            if (!wait) return 0;
            continue;  // a completion is there now, or the loop submits what is left
        }
        // EAGAIN/EBUSY: no room for completions yet; waiting reaps some, a submission alone cannot.
        if (errno != EINTR && (!wait || (errno != EAGAIN && errno != EBUSY))) return -errno;
    }
}

int ipcb_uring_wake_submitter(struct ipcb_uring *ring) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  // as in ipcb_uring_submit_and_wait
    if (!(__atomic_load_n(ring->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP)) return 0;
    while (enter(ring->fd, 0, 0, IORING_ENTER_SQ_WAKEUP) < 0) {
        if (errno != EINTR) return -errno;
    }
    return 0;
}

int ipcb_uring_reap(struct ipcb_uring *ring, uint64_t *user_data, int32_t *result) {
    unsigned head = *ring->cq_head;  // only this thread writes the head
    if (head == __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE)) return 0;
    struct io_uring_cqe *cqe = &ring->cqes[head & *ring->cq_mask];
    *user_data = cqe->user_data;
    *result = cqe->res;
    __atomic_store_n(ring->cq_head, head + 1, __ATOMIC_RELEASE);
    return 1;
}

int ipcb_descriptor_of_process(pid_t pid, int fd) {
    int process = (int)syscall(SYS_pidfd_open, pid, 0);
    if (process < 0) return -errno;
    int copy = (int)syscall(SYS_pidfd_getfd, process, fd, 0);
    int error = errno;
    close(process);
    return copy >= 0 ? copy : -error;
}

int ipcb_allow_tracer(pid_t pid) {
    return prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0) == 0 ? 0 : -errno;
}

// Shows a kernel behaviour ipcbench works around (Sources/CIPCShim/uring.c, ipcb_uring_queue_send):
// an io_uring IORING_OP_SEND to a UNIX datagram socket whose peer's receive queue is full
// (net.unix.max_dgram_qlen) is retried by io_uring once a datagram is drained, and on Linux 6.18
// the retry sends an EMPTY datagram and completes with res=0. With IORING_RECVSEND_POLL_FIRST the
// send waits for room first and sends all 64 bytes.
//
//   cc -O2 -I Sources/CIPCShim/include scripts/c/uring_dgram_send_retry.c Sources/CIPCShim/uring.c -lpthread -o /tmp/repro
//   /tmp/repro           # without POLL_FIRST
//   /tmp/repro poll-first
#include "CIPCShimUring.h"

#include <linux/io_uring.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int receiver;

static void *drain_one(void *unused) {
    (void)unused;
    usleep(100000);  // after the send has found the queue full
    char buffer[256];
    printf("drained one datagram of %zd bytes\n", recv(receiver, buffer, sizeof buffer, MSG_TRUNC));
    return NULL;
}

int main(int argc, char **argv) {
    int poll_first = argc > 1 && strcmp(argv[1], "poll-first") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "ipcbench-repro-%d", getpid());  // abstract
    socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(address.sun_path + 1));
    receiver = socket(AF_UNIX, SOCK_DGRAM, 0);
    int sender = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (bind(receiver, (struct sockaddr *)&address, length) != 0 || connect(sender, (struct sockaddr *)&address, length) != 0) {
        perror("bind/connect");
        return 2;
    }
    char message[64];
    memset(message, 'a', sizeof message);
    int queued = 0;
    while (send(sender, message, sizeof message, MSG_DONTWAIT) == sizeof message) queued++;
    printf("queued %d datagrams; the peer's queue is full\n", queued);

    struct ipcb_uring ring;
    if (ipcb_uring_open(&ring, 8, 0, -1, 0) != 0) {
        puts("io_uring is not available");
        return 2;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, drain_one, NULL);
    // The same submission as ipcb_uring_queue_send, with or without POLL_FIRST.
    unsigned index = *ring.sq_tail & *ring.sq_mask;
    struct io_uring_sqe *sqe = &ring.sqes[index];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = sender;
    sqe->addr = (uint64_t)(uintptr_t)message;
    sqe->len = sizeof message;
    sqe->ioprio = poll_first ? IORING_RECVSEND_POLL_FIRST : 0;
    ring.sq_array[index] = index;
    __atomic_store_n(ring.sq_tail, *ring.sq_tail + 1, __ATOMIC_RELEASE);
    uint64_t user_data;
    int32_t result;
    while (!ipcb_uring_reap(&ring, &user_data, &result)) ipcb_uring_submit_and_wait(&ring, 1);
    printf("IORING_OP_SEND of %zu bytes%s completed with res=%d\n", sizeof message, poll_first ? " (POLL_FIRST)" : "", result);
    pthread_join(thread, NULL);
    int empty = 0;
    char buffer[256];
    ssize_t received;
    while ((received = recv(receiver, buffer, sizeof buffer, MSG_TRUNC | MSG_DONTWAIT)) >= 0) {
        if (received != sizeof message) {
            printf("received a datagram of %zd bytes\n", received);
            empty++;
        }
    }
    ipcb_uring_close(&ring);
    return empty || result != sizeof message ? 1 : 0;
}

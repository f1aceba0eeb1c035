/* spin_ring_pingpong.c - what ipcbench's spinning ring ping-pong does (Sources/IPCBench/Mechanisms/
 * SpinPingPong.swift), in plain C, so scripts/compare-with-c can hold the Swift loop against C doing
 * the same thing, measurement included:
 *   - one 64-byte slot in a MAP_SHARED page: a stamp word at offset 0, the message's sequence number
 *     at 16 and its send time at 24 (a 16-byte message after a 16-byte slot header);
 *   - the producer reads the TSC once per round trip, just before it writes the message, stores the
 *     stamp (release) and counts the previous round trip in a tick-indexed array while this one is in
 *     flight; the consumer answers by storing the reply stamp, then reads the TSC and counts the
 *     one-way delay, and checks the sequence;
 *   - both poll with PAUSES pauses between reads (ipcbench's default is 1 under a 150 ns floor).
 *
 * usage: spin_ring_pingpong CPU_PING CPU_PONG ITERS [PAUSES=1] [MEASURE=1]
 *   MEASURE=0 drops the clock reads and counts: the bare exchange.
 * Prints the mean round trip over ITERS timed round trips (after 200 warm-up ones).
 * Build: cc -O2 -o spin_ring_pingpong spin_ring_pingpong.c
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

struct slot {
    _Alignas(64) _Atomic uint32_t stamp;
    uint32_t header_padding[3];
    volatile uint64_t sequence;
    volatile uint64_t sent_at;
    _Alignas(64) _Atomic uint32_t ready;
};

enum { EXACT_TICKS = 2048, WARMUP = 200 };
static uint64_t counts[EXACT_TICKS];
static int pauses = 1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        exit(1);
    }
}

static inline void wait_for(_Atomic uint32_t *word, uint32_t stamp)
{
    while (atomic_load_explicit(word, memory_order_acquire) != stamp)
        for (int i = 0; i < pauses; i++)
            _mm_pause();
}

static inline void count(uint64_t from, uint64_t to)
{
    uint64_t ticks = to > from ? to - from : 0;
    if (ticks < EXACT_TICKS)
        counts[ticks]++;
}

/* Stamps as in ipcbench's Ring.stamp(of:): (index + 1) << 1, low bit = ring (0 request, 1 reply). */
static inline uint32_t stamp(uint32_t index, uint32_t ring) { return (index + 1) << 1 | ring; }

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CPU_PING CPU_PONG ITERS [PAUSES=1] [MEASURE=1]\n", argv[0]);
        return 2;
    }
    int ping = atoi(argv[1]), pong = atoi(argv[2]);
    uint64_t iters = strtoull(argv[3], 0, 10);
    pauses = argc > 4 ? atoi(argv[4]) : 1;
    int measure = argc > 5 ? atoi(argv[5]) : 1;
    struct slot *slot = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (slot == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t total = WARMUP + iters;

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        pin(pong);
        atomic_store(&slot->ready, 1);
        uint64_t wrong = 0;
        for (uint32_t index = 0;; index++) {
            wait_for(&slot->stamp, stamp(index, 0));
            uint64_t sequence = slot->sequence, sent_at = slot->sent_at;
            if (sequence == UINT64_MAX)
                break;
            atomic_store_explicit(&slot->stamp, stamp(index, 1), memory_order_release);
            if (measure)
                count(sent_at, __rdtsc());
            wrong += sequence != index;
        }
        _exit(wrong != 0);
    }

    pin(ping);
    while (!atomic_load(&slot->ready))
        sched_yield();
    uint64_t start = 0, previous = 0, wrong = 0;
    uint32_t index;
    for (index = 0; index < total; index++) {
        if (index == WARMUP)
            start = now_ns();
        uint64_t sent_at = measure ? __rdtsc() : 0;
        slot->sequence = index;
        slot->sent_at = sent_at;
        atomic_store_explicit(&slot->stamp, stamp(index, 0), memory_order_release);
        if (measure && index > WARMUP)
            count(previous, sent_at);
        wait_for(&slot->stamp, stamp(index, 1));
        wrong += slot->sequence != index;
        previous = sent_at;
    }
    uint64_t end = now_ns();
    slot->sequence = UINT64_MAX;
    atomic_store_explicit(&slot->stamp, stamp(index, 0), memory_order_release);
    int status = 0;
    waitpid(pid, &status, 0);
    if (wrong || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spin_ring_pingpong: a reply or request carried the wrong sequence number\n");
        return 1;
    }
    printf("spin_ring_pingpong pauses=%d measure=%d ping=%d pong=%d iters=%llu rt_ns=%.1f\n", pauses, measure, ping, pong,
           (unsigned long long)iters, (double)(end - start) / (double)iters);
    return 0;
}

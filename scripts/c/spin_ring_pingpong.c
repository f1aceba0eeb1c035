/* spin_ring_pingpong.c - what ipcbench's spinning ring ping-pong does (Sources/IPCBench/Mechanisms/
 * SpinPingPong.swift, `--mechanisms shm-posix --variants in-place/spin --mode latency`), in plain C, so
 * scripts/compare-with-c can hold the Swift loop against C doing the same thing, measurement included:
 *   - one slot in a MAP_SHARED page, shared by both directions: a 32-bit stamp word at offset 0 says
 *     whose turn it is ((index + 1) << 1, low bit 0 for a request, 1 for a reply, as ipcbench's
 *     Ring.stamp(of:)), the message from offset 16 (a 16-byte slot header), the slot SIZE + 16 bytes
 *     rounded up to 64 (one cache line at the default 16 B);
 *   - producer: reads the clock once per round trip, just before it writes the message: header
 *     (sequence, that send time) and every payload byte in the slot (--produce write); stores the
 *     request stamp (release); counts the previous round trip in a tick-indexed array while this one is
 *     in flight; waits for the reply stamp; checks the reply's sequence == its own | (1 << 62);
 *   - consumer: waits for the request stamp, reads the header, reads every byte of the message where it
 *     lies (--touch read: sum of 8-byte words), reads the clock (arrival: ipcbench's generic latency
 *     loop, which the spinning ring's one-slot hand-off now goes through, reads it inside the receive),
 *     writes the reply header into the slot (sequence | (1 << 62), the request's send time; the
 *     payload is not rewritten), stores the reply stamp (release), and only then counts the one-way
 *     delay and the sequence;
 *   - both poll with PAUSES pauses between reads and yield the CPU after 256 (ipcbench's SpinNotifier;
 *     its default is 1 pause when the cache-line floor it probed is under 150 ns round trip, else 3);
 *   - the per-message clock is CLOCK (ipcbench reads the TSC where the kernel's clocksource is tsc,
 *     else CLOCK_MONOTONIC); the mean is wall time (CLOCK_MONOTONIC) over the timed round trips.
 *
 * usage: spin_ring_pingpong CPU_PING CPU_PONG ITERS [PAUSES=1] [MEASURE=1] [WARMUP=200] [SIZE=16] [CLOCK]
 *   MEASURE=0 drops the clock reads and counts: the bare exchange.
 *   CLOCK  tsc or mono (default tsc on x86): the clock ipcbench's latency loops read (latency_clock).
 * Prints the mean round trip (rt_ns) over ITERS timed round trips, after WARMUP untimed ones.
 * Build: clang -O3 -o spin_ring_pingpong spin_ring_pingpong.c (compare-with-c uses the Swift toolchain's clang).
 */
#include "common.h"
#include <stdatomic.h>

enum { SLOT_HEADER = 16, LINE = 64 };

static unsigned char *slot;
static _Atomic uint32_t *stamp_word;
static _Atomic uint32_t *ready;
static volatile uint64_t *sink; /* on the ready word's page */
static size_t size;
static int measure;
static struct tally round_trips, one_way;

static inline void wait_for(uint32_t stamp)
{
    int spins = 0;
    while (atomic_load_explicit(stamp_word, memory_order_acquire) != stamp)
        spin_pause(&spins);
}

/* Stamps as in ipcbench's Ring.stamp(of:): (index + 1) << 1, low bit = ring (0 request, 1 reply). */
static inline uint32_t stamp(uint32_t index, uint32_t ring) { return (index + 1) << 1 | ring; }

static int consumer(int cpu)
{
    pin(cpu);
    prefault(slot - SLOT_HEADER, 4096);
    atomic_store(ready, 1);
    unsigned char *message = slot;
    struct sequence_check check = {0};
    uint64_t checksum = 0;
    for (uint32_t index = 0;; index++) {
        wait_for(stamp(index, 0));
        uint64_t sequence = sequence_of(message), sent_at = sent_at_of(message);
        if (sequence & END_MARKER)
            break;
        checksum += read_all(message, size);
        uint64_t arrived_at = measure ? loop_clock() : 0;
        put_header(message, sequence | REPLY_FLAG, sent_at);
        atomic_store_explicit(stamp_word, stamp(index, 1), memory_order_release);
        if (measure)
            tally_count(&one_way, sent_at, arrived_at);
        sequence_observe(&check, sequence);
    }
    check_still_on(cpu);
    /* Stored where the parent could read them, so the compiler keeps the work; a wrong sequence fails. */
    sink[0] = checksum;
    sink[1] = tally_total(&one_way);
    return check.lost || check.reordered ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 9) {
        fprintf(stderr, "usage: %s CPU_PING CPU_PONG ITERS [PAUSES=1] [MEASURE=1] [WARMUP=200] [SIZE=16] [tsc|mono]\n", argv[0]);
        return 2;
    }
    int ping = (int)parse_count(argv[1], "CPU_PING"), pong = (int)parse_count(argv[2], "CPU_PONG");
    uint64_t iters = parse_count(argv[3], "ITERS");
    pauses_per_poll = argc > 4 ? (int)parse_count(argv[4], "PAUSES") : 1;
    measure = argc > 5 ? (int)parse_count(argv[5], "MEASURE") : 1;
    uint64_t warmup = argc > 6 ? parse_count(argv[6], "WARMUP") : 200;
    size = argc > 7 ? parse_count(argv[7], "SIZE") : 16;
    if (size < HEADER_BYTES || iters < 1) {
        errno = 0;
        fail("SIZE must be at least %d bytes and ITERS at least 1", HEADER_BYTES);
    }
#if defined(__x86_64__) || defined(__i386__)
    choose_clock(argc > 8 ? argv[8] : "tsc");
#else
    choose_clock(argc > 8 ? argv[8] : "mono");
#endif
    size_t slot_bytes = (SLOT_HEADER + size + LINE - 1) / LINE * LINE;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t region_bytes = (slot_bytes + page + page - 1) / page * page;
    unsigned char *region = shared_region(region_bytes);
    stamp_word = (_Atomic uint32_t *)region;
    slot = region + SLOT_HEADER;
    ready = (_Atomic uint32_t *)(region + (region_bytes - page)); /* its own page, off the slot's lines */
    sink = (volatile uint64_t *)(region + (region_bytes - page) + 64);
    uint64_t total = warmup + iters;

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0)
        _exit(consumer(pong));

    pin(ping);
    prefault(region, region_bytes);
    while (!atomic_load(ready)) {
        siginfo_t info = {0};
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
            return reap(pid, "consumer") | 1;
        sched_yield();
    }
    unsigned char *message = slot;
    uint64_t start = 0, previous = 0, wrong = 0;
    uint32_t index;
    for (index = 0;; index++) {
        if (index == warmup)
            start = now_ns();
        uint64_t sent_at = measure ? loop_clock() : 0;
        if (index == total) {
            if (measure && index > warmup)
                tally_count(&round_trips, previous, sent_at);
            break;
        }
        put_header(message, index, sent_at);
        write_payload(message, size, index);
        atomic_store_explicit(stamp_word, stamp(index, 0), memory_order_release);
        if (measure && index > warmup)
            tally_count(&round_trips, previous, sent_at);
        wait_for(stamp(index, 1));
        wrong += sequence_of(message) != ((uint64_t)index | REPLY_FLAG);
        previous = sent_at;
    }
    uint64_t end = now_ns();
    check_still_on(ping);
    put_header(message, END_MARKER | iters, now_ns());
    atomic_store_explicit(stamp_word, stamp(index, 0), memory_order_release);
    int failed = reap(pid, "consumer");
    if (wrong || failed) {
        fprintf(stderr, "spin_ring_pingpong: %llu replies carried the wrong sequence number\n", (unsigned long long)wrong);
        return 1;
    }
    printf("spin_ring_pingpong pauses=%d measure=%d clock=%s ping=%d pong=%d size=%zu iters=%llu warmup=%llu counted=%llu rt_ns=%.1f\n",
           pauses_per_poll, measure, use_tsc ? "tsc" : "mono", ping, pong, size, (unsigned long long)iters, (unsigned long long)warmup,
           (unsigned long long)tally_total(&round_trips), (double)(end - start) / (double)iters);
    return 0;
}

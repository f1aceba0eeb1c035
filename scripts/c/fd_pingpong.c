/* fd_pingpong.c - closed-loop ping-pong over a pipe pair or a UNIX stream socket, doing per message what
 * ipcbench's latency loops do (Sources/IPCBench/Harness/Loops.swift, latencyProducer/latencyConsumer)
 * with --produce write --touch read, so scripts/compare-with-c can hold
 * `ipcbench run --mechanisms pipe|unix-stream --mode latency` against plain C.
 *
 * usage: fd_pingpong pipe|unix CPU_PRODUCER CPU_CONSUMER SIZE MESSAGES WARMUP CLOCK [block|poll]
 *   CLOCK  tsc or mono: the clock ipcbench's latency loops read (its metadata's latency_clock)
 *   poll   O_NONBLOCK descriptors, EAGAIN retried at once (ipcbench --wait poll); default block
 * Prints one line: rtt_half_ns=<mean RTT/2> (wall time of the MESSAGES timed round trips / MESSAGES / 2),
 * the mean one-way delay, and the counts checked.
 *
 * Per round trip, as ipcbench:
 *   producer  one clock read (it also ends the previous round trip, which is counted while the next
 *             message is in flight); writes the header (sequence, that send time) and every payload byte
 *             into its private buffer; write()s it; read()s the whole reply into another private buffer
 *             and checks its sequence == own | (1 << 62);
 *   consumer  read()s the whole message into its private buffer, reads every byte of it (sum of 8-byte
 *             words), reads the clock (arrival), answers with a message of the same size from its own
 *             send buffer whose header it writes (sequence | (1 << 62), the request's send time; the
 *             payload is not rewritten), and only then counts the one-way delay and the sequence.
 * WARMUP untimed round trips come first; after the timed ones the producer sends a full-size end marker.
 * Channels: see stream_channel.h. Build: clang -O3 -o fd_pingpong fd_pingpong.c (compare-with-c uses the Swift toolchain's clang).
 */
#include "stream_channel.h"

struct results {
    uint64_t start_ns, end_ns, timed, wrong_replies;
    uint64_t one_way_ticks_sum, one_way_count, lost, reordered, checksum;
    uint64_t producer_tally_total;
};

static struct stream_channel channel;
static struct barrier barrier;
static struct results *results;
static int producer_cpu, consumer_cpu;
static size_t size;
static uint64_t messages, warmup;

static int consumer(void *unused)
{
    (void)unused;
    pin(consumer_cpu);
    int read_fd, write_fd;
    channel_open_consumer(&channel, &barrier, &read_fd, &write_fd);
    unsigned char *incoming = private_buffer(size), *reply = private_buffer(size);
    static struct tally one_way;
    struct sequence_check check = {0};
    uint64_t checksum = 0, one_way_sum = 0, answered = 0;
    barrier_signal(&barrier);
    barrier_wait_go(&barrier);
    for (;;) {
        if (!read_exactly(read_fd, incoming, size)) {
            errno = 0;
            fail("producer closed the channel before its end marker");
        }
        uint64_t sequence = sequence_of(incoming), sent_at = sent_at_of(incoming);
        if (!(sequence & END_MARKER))
            checksum += read_all(incoming, size);
        uint64_t arrived_at = loop_clock();
        if (sequence & END_MARKER)
            break;
        put_header(reply, sequence | REPLY_FLAG, sent_at);
        write_all(write_fd, reply, size);
        tally_count(&one_way, sent_at, arrived_at);
        if (sequence >= warmup) {
            one_way_sum += arrived_at > sent_at ? arrived_at - sent_at : 0;
            answered++;
        }
        sequence_observe(&check, sequence);
    }
    check_still_on(consumer_cpu);
    results->one_way_ticks_sum = one_way_sum;
    results->one_way_count = answered;
    results->lost = check.lost;
    results->reordered = check.reordered;
    results->checksum = checksum + tally_total(&one_way);
    return 0;
}

static int producer(void *unused)
{
    (void)unused;
    pin(producer_cpu);
    int read_fd, write_fd;
    channel_open_producer(&channel, &read_fd, &write_fd);
    unsigned char *outgoing = private_buffer(size), *reply = private_buffer(size);
    static struct tally round_trips;
    uint64_t total = warmup + messages, wrong = 0, previous_sent_at = 0, start_ns = 0, sequence;
    barrier_signal(&barrier);
    barrier_wait_go(&barrier);
    for (sequence = 0;; sequence++) {
        if (sequence == warmup)
            start_ns = now_ns();
        uint64_t sent_at = loop_clock();
        if (sequence == total) {
            if (sequence > warmup)
                tally_count(&round_trips, previous_sent_at, sent_at);
            break;
        }
        put_header(outgoing, sequence, sent_at);
        write_payload(outgoing, size, sequence);
        write_all(write_fd, outgoing, size);
        if (sequence > warmup)
            tally_count(&round_trips, previous_sent_at, sent_at);
        if (!read_exactly(read_fd, reply, size)) {
            errno = 0;
            fail("consumer closed the channel before answering message %llu", (unsigned long long)sequence);
        }
        if (sequence_of(reply) != (sequence | REPLY_FLAG))
            wrong++;
        previous_sent_at = sent_at;
    }
    uint64_t end_ns = now_ns();
    check_still_on(producer_cpu);
    put_header(outgoing, END_MARKER | messages, now_ns());
    write_all(write_fd, outgoing, size);
    results->start_ns = start_ns;
    results->end_ns = end_ns;
    results->timed = messages;
    results->wrong_replies = wrong;
    results->producer_tally_total = tally_total(&round_trips);
    return 0;
}

/* The parent closes its copies of the channel once both children have theirs. */
static void parent_done(void)
{
    channel_parent_done(&channel);
}

int main(int argc, char **argv)
{
    if (argc != 8 && !(argc == 9 && (strcmp(argv[8], "block") == 0 || strcmp(argv[8], "poll") == 0))) {
        fprintf(stderr, "usage: %s pipe|unix CPU_PRODUCER CPU_CONSUMER SIZE MESSAGES WARMUP tsc|mono [block|poll]\n", argv[0]);
        return 2;
    }
    channel_prepare(&channel, argv[1]);
    channel_poll = argc == 9 && strcmp(argv[8], "poll") == 0;
    producer_cpu = (int)parse_count(argv[2], "CPU_PRODUCER");
    consumer_cpu = (int)parse_count(argv[3], "CPU_CONSUMER");
    size = parse_count(argv[4], "SIZE");
    messages = parse_count(argv[5], "MESSAGES");
    warmup = parse_count(argv[6], "WARMUP");
    choose_clock(argv[7]);
    if (size < HEADER_BYTES || messages < 1) {
        errno = 0;
        fail("SIZE must be at least %d bytes and MESSAGES at least 1", HEADER_BYTES);
    }
    results = shared_region(sizeof *results);
    barrier_init(&barrier);

    /* The consumer first; the producer once the consumer is listening (a socket's path is bound). */
    int failed = run_pair(&barrier, consumer, producer, parent_done);
    channel_remove(&channel);
    if (failed)
        return 1;
    if (results->wrong_replies || results->lost || results->reordered) {
        fprintf(stderr, "%s: %llu wrong replies, %llu lost, %llu reordered\n", argv[0], (unsigned long long)results->wrong_replies,
                (unsigned long long)results->lost, (unsigned long long)results->reordered);
        return 1;
    }
    double wall = (double)(results->end_ns - results->start_ns);
    double ns_per_tick = 1;
    if (use_tsc) {
        /* Only for the one-way figure: the RTT/2 mean is CLOCK_MONOTONIC wall time. */
        uint64_t t0 = now_ns(), c0 = loop_clock();
        struct timespec pause = {0, 20000000};
        nanosleep(&pause, NULL);
        ns_per_tick = (double)(now_ns() - t0) / (double)(loop_clock() - c0);
    }
    printf("fd_pingpong %s producer=%d consumer=%d size=%zu messages=%llu warmup=%llu clock=%s pipe_bytes=%d "
           "rtt_half_ns=%.1f one_way_mean_ns=%.1f\n",
           argv[1], producer_cpu, consumer_cpu, size, (unsigned long long)messages, (unsigned long long)warmup, argv[7],
           channel.pipe_bytes, wall / (double)messages / 2,
           results->one_way_count ? (double)results->one_way_ticks_sum * ns_per_tick / (double)results->one_way_count : 0);
    return 0;
}

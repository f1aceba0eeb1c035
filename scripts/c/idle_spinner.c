/* idle_spinner.c - keeps one CPU busy at the lowest scheduling priority, so an otherwise idle vCPU
 * never halts, while taking (almost) no time from any normal task on that CPU.
 *
 * usage: idle_spinner CPU SECONDS
 *
 * Pins itself to CPU, switches to SCHED_IDLE and spins in a plain loop (no PAUSE, which
 * can trigger the host's pause-loop exiting; reading CLOCK_MONOTONIC now and then) until
 * SECONDS have passed or it is killed. scripts/compare-with-c --keep-cpus-awake runs one on each CPU of
 * a blocking check, for C and ipcbench alike: on a VM whose idle vCPUs halt, a cross-CPU wake-up
 * otherwise pays for waking a halted vCPU through the host, which dominates the figure and its spread.
 * Build: cc -O3 -o idle_spinner idle_spinner.c
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CPU SECONDS\n", argv[0]);
        return 2;
    }
    pin((int)parse_count(argv[1], "CPU"));
    struct sched_param parameters = {0};
    if (sched_setscheduler(0, SCHED_IDLE, &parameters) != 0)
        fail("sched_setscheduler(SCHED_IDLE)");
    uint64_t end = now_ns() + (uint64_t)(strtod(argv[2], NULL) * 1e9);
    while (now_ns() < end)
        for (int i = 0; i < 100000; i++)
            __asm__ __volatile__("" ::: "memory"); /* no PAUSE: a PAUSE loop may make the host deschedule the vCPU */
    return 0;
}

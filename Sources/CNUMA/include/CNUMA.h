// libnuma, loaded at run time with dlopen (numa.c) instead of linked, so that ipcbench starts — and
// runs everything that does not need NUMA placement — where libnuma.so.1 is not installed.
// Only the functions ipcbench uses are in the table; each has libnuma's own signature (numa.c checks
// them against <numa.h> and <numaif.h> at compile time). This header does not include those, so
// Swift cannot call a libnuma function directly by mistake.
#ifndef CNUMA_H
#define CNUMA_H

#include <stddef.h>

#pragma clang assume_nonnull begin

/// libnuma's node bit mask, opaque here.
struct bitmask;

/// The mempolicy modes and flags ipcbench uses (numaif.h's values; numa.c asserts they match).
enum {
    IPCB_MPOL_DEFAULT = 0,
    IPCB_MPOL_BIND = 2,
    IPCB_MPOL_MF_STRICT = 1 << 0,
    IPCB_MPOL_MF_MOVE = 1 << 1,
};

struct ipcb_numa_api {
    int (*numa_available)(void);
    int (*numa_max_node)(void);
    int (*numa_node_of_cpu)(int cpu);
    struct bitmask *_Nullable (*_Nonnull numa_get_mems_allowed)(void);
    int (*numa_bitmask_isbitset)(const struct bitmask *mask, unsigned int bit);
    void (*numa_bitmask_free)(struct bitmask *mask);
    long (*mbind)(void *start, unsigned long length, int mode, const unsigned long *_Nullable nodemask,
                  unsigned long maxnode, unsigned flags);
    long (*get_mempolicy)(int *_Nullable mode, unsigned long *_Nullable nodemask, unsigned long maxnode,
                          void *_Nullable address, unsigned flags);
    long (*set_mempolicy)(int mode, const unsigned long *_Nullable nodemask, unsigned long maxnode);
    int (*numa_move_pages)(int pid, unsigned long count, void *_Nullable *_Nonnull pages,
                           const int *_Nullable nodes, int *status, int flags);
};

/// dlopens `library` (normally "libnuma.so.1") and resolves every function of the table. Returns the
/// table, or NULL with dlerror's text in `error` (the library handle is then closed again).
const struct ipcb_numa_api *_Nullable ipcb_numa_load(const char *library, char *error, size_t capacity);

#pragma clang assume_nonnull end

#endif

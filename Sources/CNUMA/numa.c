#include "CNUMA.h"

#include <dlfcn.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>

// The table's entries must have libnuma's exact signatures: a mismatch is a compile error here rather
// than a wrong call at run time. (typeof does not reference the symbols, so nothing is linked.)
#define IPCB_SAME_TYPE(field, function) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(((struct ipcb_numa_api *)0)->field), __typeof__(&function)), \
                   #function " does not match libnuma's signature")
IPCB_SAME_TYPE(numa_available, numa_available);
IPCB_SAME_TYPE(numa_max_node, numa_max_node);
IPCB_SAME_TYPE(numa_node_of_cpu, numa_node_of_cpu);
IPCB_SAME_TYPE(numa_get_mems_allowed, numa_get_mems_allowed);
IPCB_SAME_TYPE(numa_bitmask_isbitset, numa_bitmask_isbitset);
IPCB_SAME_TYPE(numa_bitmask_free, numa_bitmask_free);
IPCB_SAME_TYPE(mbind, mbind);
IPCB_SAME_TYPE(get_mempolicy, get_mempolicy);
IPCB_SAME_TYPE(set_mempolicy, set_mempolicy);
IPCB_SAME_TYPE(numa_move_pages, numa_move_pages);
_Static_assert(IPCB_MPOL_DEFAULT == MPOL_DEFAULT && IPCB_MPOL_BIND == MPOL_BIND, "mempolicy modes");
_Static_assert(IPCB_MPOL_MF_STRICT == MPOL_MF_STRICT && IPCB_MPOL_MF_MOVE == MPOL_MF_MOVE, "mbind flags");

static struct ipcb_numa_api api;

const struct ipcb_numa_api *ipcb_numa_load(const char *library, char *error, size_t capacity) {
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(error, capacity, "%s", dlerror());
        return NULL;
    }
#define IPCB_RESOLVE(field)                                                  \
    if ((*(void **)&api.field = dlsym(handle, #field)) == NULL) {            \
        snprintf(error, capacity, "%s: no symbol %s", library, #field);      \
        dlclose(handle);                                                     \
        return NULL;                                                         \
    }
    IPCB_RESOLVE(numa_available)
    IPCB_RESOLVE(numa_max_node)
    IPCB_RESOLVE(numa_node_of_cpu)
    IPCB_RESOLVE(numa_get_mems_allowed)
    IPCB_RESOLVE(numa_bitmask_isbitset)
    IPCB_RESOLVE(numa_bitmask_free)
    IPCB_RESOLVE(mbind)
    IPCB_RESOLVE(get_mempolicy)
    IPCB_RESOLVE(set_mempolicy)
    IPCB_RESOLVE(numa_move_pages)
#undef IPCB_RESOLVE
    return &api;
}

// libnuma, linked as a system library (Debian: libnuma-dev). numaif.h brings get_mempolicy/mbind.
#include <numa.h>
#include <numaif.h>

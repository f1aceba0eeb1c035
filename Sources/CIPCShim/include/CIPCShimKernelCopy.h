// Shim declarations for the kernel one-copy / zero-copy mechanisms (implemented in ../kernelcopy.c).
//
// vmsplice, process_vm_readv, memfd_create and the memfd seals are GNU-only; PR_SET_PTRACER goes
// through the variadic prctl; passing a descriptor needs the CMSG_* macros. Everything else these
// mechanisms use is called from Swift directly.
#pragma once

#include <stddef.h>
#include <sys/types.h>

/// vmsplice(fd, {base, length}, 1, SPLICE_F_GIFT): hands the pages to the pipe by reference.
/// Returns the number of bytes spliced (may be short) or -1 with errno.
ssize_t ipcb_vmsplice_gift(int fd, const void *base, size_t length);

/// process_vm_readv of one remote range into one local range. Returns the bytes read (may be short)
/// or -1 with errno.
ssize_t ipcb_process_vm_read(pid_t pid, void *local, const void *remote, size_t length);

/// prctl(PR_SET_PTRACER, pid): lets `pid` use process_vm_readv on the caller under Yama
/// ptrace_scope 1. Returns 0 or -1 with errno (EINVAL when Yama is not built in: nothing to allow).
int ipcb_allow_ptracer(pid_t pid);

/// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING). Returns the descriptor or -1 with errno.
int ipcb_memfd_create(const char *name);
/// Seals the memfd's size (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) so a peer that maps it can
/// never be truncated under (SIGBUS). Returns 0 or -1 with errno.
int ipcb_memfd_seal_size(int fd);
/// 1 when the memfd can no longer shrink (F_SEAL_SHRINK is set), 0 when it can, -1 with errno.
int ipcb_memfd_size_sealed(int fd);

/// sendmsg of `length` bytes with one descriptor attached (SCM_RIGHTS). Returns the bytes sent or -1.
ssize_t ipcb_send_descriptor(int socket, int descriptor, const void *data, size_t length);
/// recvmsg of up to `capacity` bytes; a descriptor passed with them is stored in *descriptor
/// (close-on-exec), else *descriptor = -1. Returns the bytes received or -1 with errno.
ssize_t ipcb_receive_descriptor(int socket, void *data, size_t capacity, int *descriptor);

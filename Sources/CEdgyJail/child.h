// Runs in the CHILD: what the steps of the child checklist (child.c, child_fs.c) share.
// Async-signal-safe: raw syscalls only, no allocation, no locks.
#ifndef EDGY_CHILD_H
#define EDGY_CHILD_H

#include "include/edgy_jail.h"

/// A failed step: errno is taken at the point of failure.
struct step_failure {
    int stage;
    int op_index;
};

#define OK 0
#define FAIL -1

/// The blob starts with its plan header, so offsets are relative to the header itself.
static inline const char *edgy_at(const void *blob, uint64_t offset) {
    return offset ? (const char *)blob + offset : (const char *)0;
}

/// write(2) until done, retrying EINTR. 0, or -1 with errno.
__attribute__((visibility("hidden"))) long edgy_sys_write_all(int fd, const void *buf, size_t len);

/// The policy's filesystem, before the second gate: mounts under a fresh tmpfs root, pivot_root
/// into it, "/" read-only.
__attribute__((visibility("hidden"))) int edgy_step_filesystem(const struct edgy_fs_plan *fs,
                                                               struct step_failure *failure);

/// The task's files, after the second gate, then chdir into the working directory.
__attribute__((visibility("hidden"))) int edgy_step_task_files(const struct edgy_task_plan *plan,
                                                               struct step_failure *failure);

/// The user namespace's own /proc/sys/user limits.
__attribute__((visibility("hidden"))) int edgy_step_userns_limits(const struct edgy_fs_plan *fs,
                                                                  struct step_failure *failure);

/// Brings the loopback interface up.
__attribute__((visibility("hidden"))) int edgy_step_loopback(void);

/// Configures the jail's end of its egress veth pair (address, up, default route).
__attribute__((visibility("hidden"))) int edgy_step_egress(const struct edgy_shape *shape);

/// Keeps only its fds, waits at the gate, maps the plan from `plan_fd`, applies it and execs;
/// never returns. On failure writes an edgy_child_error to `error_fd` and exits 127.
__attribute__((noreturn)) void edgy_child_main(const struct edgy_shape *shape, int gate_fd, int error_fd,
                                               int plan_fd);

#endif

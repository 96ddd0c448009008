// Runs in the CHILD: the entry point of the child checklist (child.c).
#ifndef EDGY_CHILD_H
#define EDGY_CHILD_H

#include "include/edgy_jail.h"

/// Keeps only its fds, waits at the gate, maps the plan from `plan_fd`, applies it and execs;
/// never returns. On failure writes an edgy_child_error to `error_fd` and exits 127.
/// Async-signal-safe: raw syscalls only, no allocation, no locks.
__attribute__((noreturn)) void edgy_child_main(const struct edgy_shape *shape, int gate_fd, int error_fd,
                                               int plan_fd);

#endif

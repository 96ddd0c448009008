// Runs in the PARENT only. Small wrappers for calls that Swift's Glibc module does not expose
// (they need _GNU_SOURCE or kernel headers).
#include "include/edgy_jail.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

int edgy_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int edgy_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

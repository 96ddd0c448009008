// Runs in the PARENT only (the daemon, the fork server, `edgy helper`): fds passed with SCM_RIGHTS.
#ifndef EDGY_SOCKET_FDS_H
#define EDGY_SOCKET_FDS_H

#include <sys/socket.h>

/// The fds of a received message's SCM_RIGHTS into `fds` (at most `max`); more than `max`, or a
/// truncated control message, is a protocol error: every fd that did arrive is closed then.
/// Returns the count or -1.
int edgy_take_fds(struct msghdr *msg, int *fds, int max);

#endif

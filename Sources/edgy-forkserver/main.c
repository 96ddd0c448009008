// edgy-forkserver: clones jails for edgyd from a small, single-threaded address space.
//
// edgyd starts it with one end of a SOCK_SEQPACKET socketpair as fd 3 and talks the protocol in
// edgy_jail.h; it is not meant to be run by hand. It exits when edgyd closes the socket or dies.
#include "edgy_jail.h"

#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    // Die with the daemon's thread that started us; EOF on the socket covers a race with its exit.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct stat st;
    if (fstat(EDGY_FORKSERVER_SOCKET_FD, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "edgy-forkserver: started by edgyd only (fd %d must be its socket)\n",
                EDGY_FORKSERVER_SOCKET_FD);
        return 2;
    }
    // Only the socket and stdio: every jail is cloned from here and must inherit nothing else.
    syscall(SYS_close_range, EDGY_FORKSERVER_SOCKET_FD + 1, ~0U, 0);
    return edgy_forkserver_serve(EDGY_FORKSERVER_SOCKET_FD);
}

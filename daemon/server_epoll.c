/*
 * server_epoll.c - discovery of gRPC core's epoll fd.
 *
 * What it relies on: the Linux poller of gRPC 1.51 (Debian 12), "epoll1",
 * puts every socket of the process's gRPC I/O, listeners and connections,
 * in one epoll instance, and an epoll fd polls readable while any of them
 * has an event not yet collected. The public API does not give that fd
 * out, so it is found as the epoll instance that watches our own listening
 * socket, by reading /proc/self/fd and each candidate's /proc fdinfo.
 *
 * When it fails: another poller (GRPC_POLL_STRATEGY=poll, a future gRPC
 * that changes epoll1) has no such instance, and two instances watching the
 * port leave no safe choice; server_epoll_find() then gives -1, and
 * server_new() starts 2 worker threads instead, with a warning.
 */
#include "server_epoll.h"

#include <dirent.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* True when `fd` is a listening socket bound to TCP port `port`. */
static bool is_listener_on(int fd, int port)
{
    struct sockaddr_storage address;
    socklen_t address_len = sizeof(address);
    int listening = 0;
    socklen_t listening_len = sizeof(listening);

    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &listening_len) < 0 || !listening)
        return false;
    if (getsockname(fd, (struct sockaddr *)&address, &address_len) < 0)
        return false;
    if (address.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&address)->sin_port) == port;
    if (address.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&address)->sin6_port) == port;
    return false;
}

/*
 * True when the epoll instance `epoll_fd` watches a listener on `port`. Its
 * /proc fdinfo has one line per watched file, "tfd: FD events: .. data: ..
 * pos:.. ino:INODE ...". FD is a number in the table of the process that
 * added it, which for an inherited epoll fd is not ours: the inode must
 * match too.
 */
static bool epoll_watches_listener(int epoll_fd, int port)
{
    char path[64], line[256];
    bool found = false;
    FILE *info;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epoll_fd);
    info = fopen(path, "re");
    if (!info)
        return false;
    while (!found && fgets(line, sizeof(line), info)) {
        int watched;
        unsigned int events;
        unsigned long long data;
        long long position;
        unsigned long inode;
        struct stat st;

        if (sscanf(line, "tfd: %d events: %x data: %llx pos:%lli ino:%lx", &watched, &events, &data,
                   &position, &inode) != 5)
            continue;
        found = fstat(watched, &st) == 0 && st.st_ino == inode && is_listener_on(watched, port);
    }
    fclose(info);
    return found;
}

int server_epoll_find(int port)
{
    DIR *fds = opendir("/proc/self/fd");
    struct dirent *entry;
    int found = -1, matches = 0;

    if (!fds)
        return -1;
    while ((entry = readdir(fds))) {
        char path[300], target[64];
        ssize_t n;
        int fd = atoi(entry->d_name);

        if (entry->d_name[0] < '0' || entry->d_name[0] > '9' || fd == dirfd(fds))
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", entry->d_name);
        n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") == 0 && epoll_watches_listener(fd, port)) {
            found = fd;
            matches++;
        }
    }
    closedir(fds);
    /* Two sets watching the port (another library's epoll on a listener
     * sharing it on another address) leave no safe choice. */
    return matches == 1 ? found : -1;
}

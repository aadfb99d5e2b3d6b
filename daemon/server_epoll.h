/*
 * server_epoll.h - finds the epoll instance gRPC core polls its sockets
 * with, so that another thread's poll can watch gRPC's I/O (see
 * server_epoll.c for what that relies on).
 *
 * Threads: any; reads /proc/self only.
 */
#ifndef FDC_SERVER_EPOLL_H
#define FDC_SERVER_EPOLL_H

/*
 * The epoll fd that watches the gRPC listener bound to TCP `port` (call
 * after grpc_server_start), or -1 when none or more than one does.
 * Borrowed: gRPC owns it; never read or close it.
 */
int server_epoll_find(int port);

#endif
